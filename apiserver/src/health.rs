//! `/healthz`, `/livez` and `/readyz`, as kube-apiserver serves them: the endpoint runs
//! its checks and answers `ok` (200) or lists the failed ones (500); `?verbose` lists
//! every check, `?exclude=NAME` skips one, and `/readyz/NAME` runs one check alone.

use http::StatusCode;

use crate::params::Params;
use crate::state::ApiState;

/// The checks every endpoint runs, in upstream's order and names.
const CHECKS: &[&str] = &["ping", "log", "etcd"];

/// Runs one check; `Err` carries why it failed.
async fn run(state: &ApiState, check: &str) -> Result<(), String> {
    match check {
        "etcd" => state
            .store
            .current_revision()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        _ => Ok(()),
    }
}

/// Answers `endpoint` (`healthz`, `livez`, `readyz`) with `rest` the path after it.
/// `None` when `rest` names no check.
pub async fn serve(
    state: &ApiState,
    endpoint: &str,
    rest: &[&str],
    params: &Params,
) -> Option<(StatusCode, String)> {
    if let [check] = rest {
        if !CHECKS.contains(check) {
            return None;
        }
        return Some(match run(state, check).await {
            Ok(()) => (StatusCode::OK, "ok".into()),
            Err(e) => {
                tracing::warn!(check, error = %e, "health check failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("internal server error: {check} failed: reason withheld\n"),
                )
            }
        });
    }
    if !rest.is_empty() {
        return None;
    }
    let excluded: Vec<&str> = params.values("exclude").collect();
    let mut report = String::new();
    let mut failed = false;
    for check in CHECKS.iter().filter(|c| !excluded.contains(c)) {
        match run(state, check).await {
            Ok(()) => report.push_str(&format!("[+]{check} ok\n")),
            Err(e) => {
                tracing::warn!(check, error = %e, "health check failed");
                failed = true;
                report.push_str(&format!("[-]{check} failed: reason withheld\n"));
            }
        }
    }
    for name in excluded {
        report.push_str(&format!("[+]{name} excluded: ok\n"));
    }
    Some(if failed {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{report}{endpoint} check failed\n"),
        )
    } else if params.flag("verbose") {
        (StatusCode::OK, format!("{report}{endpoint} check passed\n"))
    } else {
        (StatusCode::OK, "ok".into())
    })
}
