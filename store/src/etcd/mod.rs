//! The etcd backend: the store's semantics mapped onto etcd v3 (tested with 3.4).
//!
//! Start at [`EtcdStore::connect`]. Creates and compare-and-swap updates and
//! deletes are single etcd transactions (`create_revision == 0`, `mod_revision ==
//! expected`), whose header revision is the write's revision. Lists are ranges
//! with a limit and an optional revision, and `count` gives `remaining`. Watches
//! start at `after + 1` with previous values (`watch.rs`). Every key is stored
//! under a prefix, so several stores can share one etcd; revisions are then
//! etcd's global ones and advance with the other prefixes' writes too.

mod convert;
mod local;
mod watch;

pub use local::{DEFAULT_ETCD_BIN, LocalEtcd};

use std::time::Duration;

use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions,
    KvClient, Txn, TxnOp, TxnOpResponse, TxnResponse, WatchOptions,
};

use crate::keys::{prefix_end, successor};
use crate::{KeyValue, ListOptions, ListResult, Revision, Store, StoreError, WatchStream};
use convert::{Keys, backend, is_compacted, is_future};

/// How to reach etcd.
#[derive(Clone, Debug)]
pub struct EtcdOptions {
    /// Client URLs or `host:port`s.
    pub endpoints: Vec<String>,
    /// Prepended to every key. Stores that share one etcd need prefixes of which none
    /// is a prefix of another: end them with `/` (`/cluster-a/`, `/cluster-b/`).
    pub prefix: String,
    /// Events a watcher may fall behind before it is dropped.
    pub watch_buffer: usize,
    pub connect_timeout: Duration,
    /// Deadline of each request.
    pub request_timeout: Duration,
}

impl EtcdOptions {
    pub fn new(endpoints: Vec<String>) -> Self {
        EtcdOptions {
            endpoints,
            prefix: String::new(),
            watch_buffer: 16_384,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The etcd-backed [`Store`].
pub struct EtcdStore {
    client: Client,
    keys: Keys,
    watch_buffer: usize,
}

impl EtcdStore {
    pub async fn connect(options: EtcdOptions) -> Result<Self, StoreError> {
        let endpoints: Vec<String> = options
            .endpoints
            .iter()
            .map(|e| {
                if e.contains("://") {
                    e.clone()
                } else {
                    format!("http://{e}")
                }
            })
            .collect();
        let connect = ConnectOptions::new()
            .with_connect_timeout(options.connect_timeout)
            .with_timeout(options.request_timeout)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(10));
        let client = Client::connect(&endpoints, Some(connect))
            .await
            .map_err(backend)?;
        let store = EtcdStore {
            client,
            keys: Keys::new(options.prefix),
            watch_buffer: options.watch_buffer,
        };
        // Fail now, not at the first request, if etcd is unreachable.
        store.current_revision().await?;
        Ok(store)
    }

    fn kv(&self) -> KvClient {
        self.client.kv_client()
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        self.kv().txn(txn).await.map_err(backend)
    }

    /// The etcd range `[start, end)` of a prefix; etcd spells "to the end" as `\0`.
    fn range(&self, prefix: &str) -> (Vec<u8>, Vec<u8>) {
        let start = self.keys.to_etcd(prefix);
        let end = prefix_end(&start).unwrap_or_else(|| vec![0]);
        (if start.is_empty() { vec![0] } else { start }, end)
    }

    /// The compacted revision, learnt by starting a watch at a compacted revision.
    async fn compacted_revision(&self, requested: Revision) -> Revision {
        let key = self.keys.to_etcd("");
        let options = WatchOptions::new().with_start_revision(requested.max(1));
        let Ok(mut stream) = self.client.watch_client().watch(key, Some(options)).await else {
            return 0;
        };
        while let Ok(Ok(Some(response))) =
            tokio::time::timeout(Duration::from_secs(5), stream.message()).await
        {
            if response.compact_revision() > 0 {
                return response.compact_revision();
            }
            if response.canceled() || !response.created() {
                break;
            }
        }
        0
    }

    fn header_revision(txn: &TxnResponse) -> Result<Revision, StoreError> {
        txn.header()
            .map(|h| h.revision())
            .ok_or_else(|| StoreError::Backend("etcd: response without header".into()))
    }

    /// The key as read by the `or_else` branch of a failed transaction.
    fn current_from(&self, txn: &TxnResponse) -> Result<Option<KeyValue>, StoreError> {
        for response in txn.op_responses() {
            if let TxnOpResponse::Get(get) = response {
                return get.kvs().first().map(|kv| self.keys.kv(kv)).transpose();
            }
        }
        Err(StoreError::Backend(
            "etcd: failed transaction without a read".into(),
        ))
    }

    fn precondition_failed(&self, key: &str, expected: Revision, txn: &TxnResponse) -> StoreError {
        match self.current_from(txn) {
            Ok(None) => StoreError::NotFound {
                key: key.to_owned(),
            },
            Ok(Some(current)) => StoreError::Conflict {
                key: key.to_owned(),
                expected,
                current: current.mod_revision,
            },
            Err(err) => err,
        }
    }
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision, StoreError> {
        let k = self.keys.to_etcd(key);
        let txn = Txn::new()
            .when([Compare::create_revision(k.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(k, value, None)]);
        let response = self.txn(txn).await?;
        if !response.succeeded() {
            return Err(StoreError::AlreadyExists {
                key: key.to_owned(),
            });
        }
        Self::header_revision(&response)
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let response = self
            .kv()
            .get(self.keys.to_etcd(key), None)
            .await
            .map_err(backend)?;
        response
            .kvs()
            .first()
            .map(|kv| self.keys.kv(kv))
            .transpose()
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Revision,
    ) -> Result<Revision, StoreError> {
        let k = self.keys.to_etcd(key);
        let txn = Txn::new()
            .when([Compare::mod_revision(k.clone(), CompareOp::Equal, expected)])
            .and_then([TxnOp::put(k.clone(), value, None)])
            .or_else([TxnOp::get(k, None)]);
        let response = self.txn(txn).await?;
        if !response.succeeded() {
            return Err(self.precondition_failed(key, expected, &response));
        }
        Self::header_revision(&response)
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(KeyValue, Revision), StoreError> {
        let k = self.keys.to_etcd(key);
        let condition = match expected {
            Some(expected) => Compare::mod_revision(k.clone(), CompareOp::Equal, expected),
            None => Compare::create_revision(k.clone(), CompareOp::Greater, 0),
        };
        let txn = Txn::new()
            .when([condition])
            .and_then([TxnOp::delete(
                k.clone(),
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(k, None)]);
        let response = self.txn(txn).await?;
        if !response.succeeded() {
            return Err(self.precondition_failed(key, expected.unwrap_or(0), &response));
        }
        let revision = Self::header_revision(&response)?;
        for op in response.op_responses() {
            if let TxnOpResponse::Delete(deleted) = op
                && let Some(prev) = deleted.prev_kvs().first()
            {
                return Ok((self.keys.kv(prev)?, revision));
            }
        }
        Err(StoreError::Backend(
            "etcd: delete returned no previous value".into(),
        ))
    }

    async fn list(&self, options: &ListOptions) -> Result<ListResult, StoreError> {
        let (prefix_start, end) = self.range(&options.prefix);
        let start = match &options.start_after {
            Some(after) if after.as_str() >= options.prefix.as_str() => {
                successor(&self.keys.to_etcd(after))
            }
            _ => prefix_start,
        };
        let mut get = GetOptions::new().with_range(end);
        if let Some(limit) = options.limit.filter(|l| *l > 0) {
            get = get.with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        if let Some(revision) = options.at_revision {
            get = get.with_revision(revision);
        }
        let response = match self.kv().get(start, Some(get)).await {
            Ok(response) => response,
            Err(err) if is_compacted(&err) => {
                let requested = options.at_revision.unwrap_or_default();
                return Err(StoreError::Compacted {
                    requested,
                    compacted: self.compacted_revision(requested).await,
                });
            }
            Err(err) if is_future(&err) => {
                return Err(StoreError::FutureRevision {
                    requested: options.at_revision.unwrap_or_default(),
                    current: self.current_revision().await?,
                });
            }
            Err(err) => return Err(backend(err)),
        };
        let items = response
            .kvs()
            .iter()
            .map(|kv| self.keys.kv(kv))
            .collect::<Result<Vec<_>, _>>()?;
        let total = u64::try_from(response.count()).unwrap_or_default();
        let revision = match options.at_revision {
            Some(revision) => revision,
            None => response.header().map(|h| h.revision()).unwrap_or_default(),
        };
        Ok(ListResult {
            remaining: total.saturating_sub(items.len() as u64),
            items,
            revision,
        })
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        let (start, end) = self.range(prefix);
        let options = WatchOptions::new()
            .with_range(end)
            .with_start_revision(after + 1)
            .with_progress_notify()
            .with_prev_key();
        let mut stream = self
            .client
            .watch_client()
            .watch(start, Some(options))
            .await
            .map_err(backend)?;
        // Wait until etcd confirms the watch, so events after this call are not missed
        // and a compacted start is reported here.
        match stream.message().await.map_err(backend)? {
            Some(response) if response.canceled() && response.compact_revision() > 0 => {
                return Err(StoreError::Compacted {
                    requested: after,
                    compacted: response.compact_revision(),
                });
            }
            Some(response) if response.canceled() => {
                return Err(StoreError::Backend(format!(
                    "etcd: watch refused: {}",
                    response.cancel_reason()
                )));
            }
            Some(response) if response.created() => {}
            Some(_) => return Err(StoreError::Backend("etcd: watch not confirmed".into())),
            None => return Err(StoreError::Backend("etcd: watch stream closed".into())),
        }
        Ok(watch::forward(
            stream,
            self.keys.clone(),
            after,
            self.watch_buffer,
        ))
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        // A point read (not a range count, which etcd computes in O(keys)); the
        // header carries the store revision whatever the key.
        let (start, _) = self.range("");
        let response = self
            .kv()
            .get(start, Some(GetOptions::new().with_count_only()))
            .await
            .map_err(backend)?;
        response
            .header()
            .map(|h| h.revision())
            .ok_or_else(|| StoreError::Backend("etcd: response without header".into()))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        match self
            .kv()
            .compact(revision, Some(CompactionOptions::new().with_physical()))
            .await
        {
            Ok(_) => Ok(()),
            // Compacting at or below the compacted revision changes nothing.
            Err(err) if is_compacted(&err) => Ok(()),
            Err(err) if is_future(&err) => Err(StoreError::FutureRevision {
                requested: revision,
                current: self.current_revision().await?,
            }),
            Err(err) => Err(backend(err)),
        }
    }
}

impl EtcdStore {
    /// The prefix every key of this store is stored under.
    pub fn prefix(&self) -> &str {
        self.keys.prefix()
    }
}
