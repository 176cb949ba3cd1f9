//! The steps both end-to-end tests share: a bed with backend and client pods, the
//! cluster on it, each node's maps opened for watching, and the moves a test makes
//! (write a Service with its slice, change the slice, wait for every node's data path,
//! check which backends connections reach, check that a connect fails fast).

use std::{
    net::{SocketAddr, SocketAddrV4},
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::Service;
use waggle_testbed::{
    Netprobe, Place, Pod, TestBed, TestBedBuilder,
    probe::{Attempt, ProbeServer, spread},
};

use super::{
    cluster::Cluster,
    maps::NodeMaps,
    objects::{self, Backend},
};

pub const SERVICE_PORT: u16 = 80;
pub const BACKEND_PORT: u16 = 8080;
/// How long an API write may take to reach every node's data path.
pub const PROPAGATION_LIMIT: Duration = Duration::from_secs(1);
/// A refused or unroutable connect() must fail at once, not time out: below the
/// 1 s initial SYN retransmission timeout, with room for a loaded machine.
const FAST_FAILURE: Duration = Duration::from_millis(900);
/// The backend pods: (node, name); each serves its name on [`BACKEND_PORT`].
pub const BACKENDS: [(usize, &str); 4] = [(0, "web-0"), (0, "web-1"), (1, "web-2"), (1, "web-3")];

/// A running scenario. Field order is drop order: the cluster stops before the
/// servers, and the bed goes last.
pub struct Scenario {
    pub maps: Vec<NodeMaps>,
    pub cluster: Cluster,
    pub clients: Vec<Pod>,
    backends: Vec<Pod>,
    _servers: Vec<ProbeServer>,
    pub probe: Netprobe,
    pub bed: TestBed,
}

impl Scenario {
    /// Builds the bed, starts the backends (netprobe servers named after their pod)
    /// and a client pod per node, then the cluster, and opens every node's maps.
    pub fn start(builder: TestBedBuilder) -> Self {
        let bed = waggle_tests::bed(builder);
        let probe = Netprobe::at(env!("CARGO_BIN_EXE_test-netprobe"));
        let mut backends = Vec::new();
        let mut servers = Vec::new();
        for (node, name) in BACKENDS {
            let pod = bed.add_pod(node, name).expect("adding a backend pod");
            servers.push(
                probe
                    .serve(&bed, &pod, name, Some(BACKEND_PORT), None)
                    .expect("starting netprobe serve"),
            );
            backends.push(pod);
        }
        let clients = (0..bed.nodes().len())
            .map(|node| {
                bed.add_pod(node, &format!("client-{node}"))
                    .expect("adding a client pod")
            })
            .collect();
        let cluster = Cluster::start(&bed);
        let maps = bed
            .nodes()
            .iter()
            .zip(&cluster.pin_dirs)
            .map(|(node, pins)| NodeMaps::open(node.name(), pins))
            .collect();
        Self {
            maps,
            cluster,
            clients,
            backends,
            _servers: servers,
            probe,
            bed,
        }
    }

    /// The slice entries of the named backend pods.
    fn endpoints(&self, names: &[&str]) -> Vec<Backend> {
        names
            .iter()
            .map(|name| {
                let pod = self
                    .backends
                    .iter()
                    .find(|pod| pod.name() == *name)
                    .expect("a backend of the workload");
                Backend {
                    address: pod.address(),
                    node_name: self.bed.node(pod.node()).name().to_owned(),
                }
            })
            .collect()
    }

    /// Creates Service `name` (the server allocates its ClusterIP and, with
    /// `node_port`, its NodePort), then its slice `<name>-1abcd` with `backends`.
    /// Returns the created Service and when the slice write was sent (propagation is
    /// timed from there: the Service alone has no backends).
    pub fn create(&self, name: &str, node_port: bool, backends: &[&str]) -> (Service, Instant) {
        let service = self
            .cluster
            .api
            .create_service(&objects::service(
                name,
                SERVICE_PORT,
                BACKEND_PORT,
                node_port,
            ))
            .expect("creating the Service");
        let slice = objects::slice(
            &slice_name(name),
            name,
            BACKEND_PORT,
            &self.endpoints(backends),
        );
        let written = Instant::now();
        self.cluster
            .api
            .create_slice(&slice)
            .expect("creating the EndpointSlice");
        eprintln!(
            "  POST EndpointSlice answered after {:?}",
            written.elapsed()
        );
        (service, written)
    }

    /// Replaces the slice of Service `name` with `backends`; returns when the write
    /// was sent.
    pub fn set_backends(&self, name: &str, backends: &[&str]) -> Instant {
        let slice = objects::slice(
            &slice_name(name),
            name,
            BACKEND_PORT,
            &self.endpoints(backends),
        );
        let written = self
            .cluster
            .api
            .replace_slice(&slice)
            .expect("updating the EndpointSlice");
        eprintln!("  PUT EndpointSlice answered after {:?}", written.elapsed());
        written
    }

    /// Deletes Service `name` and its slice; returns when the Service delete was sent.
    pub fn delete(&self, name: &str) -> Instant {
        let written = Instant::now();
        self.cluster
            .api
            .delete_service(name)
            .expect("deleting the Service");
        self.cluster
            .api
            .delete_slice(&slice_name(name))
            .expect("deleting the EndpointSlice");
        written
    }

    /// Creates Service `name` selecting the named backends' Pod objects (bound to their
    /// nodes, reported running and ready at their bed addresses); the endpointslice
    /// controller writes the slices. Returns the Service and when the last pod status
    /// was written.
    pub fn create_selecting(&self, name: &str, backends: &[&str]) -> (Service, Instant) {
        let mut written = Instant::now();
        for backend in self.endpoints(backends).iter().zip(backends) {
            let (Backend { address, node_name }, pod_name) = backend;
            let pod = objects::pod(pod_name, name, node_name, BACKEND_PORT);
            self.cluster.api.create_pod(&pod).expect("creating a Pod");
            written = self
                .cluster
                .api
                .set_pod_status(pod_name, &address.to_string(), true)
                .expect("writing the Pod's status");
        }
        let service = self
            .cluster
            .api
            .create_service(&objects::selecting_service(name, SERVICE_PORT))
            .expect("creating the Service");
        (service, written.max(Instant::now()))
    }

    /// Reports the backend pod `name` ready or not; returns when that was written.
    pub fn set_ready(&self, name: &str, ready: bool) -> Instant {
        let address = self.endpoints(&[name])[0].address;
        self.cluster
            .api
            .set_pod_status(name, &address.to_string(), ready)
            .expect("writing the Pod's status")
    }

    /// Waits until `frontend` shows `count` backends (`None`: absent) in every node's
    /// maps; returns the slowest node's time since `since`.
    pub fn wait_everywhere(
        &mut self,
        frontend: SocketAddrV4,
        count: Option<u16>,
        since: Instant,
    ) -> Duration {
        self.wait_everywhere_within(frontend, count, since, PROPAGATION_LIMIT)
    }

    /// [`Scenario::wait_everywhere`] with its own limit (a controller in the way).
    pub fn wait_everywhere_within(
        &mut self,
        frontend: SocketAddrV4,
        count: Option<u16>,
        since: Instant,
        limit: Duration,
    ) -> Duration {
        let mut slowest = Duration::ZERO;
        for node in &mut self.maps {
            let took = node.wait_for(frontend, count, since, limit);
            eprintln!(
                "  {}: {frontend} at {count:?} backends after {took:?}",
                node.node
            );
            slowest = slowest.max(took);
        }
        slowest
    }

    /// Waits until NodePort `port` shows `count` backends (`None`: absent) on every
    /// node; prints each node's time since `since`.
    pub fn wait_node_port_everywhere(
        &mut self,
        port: u16,
        count: Option<u16>,
        since: Instant,
        what: &str,
    ) {
        for (index, node_maps) in self.maps.iter_mut().enumerate() {
            let at_node = NodeMaps::node_port_keys(self.bed.node(index).address(), port);
            let took = node_maps.wait_for_any(&at_node, count, since, PROPAGATION_LIMIT);
            eprintln!("TIMING {what} -> {} NodePort: {took:?}", node_maps.node);
        }
    }

    /// `count` connections from `place` to `to`: every one must succeed, and together
    /// they must reach exactly the backends `expected`. Returns the attempts.
    pub fn assert_reaches(
        &self,
        place: &impl Place,
        to: SocketAddr,
        count: u32,
        expected: &[&str],
    ) -> Vec<Attempt> {
        let attempts = self
            .probe
            .tcp(place, to, count)
            .expect("running netprobe tcp");
        let context = format!("{} -> {to}", place.label());
        let seen = spread(&attempts, &context);
        assert_eq!(
            seen.keys().map(String::as_str).collect::<Vec<_>>(),
            expected,
            "{context}: backends reached: {seen:?}"
        );
        attempts
    }

    /// One failing connect() from `place`, which must fail fast with one of `errors`.
    /// A deleted Service's address leads nowhere from any client pod: connect() fails
    /// at once.
    pub fn assert_gone_everywhere(&self, to: SocketAddr) {
        for client in &self.clients {
            self.assert_fails_fast(client, to, &["ENETUNREACH", "ECONNREFUSED", "EHOSTUNREACH"]);
        }
    }

    pub fn assert_fails_fast(&self, place: &impl Place, to: SocketAddr, errors: &[&str]) {
        let attempts = self
            .probe
            .client(place, "tcp", to, 3, &["--timeout-ms", "2000"])
            .expect("running netprobe tcp");
        for attempt in &attempts {
            assert!(
                !attempt.ok,
                "{}: {to} still answers: {attempt:#?}",
                place.label()
            );
            let error = attempt.error.as_deref().unwrap_or_default();
            if attempt.seq == 0 {
                eprintln!(
                    "  {} -> {to}: {error} after {}us",
                    place.label(),
                    attempt.elapsed_us
                );
            }
            assert!(
                errors.contains(&error),
                "{}: connect to {to} failed with {error}, expected one of {errors:?}",
                place.label()
            );
            assert!(
                Duration::from_micros(attempt.elapsed_us) < FAST_FAILURE,
                "{}: connect to {to} took {}us to fail",
                place.label(),
                attempt.elapsed_us
            );
        }
    }
}

fn slice_name(service: &str) -> String {
    format!("{service}-1abcd")
}
