//! The one path every update takes (PUT, PATCH, status, scale, binding, finalizing):
//! read, mutate, default, validate, allocate, compare-and-swap; retried on conflicts
//! unless the client pinned a resourceVersion.

use serde_json::Value;
use waggle_apimachinery::registry::Resource;
use waggle_store::{KeyValue, Revision, StoreError};

use crate::state::ApiState;
use crate::status::ApiError;
use crate::{defaults, keys, lifecycle, objects, validation};

/// Which part of the object a write may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The main resource: status changes are ignored when a status subresource exists.
    Main,
    /// The `status` subresource: only status changes.
    Status,
    /// The `scale` subresource: a main-resource write (only `spec.replicas` changes)
    /// whose managedFields entry names the subresource.
    Scale,
    /// The `approval` subresource of a CertificateSigningRequest: only its conditions.
    Approval,
    /// Server-internal writes (binding, deletion bookkeeping): taken as given.
    Raw,
}

/// Where and how to update one object.
pub struct Update<'a> {
    pub state: &'a ApiState,
    pub resource: &'static Resource,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    /// The resourceVersion the client required (409 if it is stale).
    pub precondition: Option<Revision>,
    pub mode: Mode,
    pub dry_run: bool,
}

/// How many times an unconditional update retries a lost compare-and-swap.
const RETRIES: usize = 64;

impl Update<'_> {
    pub fn key(&self) -> String {
        keys::object_key(self.resource, self.namespace, self.name)
    }

    fn not_found(&self) -> ApiError {
        ApiError::not_found(self.resource.group, self.resource.plural, self.name)
    }

    fn conflict(&self) -> ApiError {
        ApiError::conflict(self.resource.group, self.resource.plural, self.name)
    }

    /// Applies `mutate` to the current object and writes the result.
    pub async fn run<F>(&self, mut mutate: F) -> Result<Value, ApiError>
    where
        F: FnMut(&Value) -> Result<Value, ApiError>,
    {
        let key = self.key();
        for _ in 0..RETRIES {
            let kv = self
                .state
                .store
                .get(&key)
                .await
                .map_err(ApiError::from_store)?
                .ok_or_else(|| self.not_found())?;
            if self.precondition.is_some_and(|rv| rv != kv.mod_revision) {
                return Err(self.conflict());
            }
            let mut old = objects::decode(&kv)?;
            crate::convert::to_request(self.resource, &mut old);
            let new = mutate(&old)?;
            if let Some(written) = self.commit(&key, &kv, &old, new).await? {
                return Ok(written);
            }
            if self.precondition.is_some() {
                return Err(self.conflict());
            }
        }
        Err(self.conflict())
    }

    /// One attempt; `Ok(None)` if another write got there first.
    async fn commit(
        &self,
        key: &str,
        kv: &KeyValue,
        old: &Value,
        new: Value,
    ) -> Result<Option<Value>, ApiError> {
        let resource = self.resource;
        let mut new = match self.mode {
            Mode::Status => lifecycle::prepare_status_update(&new, old),
            Mode::Approval => crate::certificates::prepare_approval(&new, old),
            Mode::Main | Mode::Scale => {
                let mut new = new;
                lifecycle::prepare_update(resource, &mut new, old);
                new
            }
            Mode::Raw => new,
        };
        defaults::apply(resource, &mut new);
        if crate::certificates::is_signing_request(resource) {
            crate::certificates::stamp_conditions(&mut new, Some(old));
        }
        if crate::crd::is_definitions(resource.group, resource.plural) {
            crate::crd::check_names(&self.state.registry(), &mut new);
        }
        match self.mode {
            Mode::Main => crate::kubectl::managed::record(resource, Some(old), &mut new, ""),
            Mode::Status => crate::kubectl::managed::record(resource, Some(old), &mut new, "status"),
            Mode::Scale => crate::kubectl::managed::record(resource, Some(old), &mut new, "scale"),
            Mode::Approval => crate::kubectl::managed::record(resource, Some(old), &mut new, "approval"),
            Mode::Raw => {}
        }
        if self.mode != Mode::Raw {
            validation::validate(resource, &new, Some(old))?;
        }
        if let Some(cause) = lifecycle::check_finalizers(&new, old) {
            return Err(ApiError::invalid_in(resource.group, resource.kind, self.name, vec![cause]));
        }
        let is_service = resource.group.is_empty() && resource.kind == "Service";
        let reservation = if is_service && self.mode == Mode::Main {
            Some(
                self.state
                    .alloc
                    .allocate(&mut new, Some(old))
                    .map_err(|causes| ApiError::invalid(resource.kind, self.name, causes))?,
            )
        } else {
            None
        };
        let release = |r: Option<crate::alloc::Reservation>| {
            if let Some(r) = r {
                r.release(&self.state.alloc);
            }
        };
        let mut old_plain = old.clone();
        objects::strip_resource_version(&mut old_plain);
        let mut new_plain = new.clone();
        objects::strip_resource_version(&mut new_plain);
        if old_plain == new_plain {
            release(reservation);
            return Ok(Some(old.clone()));
        }
        if lifecycle::deletion_complete(&new) {
            release(reservation);
            if self.dry_run {
                return Ok(Some(new));
            }
            return match self.state.store.delete(key, Some(kv.mod_revision)).await {
                Ok((_, revision)) => {
                    if is_service {
                        self.state.alloc.release_dropped(old, None);
                    }
                    objects::set_resource_version(&mut new, revision);
                    Ok(Some(new))
                }
                Err(StoreError::Conflict { .. }) => Ok(None),
                Err(StoreError::NotFound { .. }) => Err(self.not_found()),
                Err(e) => Err(ApiError::from_store(e)),
            };
        }
        if self.dry_run {
            release(reservation);
            return Ok(Some(new));
        }
        let converted = crate::convert::to_storage(resource, &new);
        match self
            .state
            .store
            .update(key, objects::encode(converted.as_ref().unwrap_or(&new)), kv.mod_revision)
            .await
        {
            Ok(revision) => {
                if is_service {
                    self.state.alloc.release_dropped(old, Some(&new));
                }
                objects::set_resource_version(&mut new, revision);
                Ok(Some(new))
            }
            Err(StoreError::Conflict { .. }) => {
                release(reservation);
                Ok(None)
            }
            Err(StoreError::NotFound { .. }) => {
                release(reservation);
                Err(self.not_found())
            }
            Err(e) => {
                release(reservation);
                Err(ApiError::from_store(e))
            }
        }
    }
}

/// The `resourceVersion` an object body pins, if any.
pub fn precondition_of(obj: &Value) -> Result<Option<Revision>, ApiError> {
    objects::meta_str(obj, "resourceVersion")
        .filter(|rv| !rv.is_empty())
        .map(objects::parse_resource_version)
        .transpose()
}
