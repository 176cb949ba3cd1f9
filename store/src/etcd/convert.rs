//! Conversions between etcd's types and the store's, under a key prefix.

use etcd_client::{Event, EventType};

use crate::{KeyValue, Revision, StoreError, WatchEvent};

/// etcd's error texts for the two revision errors (etcd `mvcc` package).
const COMPACTED: &str = "required revision has been compacted";
const FUTURE: &str = "required revision is a future revision";

pub(crate) fn backend(err: etcd_client::Error) -> StoreError {
    StoreError::Backend(format!("etcd: {err}"))
}

pub(crate) fn is_compacted(err: &etcd_client::Error) -> bool {
    err.to_string().contains(COMPACTED)
}

pub(crate) fn is_future(err: &etcd_client::Error) -> bool {
    err.to_string().contains(FUTURE)
}

/// Maps etcd keys to store keys by removing the store's prefix.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: String) -> Self {
        Keys { prefix }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) fn to_etcd(&self, key: &str) -> Vec<u8> {
        let mut full = Vec::with_capacity(self.prefix.len() + key.len());
        full.extend_from_slice(self.prefix.as_bytes());
        full.extend_from_slice(key.as_bytes());
        full
    }

    pub(crate) fn strip(&self, key: &[u8]) -> Result<String, StoreError> {
        let rest = key.strip_prefix(self.prefix.as_bytes()).ok_or_else(|| {
            StoreError::Backend(format!(
                "etcd: key {:?} is outside prefix {:?}",
                String::from_utf8_lossy(key),
                self.prefix
            ))
        })?;
        String::from_utf8(rest.to_vec()).map_err(|_| {
            StoreError::Backend(format!(
                "etcd: key {:?} is not UTF-8",
                String::from_utf8_lossy(key)
            ))
        })
    }

    pub(crate) fn kv(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
        Ok(KeyValue {
            key: self.strip(kv.key())?,
            value: kv.value().to_vec(),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
        })
    }

    pub(crate) fn event(&self, event: &Event) -> Result<WatchEvent, StoreError> {
        let kv = event
            .kv()
            .ok_or_else(|| StoreError::Backend("etcd: watch event without a key".into()))?;
        let prev = event.prev_kv().map(|prev| self.kv(prev)).transpose()?;
        Ok(match event.event_type() {
            EventType::Put => {
                let kv = self.kv(kv)?;
                // A create has no previous value even if etcd sent one from an earlier life.
                let prev = prev.filter(|_| kv.create_revision != kv.mod_revision);
                WatchEvent::Put { kv, prev }
            }
            EventType::Delete => {
                let revision: Revision = kv.mod_revision();
                // etcd omits prev_kv only when it was compacted away; keep the key.
                let prev = match prev {
                    Some(prev) => prev,
                    None => KeyValue {
                        key: self.strip(kv.key())?,
                        value: Vec::new(),
                        create_revision: 0,
                        mod_revision: 0,
                    },
                };
                WatchEvent::Delete { prev, revision }
            }
        })
    }
}
