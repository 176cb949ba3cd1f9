//! etcd watches as [`WatchStream`]s with a bounded per-watcher buffer.
//!
//! etcd replays history from `start_revision` and then follows live writes, in
//! revision order, so the store's ordering guarantee comes from etcd. A task per
//! watch forwards events into a bounded channel; when the consumer falls a full
//! buffer behind, the task cancels the etcd watch and the stream ends, after the
//! buffered events, with [`StoreError::WatcherTooSlow`].
//!
//! Watches ask for etcd's progress notifications, sent to a watch that is
//! caught up every `--experimental-watch-progress-notify-interval` (etcd 3.4; 10
//! minutes by default), and turn them into [`WatchEvent::Progress`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use tokio::sync::mpsc;

use super::convert::{Keys, backend};
use crate::{Revision, StoreError, WatchEvent, WatchStream};

/// Forwards `stream` (an etcd watch started after `after`) into a [`WatchStream`].
pub(crate) fn forward(
    mut stream: etcd_client::WatchStream,
    keys: Keys,
    after: Revision,
    buffer: usize,
) -> WatchStream {
    let (sender, receiver) = mpsc::channel(buffer.max(1));
    let overflowed = Arc::new(AtomicBool::new(false));
    let flag = overflowed.clone();
    tokio::spawn(async move {
        loop {
            let response = tokio::select! {
                _ = sender.closed() => return,
                response = stream.message() => response,
            };
            let response = match response {
                Ok(Some(response)) => response,
                Ok(None) => {
                    let _ = sender
                        .try_send(Err(StoreError::Backend("etcd: watch stream closed".into())));
                    return;
                }
                Err(err) => {
                    let _ = sender.try_send(Err(backend(err)));
                    return;
                }
            };
            if response.canceled() {
                let err = if response.compact_revision() > 0 {
                    StoreError::Compacted {
                        requested: after,
                        compacted: response.compact_revision(),
                    }
                } else {
                    StoreError::Backend(format!(
                        "etcd: watch canceled: {}",
                        response.cancel_reason()
                    ))
                };
                let _ = sender.try_send(Err(err));
                return;
            }
            if response.events().is_empty() && !response.created() {
                // A progress notification: the watch has caught up with this revision.
                if let Some(header) = response.header() {
                    let progress = Ok(WatchEvent::Progress {
                        revision: header.revision(),
                    });
                    if sender.try_send(progress).is_err() {
                        return;
                    }
                }
                continue;
            }
            for event in response.events() {
                let event = keys.event(event);
                let failed = event.is_err();
                match sender.try_send(event) {
                    Ok(()) if failed => return,
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::debug!("etcd watcher too slow; dropped");
                        flag.store(true, Ordering::Release);
                        return;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                }
            }
        }
    });
    let events = tokio_stream::wrappers::ReceiverStream::new(receiver);
    let tail = futures::stream::once(async move {
        overflowed
            .load(Ordering::Acquire)
            .then_some(Err(StoreError::WatcherTooSlow))
    })
    .filter_map(|end| async move { end });
    events.chain(tail).fuse().boxed()
}
