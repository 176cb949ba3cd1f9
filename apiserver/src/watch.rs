//! Watch: newline-delimited JSON events in revision order, from a resourceVersion
//! (exclusive) or after a synthetic initial state, with selectors applied as
//! upstream (an object leaving the selection is DELETED, one entering it ADDED),
//! periodic BOOKMARKs, `timeoutSeconds`, and `410 Gone` as an ERROR event.
//!
//! Each watch runs in its own task feeding a bounded channel; a client that stops
//! reading for `watch_send_timeout` is dropped (its stream ends) and never slows
//! writers or other watchers.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use http::HeaderMap;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use waggle_apimachinery::registry::Resource;
use waggle_store::{Revision, StoreError, WatchEvent, WatchStream};

use crate::params::Params;
use crate::selectors::Filter;
use crate::state::Shared;
use crate::status::ApiError;
use crate::target::Target;
use crate::{keys, objects, reply, table};

/// How one watch renders and filters.
struct Watcher {
    resource: &'static Resource,
    filter: Filter,
    bookmarks: bool,
    tables: bool,
    headers: HeaderMap,
}

impl Watcher {
    fn line(&self, kind: &str, object: Value) -> Bytes {
        let object = if self.tables && kind != "BOOKMARK" && kind != "ERROR" {
            table::to_table(self.resource, &object, &self.headers)
        } else {
            object
        };
        let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }

    fn bookmark(&self, revision: Revision, initial_events_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": revision.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({"kind": self.resource.kind, "apiVersion": self.resource.api_version(), "metadata": metadata});
        self.line("BOOKMARK", object)
    }

    /// The event (if any) a store change means for this watcher.
    fn translate(&self, event: WatchEvent) -> Result<Option<Bytes>, ApiError> {
        match event {
            WatchEvent::Put { kv, prev } => {
                let current = objects::decode(&kv)?;
                if self.filter.is_everything() {
                    let kind = if prev.is_none() && kv.create_revision == kv.mod_revision { "ADDED" } else { "MODIFIED" };
                    return Ok(Some(self.line(kind, current)));
                }
                let now = self.filter.matches(self.resource, &current);
                let before = match &prev {
                    Some(p) => Some(objects::decode(p)?).filter(|o| self.filter.matches(self.resource, o)),
                    None => None,
                };
                Ok(match (before, now) {
                    (None, true) => Some(self.line("ADDED", current)),
                    (Some(_), true) => Some(self.line("MODIFIED", current)),
                    (Some(mut old), false) => {
                        objects::set_resource_version(&mut old, kv.mod_revision);
                        Some(self.line("DELETED", old))
                    }
                    (None, false) => None,
                })
            }
            WatchEvent::Delete { prev, revision } => {
                let mut old = objects::decode(&prev)?;
                objects::set_resource_version(&mut old, revision);
                Ok(self.filter.matches(self.resource, &old).then(|| self.line("DELETED", old)))
            }
            WatchEvent::Progress { revision } => Ok(self.bookmarks.then(|| self.bookmark(revision, false))),
        }
    }
}

/// Serves a watch request.
pub async fn watch(state: Shared, target: &Target, params: &Params, headers: &HeaderMap) -> Result<Response, ApiError> {
    let resource = target.resource;
    let filter = Filter::parse(resource, params.get("labelSelector"), params.get("fieldSelector"))?;
    let watcher = Watcher {
        resource,
        filter,
        bookmarks: params.flag("allowWatchBookmarks"),
        tables: reply::wants_table(headers),
        headers: headers.clone(),
    };
    let prefix = match &target.name {
        // `/namespaces/x/pods/name?watch=1` (or via the legacy path) watches one object.
        Some(name) => keys::object_key(resource, target.namespace.as_deref(), name),
        None => keys::collection_prefix(resource, target.namespace.as_deref()),
    };
    let send_initial = params.get("sendInitialEvents").map(|v| v == "true");
    if send_initial == Some(true) && !watcher.bookmarks {
        return Err(ApiError::invalid("ListOptions", "", vec![crate::status::Cause::forbidden(
            "allowWatchBookmarks",
            "sendInitialEvents requires setting allowWatchBookmarks to true",
        )]));
    }
    let rv = params.value("resourceVersion");
    let timeout = params
        .int("timeoutSeconds")?
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64))
        .unwrap_or(state.settings.max_watch);

    let mut initial: Vec<Bytes> = Vec::new();
    let from = match (rv, send_initial) {
        (Some(rv), None | Some(false)) if rv != "0" => objects::parse_resource_version(rv)?,
        _ => {
            // Synthetic ADDED events for the current state, then changes after it.
            let list_target = Target { name: None, ..target.clone() };
            let unpaged = Params(Vec::new());
            let page = crate::handlers::list::read_page(&state, &list_target, &unpaged, &watcher.filter).await?;
            for obj in page.items {
                if target.name.as_deref().is_none_or(|n| n == objects::name(&obj)) {
                    initial.push(watcher.line("ADDED", obj));
                }
            }
            if send_initial == Some(true) {
                initial.push(watcher.bookmark(page.revision, true));
            }
            page.revision
        }
    };

    let (tx, rx) = mpsc::channel::<Bytes>(256);
    match state.store.watch(&prefix, from).await {
        Ok(stream) => {
            let exact_key = target.name.as_ref().map(|_| prefix.clone());
            tokio::spawn(run(state.clone(), watcher, stream, exact_key, initial, from, timeout, tx));
        }
        Err(StoreError::Compacted { requested, compacted }) => {
            let status = ApiError::gone(format!("too old resource version: {requested} ({compacted})")).to_status();
            let _ = tx.try_send(watcher.line("ERROR", status));
        }
        Err(e) => return Err(ApiError::from_store(e)),
    }
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, Infallible>));
    let response = Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CACHE_CONTROL, "no-cache, private")
        .body(body)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(response)
}

#[allow(clippy::too_many_arguments)]
async fn run(
    state: Shared,
    watcher: Watcher,
    mut stream: WatchStream,
    exact_key: Option<String>,
    initial: Vec<Bytes>,
    from: Revision,
    timeout: Duration,
    tx: mpsc::Sender<Bytes>,
) {
    let send_timeout = state.settings.watch_send_timeout;
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    for line in initial {
        if tx.send_timeout(line, send_timeout).await.is_err() {
            return;
        }
    }
    let mut last = from;
    let mut ticker = tokio::time::interval(state.settings.bookmark_interval);
    ticker.tick().await;
    loop {
        let line = tokio::select! {
            _ = &mut deadline => return,
            _ = tx.closed() => return,
            _ = ticker.tick(), if watcher.bookmarks && last > 0 => Some(watcher.bookmark(last, false)),
            event = stream.next() => match event {
                None | Some(Err(StoreError::WatcherTooSlow)) => return,
                Some(Err(StoreError::Compacted { requested, compacted })) => {
                    let status = ApiError::gone(format!("too old resource version: {requested} ({compacted})")).to_status();
                    Some(watcher.line("ERROR", status))
                }
                Some(Err(e)) => {
                    Some(watcher.line("ERROR", ApiError::internal(e.to_string()).to_status()))
                }
                Some(Ok(event)) => {
                    last = last.max(event.revision());
                    let relevant = match (&exact_key, &event) {
                        (Some(key), WatchEvent::Put { kv, .. }) => &kv.key == key,
                        (Some(key), WatchEvent::Delete { prev, .. }) => &prev.key == key,
                        _ => true,
                    };
                    if !relevant {
                        None
                    } else {
                        match watcher.translate(event) {
                            Ok(line) => line,
                            Err(e) => Some(watcher.line("ERROR", e.to_status())),
                        }
                    }
                }
            },
        };
        if let Some(line) = line {
            let is_error = line.starts_with(b"{\"type\":\"ERROR\"");
            if tx.send_timeout(line, send_timeout).await.is_err() || is_error {
                return;
            }
        }
    }
}
