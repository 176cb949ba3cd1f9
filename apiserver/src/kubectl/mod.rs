//! Request-path pieces kubectl relies on that cut across handlers: the field manager of
//! the request being served ([`context`]), `metadata.managedFields` on every ordinary
//! write ([`managed`]), `fieldValidation` with upstream's messages ([`validation`]) and upstream's `omitempty`
//! metadata ([`omitempty`]).
//!
//! Hook points: `router` scopes each resource request with [`context::scoped`]; create
//! and `handlers::write::Update::commit` call [`managed::record`] after defaulting; the
//! create/update/patch handlers call [`validation::check`] / [`validation::check_patched`].

pub mod context;
pub mod managed;
pub mod omitempty;
pub mod validation;
