//! Load generators and their output: wrk (new connections per second with
//! `Connection: close`, latency percentiles) and the kernel's SYN-retransmit counters.

use std::time::Duration;

/// What one wrk run reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WrkReport {
    pub requests_per_sec: f64,
    pub latency_p50: Duration,
    pub latency_p99: Duration,
    /// connect + read + write + timeout errors.
    pub socket_errors: u64,
    pub non_2xx: u64,
    pub requests: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("wrk output has no `{0}` line:\n{1}")]
    Missing(&'static str, String),
    #[error("cannot read `{0}` in wrk output")]
    Bad(String),
}

/// Parses `wrk --latency` output.
pub fn parse_wrk(text: &str) -> Result<WrkReport, ParseError> {
    let line = |prefix: &'static str| {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .ok_or_else(|| ParseError::Missing(prefix, text.to_owned()))
    };
    let rps_line = line("Requests/sec:")?;
    let requests_per_sec = rps_line["Requests/sec:".len()..]
        .trim()
        .parse()
        .map_err(|_| ParseError::Bad(rps_line.to_owned()))?;
    let p50 = parse_duration(line("50%")?["50%".len()..].trim())?;
    let p99 = parse_duration(line("99%")?["99%".len()..].trim())?;
    let socket_errors = match text.lines().map(str::trim).find(|l| l.starts_with("Socket errors:")) {
        Some(l) => l
            .split(',')
            .filter_map(|part| part.split_whitespace().last())
            .map(|n| n.parse::<u64>().map_err(|_| ParseError::Bad(l.to_owned())))
            .sum::<Result<u64, _>>()?,
        None => 0,
    };
    let non_2xx = match text.lines().map(str::trim).find(|l| l.starts_with("Non-2xx")) {
        Some(l) => l.rsplit(':').next().unwrap_or("").trim().parse().map_err(|_| ParseError::Bad(l.to_owned()))?,
        None => 0,
    };
    let requests_line = line_containing(text, "requests in").ok_or_else(|| ParseError::Missing("requests in", text.to_owned()))?;
    let requests = requests_line
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| ParseError::Bad(requests_line.to_owned()))?;
    Ok(WrkReport { requests_per_sec, latency_p50: p50, latency_p99: p99, socket_errors, non_2xx, requests })
}

fn line_containing<'a>(text: &'a str, needle: &str) -> Option<&'a str> {
    text.lines().map(str::trim).find(|l| l.contains(needle))
}

/// wrk's durations: `320.00us`, `1.23ms`, `2.00s`, `1.50m`.
fn parse_duration(text: &str) -> Result<Duration, ParseError> {
    let bad = || ParseError::Bad(text.to_owned());
    let split = text.find(|c: char| c.is_ascii_alphabetic()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "us" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs_f64(seconds))
}

/// Sum of the SYN-retransmit and PAWS-reject counters in `nstat -az` output: a run
/// with any of these measured a pathology, not a path.
pub fn syn_trouble(nstat_output: &str) -> u64 {
    nstat_output
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let name = fields.next()?;
            let value: u64 = fields.next()?.parse().ok()?;
            matches!(name, "TcpExtTCPSynRetrans" | "TcpExtPAWSEstab" | "TcpExtPAWSActive").then_some(value)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Running 5s test @ http://10.96.0.10/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   339.49us  100.12us   3.61ms   81.40%
    Req/Sec    22.68k     1.31k   24.64k    72.55%
  Latency Distribution
     50%  320.00us
     75%  382.00us
     90%  452.00us
     99%    1.69ms
  112835 requests in 5.10s, 18.30MB read
  Socket errors: connect 3, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  22124.05
Transfer/sec:      3.59MB
";

    #[test]
    fn parses_wrk_latency_output() {
        let report = parse_wrk(SAMPLE).unwrap();
        assert_eq!(report.requests_per_sec, 22124.05);
        assert_eq!(report.latency_p50, Duration::from_micros(320));
        assert_eq!(report.latency_p99, Duration::from_micros(1690));
        assert_eq!(report.socket_errors, 6);
        assert_eq!(report.non_2xx, 7);
        assert_eq!(report.requests, 112835);
    }

    #[test]
    fn rejects_output_without_a_rate() {
        assert!(matches!(parse_wrk("unable to connect to 10.96.0.10:80 Connection refused"), Err(ParseError::Missing(..))));
    }

    #[test]
    fn counts_syn_retransmits_and_paws() {
        let out = "#kernel\nTcpExtTCPSynRetrans 3 0.0\nTcpExtPAWSEstab 2 0.0\nTcpExtTCPTimeouts 9 0.0\n";
        assert_eq!(syn_trouble(out), 5);
    }
}

/// What one `sockperf ping-pong` run reported (microseconds).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SockperfReport {
    pub p50_us: f64,
    pub p99_us: f64,
}

/// Parses the percentile lines of `sockperf ping-pong` output
/// (`sockperf: ---> percentile 99.000 =   31.234`).
pub fn parse_sockperf(text: &str) -> Result<SockperfReport, ParseError> {
    let percentile = |which: &'static str| {
        text.lines()
            .find(|l| l.contains(&format!("percentile {which} =")))
            .and_then(|l| l.rsplit('=').next())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .ok_or_else(|| ParseError::Missing(which, text.to_owned()))
    };
    Ok(SockperfReport { p50_us: percentile("50.000")?, p99_us: percentile("99.000")? })
}

#[cfg(test)]
mod sockperf_tests {
    use super::*;

    #[test]
    fn parses_sockperf_percentiles() {
        let out = "sockperf: ====> avg-latency=21.006 (std-dev=3.1)\n\
                   sockperf: ---> <MAX> observation =  120.511\n\
                   sockperf: ---> percentile 99.999 =   98.125\n\
                   sockperf: ---> percentile 99.000 =   31.234\n\
                   sockperf: ---> percentile 50.000 =   20.101\n";
        let report = parse_sockperf(out).unwrap();
        assert_eq!(report.p50_us, 20.101);
        assert_eq!(report.p99_us, 31.234);
    }
}
