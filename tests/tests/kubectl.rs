//! kubectl against Waggle's API server, in the shape of upstream's `test/cmd`: each test
//! starts its own server (see `tests/kubectl/harness.rs`), drives the real kubectl
//! binary and checks its output and exit codes against what kubectl prints for
//! kube-apiserver. One file per topic under `kubectl_support/`.

#[path = "../kubectl/harness.rs"]
mod harness;

#[path = "kubectl_support/asserts.rs"]
mod asserts;

#[path = "kubectl_support/apply.rs"]
mod apply;
#[path = "kubectl_support/auth.rs"]
mod auth;
#[path = "kubectl_support/certificates.rs"]
mod certificates;
#[path = "kubectl_support/controllers.rs"]
mod controllers;
#[path = "kubectl_support/create.rs"]
mod create;
#[path = "kubectl_support/custom.rs"]
mod custom;
#[path = "kubectl_support/daemonsets.rs"]
mod daemonsets;
#[path = "kubectl_support/describe.rs"]
mod describe;
#[path = "kubectl_support/discovery.rs"]
mod discovery;
#[path = "kubectl_support/errors.rs"]
mod errors;
#[path = "kubectl_support/lifecycle.rs"]
mod lifecycle;
#[path = "kubectl_support/metadata.rs"]
mod metadata;
#[path = "kubectl_support/output.rs"]
mod output;
#[path = "kubectl_support/policy.rs"]
mod policy;
#[path = "kubectl_support/prune.rs"]
mod prune;
#[path = "kubectl_support/quota.rs"]
mod quota;
#[path = "kubectl_support/rbac.rs"]
mod rbac;
#[path = "kubectl_support/scheduling.rs"]
mod scheduling;
#[path = "kubectl_support/streaming.rs"]
mod streaming;
#[path = "kubectl_support/subresources.rs"]
mod subresources;
#[path = "kubectl_support/watch.rs"]
mod watch;
#[path = "kubectl_support/workloads.rs"]
mod workloads;
