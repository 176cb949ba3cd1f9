//! CronJob schedules: the standard five-field cron syntax and the `@hourly`-style
//! descriptors (through `croner`), in the CronJob's `timeZone`, a `TZ=`/`CRON_TZ=`
//! prefix, or else the controller's local time zone, as upstream's.

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// A parsed schedule in its time zone.
#[derive(Clone, Debug)]
pub struct Schedule {
    cron: Cron,
    zone: TimeZone,
}

impl Schedule {
    /// Parses `spec` for a CronJob with `time_zone`; the error says what is wrong.
    pub fn parse(spec: &str, time_zone: Option<&str>) -> Result<Schedule, String> {
        let mut spec = spec.trim();
        let mut zone_name = time_zone.map(str::to_owned);
        for prefix in ["TZ=", "CRON_TZ="] {
            if let Some(rest) = spec.strip_prefix(prefix) {
                let (zone, rest) =
                    rest.split_once(char::is_whitespace).ok_or("missing schedule after the time zone")?;
                zone_name.get_or_insert_with(|| zone.to_owned());
                spec = rest.trim_start();
            }
        }
        let zone = match zone_name.as_deref() {
            None => TimeZone::system(),
            Some(name) => TimeZone::get(name).map_err(|e| format!("unknown time zone {name}: {e}"))?,
        };
        let parser = CronParser::builder().seconds(Seconds::Disallowed).build();
        let cron = parser.parse(spec).map_err(|e| e.to_string())?;
        Ok(Schedule { cron, zone })
    }

    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    /// The first scheduled time strictly after `t`.
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let zoned = t.to_zoned(self.zone.clone());
        self.cron.find_next_occurrence(&zoned, false).ok().map(|z| z.timestamp())
    }

    /// The last scheduled time at or before `t`.
    pub fn last_at_or_before(&self, t: Timestamp) -> Option<Timestamp> {
        let zoned = t.to_zoned(self.zone.clone());
        self.cron.find_previous_occurrence(&zoned, true).ok().map(|z| z.timestamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn five_fields_and_descriptors() {
        let every = Schedule::parse("* * * * *", Some("UTC")).unwrap();
        assert_eq!(every.next_after(at("2026-01-01T00:00:30Z")), Some(at("2026-01-01T00:01:00Z")));
        assert_eq!(every.next_after(at("2026-01-01T00:01:00Z")), Some(at("2026-01-01T00:02:00Z")));
        assert_eq!(every.last_at_or_before(at("2026-01-01T00:01:00Z")), Some(at("2026-01-01T00:01:00Z")));
        let hourly = Schedule::parse("@hourly", Some("UTC")).unwrap();
        assert_eq!(hourly.next_after(at("2026-01-01T00:00:00Z")), Some(at("2026-01-01T01:00:00Z")));
        let steps = Schedule::parse("*/15 9-17 * * mon-fri", Some("UTC")).unwrap();
        // 2026-01-03 is a Saturday: the next run is Monday at 09:00.
        assert_eq!(steps.next_after(at("2026-01-02T17:50:00Z")), Some(at("2026-01-05T09:00:00Z")));
        // Day of month and day of week both restricted: either matches, as in cron.
        let either = Schedule::parse("0 0 13 * 5", Some("UTC")).unwrap();
        assert_eq!(either.next_after(at("2026-01-01T00:00:00Z")), Some(at("2026-01-02T00:00:00Z")));
        let monday = Schedule::parse("0 0 * * 1", Some("UTC")).unwrap();
        assert_eq!(monday.next_after(at("2026-01-01T00:00:00Z")), Some(at("2026-01-05T00:00:00Z")));
        assert!(Schedule::parse("* * * *", Some("UTC")).is_err());
        assert!(Schedule::parse("0 * * * * *", Some("UTC")).is_err());
        assert!(Schedule::parse("61 * * * *", Some("UTC")).is_err());
    }

    #[test]
    fn time_zones_shift_the_wall_clock() {
        let nine = Schedule::parse("0 9 * * *", Some("America/New_York")).unwrap();
        assert_eq!(nine.next_after(at("2026-01-01T00:00:00Z")), Some(at("2026-01-01T14:00:00Z")));
        // After the switch to daylight saving time, 09:00 is 13:00 UTC.
        assert_eq!(nine.next_after(at("2026-07-01T00:00:00Z")), Some(at("2026-07-01T13:00:00Z")));
        let prefixed = Schedule::parse("CRON_TZ=Asia/Tokyo 0 9 * * *", None).unwrap();
        assert_eq!(prefixed.next_after(at("2026-01-01T00:00:00Z")), Some(at("2026-01-02T00:00:00Z")));
        assert!(Schedule::parse("0 9 * * *", Some("Mars/Olympus")).is_err());
    }
}
