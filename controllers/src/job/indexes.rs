//! Completion indexes of Indexed Jobs: which index a pod runs, and the compressed
//! interval list (`1,3-5,7`) that `status.completedIndexes` holds.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;

/// The annotation (and, since 1.28, label) carrying a pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";

/// The completion index a pod runs: its annotation, else its label; `None` when
/// absent or not a non-negative integer.
pub fn of(pod: &Pod) -> Option<i32> {
    let meta = &pod.metadata;
    let value = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(COMPLETION_INDEX))
        .or_else(|| meta.labels.as_ref().and_then(|l| l.get(COMPLETION_INDEX)))?;
    value.parse::<i32>().ok().filter(|i| *i >= 0)
}

/// Parses an interval list such as `1,3-5`, keeping indexes below `completions`;
/// malformed parts are skipped, as upstream does.
pub fn parse(list: &str, completions: i32) -> BTreeSet<i32> {
    let mut indexes = BTreeSet::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<i32>(), b.parse::<i32>()),
            None => (part.parse::<i32>(), part.parse::<i32>()),
        };
        let (Ok(first), Ok(last)) = (first, last) else { continue };
        indexes.extend((first.max(0)..=last.min(completions - 1)).filter(|i| *i >= first));
    }
    indexes
}

/// Formats indexes as an interval list: consecutive runs of three or more become
/// `a-b`, as upstream writes them (`0,1` stays a list, `0-2` is a run).
pub fn format(indexes: &BTreeSet<i32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = indexes.iter().copied().peekable();
    while let Some(first) = iter.next() {
        let mut last = first;
        while iter.peek() == Some(&(last + 1)) {
            last += 1;
            iter.next();
        }
        match last - first {
            0 => parts.push(first.to_string()),
            1 => parts.extend([first.to_string(), last.to_string()]),
            _ => parts.push(format!("{first}-{last}")),
        }
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn interval_lists_round_trip() {
        let set: BTreeSet<i32> = [0, 1, 3, 4, 5, 7, 9, 10].into_iter().collect();
        assert_eq!(format(&set), "0,1,3-5,7,9,10");
        assert_eq!(parse("0,1,3-5,7,9,10", 20), set);
        assert_eq!(parse("1-3,8", 3), [1, 2].into_iter().collect());
        assert_eq!(parse("x,2,4-a", 5), [2].into_iter().collect());
        assert_eq!(format(&BTreeSet::new()), "");
    }

    #[test]
    fn the_annotation_names_the_index() {
        let pod = |meta: serde_json::Value| serde_json::from_value::<Pod>(json!({"metadata": meta})).unwrap();
        assert_eq!(
            of(&pod(json!({"annotations": {COMPLETION_INDEX: "3"}, "labels": {COMPLETION_INDEX: "4"}}))),
            Some(3)
        );
        assert_eq!(of(&pod(json!({"labels": {COMPLETION_INDEX: "4"}}))), Some(4));
        assert_eq!(of(&pod(json!({"annotations": {COMPLETION_INDEX: "-1"}}))), None);
        assert_eq!(of(&pod(json!({}))), None);
    }
}
