//! Steal time: the share of the machine's CPU time the hypervisor gave to other guests
//! during a window (`steal` of the `cpu` line of `/proc/stat`). On a shared VM it is
//! the part of the noise the guest can see; it is reported per window so a reader can
//! tell a quiet run from a stolen one.

/// The aggregate `cpu` line of `/proc/stat`: total and stolen jiffies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub total: u64,
    pub steal: u64,
}

impl CpuTimes {
    /// The current counters; zero when `/proc/stat` cannot be read (steal then reads 0).
    pub fn now() -> CpuTimes {
        std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|text| parse(&text))
            .unwrap_or_default()
    }

    /// Stolen share of the CPU time between `self` and the later `after` (0..=1).
    pub fn steal_until(self, after: CpuTimes) -> f64 {
        let total = after.total.saturating_sub(self.total);
        if total == 0 {
            return 0.0;
        }
        after.steal.saturating_sub(self.steal) as f64 / total as f64
    }
}

/// Parses the `cpu ` line: user nice system idle iowait irq softirq steal (guest time
/// is already inside user and nice, so it is not added again).
fn parse(text: &str) -> Option<CpuTimes> {
    let line = text.lines().find(|line| line.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    (fields.len() == 8).then(|| CpuTimes {
        total: fields.iter().sum(),
        steal: fields[7],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_aggregate_line_and_computes_the_stolen_share() {
        let before =
            parse("cpu  100 0 50 800 10 5 5 30 0 0\ncpu0 50 0 25 400 5 2 3 15 0 0\nintr 1\n")
                .unwrap();
        assert_eq!(
            before,
            CpuTimes {
                total: 1000,
                steal: 30
            }
        );
        let after = CpuTimes {
            total: 1200,
            steal: 80,
        };
        assert!((before.steal_until(after) - 0.25).abs() < 1e-12);
        assert_eq!(before.steal_until(before), 0.0);
        assert_eq!(parse("cpu  1 2 3\n"), None);
        assert_eq!(parse("intr 1\n"), None);
    }
}
