//! Watch: newline-delimited JSON events in revision order, from a resourceVersion
//! (exclusive) or after a synthetic initial state, with selectors applied as
//! upstream (an object leaving the selection is DELETED, one entering it ADDED),
//! periodic BOOKMARKs, `timeoutSeconds`, and `410 Gone` as an ERROR event.
//!
//! Changes come from the resource's shared hub ([`crate::fanout`]), which decodes and
//! renders each change once for all watchers; a watcher only checks its key prefix
//! and selectors. The response body itself reads the hub (no task or queue per
//! watch) and sends all ready events as one chunk; a client that stops reading for
//! `watch_send_timeout`, or falls a hub ring behind, is dropped (its stream ends)
//! and never slows writers or other watchers.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use http::HeaderMap;
use serde_json::{Value, json};
use tokio::time::Instant;
use waggle_apimachinery::registry::Resource;
use waggle_store::{ListOptions, Revision, StoreError, WatchEvent, WatchStream};

use crate::fanout::{Change, Ended, EventType, Item, Subscription};
use crate::params::Params;
use crate::selectors::Filter;
use crate::state::{ApiState, Shared};
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
        let mut line =
            serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
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
    fn translate(&self, change: &Change) -> Result<Option<Bytes>, ApiError> {
        let everything = self.filter.is_everything();
        let kind = match &change.event {
            WatchEvent::Put { kv, prev } if everything => {
                if prev.is_none() && kv.create_revision == kv.mod_revision {
                    EventType::Added
                } else {
                    EventType::Modified
                }
            }
            WatchEvent::Put { .. } => {
                let now = self.filter.matches(self.resource, change.current()?);
                let before = change
                    .previous()?
                    .is_some_and(|old| self.filter.matches(self.resource, old));
                match (before, now) {
                    (false, true) => EventType::Added,
                    (true, true) => EventType::Modified,
                    (true, false) => EventType::Deleted,
                    (false, false) => return Ok(None),
                }
            }
            WatchEvent::Delete { .. } => {
                if !everything
                    && !change
                        .previous()?
                        .is_some_and(|old| self.filter.matches(self.resource, old))
                {
                    return Ok(None);
                }
                EventType::Deleted
            }
            WatchEvent::Progress { .. } => return Ok(None),
        };
        if !self.tables && !crate::convert::needed(self.resource) {
            return change.line(kind).map(Some);
        }
        let mut object = match kind {
            EventType::Deleted => change
                .previous()?
                .ok_or_else(|| ApiError::internal("a delete without its object"))?,
            _ => change.current()?,
        }
        .clone();
        crate::convert::to_request(self.resource, &mut object);
        Ok(Some(self.line(kind.as_str(), object)))
    }
}

/// Where a watch's changes come from: the resource's shared hub or, for a start
/// older than the hub keeps, a store watch of its own.
enum Source {
    Shared(Subscription),
    Own(WatchStream),
}

impl Source {
    async fn next(&mut self) -> Option<Result<Arc<Item>, StoreError>> {
        match self {
            Source::Shared(subscription) => subscription.next().await,
            Source::Own(stream) => Some(stream.next().await?.map(|event| match event {
                WatchEvent::Progress { revision } => Arc::new(Item::Progress(revision)),
                event => Arc::new(Item::Change(Change::new(event))),
            })),
        }
    }

    /// The next item if one is ready now (shared hubs only).
    fn try_next(&mut self) -> Option<Result<Arc<Item>, StoreError>> {
        match self {
            Source::Shared(subscription) => subscription.try_next(),
            Source::Own(_) => None,
        }
    }
}

/// What one item means for the client.
enum Step {
    Skip,
    Line(Bytes),
    /// The watch ends, after this line if there is one.
    Last(Option<Bytes>),
}

/// Most bytes sent to a client in one write when several events are ready.
const BATCH: usize = 64 * 1024;

/// Serves a watch request.
pub async fn watch(
    state: Shared,
    target: &Target,
    params: &Params,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let resource = target.resource;
    let filter = Filter::parse(
        resource,
        params.get("labelSelector"),
        params.get("fieldSelector"),
    )?;
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
        return Err(ApiError::invalid(
            "ListOptions",
            "",
            vec![crate::status::Cause::forbidden(
                "allowWatchBookmarks",
                "sendInitialEvents requires setting allowWatchBookmarks to true",
            )],
        ));
    }
    let rv = params.value("resourceVersion");
    let timeout = params
        .int("timeoutSeconds")?
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64))
        .unwrap_or(state.settings.max_watch);

    let mut initial: Vec<Bytes> = Vec::new();
    let mut explicit = false;
    let from = match (rv, send_initial) {
        (Some(rv), None | Some(false)) if rv != "0" => {
            explicit = true;
            objects::parse_resource_version(rv)?
        }
        _ => {
            // Synthetic ADDED events for the current state, then changes after it.
            let list_target = Target {
                name: None,
                ..target.clone()
            };
            let unpaged = Params(Vec::new());
            let page =
                crate::handlers::list::read_page(&state, &list_target, &unpaged, &watcher.filter)
                    .await?;
            for mut obj in page.items {
                if target
                    .name
                    .as_deref()
                    .is_none_or(|n| n == objects::name(&obj))
                {
                    crate::convert::to_request(resource, &mut obj);
                    initial.push(watcher.line("ADDED", obj));
                }
            }
            if send_initial == Some(true) {
                initial.push(watcher.bookmark(page.revision, true));
            }
            page.revision
        }
    };

    let body = match open_source(&state, resource, &prefix, from, explicit).await {
        Ok(source) => {
            let exact_key = target.name.as_ref().map(|_| prefix.clone());
            let at = Position {
                prefix,
                exact_key,
                last: from,
            };
            let relay = Relay::new(&state, watcher, source, at, initial, timeout);
            Body::from_stream(futures::stream::unfold(relay, |mut relay| async move {
                let chunk = relay.next_chunk().await?;
                Some((Ok::<_, Infallible>(chunk), relay))
            }))
        }
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) => {
            let status = ApiError::gone(format!(
                "too old resource version: {requested} ({compacted})"
            ))
            .to_status();
            Body::from(watcher.line("ERROR", status))
        }
        Err(e) => return Err(ApiError::from_store(e)),
    };
    let response = Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CACHE_CONTROL, "no-cache, private")
        .body(body)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(response)
}

/// Subscribes to the resource's shared hub, or watches the store directly when the
/// hub no longer keeps the history after `from`. A watch from an explicit
/// `resourceVersion` first checks that history is not compacted (the hub may still
/// keep changes the store has forgotten, and the answer must be `410 Gone` then).
async fn open_source(
    state: &ApiState,
    resource: &Resource,
    prefix: &str,
    from: Revision,
    explicit: bool,
) -> Result<Source, StoreError> {
    if explicit && from > 0 {
        let current = state.store.current_revision().await?;
        if from < current {
            let probe = ListOptions {
                prefix: prefix.to_owned(),
                start_after: None,
                limit: Some(1),
                at_revision: Some(from + 1),
            };
            state.store.list(&probe).await?;
        }
    }
    let root = keys::collection_prefix(resource, None);
    match state.fanout.subscribe(&root, from).await? {
        Some(subscription) => Ok(Source::Shared(subscription)),
        None => Ok(Source::Own(state.store.watch(prefix, from).await?)),
    }
}

/// Where a watcher stands: what it serves and the newest revision it has seen.
struct Position {
    prefix: String,
    exact_key: Option<String>,
    last: Revision,
}

impl Watcher {
    fn step(&self, item: Option<Result<Arc<Item>, StoreError>>, at: &mut Position) -> Step {
        let item = match item {
            None | Some(Err(StoreError::WatcherTooSlow)) => return Step::Last(None),
            Some(Err(StoreError::Compacted {
                requested,
                compacted,
            })) => {
                let status = ApiError::gone(format!(
                    "too old resource version: {requested} ({compacted})"
                ))
                .to_status();
                return Step::Last(Some(self.line("ERROR", status)));
            }
            Some(Err(e)) => {
                return Step::Last(Some(
                    self.line("ERROR", ApiError::internal(e.to_string()).to_status()),
                ));
            }
            Some(Ok(item)) => item,
        };
        match &*item {
            Item::Ended(Ended::Closed) => Step::Last(None),
            Item::Ended(Ended::Gone(message)) => Step::Last(Some(
                self.line("ERROR", ApiError::gone(message.clone()).to_status()),
            )),
            Item::Ended(Ended::Failed(message)) => Step::Last(Some(
                self.line("ERROR", ApiError::internal(message.clone()).to_status()),
            )),
            Item::Progress(revision) => {
                at.last = at.last.max(*revision);
                if self.bookmarks {
                    Step::Line(self.bookmark(*revision, false))
                } else {
                    Step::Skip
                }
            }
            Item::Change(change) => {
                at.last = at.last.max(change.revision());
                let key = change.key();
                let relevant = match &at.exact_key {
                    Some(exact) => key == exact,
                    None => key.starts_with(&at.prefix),
                };
                if !relevant {
                    return Step::Skip;
                }
                match self.translate(change) {
                    Ok(Some(line)) => Step::Line(line),
                    Ok(None) => Step::Skip,
                    Err(e) => Step::Last(Some(self.line("ERROR", e.to_status()))),
                }
            }
        }
    }
}

/// One watch's response body: polled by the HTTP connection itself, it takes every
/// item that is ready from its source and answers with them as one chunk, so a
/// delivery costs one wake-up of the connection's task and no task or queue of its
/// own. A client that stops reading stops the polling: when it comes back after more
/// than `watch_send_timeout` (or after falling a full hub ring behind), the watch
/// ends instead of resuming.
struct Relay {
    watcher: Watcher,
    source: Source,
    at: Position,
    initial: std::vec::IntoIter<Bytes>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    ticker: tokio::time::Interval,
    send_timeout: Duration,
    /// When the last chunk was handed out, until the next poll.
    handed_out: Option<Instant>,
    done: bool,
}

impl Relay {
    fn new(
        state: &ApiState,
        watcher: Watcher,
        source: Source,
        at: Position,
        initial: Vec<Bytes>,
        timeout: Duration,
    ) -> Self {
        let period = state.settings.bookmark_interval;
        Relay {
            watcher,
            source,
            at,
            initial: initial.into_iter(),
            deadline: Box::pin(tokio::time::sleep(timeout)),
            ticker: tokio::time::interval_at(Instant::now() + period, period),
            send_timeout: state.settings.watch_send_timeout,
            handed_out: None,
            done: false,
        }
    }

    /// The next chunk for the client; `None` ends the watch.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        // The connection asks for more only once the client has taken the previous
        // chunk; a client that took longer than `send_timeout` is dropped.
        if self
            .handed_out
            .take()
            .is_some_and(|at| at.elapsed() > self.send_timeout)
        {
            return None;
        }
        let chunk = match self.initial.next() {
            Some(first) => self.batch(first, |relay| relay.initial.next().map(Step::Line)),
            None => self.next_events().await?,
        };
        self.handed_out = Some(Instant::now());
        Some(chunk)
    }

    /// Waits for the first line worth sending, then adds those already waiting.
    async fn next_events(&mut self) -> Option<Bytes> {
        loop {
            let step = tokio::select! {
                _ = &mut self.deadline => return None,
                _ = self.ticker.tick(), if self.watcher.bookmarks && self.at.last > 0 => {
                    Step::Line(self.watcher.bookmark(self.at.last, false))
                }
                item = self.source.next() => self.watcher.step(item, &mut self.at),
            };
            match step {
                Step::Skip => continue,
                Step::Line(line) => {
                    return Some(self.batch(line, |relay| {
                        let item = relay.source.try_next()?;
                        Some(relay.watcher.step(Some(item), &mut relay.at))
                    }));
                }
                Step::Last(line) => {
                    self.done = true;
                    return line;
                }
            }
        }
    }

    /// `first` and the lines `more` has ready, up to [`BATCH`] bytes, as one chunk.
    fn batch(&mut self, first: Bytes, mut more: impl FnMut(&mut Self) -> Option<Step>) -> Bytes {
        let mut batch: Option<Vec<u8>> = None;
        while !self.done && batch.as_ref().map_or(first.len(), Vec::len) < BATCH {
            let line = match more(self) {
                None => break,
                Some(Step::Skip) => continue,
                Some(Step::Line(line)) => line,
                Some(Step::Last(line)) => {
                    self.done = true;
                    match line {
                        Some(line) => line,
                        None => break,
                    }
                }
            };
            batch
                .get_or_insert_with(|| first.to_vec())
                .extend_from_slice(&line);
        }
        batch.map_or(first, Bytes::from)
    }
}
