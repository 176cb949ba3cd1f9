//! Health-check servers for `externalTrafficPolicy: Local` services, like kube-proxy's:
//! one HTTP listener per `healthCheckNodePort`, answering 200 with
//! `{"service":{"namespace":..,"name":..},"localEndpoints":N}` when this node has a
//! local endpoint (N > 0) and 503 otherwise, so an external load balancer only sends
//! traffic to nodes that can serve it.

use std::{
    collections::{BTreeMap, HashMap},
    net::{IpAddr, SocketAddr},
    sync::{Arc, RwLock},
};

use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use serde_json::{Value, json};
use tokio::{sync::watch, task::JoinHandle};

use crate::{model::ServiceName, program::HealthCheck, runner::SyncReport};

#[derive(Clone, Debug)]
struct Entry {
    service: ServiceName,
    local_endpoints: usize,
}

type Shared = Arc<RwLock<HashMap<u16, Entry>>>;

/// The JSON body and status for one service.
pub fn response(service: &ServiceName, local_endpoints: usize) -> (StatusCode, Value) {
    let status = if local_endpoints > 0 {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "service": {"namespace": &*service.namespace, "name": &*service.name},
        "localEndpoints": local_endpoints,
    });
    (status, body)
}

async fn handle(State((port, shared)): State<(u16, Shared)>) -> (StatusCode, Json<Value>) {
    let entry = shared
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(&port)
        .cloned();
    match entry {
        Some(e) => {
            let (status, body) = response(&e.service, e.local_endpoints);
            (status, Json(body))
        }
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "no service on this port"})),
        ),
    }
}

/// Keeps one listener per health-check node port, following the sync reports.
pub struct HealthCheckServers {
    bind: IpAddr,
    shared: Shared,
    servers: HashMap<u16, JoinHandle<()>>,
}

impl HealthCheckServers {
    /// Listeners bind `bind` (the node address, or 0.0.0.0 in the node's namespace).
    pub fn new(bind: IpAddr) -> Self {
        Self {
            bind,
            shared: Arc::default(),
            servers: HashMap::new(),
        }
    }

    /// Ports currently served.
    pub fn ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self.servers.keys().copied().collect();
        ports.sort();
        ports
    }

    /// Starts and stops listeners to match `checks`.
    pub async fn update(&mut self, checks: &BTreeMap<ServiceName, HealthCheck>) {
        let mut wanted: HashMap<u16, Entry> = HashMap::new();
        for (service, check) in checks {
            wanted.insert(
                check.node_port,
                Entry {
                    service: service.clone(),
                    local_endpoints: check.local_endpoints,
                },
            );
        }
        self.servers.retain(|port, task| {
            let keep = wanted.contains_key(port) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        *self.shared.write().unwrap_or_else(|p| p.into_inner()) = wanted.clone();
        for port in wanted.keys() {
            if self.servers.contains_key(port) {
                continue;
            }
            let addr = SocketAddr::new(self.bind, *port);
            match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => {
                    let app = Router::new()
                        .route("/", get(handle))
                        .route("/healthz", get(handle))
                        .with_state((*port, self.shared.clone()));
                    let task = tokio::spawn(async move {
                        if let Err(error) = axum::serve(listener, app).await {
                            tracing::error!(%error, %addr, "health check server stopped");
                        }
                    });
                    self.servers.insert(*port, task);
                }
                Err(error) => tracing::error!(%error, %addr, "cannot serve health check node port"),
            }
        }
    }

    /// Follows `reports` until the sender is dropped.
    pub async fn run(mut self, mut reports: watch::Receiver<Arc<SyncReport>>) {
        loop {
            let report = reports.borrow_and_update().clone();
            self.update(&report.health_checks).await;
            if reports.changed().await.is_err() {
                break;
            }
        }
    }
}

impl Drop for HealthCheckServers {
    fn drop(&mut self) {
        for task in self.servers.values() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    async fn get(port: u16) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).await.unwrap();
        let status = text[9..12].parse().unwrap();
        (
            status,
            text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned(),
        )
    }

    #[tokio::test]
    async fn answers_200_with_local_endpoints_503_without_and_stops_with_the_service() {
        let port = free_port();
        let name = ServiceName::new("infra", "ingress");
        let mut servers = HealthCheckServers::new("127.0.0.1".parse().unwrap());
        let mut checks = BTreeMap::from([(
            name.clone(),
            HealthCheck {
                node_port: port,
                local_endpoints: 2,
            },
        )]);
        servers.update(&checks).await;
        let (status, body) = get(port).await;
        assert_eq!(status, 200);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            json!({"service": {"namespace": "infra", "name": "ingress"}, "localEndpoints": 2})
        );

        checks.get_mut(&name).unwrap().local_endpoints = 0;
        servers.update(&checks).await;
        assert_eq!(get(port).await.0, 503);

        servers.update(&BTreeMap::new()).await;
        assert!(servers.ports().is_empty());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err(),
            "listener still open"
        );
    }
}
