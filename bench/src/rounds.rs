//! Repeated measurement: the order paths are measured in, round after round, and the
//! summary of the repeats (median and spread).

/// The order of `n` paths in round `round`: rotated by one per round, so that over `n`
/// rounds each path is measured once in every position (no path always runs first,
/// right after a rules load, or always last).
pub fn rotation(n: usize, round: usize) -> Vec<usize> {
    (0..n).map(|i| (i + round) % n).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_puts_every_path_in_every_position() {
        let rounds: Vec<Vec<usize>> = (0..3).map(|r| rotation(3, r)).collect();
        assert_eq!(rounds, vec![vec![0, 1, 2], vec![1, 2, 0], vec![2, 0, 1]]);
        for position in 0..3 {
            let mut seen: Vec<usize> = rounds.iter().map(|r| r[position]).collect();
            seen.sort();
            assert_eq!(seen, vec![0, 1, 2]);
        }
        assert_eq!(rotation(2, 3), vec![1, 0]);
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
