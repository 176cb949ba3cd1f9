//! The rate-bounded sync runner: waits for a nudge from the sources, never syncs more
//! often than `min_interval`, never before both initial lists are in, retries a
//! failed sync (as a full resync) after `retry_interval`, and does a full resync every
//! `full_resync_period` to repair maps changed behind its back. After every sync it
//! publishes a [`SyncReport`] for metrics and health checks.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::watch;
use waggle_datapath::lb_maps::LbMaps;

use crate::{
    model::{ServiceName, ServicePortName},
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
    pub health_checks: BTreeMap<ServiceName, HealthCheck>,
    pub rev_nat_names: BTreeMap<u16, ServicePortName>,
}

/// Drives a [`Syncer`] from a [`TrackerHandle`].
pub struct SyncRunner<M: LbMaps> {
    syncer: Syncer<M>,
    handle: TrackerHandle,
    config: RunnerConfig,
    report: watch::Sender<Arc<SyncReport>>,
}

impl<M: LbMaps> SyncRunner<M> {
    pub fn new(syncer: Syncer<M>, handle: TrackerHandle, config: RunnerConfig) -> Self {
        let (report, _) = watch::channel(Arc::new(SyncReport::default()));
        Self {
            syncer,
            handle,
            config,
            report,
        }
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
            let result = self.syncer.sync(changes);
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
                health_checks: programmer.health_checks().clone(),
                rev_nat_names: programmer.rev_nat_names().clone(),
            };
            self.report.send_replace(Arc::new(report));
        }
    }
}
