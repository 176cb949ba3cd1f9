//! The numbers a rollout works within: how many extra pods it may add (`maxSurge`)
//! and how many may be unavailable (`maxUnavailable`), resolved against replicas.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The default of both fences.
const DEFAULT_FENCE: &str = "25%";

pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn is_recreate(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.type_.as_deref()) == Some("Recreate")
}

/// `(maxSurge, maxUnavailable)`: a percentage of replicas rounds up for the surge and
/// down for unavailability; both zero would deadlock, so unavailability becomes one.
/// Recreate has no fences.
pub fn fences(d: &Deployment) -> (i32, i32) {
    if is_recreate(d) {
        return (0, 0);
    }
    let rolling = d.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.rolling_update.as_ref());
    let default = IntOrString::String(DEFAULT_FENCE.into());
    let total = replicas(d);
    let surge = resolve(rolling.and_then(|r| r.max_surge.as_ref()).unwrap_or(&default), total, true);
    let unavailable = resolve(rolling.and_then(|r| r.max_unavailable.as_ref()).unwrap_or(&default), total, false);
    if surge == 0 && unavailable == 0 { (0, 1) } else { (surge, unavailable) }
}

pub fn max_surge(d: &Deployment) -> i32 {
    fences(d).0
}

/// At most replicas pods may be unavailable.
pub fn max_unavailable(d: &Deployment) -> i32 {
    if is_recreate(d) || replicas(d) == 0 {
        return 0;
    }
    fences(d).1.min(replicas(d))
}

fn resolve(value: &IntOrString, total: i32, round_up: bool) -> i32 {
    match value {
        IntOrString::Int(n) => *n,
        IntOrString::String(text) => {
            let percent: i64 = text.trim_end_matches('%').parse().unwrap_or(0);
            let scaled = percent * i64::from(total);
            let n = if round_up { (scaled + 99) / 100 } else { scaled / 100 };
            i32::try_from(n).unwrap_or(i32::MAX)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(replicas: i32, strategy: serde_json::Value) -> Deployment {
        serde_json::from_value(
            json!({"spec": {"replicas": replicas, "selector": {}, "template": {}, "strategy": strategy}}),
        )
        .unwrap()
    }

    #[test]
    fn fences_round_like_upstream() {
        assert_eq!(fences(&deployment(10, json!({}))), (3, 2));
        assert_eq!(fences(&deployment(1, json!({}))), (1, 0));
        let none = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}});
        assert_eq!(fences(&deployment(3, none)), (0, 1));
        assert_eq!(fences(&deployment(3, json!({"type": "Recreate"}))), (0, 0));
        assert_eq!(max_unavailable(&deployment(2, json!({"rollingUpdate": {"maxUnavailable": 5}}))), 2);
    }
}
