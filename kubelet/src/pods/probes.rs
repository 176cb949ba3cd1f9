//! Container probes, as upstream's prober runs them: one worker task per probe of a
//! running container attempt (startup, liveness, readiness), each on its own period,
//! keeping the verdict the thresholds give. The pod's sync pass reads the verdicts:
//! readiness decides `ready`, startup decides `started` and holds the other two back
//! until it succeeds, and a failed liveness or startup probe gets the container killed
//! (and restarted as the pod's policy says). A changed verdict wakes the pods loop.
//!
//! Handlers: `exec` (CRI `ExecSync`), `httpGet` (2xx and 3xx succeed), `tcpSocket`
//! (a connection succeeds) and `grpc` (`grpc.health.v1.Health/Check` answers SERVING).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, ObjectReference, Pod, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use waggle_controllers::events::Events;

use crate::error::Error;
use crate::runtime::Runtime;

/// The probe kinds, named as upstream's events name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Startup,
    Liveness,
    Readiness,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Startup => "Startup",
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
        }
    }

    fn of(self, container: &Container) -> Option<&Probe> {
        match self {
            Kind::Startup => container.startup_probe.as_ref(),
            Kind::Liveness => container.liveness_probe.as_ref(),
            Kind::Readiness => container.readiness_probe.as_ref(),
        }
    }
}

/// What the probes of one container attempt say so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdicts {
    /// False while a startup probe has not succeeded.
    pub started: bool,
    /// False while a readiness probe has not succeeded (or after it failed).
    pub ready: bool,
    /// The probe whose failure means the container must be killed and restarted.
    pub failed: Option<Kind>,
}

impl Default for Verdicts {
    /// A container without probes: started and ready once it runs.
    fn default() -> Verdicts {
        Verdicts { started: true, ready: true, failed: None }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Verdict {
    Success,
    Failure,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    pod_uid: String,
    container: String,
    kind: Kind,
}

struct Worker {
    container_id: String,
    verdict: Option<Verdict>,
    task: AbortHandle,
}

type Workers = Arc<Mutex<HashMap<Key, Worker>>>;

/// The probe workers of every pod on the node.
#[derive(Clone)]
pub struct Prober {
    workers: Workers,
    changed: Arc<Notify>,
    runtime: Runtime,
    http: reqwest::Client,
    events: Events,
}

/// Where a probe reaches the container from the node.
pub struct Target<'a> {
    pub pod: &'a Pod,
    pub container: &'a Container,
    pub status: &'a cri::ContainerStatus,
    pub pod_ip: Option<&'a str>,
    pub reference: ObjectReference,
}

impl Prober {
    pub fn new(runtime: Runtime, events: Events) -> Result<Prober, Error> {
        let http = reqwest::Client::builder()
            // Upstream's HTTPS probes do not verify the container's certificate.
            .danger_accept_invalid_certs(true)
            .user_agent(format!("kube-probe/{}", crate::KUBELET_VERSION.trim_start_matches('v')))
            .build()
            .map_err(|e| Error::ProbeClient(error_chain(&e)))?;
        Ok(Prober { workers: Arc::default(), changed: Arc::new(Notify::new()), runtime, http, events })
    }

    /// Notified whenever a verdict changes.
    pub fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }

    /// Starts the probes of a running container attempt that has none yet (replacing
    /// those of an earlier attempt) and returns their verdicts.
    pub fn watch(&self, target: Target<'_>) -> Verdicts {
        let uid = target.pod.metadata.uid.clone().unwrap_or_default();
        let id = &target.status.id;
        let mut workers = self.workers.lock().expect("probe workers");
        for kind in [Kind::Startup, Kind::Liveness, Kind::Readiness] {
            let Some(probe) = kind.of(target.container) else { continue };
            let key = Key { pod_uid: uid.clone(), container: target.container.name.clone(), kind };
            if workers.get(&key).is_some_and(|w| &w.container_id == id) {
                continue;
            }
            let run = Run {
                prober: self.clone(),
                key: key.clone(),
                container_id: id.clone(),
                probe: probe.clone(),
                handler: Handler::of(probe, target.container, target.pod_ip),
                started_at: target.status.started_at,
                gated: kind != Kind::Startup && target.container.startup_probe.is_some(),
                reference: target.reference.clone(),
            };
            let task = tokio::spawn(run.work()).abort_handle();
            if let Some(old) = workers.insert(key, Worker { container_id: id.clone(), verdict: None, task }) {
                old.task.abort();
            }
        }
        let verdict = |kind: Kind| {
            let key = Key { pod_uid: uid.clone(), container: target.container.name.clone(), kind };
            workers.get(&key).filter(|w| &w.container_id == id).and_then(|w| w.verdict)
        };
        let has = |kind: Kind| kind.of(target.container).is_some();
        let started = !has(Kind::Startup) || verdict(Kind::Startup) == Some(Verdict::Success);
        let failed = [Kind::Startup, Kind::Liveness].into_iter().find(|&k| verdict(k) == Some(Verdict::Failure));
        Verdicts {
            started,
            // Unready until the readiness probe succeeds, and never before it started.
            ready: started && (!has(Kind::Readiness) || verdict(Kind::Readiness) == Some(Verdict::Success)),
            failed,
        }
    }

    /// Stops the probes of one container (it no longer runs).
    pub fn stop(&self, pod_uid: &str, container: &str) {
        self.workers.lock().expect("probe workers").retain(|key, worker| {
            let keep = key.pod_uid != pod_uid || key.container != container;
            if !keep {
                worker.task.abort();
            }
            keep
        });
    }

    /// Stops the probes of every pod not in `keep`.
    pub fn retain_pods(&self, keep: impl Fn(&str) -> bool) {
        self.workers.lock().expect("probe workers").retain(|key, worker| {
            let kept = keep(&key.pod_uid);
            if !kept {
                worker.task.abort();
            }
            kept
        });
    }

    /// Records a worker's verdict if the worker is still the container's; says
    /// whether it changed.
    fn record(&self, key: &Key, container_id: &str, verdict: Verdict) -> bool {
        let mut workers = self.workers.lock().expect("probe workers");
        match workers.get_mut(key) {
            Some(worker) if worker.container_id == container_id && worker.verdict != Some(verdict) => {
                worker.verdict = Some(verdict);
                true
            }
            _ => false,
        }
    }

    fn startup_succeeded(&self, key: &Key, container_id: &str) -> bool {
        let startup = Key { kind: Kind::Startup, ..key.clone() };
        let workers = self.workers.lock().expect("probe workers");
        workers.get(&startup).is_some_and(|w| w.container_id == container_id && w.verdict == Some(Verdict::Success))
    }
}

/// One probe's worker: waits out the initial delay, then probes every period and
/// records the verdict the thresholds give.
struct Run {
    prober: Prober,
    key: Key,
    container_id: String,
    probe: Probe,
    handler: Result<Handler, String>,
    started_at: i64,
    /// Held back until the container's startup probe succeeds.
    gated: bool,
    reference: ObjectReference,
}

impl Run {
    async fn work(self) {
        let seconds = |v: Option<i32>, default: i32| Duration::from_secs(v.unwrap_or(default).max(1) as u64);
        let period = seconds(self.probe.period_seconds, 10);
        let timeout = seconds(self.probe.timeout_seconds, 1);
        let success_threshold = self.probe.success_threshold.unwrap_or(1).max(1);
        let failure_threshold = self.probe.failure_threshold.unwrap_or(3).max(1);
        let initial = Duration::from_secs(self.probe.initial_delay_seconds.unwrap_or(0).max(0) as u64);
        let started = Timestamp::from_nanosecond(i128::from(self.started_at)).unwrap_or_else(|_| Timestamp::now());
        let running_for = Timestamp::now().duration_since(started).unsigned_abs();
        tokio::time::sleep(initial.saturating_sub(running_for)).await;
        let (mut successes, mut failures) = (0, 0);
        loop {
            if self.gated && !self.prober.startup_succeeded(&self.key, &self.container_id) {
                tokio::time::sleep(period).await;
                continue;
            }
            let outcome = match &self.handler {
                Ok(handler) => match tokio::time::timeout(timeout, self.probe_once(handler, timeout)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(format!("probe timed out after {}s", timeout.as_secs())),
                },
                Err(invalid) => Err(invalid.clone()),
            };
            let verdict = match outcome {
                Ok(()) => {
                    (successes, failures) = (successes + 1, 0);
                    (successes >= success_threshold).then_some(Verdict::Success)
                }
                Err(output) => {
                    (successes, failures) = (0, failures + 1);
                    let note = format!("{} probe failed: {output}", self.key.kind.name());
                    self.prober.events.warning(&self.reference, "Unhealthy", note).await;
                    (failures >= failure_threshold).then_some(Verdict::Failure)
                }
            };
            if let Some(verdict) = verdict {
                if self.prober.record(&self.key, &self.container_id, verdict) {
                    self.prober.changed.notify_one();
                }
                // A startup probe is done once it succeeds; a failed liveness or
                // startup probe gets this attempt killed, and the next attempt gets
                // a new worker.
                match (self.key.kind, verdict) {
                    (Kind::Startup, Verdict::Success) => return,
                    (Kind::Startup | Kind::Liveness, Verdict::Failure) => return,
                    _ => {}
                }
            }
            tokio::time::sleep(period).await;
        }
    }

    /// One probe; `Err` carries what upstream puts in the `Unhealthy` event.
    async fn probe_once(&self, handler: &Handler, timeout: Duration) -> Result<(), String> {
        match handler {
            Handler::Exec(command) => {
                let seconds = timeout.as_secs() as i64;
                let output = self
                    .prober
                    .runtime
                    .exec_sync(&self.container_id, command.clone(), seconds)
                    .await
                    .map_err(|e| e.to_string())?;
                if output.exit_code == 0 {
                    return Ok(());
                }
                // Upstream's event carries the command's output, empty or not.
                let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&output.stderr));
                Err(text)
            }
            Handler::Http { url, headers } => {
                let mut request = self.prober.http.get(url.as_str());
                for (name, value) in headers {
                    request = request.header(name.as_str(), value.as_str());
                }
                let response = request.send().await.map_err(|e| format!("Get \"{url}\": {}", error_chain(&e)))?;
                let code = response.status().as_u16();
                if (200..400).contains(&code) {
                    Ok(())
                } else {
                    Err(format!("HTTP probe failed with statuscode: {code}"))
                }
            }
            Handler::Tcp(address) => match tokio::net::TcpStream::connect(address.as_str()).await {
                Ok(_) => Ok(()),
                Err(e) => Err(format!("dial tcp {address}: connect: {e}")),
            },
            Handler::Grpc { address, service } => {
                let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
                    .map_err(|e| e.to_string())?
                    .connect()
                    .await
                    .map_err(|e| format!("timeout: failed to connect service {address:?}: {}", error_chain(&e)))?;
                let request = HealthCheckRequest { service: service.clone() };
                let reply = HealthClient::new(channel)
                    .check(request)
                    .await
                    .map_err(|status| format!("rpc error: code = {:?} desc = {}", status.code(), status.message()))?;
                let status = reply.into_inner().status();
                if status == ServingStatus::Serving {
                    Ok(())
                } else {
                    Err(format!("service unhealthy (responded with {:?})", status.as_str_name()))
                }
            }
        }
    }
}

/// An error and its sources, as one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What a probe does, with its address resolved.
#[derive(Debug, PartialEq, Eq)]
enum Handler {
    Exec(Vec<String>),
    Http { url: String, headers: Vec<(String, String)> },
    Tcp(String),
    Grpc { address: String, service: String },
}

impl Handler {
    /// The probe's handler; `Err` says why it cannot run (an unknown port name, no
    /// address), which is then every attempt's failure, as upstream reports it.
    fn of(probe: &Probe, container: &Container, pod_ip: Option<&str>) -> Result<Handler, String> {
        let host = |given: Option<&String>| -> Result<String, String> {
            match given.filter(|h| !h.is_empty()).cloned().or_else(|| pod_ip.map(str::to_owned)) {
                Some(host) if host.contains(':') => Ok(format!("[{host}]")),
                Some(host) => Ok(host),
                None => Err("the pod has no IP address yet".to_owned()),
            }
        };
        if let Some(exec) = &probe.exec {
            return Ok(Handler::Exec(exec.command.clone().unwrap_or_default()));
        }
        if let Some(http) = &probe.http_get {
            let port = port(&http.port, container)?;
            let scheme = http.scheme.as_deref().unwrap_or("HTTP").to_ascii_lowercase();
            let path = http.path.as_deref().filter(|p| !p.is_empty()).unwrap_or("/");
            let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
            let mut headers: Vec<(String, String)> =
                http.http_headers.iter().flatten().map(|h| (h.name.clone(), h.value.clone())).collect();
            if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("accept")) {
                headers.push(("Accept".into(), "*/*".into()));
            }
            let url = format!("{scheme}://{}:{port}{path}", host(http.host.as_ref())?);
            return Ok(Handler::Http { url, headers });
        }
        if let Some(tcp) = &probe.tcp_socket {
            let port = port(&tcp.port, container)?;
            return Ok(Handler::Tcp(format!("{}:{port}", host(tcp.host.as_ref())?)));
        }
        if let Some(grpc) = &probe.grpc {
            let address = format!("{}:{}", host(None)?, grpc.port);
            return Ok(Handler::Grpc { address, service: grpc.service.clone().unwrap_or_default() });
        }
        Err("missing probe handler".to_owned())
    }
}

/// A probe's port: a number, or the name of one of the container's ports.
fn port(given: &IntOrString, container: &Container) -> Result<i32, String> {
    match given {
        IntOrString::Int(number) if (1..=65535).contains(number) => Ok(*number),
        IntOrString::Int(number) => Err(format!("invalid port number: {number}")),
        IntOrString::String(name) => match name.parse::<i32>() {
            Ok(number) => port(&IntOrString::Int(number), container),
            Err(_) => container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| p.container_port)
                .ok_or_else(|| format!("couldn't find port: {name} in {}", container.name)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container(value: serde_json::Value) -> Container {
        serde_json::from_value(value).expect("a container")
    }

    #[test]
    fn handlers_resolve_ports_and_addresses_as_upstream() {
        let c = container(json!({
            "name": "web",
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {"httpGet": {"port": "http", "path": "healthz",
                                           "httpHeaders": [{"name": "X-Probe", "value": "1"}]}},
            "livenessProbe": {"tcpSocket": {"port": "nope"}},
            "startupProbe": {"grpc": {"port": 9090, "service": "ready"}}
        }));
        let http = Handler::of(c.readiness_probe.as_ref().unwrap(), &c, Some("10.244.0.130")).unwrap();
        assert_eq!(
            http,
            Handler::Http {
                url: "http://10.244.0.130:8080/healthz".into(),
                headers: vec![("X-Probe".into(), "1".into()), ("Accept".into(), "*/*".into())],
            }
        );
        let tcp = Handler::of(c.liveness_probe.as_ref().unwrap(), &c, Some("10.244.0.130"));
        assert_eq!(tcp, Err("couldn't find port: nope in web".into()));
        let grpc = Handler::of(c.startup_probe.as_ref().unwrap(), &c, Some("fd00::5")).unwrap();
        assert_eq!(grpc, Handler::Grpc { address: "[fd00::5]:9090".into(), service: "ready".into() });
        let no_ip = Handler::of(c.readiness_probe.as_ref().unwrap(), &c, None);
        assert_eq!(no_ip, Err("the pod has no IP address yet".into()));
    }

    #[test]
    fn verdicts_default_to_a_container_without_probes() {
        let v = Verdicts::default();
        assert!(v.started && v.ready && v.failed.is_none());
    }
}
