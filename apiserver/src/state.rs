//! What every request handler shares.

use std::sync::Arc;
use std::time::Duration;

use waggle_apimachinery::registry::Registry;
use waggle_store::Store;

use crate::alloc::Allocator;
use crate::fanout::Fanout;
use crate::metrics::Metrics;

/// Tunables of request handling.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How often an idle watch with `allowWatchBookmarks` gets a BOOKMARK.
    pub bookmark_interval: Duration,
    /// How long a watch may wait for a slow client before it is dropped.
    pub watch_send_timeout: Duration,
    /// The largest request body accepted.
    pub max_body_bytes: usize,
    /// The longest watch when the client does not ask for a timeout.
    pub max_watch: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bookmark_interval: Duration::from_secs(60),
            watch_send_timeout: Duration::from_secs(10),
            max_body_bytes: 3 * 1024 * 1024,
            max_watch: Duration::from_secs(30 * 60),
        }
    }
}

/// The API server's shared state.
pub struct ApiState {
    pub store: Arc<dyn Store>,
    pub alloc: Allocator,
    pub metrics: Metrics,
    pub settings: Settings,
    /// The shared store watches that every watch request subscribes to.
    pub fanout: Fanout,
    /// Signs the service-account tokens `TokenRequest` issues.
    pub tokens: Arc<crate::authn::tokens::Issuer>,
    /// RBAC: the request gate's and the access reviews' authorizer.
    pub authorizer: Arc<crate::authz::Authorizer>,
    /// The CustomResourceDefinitions that add to the served resources.
    pub definitions: crate::crd::Definitions,
}

impl ApiState {
    /// A snapshot of the served resources: built-in and custom.
    pub fn registry(&self) -> Registry {
        self.definitions.registry()
    }
}

pub type Shared = Arc<ApiState>;
