//! Plans for the services a sync touches, in order: [`for_each_plan`] hands each
//! service's [`ServicePlan`] (or its absence) to the caller, which programs it.
//!
//! Translation is pure, programming is not (ids are allocated in name order), so a
//! large sync (a full one, or a relist) translates on a helper thread, one chunk of
//! services ahead, while the caller programs the previous chunk: the two halves of
//! the work overlap on two CPUs. Small syncs (an endpoint change) translate inline,
//! without the cost of a thread.

use std::{sync::Arc, sync::mpsc};

use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};

use crate::{
    model::{Names, ServiceName},
    translate::{self, NodeInfo, ServicePlan},
};

/// Services per chunk handed from the translating thread to the programming one.
const CHUNK: usize = 256;

/// Fewest services for which translation moves to a helper thread.
const PIPELINE_MIN: usize = 2 * CHUNK;

/// Chunks translated ahead of the programmer at most (bounds memory).
const AHEAD: usize = 4;

/// What the proxy knows of one Service name: the Service, if it exists, and the
/// EndpointSlices that name it as their owner. One map entry per name, so applying
/// a change to a Service or a slice is one lookup.
#[derive(Debug, Default)]
pub struct Known {
    pub service: Option<Arc<Service>>,
    pub slices: Slices,
    /// The last sync that touched this name (`Syncer`'s generation).
    touched: u64,
}

impl Known {
    /// Adds `name` to `touched` unless sync `generation` already did.
    pub fn touch(&mut self, name: &ServiceName, generation: u64, touched: &mut Vec<ServiceName>) {
        if self.touched != generation {
            self.touched = generation;
            touched.push(name.clone());
        }
    }

    /// Neither a Service nor a slice: nothing left to remember.
    pub fn is_empty(&self) -> bool {
        self.service.is_none() && self.slices.is_empty()
    }
}

/// Everything known, by Service name (looked up by [`crate::model::NameRef`] too).
pub type KnownMap = hashbrown::HashMap<ServiceName, Known, rustc_hash::FxBuildHasher>;

/// What the proxy knows of the cluster.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub known: &'a KnownMap,
    pub node: &'a NodeInfo,
}

impl View<'_> {
    /// The plan of `name`; `None` when the Service is gone.
    fn plan(&self, name: &ServiceName, names: &mut Names) -> Option<ServicePlan> {
        let known = self.known.get(name)?;
        Some(translate::translate(
            name,
            names,
            known.service.as_ref()?,
            known.slices.iter(),
            self.node,
        ))
    }
}

/// The EndpointSlices of one Service in name order (the order their endpoints are
/// merged in). Usually one or two: a sorted list.
#[derive(Debug, Default)]
pub struct Slices(Vec<(Arc<str>, Arc<EndpointSlice>)>);

impl Slices {
    /// Adds or replaces the slice `name`.
    pub fn insert(&mut self, name: Arc<str>, slice: Arc<EndpointSlice>) {
        match self.0.binary_search_by(|(n, _)| n.cmp(&name)) {
            Ok(i) => self.0[i].1 = slice,
            Err(i) => self.0.insert(i, (name, slice)),
        }
    }

    pub fn remove(&mut self, name: &str) {
        if let Ok(i) = self.0.binary_search_by(|(n, _)| (**n).cmp(name)) {
            self.0.remove(i);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The slices in name order.
    pub fn iter(&self) -> impl Iterator<Item = &EndpointSlice> + Clone {
        self.0.iter().map(|(_, s)| &**s)
    }
}

/// Calls `program(name, plan)` for every name of `touched`, in order; `plan` is
/// `None` for a service that no longer exists. Port names are interned in `names`
/// (when translating inline).
pub fn for_each_plan(
    view: View<'_>,
    touched: &[ServiceName],
    names: &mut Names,
    mut program: impl FnMut(&ServiceName, Option<&ServicePlan>),
) {
    if touched.len() < PIPELINE_MIN {
        for name in touched {
            program(name, view.plan(name, names).as_ref());
        }
        return;
    }
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<Vec<Option<ServicePlan>>>(AHEAD);
        let translator = scope.spawn(move || {
            // Its own interner: port names are the same few strings everywhere.
            let mut ports = Names::default();
            for chunk in touched.chunks(CHUNK) {
                let plans = chunk.iter().map(|n| view.plan(n, &mut ports)).collect();
                if tx.send(plans).is_err() {
                    return; // the programmer stopped (it panicked)
                }
            }
        });
        let mut chunks = touched.chunks(CHUNK);
        for plans in rx.iter() {
            let chunk = chunks.next().expect("one plan chunk per name chunk");
            for (name, plan) in chunk.iter().zip(&plans) {
                program(name, plan.as_ref());
            }
        }
        // The channel closes early only if the translator panicked: pass it on.
        if let Err(panic) = translator.join() {
            std::panic::resume_unwind(panic);
        }
        assert!(chunks.next().is_none(), "every service was translated");
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(i: usize) -> (ServiceName, Known) {
        let service: Service = serde_yaml::from_str(&format!(
            "metadata: {{name: s{i}, namespace: ns}}\n\
             spec: {{clusterIP: 10.96.{}.{}, ports: [{{port: 80}}]}}",
            i / 250,
            i % 250 + 1
        ))
        .unwrap();
        let known = Known {
            service: Some(Arc::new(service)),
            ..Known::default()
        };
        (ServiceName::new("ns", format!("s{i}")), known)
    }

    #[test]
    fn slices_stay_in_name_order() {
        let slice = |name: &str| {
            let mut s = EndpointSlice::default();
            s.metadata.name = Some(name.into());
            Arc::new(s)
        };
        let mut slices = Slices::default();
        for name in ["b", "c", "a", "b"] {
            slices.insert(name.into(), slice(name));
        }
        slices.remove("c");
        slices.remove("absent");
        let names: Vec<_> = slices
            .iter()
            .map(|s| s.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["a", "b"]);
        slices.remove("a");
        slices.remove("b");
        assert!(slices.is_empty());
    }

    /// The pipelined and the inline paths give the same plans in the same order.
    #[test]
    fn pipelined_plans_equal_inline_plans_in_order() {
        let known: KnownMap = (0..PIPELINE_MIN + CHUNK / 2).map(service).collect();
        let node = NodeInfo::default();
        let view = View {
            known: &known,
            node: &node,
        };
        let mut touched: Vec<ServiceName> = known.keys().cloned().collect();
        touched.push(ServiceName::new("ns", "gone"));
        touched.sort_unstable();

        let mut pipelined = Vec::new();
        for_each_plan(view, &touched, &mut Names::default(), |name, plan| {
            pipelined.push((name.clone(), plan.cloned()));
        });
        let mut inline = Vec::new();
        for chunk in touched.chunks(PIPELINE_MIN - 1) {
            for_each_plan(view, chunk, &mut Names::default(), |name, plan| {
                inline.push((name.clone(), plan.cloned()));
            });
        }
        assert_eq!(pipelined.len(), touched.len());
        assert_eq!(pipelined, inline);
        let gone = pipelined.iter().find(|(n, _)| &*n.name == "gone").unwrap();
        assert!(gone.1.is_none());
        let s0 = pipelined.iter().find(|(n, _)| &*n.name == "s0").unwrap();
        assert_eq!(s0.1.as_ref().unwrap().ports.len(), 1);
    }
}
