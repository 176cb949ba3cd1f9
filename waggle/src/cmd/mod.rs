use std::time::Duration;

pub mod bpf;
pub mod controllers;
pub mod kubelet;
pub mod proxy;
pub mod scheduler;
pub mod server;

/// A duration flag: `500ms`, `2s`, `1m` (a bare number is seconds).
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let (number, unit) = value
        .find(|c: char| !c.is_ascii_digit())
        .map_or((value, "s"), |i| value.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{value}`: expected e.g. 500ms or 2s"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("`{value}`: unit must be ms, s or m")),
    }
}
