//! Upstream's human-readable durations (`apimachinery/pkg/util/duration.HumanDuration`)
//! and the `<unknown>` ages of objects without a timestamp.

use jiff::Timestamp;
use serde_json::Value;

/// `5s`, `3m12s`, `15m`, `4h20m`, `2d3h`, `400d`, `2y13d`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 { format!("{minutes}m") } else { format!("{minutes}m{s}s") };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 { format!("{hours}h") } else { format!("{hours}h{m}m") };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 { format!("{}d", hours / 24) } else { format!("{}d{h}h", hours / 24) };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 { format!("{}y", hours / 24 / 365) } else { format!("{}y{dy}d", hours / 24 / 365) };
    }
    format!("{}y", hours / 24 / 365)
}

/// Parses an RFC 3339 timestamp field.
pub fn timestamp(v: Option<&Value>) -> Option<Timestamp> {
    v.and_then(Value::as_str).and_then(|s| s.parse::<Timestamp>().ok())
}

/// Time elapsed since `ts` as upstream's `translateTimestampSince`: `<unknown>` when unset.
pub fn since(ts: Option<&Value>, now: Timestamp) -> String {
    match timestamp(ts) {
        Some(t) => human_duration(now.as_second() - t.as_second()),
        None => "<unknown>".into(),
    }
}

/// The duration between two timestamps (job durations).
pub fn between(start: Timestamp, end: Timestamp) -> String {
    human_duration(end.as_second() - start.as_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_upstream_human_duration() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (192, "3m12s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (4 * 3600 + 20 * 60, "4h20m"),
            (47 * 3600, "47h"),
            (2 * 86400, "2d"),
            (2 * 86400 + 3 * 3600, "2d3h"),
            (8 * 86400, "8d"),
            (400 * 86400, "400d"),
            (365 * 2 * 86400 + 13 * 86400, "2y13d"),
            (365 * 9 * 86400, "9y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(secs), want, "{secs}s");
        }
    }

    #[test]
    fn since_handles_missing_timestamps() {
        let now: Timestamp = "2024-01-01T00:05:00Z".parse().unwrap();
        assert_eq!(since(Some(&"2024-01-01T00:00:00Z".into()), now), "5m");
        assert_eq!(since(None, now), "<unknown>");
    }
}
