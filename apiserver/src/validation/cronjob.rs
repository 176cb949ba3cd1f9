//! CronJob validation, with the standard five-field cron schedule parser whose error
//! messages upstream's validation reports (`spec.schedule: Invalid value: ...`).

use serde_json::Value;

use super::{Errors, at, workloads};
use crate::status::Cause;

/// A CronJob's name becomes its Jobs' name prefix plus an 11-character suffix.
const NAME_MAX: usize = 52;

pub fn validate(obj: &Value, old: Option<&Value>, errors: &mut Errors) {
    let name = crate::objects::name(obj);
    if name.len() > NAME_MAX {
        errors.push(Cause::invalid("metadata.name", &Value::String(name.into()), format!("must be no more than {NAME_MAX} characters")));
    }
    let spec = at(obj, "/spec");
    match spec.get("schedule").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        None => errors.push(Cause::required("spec.schedule")),
        Some(schedule) => {
            if let Err(e) = parse_schedule(schedule) {
                errors.push(Cause::invalid("spec.schedule", &Value::String(schedule.into()), e));
            }
            let was_tz = old.and_then(|o| o.pointer("/spec/schedule")).and_then(Value::as_str).is_some_and(|s| s.contains("TZ"));
            if schedule.contains("TZ") && !was_tz {
                errors.push(Cause::invalid(
                    "spec.schedule",
                    &Value::String(schedule.into()),
                    "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
                ));
            }
        }
    }
    if let Some(zone) = spec.get("timeZone").and_then(Value::as_str)
        && (zone.is_empty() || zone.eq_ignore_ascii_case("local") || jiff::tz::TimeZone::get(zone).is_err())
    {
        errors.push(Cause::invalid("spec.timeZone", &Value::String(zone.into()), format!("unknown time zone {zone}")));
    }
    errors.one_of("spec.concurrencyPolicy", spec.get("concurrencyPolicy"), &["Allow", "Forbid", "Replace"]);
    for field in ["startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        errors.at_least(&format!("spec.{field}"), spec.get(field), 0);
    }
    let job_spec = at(spec, "/jobTemplate/spec");
    if !job_spec.is_object() {
        errors.push(Cause::required("spec.jobTemplate.spec"));
        return;
    }
    let mut job_errors = Errors::default();
    workloads::validate_job_spec(job_spec, &mut job_errors);
    for mut cause in job_errors.0 {
        cause.field = format!("spec.jobTemplate.{}", cause.field);
        errors.push(cause);
    }
}

/// One field's bounds and names (months and weekdays accept `jan`, `sun`, ...).
struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTES: Bounds = Bounds { min: 0, max: 59, names: &[] };
const HOURS: Bounds = Bounds { min: 0, max: 23, names: &[] };
const DAYS_OF_MONTH: Bounds = Bounds { min: 1, max: 31, names: &[] };
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
};
const DAYS_OF_WEEK: Bounds = Bounds { min: 0, max: 6, names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"] };

const DESCRIPTORS: &[&str] = &["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"];

/// Parses a standard cron schedule (five fields, or a `@descriptor`), optionally
/// prefixed by `TZ=<zone>` or `CRON_TZ=<zone>`; the error is the parser's message.
pub fn parse_schedule(spec: &str) -> Result<(), String> {
    let mut spec = spec.trim();
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let (zone, rest) = spec.split_once(' ').unwrap_or((spec, ""));
        let zone = zone.split_once('=').map_or("", |(_, z)| z);
        if jiff::tz::TimeZone::get(zone).is_err() {
            return Err(format!("provided bad location {zone}: unknown time zone {zone}"));
        }
        spec = rest.trim();
    }
    if spec.starts_with('@') {
        if DESCRIPTORS.contains(&spec) {
            return Ok(());
        }
        if let Some(every) = spec.strip_prefix("@every ") {
            return duration(every.trim()).map_err(|_| format!("failed to parse duration {spec}: time: invalid duration \"{}\"", every.trim()));
        }
        return Err(format!("unrecognized descriptor: {spec}"));
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!("expected exactly 5 fields, found {}: [{}]", fields.len(), fields.join(" ")));
    }
    for (field, bounds) in fields.iter().zip([MINUTES, HOURS, DAYS_OF_MONTH, MONTHS, DAYS_OF_WEEK]) {
        for expr in field.split(',') {
            range(expr, &bounds)?;
        }
    }
    Ok(())
}

/// One comma-separated part of a field: `*`, `?`, `N`, `N-M`, each with an optional `/step`.
fn range(expr: &str, bounds: &Bounds) -> Result<(), String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let (start, mut end) = if matches!(low_and_high[0], "*" | "?") {
        (bounds.min, bounds.max)
    } else {
        let start = int_or_name(low_and_high[0], bounds.names)?;
        match low_and_high.len() {
            1 => (start, start),
            2 => (start, int_or_name(low_and_high[1], bounds.names)?),
            _ => return Err(format!("too many hyphens: {expr}")),
        }
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            if low_and_high.len() == 1 {
                end = bounds.max;
            }
            int(range_and_step[1])?
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < bounds.min {
        return Err(format!("beginning of range ({start}) below minimum ({}): {expr}", bounds.min));
    }
    if end > bounds.max {
        return Err(format!("end of range ({end}) above maximum ({}): {expr}", bounds.max));
    }
    if start > end {
        return Err(format!("beginning of range ({start}) beyond end of range ({end}): {expr}"));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(())
}

fn int_or_name(expr: &str, names: &[&str]) -> Result<u32, String> {
    let lower = expr.to_ascii_lowercase();
    match names.iter().position(|n| *n == lower) {
        // Months count from 1, weekdays from 0.
        Some(i) if names.len() == 12 => Ok(i as u32 + 1),
        Some(i) => Ok(i as u32),
        None => int(expr),
    }
}

fn int(expr: &str) -> Result<u32, String> {
    let n: i64 = expr
        .parse()
        .map_err(|_| format!("failed to parse int from {expr}: strconv.Atoi: parsing \"{expr}\": invalid syntax"))?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    u32::try_from(n).map_err(|_| format!("failed to parse int from {expr}: strconv.Atoi: parsing \"{expr}\": value out of range"))
}

/// A Go duration (`1h30m`, `90s`, `1.5h`): one or more number+unit pairs.
fn duration(text: &str) -> Result<(), ()> {
    let mut rest = text;
    if rest.is_empty() {
        return Err(());
    }
    if rest == "0" {
        return Ok(());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or(())?;
        if digits == 0 {
            return Err(());
        }
        rest = &rest[digits..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .iter()
            .filter(|u| rest.starts_with(**u))
            .max_by_key(|u| u.len())
            .ok_or(())?;
        rest = &rest[unit.len()..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_as_the_standard_cron_parser() {
        for ok in ["*/5 * * * *", "0 0 * * SUN", "15 3 1-15/2 jan-jun ?", "@hourly", "@every 1h30m", "CRON_TZ=UTC 0 * * * *"] {
            assert_eq!(parse_schedule(ok), Ok(()), "{ok}");
        }
        assert_eq!(parse_schedule("foo").unwrap_err(), "expected exactly 5 fields, found 1: [foo]");
        assert_eq!(parse_schedule("61 * * * *").unwrap_err(), "end of range (61) above maximum (59): 61");
        assert_eq!(parse_schedule("* * 0 * *").unwrap_err(), "beginning of range (0) below minimum (1): 0");
        assert_eq!(parse_schedule("*/0 * * * *").unwrap_err(), "step of range should be a positive number: */0");
        assert_eq!(parse_schedule("5-1 * * * *").unwrap_err(), "beginning of range (5) beyond end of range (1): 5-1");
        assert_eq!(parse_schedule("@often").unwrap_err(), "unrecognized descriptor: @often");
        assert_eq!(
            parse_schedule("x * * * *").unwrap_err(),
            "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax"
        );
    }
}
