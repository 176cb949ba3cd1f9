//! Waggle's Kubernetes API server: the REST layer over a revisioned [`waggle_store::Store`].
//!
//! Start reading at [`server::start`] (listeners, bootstrap) and [`router`] (the HTTP
//! surface); resource requests go through [`target::parse`] to one module per verb
//! in [`handlers`], every update through [`handlers::write::Update`], and watches
//! through [`watch`]. Objects are JSON ([`serde_json::Value`]) end to end: stored as
//! sent (unknown fields kept), defaulted ([`defaults`]), validated ([`validation`])
//! and stamped with `resourceVersion` from the store's `mod_revision` ([`objects`]).
//! The served resources are a `waggle_apimachinery::registry::Registry`: the built-in
//! table and the custom resources of the established CustomResourceDefinitions ([`crd`]).

pub mod admin_cert;
pub mod alloc;
pub mod auth;
pub mod authn;
pub mod authz;
pub mod body;
pub mod certificates;
pub mod convert;
pub mod crd;
pub mod defaults;
pub mod discovery;
pub mod fanout;
pub mod handlers;
pub mod health;
pub mod keys;
pub mod kubeconfig;
pub mod kubectl;
pub mod kubelet;
pub mod lifecycle;
pub mod malloc;
pub mod metrics;
pub mod namespaces;
pub mod objects;
pub mod params;
pub mod raw;
pub mod reply;
pub mod router;
pub mod selectors;
pub mod server;
pub mod state;
pub mod status;
pub mod table;
pub mod target;
pub mod tls;
pub mod typed;
pub mod validation;
pub mod watch;

pub use server::{Config, Running, StartError, start};
