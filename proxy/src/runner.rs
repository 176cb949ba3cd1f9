//! The rate-bounded sync runner: waits for a nudge from the sources, never syncs more
//! often than `min_interval`, never before both initial lists are in, retries a
//! failed sync (as a full resync) after `retry_interval`, and does a full resync every
//! `full_resync_period` to repair maps changed behind its back. After every sync it
//! publishes a [`SyncReport`] for metrics and health checks.
//!
//! A change of the node's addresses (recorded by the address watcher) is applied in
//! the same sync as the Service/EndpointSlice changes queued with it: the NodePort
//! addresses through the [`Syncer`] (a map diff like any other), the SNAT source
//! through the [`NodeConfigWriter`], which a full sync also rewrites.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::watch;
use waggle_datapath::lb_maps::{LbMapError, LbMaps, PinnedLbMaps};

use crate::{
    model::{ServiceName, ServicePortName},
    node_addresses::NodeAddresses,
    program::HealthCheck,
    source::TrackerHandle,
    sync::{SyncStats, Syncer},
};

/// Runner timing.
#[derive(Clone, Copy, Debug)]
pub struct RunnerConfig {
    pub min_interval: Duration,
    pub retry_interval: Duration,
    pub full_resync_period: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            min_interval: Duration::from_millis(20),
            retry_interval: Duration::from_secs(1),
            full_resync_period: Duration::from_secs(300),
        }
    }
}

/// The outcome of the latest sync, as consumers see it.
#[derive(Clone, Debug, Default)]
pub struct SyncReport {
    /// Number of syncs attempted so far.
    pub syncs: u64,
    pub last: Option<Result<SyncStats, String>>,
    /// Master entries (frontend × scope) and backends programmed.
    pub masters: usize,
    pub backends: usize,
    /// Frontends withheld from a Service because an older one owns them.
    pub frontend_conflicts: usize,
    pub health_checks: BTreeMap<ServiceName, HealthCheck>,
    /// Shared with the programmer (not copied per sync).
    pub rev_nat_names: Arc<BTreeMap<u16, ServicePortName>>,
}

/// Writes the node's SNAT addresses (`NODE_CONFIG`, outside the maps a [`Syncer`]
/// diffs).
pub trait NodeConfigWriter: Send {
    fn write(&mut self, addresses: &NodeAddresses) -> Result<(), LbMapError>;
}

/// The pinned `NODE_CONFIG` map: only the address fields change, flags stay.
impl NodeConfigWriter for PinnedLbMaps {
    fn write(&mut self, addresses: &NodeAddresses) -> Result<(), LbMapError> {
        let mut config = self.node_config()?;
        addresses.write_to(&mut config);
        self.set_node_config(&config)
    }
}

/// Drives a [`Syncer`] from a [`TrackerHandle`].
pub struct SyncRunner<M: LbMaps> {
    syncer: Syncer<M>,
    handle: TrackerHandle,
    config: RunnerConfig,
    report: watch::Sender<Arc<SyncReport>>,
    node_config: Option<Box<dyn NodeConfigWriter>>,
    /// The node addresses applied last (or to apply, after a failed write).
    node: Option<NodeAddresses>,
}

impl<M: LbMaps> SyncRunner<M> {
    pub fn new(syncer: Syncer<M>, handle: TrackerHandle, config: RunnerConfig) -> Self {
        let (report, _) = watch::channel(Arc::new(SyncReport::default()));
        Self {
            syncer,
            handle,
            config,
            report,
            node_config: None,
            node: None,
        }
    }

    /// Also writes the node's SNAT addresses with `writer` whenever they change and
    /// on every full sync.
    pub fn with_node_config(mut self, writer: Box<dyn NodeConfigWriter>) -> Self {
        self.node_config = Some(writer);
        self
    }

    /// Reports published after each sync.
    pub fn subscribe(&self) -> watch::Receiver<Arc<SyncReport>> {
        self.report.subscribe()
    }

    /// Runs until the task is dropped.
    pub async fn run(mut self) {
        let mut last_sync: Option<Instant> = None;
        let mut last_full = Instant::now();
        let mut retry = false;
        let mut syncs = 0u64;
        let mut node_dirty = false;
        loop {
            let wait = if retry {
                self.config.retry_interval
            } else {
                self.config.full_resync_period
            };
            tokio::select! {
                _ = self.handle.changed() => {}
                _ = tokio::time::sleep(wait) => {
                    if !retry {
                        self.syncer.force_full();
                    }
                }
            }
            if !self.handle.lock().is_synced() {
                continue;
            }
            if let Some(last) = last_sync {
                let since = last.elapsed();
                if since < self.config.min_interval {
                    tokio::time::sleep(self.config.min_interval - since).await;
                }
            }
            if last_full.elapsed() >= self.config.full_resync_period {
                self.syncer.force_full();
            }
            let changes = self.handle.lock().take();
            if let Some(addresses) = self.handle.take_node_addresses() {
                self.syncer.set_node_addresses(addresses.node_port.clone());
                self.node = Some(addresses);
                node_dirty = true;
            }
            let result = self.syncer.sync(changes).and_then(|stats| {
                if let (Some(writer), Some(node)) = (&mut self.node_config, &self.node)
                    && (node_dirty || stats.full)
                {
                    writer.write(node)?;
                }
                node_dirty = false;
                Ok(stats)
            });
            last_sync = Some(Instant::now());
            syncs += 1;
            retry = result.is_err();
            match &result {
                Ok(stats) => {
                    if stats.full {
                        last_full = Instant::now();
                        tracing::info!(?stats, "full sync done");
                    } else {
                        tracing::debug!(?stats, "sync done");
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "sync failed; the next sync is a full resync")
                }
            }
            let programmer = self.syncer.programmer();
            let report = SyncReport {
                syncs,
                last: Some(result.map_err(|e| e.to_string())),
                masters: programmer.programmed_masters(),
                backends: programmer.programmed_backends(),
                frontend_conflicts: programmer.frontend_conflicts(),
                health_checks: programmer.health_checks().clone(),
                rev_nat_names: programmer.rev_nat_names().clone(),
            };
            self.report.send_replace(Arc::new(report));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::{mem_maps::MemMaps, translate::NodeInfo};

    /// Records what would have been written to `NODE_CONFIG`.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<NodeAddresses>>>);

    impl NodeConfigWriter for Recorder {
        fn write(&mut self, addresses: &NodeAddresses) -> Result<(), LbMapError> {
            self.0.lock().unwrap().push(addresses.clone());
            Ok(())
        }
    }

    fn addresses(ips: &[&str]) -> NodeAddresses {
        let ips: Vec<std::net::IpAddr> = ips.iter().map(|s| s.parse().unwrap()).collect();
        NodeAddresses::fixed(&ips)
    }

    async fn wait_for_syncs(reports: &mut watch::Receiver<Arc<SyncReport>>, n: u64) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while reports.borrow().syncs < n {
                reports.changed().await.unwrap();
            }
        })
        .await
        .expect("sync within 5 s");
    }

    #[tokio::test]
    async fn node_address_changes_go_through_one_sync_each() {
        let handle = TrackerHandle::new();
        let first = addresses(&["10.0.0.1"]);
        handle.set_node_addresses(first.clone());
        let recorder = Recorder::default();
        let config = RunnerConfig {
            min_interval: Duration::from_millis(1),
            ..RunnerConfig::default()
        };
        let runner = SyncRunner::new(
            Syncer::new(MemMaps::default(), NodeInfo::default()),
            handle.clone(),
            config,
        )
        .with_node_config(Box::new(recorder.clone()));
        let mut reports = runner.subscribe();
        let task = tokio::spawn(runner.run());

        // Nothing is written before the initial lists are in.
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(recorder.0.lock().unwrap().is_empty());
        crate::source::file::relist(&handle, crate::source::file::Objects::default());
        wait_for_syncs(&mut reports, 1).await;
        assert_eq!(*recorder.0.lock().unwrap(), std::slice::from_ref(&first));

        // A change is one more sync that writes the new SNAT source.
        let second = addresses(&["10.0.0.1", "10.0.0.2"]);
        let second = NodeAddresses {
            snat_v4: Some("10.0.0.2".parse().unwrap()),
            ..second
        };
        handle.set_node_addresses(second.clone());
        wait_for_syncs(&mut reports, 2).await;
        assert_eq!(*recorder.0.lock().unwrap(), [first.clone(), second.clone()]);

        // Recording the same selection again is no change: no nudge, no write.
        handle.set_node_addresses(second.clone());
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(reports.borrow().syncs, 2);
        assert_eq!(recorder.0.lock().unwrap().len(), 2);
        task.abort();
    }
}
