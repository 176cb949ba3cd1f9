//! Assertions on kubectl's output shared by the topic files.

use serde_json::Value;

use crate::harness::columns;

/// Parses kubectl's `-o json` output.
#[track_caller]
pub fn json(text: &str) -> Value {
    serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("kubectl printed invalid JSON ({e}):\n{text}"))
}

/// Whether a line (runs of spaces collapsed) starts with `prefix`.
pub fn has_line(text: &str, prefix: &str) -> bool {
    columns(text).iter().any(|l| l.starts_with(prefix))
}

#[track_caller]
pub fn assert_line(text: &str, prefix: &str) {
    assert!(
        has_line(text, prefix),
        "no line starting with {prefix:?} in:\n{text}"
    );
}

#[track_caller]
pub fn assert_contains(text: &str, needle: &str) {
    assert!(text.contains(needle), "{needle:?} not in:\n{text}");
}

/// Asserts that `kubectl diff` printed a line marked `sign` (`-` removed, `+` added)
/// whose text passes `matches`.
#[track_caller]
pub fn assert_diff_line(diff: &str, sign: char, matches: impl Fn(&str) -> bool) {
    assert!(
        diff.lines().any(|l| l.starts_with(sign) && matches(l)),
        "no matching {sign:?} line in:\n{diff}"
    );
}
