//! Prometheus metrics: sync duration and outcome, programmed frontends/backends,
//! contested frontends, and — read from the kernel at scrape time — per-service
//! packets/bytes/connections (`SERVICE_METRICS`) and drops by reason (`DROPS`, named
//! by `drop_reason_name`).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{
        counter::{ConstCounter, Counter},
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use tokio::sync::watch;
use waggle_datapath::lb_maps::{LbMapError, PinnedLbMaps};
use waggle_ebpf_common::{drop::drop_reason_name, metrics::ServiceCounters};

use crate::{model::ServicePortName, runner::SyncReport};

/// Where the kernel counters come from.
pub trait CounterSource: Send + 'static {
    /// Per-service counters keyed by `rev_nat_index`.
    fn service_counters(&self) -> Result<Vec<(u32, ServiceCounters)>, LbMapError>;
    /// Drop counters by reason code.
    fn drop_counters(&self) -> Result<Vec<(u32, u64)>, LbMapError>;
}

impl CounterSource for PinnedLbMaps {
    fn service_counters(&self) -> Result<Vec<(u32, ServiceCounters)>, LbMapError> {
        PinnedLbMaps::service_counters(self)
    }
    fn drop_counters(&self) -> Result<Vec<(u32, u64)>, LbMapError> {
        PinnedLbMaps::drop_counters(self)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    namespace: String,
    service: String,
    port: String,
    protocol: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

/// Reads kernel counters on each scrape.
struct KernelCollector {
    source: Mutex<Box<dyn CounterSource>>,
    names: watch::Receiver<Arc<SyncReport>>,
}

impl std::fmt::Debug for KernelCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelCollector").finish_non_exhaustive()
    }
}

impl Collector for KernelCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let source = self.source.lock().unwrap_or_else(|p| p.into_inner());
        let names: Arc<BTreeMap<u16, ServicePortName>> =
            Arc::clone(&self.names.borrow().rev_nat_names);
        match source.service_counters() {
            Ok(counters) => {
                let labelled: Vec<(ServiceLabels, ServiceCounters)> = counters
                    .into_iter()
                    .filter_map(|(index, c)| {
                        let name = names.get(&u16::try_from(index).ok()?)?;
                        Some((
                            ServiceLabels {
                                namespace: name.service.namespace.to_string(),
                                service: name.service.name.to_string(),
                                port: name.port.to_string(),
                                protocol: name.protocol.to_string(),
                            },
                            c,
                        ))
                    })
                    .collect();
                type Pick = fn(&ServiceCounters) -> u64;
                let series: [(&str, &str, Pick); 3] = [
                    (
                        "waggle_service_packets",
                        "Packets load-balanced per service port",
                        |c| c.packets,
                    ),
                    (
                        "waggle_service_bytes",
                        "Bytes load-balanced per service port",
                        |c| c.bytes,
                    ),
                    (
                        "waggle_service_connections",
                        "New connections per service port",
                        |c| c.connections,
                    ),
                ];
                for (name, help, pick) in series {
                    let mut family = encoder.encode_descriptor(
                        name,
                        help,
                        None,
                        prometheus_client::metrics::MetricType::Counter,
                    )?;
                    for (labels, c) in &labelled {
                        let metric = family.encode_family(labels)?;
                        ConstCounter::new(pick(c)).encode(metric)?;
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "reading service counters"),
        }
        match source.drop_counters() {
            Ok(drops) => {
                let mut family = encoder.encode_descriptor(
                    "waggle_drops",
                    "Packets or connections dropped/refused by the data path, by reason",
                    None,
                    prometheus_client::metrics::MetricType::Counter,
                )?;
                for (reason, count) in drops.into_iter().filter(|(r, _)| *r != 0) {
                    let labels = ReasonLabels {
                        reason: drop_reason_name(reason).to_owned(),
                    };
                    ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
                }
            }
            Err(error) => tracing::warn!(%error, "reading drop counters"),
        }
        Ok(())
    }
}

/// The proxy's metrics registry.
pub struct ProxyMetrics {
    pub registry: Registry,
    sync_duration: Histogram,
    syncs: Family<ResultLabels, Counter>,
    frontends: Gauge,
    backends: Gauge,
    conflicts: Gauge,
}

impl ProxyMetrics {
    /// Registers the proxy's own metrics, plus the kernel counters when `counters`
    /// is given.
    pub fn new(
        counters: Option<Box<dyn CounterSource>>,
        reports: watch::Receiver<Arc<SyncReport>>,
    ) -> Self {
        let mut registry = Registry::default();
        let sync_duration = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "waggle_proxy_sync_duration_seconds",
            "Duration of one sync of the LB maps",
            sync_duration.clone(),
        );
        let syncs = Family::<ResultLabels, Counter>::default();
        registry.register("waggle_proxy_syncs", "Syncs by result", syncs.clone());
        let frontends = Gauge::default();
        registry.register(
            "waggle_proxy_programmed_frontends",
            "Service frontends (master entries, per scope) in the maps",
            frontends.clone(),
        );
        let backends = Gauge::default();
        registry.register(
            "waggle_proxy_programmed_backends",
            "Backends in the maps",
            backends.clone(),
        );
        let conflicts = Gauge::default();
        registry.register(
            "waggle_proxy_frontend_conflicts",
            "Contested frontends (address, port, protocol) withheld from a Service because \
             an older Service owns them",
            conflicts.clone(),
        );
        if let Some(source) = counters {
            registry.register_collector(Box::new(KernelCollector {
                source: Mutex::new(source),
                names: reports,
            }));
        }
        Self {
            registry,
            sync_duration,
            syncs,
            frontends,
            backends,
            conflicts,
        }
    }

    /// Records one sync report.
    pub fn observe(&self, report: &SyncReport) {
        match &report.last {
            Some(Ok(stats)) => {
                self.sync_duration.observe(stats.duration.as_secs_f64());
                self.syncs
                    .get_or_create(&ResultLabels {
                        result: "ok".into(),
                    })
                    .inc();
            }
            Some(Err(_)) => {
                self.syncs
                    .get_or_create(&ResultLabels {
                        result: "error".into(),
                    })
                    .inc();
            }
            None => return,
        }
        self.frontends
            .set(i64::try_from(report.masters).unwrap_or(i64::MAX));
        self.backends
            .set(i64::try_from(report.backends).unwrap_or(i64::MAX));
        self.conflicts
            .set(i64::try_from(report.frontend_conflicts).unwrap_or(i64::MAX));
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(%error, "encoding metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        model::{Protocol, ServiceName},
        sync::SyncStats,
    };

    struct Fixed;

    impl CounterSource for Fixed {
        fn service_counters(&self) -> Result<Vec<(u32, ServiceCounters)>, LbMapError> {
            Ok(vec![
                (
                    7,
                    ServiceCounters {
                        packets: 10,
                        bytes: 1500,
                        connections: 3,
                    },
                ),
                (8, ServiceCounters::default()),
            ])
        }
        fn drop_counters(&self) -> Result<Vec<(u32, u64)>, LbMapError> {
            Ok(vec![(0, 0), (1, 4), (2, 0)])
        }
    }

    #[test]
    fn exports_sync_metrics_and_named_kernel_counters() {
        let report = SyncReport {
            syncs: 1,
            last: Some(Ok(SyncStats {
                duration: Duration::from_millis(3),
                ..SyncStats::default()
            })),
            masters: 4,
            backends: 9,
            frontend_conflicts: 2,
            rev_nat_names: Arc::new(BTreeMap::from([(
                7,
                ServicePortName {
                    service: ServiceName::new("shop", "web"),
                    port: "http".into(),
                    protocol: Protocol::Tcp,
                },
            )])),
            ..SyncReport::default()
        };
        let (_tx, rx) = watch::channel(Arc::new(report.clone()));
        let metrics = ProxyMetrics::new(Some(Box::new(Fixed)), rx);
        metrics.observe(&report);
        let text = metrics.encode();
        for line in [
            "waggle_proxy_sync_duration_seconds_count 1",
            "waggle_proxy_syncs_total{result=\"ok\"} 1",
            "waggle_proxy_programmed_frontends 4",
            "waggle_proxy_programmed_backends 9",
            "waggle_proxy_frontend_conflicts 2",
            "waggle_service_packets_total{namespace=\"shop\",service=\"web\",port=\"http\",protocol=\"TCP\"} 10",
            "waggle_service_bytes_total{namespace=\"shop\",service=\"web\",port=\"http\",protocol=\"TCP\"} 1500",
            "waggle_service_connections_total{namespace=\"shop\",service=\"web\",port=\"http\",protocol=\"TCP\"} 3",
            "waggle_drops_total{reason=\"no_backend\"} 4",
            "waggle_drops_total{reason=\"external_local_no_local_backend\"} 0",
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
        // A rev_nat index without a known service port is not exported.
        assert_eq!(
            text.matches("waggle_service_packets_total{").count(),
            1,
            "{text}"
        );
    }
}
