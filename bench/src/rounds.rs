//! Repeated measurement: the order paths are measured in, round after round, the
//! summary of the repeats (median and spread), and the summary of same-round ratios
//! (median, quartiles and a distribution-free confidence interval of the median).

/// The order of `n` paths in round `round`. Rounds come in blocks of `n`: the paths'
/// rotations in one block, the rotations of the reversed order in the next. So every
/// `n` rounds each path is measured once in every position (no path always runs
/// first, right after a rules load, or always last), and every `2n` rounds each path
/// runs as often right before as right after each other path: with two paths this is
/// A B, B A, B A, A B (a drift during the run cancels out of the paired ratios).
pub fn order(n: usize, round: usize) -> Vec<usize> {
    let reversed = (round / n.max(1)) % 2 == 1;
    (0..n)
        .map(|i| {
            let position = (i + round) % n;
            if reversed { n - 1 - position } else { position }
        })
        .collect()
}

/// Median and range of repeated measurements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// `None` for no values; NaNs are ignored.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut sorted: Vec<f64> = values.into_iter().filter(|v| !v.is_nan()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: sorted[0],
            max: sorted[n - 1],
        })
    }

    /// Every value divided by `by`.
    pub fn scaled(self, by: f64) -> Spread {
        Spread {
            median: self.median / by,
            min: self.min / by,
            max: self.max / by,
        }
    }
}

/// Same-round ratios summarised: median, quartiles, and the confidence interval of
/// the median from order statistics (distribution-free: it assumes only that rounds
/// are independent, not that ratios are normal).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RatioSummary {
    pub rounds: usize,
    pub median: f64,
    /// First and third quartile (linear interpolation between order statistics).
    pub q1: f64,
    pub q3: f64,
    /// The interval `[x(l), x(n+1-l)]` of the sorted ratios with the largest `l` whose
    /// coverage is at least 95%; with fewer than 6 rounds no such `l` exists and the
    /// interval is the full range.
    pub ci_low: f64,
    pub ci_high: f64,
    /// The interval's coverage: `1 - 2 P(Binomial(n, 1/2) <= l - 1)`.
    pub confidence: f64,
}

impl RatioSummary {
    /// `None` for no values; NaNs are ignored.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<RatioSummary> {
        let mut sorted: Vec<f64> = values.into_iter().filter(|v| !v.is_nan()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let (l, confidence) = median_interval(n);
        Some(RatioSummary {
            rounds: n,
            median: quantile(&sorted, 0.5),
            q1: quantile(&sorted, 0.25),
            q3: quantile(&sorted, 0.75),
            ci_low: sorted[l - 1],
            ci_high: sorted[n - l],
            confidence,
        })
    }

    /// Whether the data show the ratio at or above `target` (the whole interval is),
    /// below it (the whole interval is below), or neither. Too few rounds for a 95%
    /// interval decide nothing.
    pub fn verdict(&self, target: f64) -> Verdict {
        if self.confidence < 0.95 {
            Verdict::Undecided
        } else if self.ci_low >= target {
            Verdict::Met
        } else if self.ci_high < target {
            Verdict::Missed
        } else {
            Verdict::Undecided
        }
    }
}

/// What a [`RatioSummary`] says about a target ratio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Met,
    Missed,
    Undecided,
}

/// The `q` quantile of sorted values, interpolating linearly between neighbours.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    sorted[below] + (sorted[above] - sorted[below]) * (position - below as f64)
}

/// For `n` values, the rank `l` (1-based) of the median's confidence interval
/// `[x(l), x(n+1-l)]` and its coverage: the largest `l` with coverage >= 95%, else 1.
fn median_interval(n: usize) -> (usize, f64) {
    let total = 2f64.powi(n as i32);
    // C(n, i) and P(Binomial(n, 1/2) <= i), from i = 0.
    let mut choose = 1.0;
    let mut cumulative = 0.0;
    let (mut l, mut below) = (1, 1.0 / total);
    for i in 0..n / 2 {
        cumulative += choose / total;
        if cumulative > 0.025 {
            break;
        }
        (l, below) = (i + 1, cumulative);
        choose = choose * (n - i) as f64 / (i + 1) as f64;
    }
    (l, 1.0 - 2.0 * below)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_puts_every_path_in_every_position_and_alternates_neighbours() {
        let rounds: Vec<Vec<usize>> = (0..6).map(|r| order(3, r)).collect();
        assert_eq!(
            rounds,
            vec![
                vec![0, 1, 2],
                vec![1, 2, 0],
                vec![2, 0, 1],
                vec![2, 1, 0],
                vec![1, 0, 2],
                vec![0, 2, 1]
            ]
        );
        for block in rounds.chunks(3) {
            for position in 0..3 {
                let mut seen: Vec<usize> = block.iter().map(|r| r[position]).collect();
                seen.sort();
                assert_eq!(seen, vec![0, 1, 2]);
            }
        }
        // Path 0 runs right before path 2 as often as right after it.
        let adjacent = |a: usize, b: usize| {
            rounds
                .iter()
                .filter(|r| r.windows(2).any(|w| w == [a, b]))
                .count()
        };
        assert_eq!(adjacent(0, 2), adjacent(2, 0));
        let two: Vec<Vec<usize>> = (0..4).map(|r| order(2, r)).collect();
        assert_eq!(two, vec![vec![0, 1], vec![1, 0], vec![1, 0], vec![0, 1]]);
    }

    #[test]
    fn ratio_summary_has_quartiles_and_an_order_statistic_interval() {
        // 12 rounds: the interval is [x(3), x(10)], coverage 1 - 2 * 79/4096.
        let values = [
            1.0, 0.9, 1.1, 0.95, 1.05, 0.8, 1.2, 0.97, 1.03, 0.99, 1.01, 0.5,
        ];
        let s = RatioSummary::of(values).unwrap();
        assert_eq!(s.rounds, 12);
        assert!((s.median - 0.995).abs() < 1e-12, "{s:?}");
        assert_eq!((s.ci_low, s.ci_high), (0.9, 1.05));
        assert!((s.confidence - (1.0 - 2.0 * 79.0 / 4096.0)).abs() < 1e-12);
        assert!((s.q1 - 0.9375).abs() < 1e-12, "{s:?}");
        assert!((s.q3 - 1.035).abs() < 1e-12, "{s:?}");
        assert_eq!(s.verdict(0.95), Verdict::Undecided);
        assert_eq!(s.verdict(0.85), Verdict::Met);
        assert_eq!(s.verdict(1.1), Verdict::Missed);
        // Too few rounds for 95%: the full range, with its own coverage.
        let few = RatioSummary::of([1.0, 2.0, 3.0]).unwrap();
        assert_eq!((few.ci_low, few.ci_high), (1.0, 3.0));
        assert!((few.confidence - 0.75).abs() < 1e-12);
        assert_eq!(few.verdict(0.5), Verdict::Undecided);
        assert_eq!(RatioSummary::of([]), None);
    }

    #[test]
    fn spread_takes_the_median_and_range() {
        assert_eq!(
            Spread::of([3.0, 1.0, 2.0]),
            Some(Spread {
                median: 2.0,
                min: 1.0,
                max: 3.0
            })
        );
        assert_eq!(
            Spread::of([4.0, 1.0, 2.0, 3.0]).map(|s| s.median),
            Some(2.5)
        );
        assert_eq!(Spread::of([f64::NAN, 5.0]).map(|s| s.median), Some(5.0));
        assert_eq!(Spread::of([]), None);
        assert_eq!(
            Spread::of([2.0, 4.0]).map(|s| s.scaled(2.0)),
            Some(Spread {
                median: 1.5,
                min: 1.0,
                max: 2.0
            })
        );
    }
}
