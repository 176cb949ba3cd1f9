//! Kubernetes API machinery shared by Waggle's API server and tools: what resources
//! exist ([`registry`]), and (as they land) how they are discovered, described
//! (OpenAPI), printed (server-side tables) and patched (strategic merge, apply).
//!
//! Everything here is pure: JSON in, JSON out, no I/O.

pub mod registry;
