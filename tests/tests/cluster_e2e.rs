//! End to end: the API server and the eBPF data path together, as real processes.
//!
//! A two-node test bed runs `waggle server` in node 0's namespace and a `waggle proxy`
//! per node (see `cluster_e2e/cluster.rs`). The test writes Services and EndpointSlices
//! through the API, as a user and an endpoints controller would, and checks what pods
//! and an external client get from connect(): every backend reached through the
//! allocated ClusterIP, endpoint changes applied within a second, refusal without
//! endpoints, no route once the Service is gone, NodePorts from outside the cluster.
//!
//! Needs root, the BPF object embedded in `waggle-datapath` and the `waggle` binary built
//! beside the tests (`cargo xtask test` does both); without them the tests fail saying so.

#[path = "cluster_e2e/api.rs"]
mod api;
#[path = "cluster_e2e/cluster.rs"]
mod cluster;
#[path = "cluster_e2e/maps.rs"]
mod maps;
#[path = "cluster_e2e/objects.rs"]
mod objects;

use std::{
    collections::BTreeMap,
    net::{SocketAddr, SocketAddrV4},
    time::{Duration, Instant},
};

use cluster::Cluster;
use maps::NodeMaps;
use objects::Backend;
use waggle_testbed::{
    Netprobe, Place, Pod, TestBed,
    probe::{Attempt, ProbeServer},
};

const SERVICE_PORT: u16 = 80;
const BACKEND_PORT: u16 = 8080;
/// How long an API write may take to reach every node's data path.
const PROPAGATION_LIMIT: Duration = Duration::from_secs(1);
/// A refused or unroutable connect() must fail at once, not time out.
const FAST_FAILURE: Duration = Duration::from_millis(500);

fn netprobe() -> Netprobe {
    Netprobe::at(env!("CARGO_BIN_EXE_netprobe"))
}

/// Backend pods (netprobe servers named after the pod) on both nodes, and a client pod
/// per node.
struct Workload {
    backends: Vec<Pod>,
    clients: Vec<Pod>,
    _servers: Vec<ProbeServer>,
}

impl Workload {
    fn start(bed: &TestBed, probe: &Netprobe) -> Self {
        let mut backends = Vec::new();
        let mut servers = Vec::new();
        for (node, name) in [(0, "web-0"), (0, "web-1"), (1, "web-2"), (1, "web-3")] {
            let pod = bed.add_pod(node, name).expect("adding a backend pod");
            servers.push(
                probe
                    .serve(bed, &pod, name, Some(BACKEND_PORT), None)
                    .expect("starting netprobe serve"),
            );
            backends.push(pod);
        }
        let clients = (0..2)
            .map(|node| {
                bed.add_pod(node, &format!("client-{node}"))
                    .expect("adding a client pod")
            })
            .collect();
        Self {
            backends,
            clients,
            _servers: servers,
        }
    }

    fn endpoints<'a>(
        &'a self,
        bed: &TestBed,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Vec<Backend> {
        names
            .into_iter()
            .map(|name| {
                let pod = self
                    .backends
                    .iter()
                    .find(|pod| pod.name() == name)
                    .expect("a backend of the workload");
                Backend {
                    address: pod.address(),
                    node_name: bed.node(pod.node()).name().to_owned(),
                }
            })
            .collect()
    }
}

/// Backend id → connections, asserting every attempt succeeded.
fn spread(attempts: &[Attempt], context: &str) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for attempt in attempts {
        assert!(attempt.ok, "{context}: a connection failed: {attempt:#?}");
        *seen
            .entry(attempt.id.clone().expect("a greeting names its server"))
            .or_insert(0) += 1;
    }
    seen
}

/// Waits until `frontend` shows `count` backends in every node's maps; returns the
/// slowest node's time since `since`.
fn wait_everywhere(
    maps: &mut [NodeMaps],
    frontend: SocketAddrV4,
    count: Option<u16>,
    since: Instant,
) -> Duration {
    let mut slowest = Duration::ZERO;
    for node in maps.iter_mut() {
        let took = node.wait_for(frontend, count, since, PROPAGATION_LIMIT);
        eprintln!(
            "  {}: {frontend} at {count:?} backends after {took:?}",
            node.node
        );
        slowest = slowest.max(took);
    }
    slowest
}

/// One failing connect() from `place`, which must fail fast with one of `errors`.
fn assert_fails_fast(probe: &Netprobe, place: &impl Place, to: SocketAddr, errors: &[&str]) {
    let attempts = probe
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

#[test]
fn cluster_ip_service_from_the_api_follows_endpoint_changes_and_deletion() {
    let bed = waggle_tests::bed(TestBed::builder().nodes(2));
    let probe = netprobe();
    let workload = Workload::start(&bed, &probe);
    let mut cluster = Cluster::start(&bed);
    let mut maps: Vec<NodeMaps> = bed
        .nodes()
        .iter()
        .zip(&cluster.pin_dirs)
        .map(|(node, pins)| NodeMaps::open(node.name(), pins))
        .collect();

    // Create: the server allocates the ClusterIP; the slice lists all four backends.
    let all = ["web-0", "web-1", "web-2", "web-3"];
    let service = cluster
        .api
        .create_service(&objects::service("web", SERVICE_PORT, BACKEND_PORT, false))
        .expect("creating the Service");
    let slice = objects::slice(
        "web-1abcd",
        "web",
        BACKEND_PORT,
        &workload.endpoints(&bed, all),
    );
    // Propagation is timed from the slice write (the Service alone has no backends).
    let written = Instant::now();
    cluster
        .api
        .create_slice(&slice)
        .expect("creating the EndpointSlice");
    let acknowledged = written.elapsed();
    let vip = SocketAddrV4::new(objects::cluster_ip(&service), SERVICE_PORT);
    let took = wait_everywhere(&mut maps, vip, Some(4), written);
    eprintln!(
        "TIMING create EndpointSlice of new Service {vip} -> data path on every node: {took:?} (POST answered after {acknowledged:?})"
    );
    let listing = cluster.lb_list(0);
    assert!(
        listing.contains(&format!("{vip}/TCP")),
        "`waggle bpf lb list` does not show {vip}:\n{listing}"
    );

    // Every backend is reached from both nodes, and the client sees the ClusterIP.
    for client in &workload.clients {
        let attempts = probe
            .tcp(client, vip.into(), 60)
            .expect("running netprobe tcp");
        let seen = spread(&attempts, &client.label());
        assert_eq!(
            seen.keys().map(String::as_str).collect::<Vec<_>>(),
            all,
            "{}: backends reached: {seen:?}",
            client.label()
        );
        for attempt in &attempts {
            assert_eq!(
                attempt.peer_name.as_deref(),
                Some(vip.to_string().as_str()),
                "getpeername: {attempt:#?}"
            );
            let saw = attempt
                .server_saw_addr()
                .expect("the server reports the client address");
            assert_eq!(
                saw.ip(),
                std::net::IpAddr::V4(client.address()),
                "socket LB must not SNAT: {attempt:#?}"
            );
        }
    }

    // Remove web-3 (on node 1): no new connection may reach it a second after the write.
    let three = ["web-0", "web-1", "web-2"];
    let written = cluster
        .api
        .replace_slice(&objects::slice(
            "web-1abcd",
            "web",
            BACKEND_PORT,
            &workload.endpoints(&bed, three),
        ))
        .expect("updating the EndpointSlice");
    let acknowledged = written.elapsed();
    let took = wait_everywhere(&mut maps, vip, Some(3), written);
    eprintln!(
        "TIMING EndpointSlice update (PUT sent) -> data path on every node: {took:?} (PUT answered after {acknowledged:?})"
    );
    for client in &workload.clients {
        let attempts = probe
            .tcp(client, vip.into(), 30)
            .expect("running netprobe tcp");
        let seen = spread(&attempts, &client.label());
        assert_eq!(
            seen.keys().map(String::as_str).collect::<Vec<_>>(),
            three,
            "{}: after removing web-3: {seen:?}",
            client.label()
        );
    }

    // No endpoints left: refused at once.
    let written = cluster
        .api
        .replace_slice(&objects::slice("web-1abcd", "web", BACKEND_PORT, &[]))
        .expect("emptying the EndpointSlice");
    let took = wait_everywhere(&mut maps, vip, Some(0), written);
    eprintln!("TIMING EndpointSlice emptied -> data path on every node: {took:?}");
    for client in &workload.clients {
        assert_fails_fast(&probe, client, vip.into(), &["ECONNREFUSED"]);
    }

    // Service deleted: its ClusterIP leaves the maps and leads nowhere.
    let written = Instant::now();
    cluster
        .api
        .delete_service("web")
        .expect("deleting the Service");
    let took = wait_everywhere(&mut maps, vip, None, written);
    eprintln!("TIMING Service delete -> data path on every node: {took:?}");
    cluster
        .api
        .delete_slice("web-1abcd")
        .expect("deleting the EndpointSlice");
    for client in &workload.clients {
        assert_fails_fast(
            &probe,
            client,
            vip.into(),
            &["ENETUNREACH", "ECONNREFUSED", "EHOSTUNREACH"],
        );
    }
    cluster.check_alive();
}

#[test]
fn node_port_service_from_the_api_answers_the_external_client_on_every_node() {
    let bed = waggle_tests::bed(TestBed::builder().nodes(2).external_client(true));
    let probe = netprobe();
    let workload = Workload::start(&bed, &probe);
    let mut cluster = Cluster::start(&bed);
    let mut maps: Vec<NodeMaps> = bed
        .nodes()
        .iter()
        .zip(&cluster.pin_dirs)
        .map(|(node, pins)| NodeMaps::open(node.name(), pins))
        .collect();

    let all = ["web-0", "web-1", "web-2", "web-3"];
    let service = cluster
        .api
        .create_service(&objects::service("front", SERVICE_PORT, BACKEND_PORT, true))
        .expect("creating the NodePort Service");
    // Propagation is timed from the slice write (the Service alone has no backends).
    let written = Instant::now();
    cluster
        .api
        .create_slice(&objects::slice(
            "front-1abcd",
            "front",
            BACKEND_PORT,
            &workload.endpoints(&bed, all),
        ))
        .expect("creating the EndpointSlice");
    let node_port = objects::node_port(&service);
    let vip = SocketAddrV4::new(objects::cluster_ip(&service), SERVICE_PORT);
    for (index, node_maps) in maps.iter_mut().enumerate() {
        let at_node = NodeMaps::node_port_keys(bed.node(index).address(), node_port);
        let took = node_maps.wait_for_any(&at_node, Some(4), written, PROPAGATION_LIMIT);
        node_maps.wait_for(vip, Some(4), written, PROPAGATION_LIMIT);
        eprintln!(
            "TIMING create EndpointSlice of new NodePort Service -> {} data path: {took:?}",
            node_maps.node
        );
    }

    // From outside the cluster, through each node's uplink program.
    let external = bed.external().expect("the bed has an external client");
    for node in bed.nodes() {
        let at_node = SocketAddr::new(node.address().into(), node_port);
        let attempts = probe
            .tcp(external, at_node, 60)
            .expect("running netprobe tcp");
        let seen = spread(&attempts, &format!("external client -> {at_node}"));
        assert_eq!(
            seen.keys().map(String::as_str).collect::<Vec<_>>(),
            all,
            "external client -> {at_node}: {seen:?}"
        );
        assert!(
            attempts
                .iter()
                .all(|a| a.peer_name.as_deref() == Some(at_node.to_string().as_str())),
            "{attempts:#?}"
        );
    }
    // From a pod, through socket LB, to the other node's NodePort.
    let at_node1 = SocketAddr::new(bed.node(1).address().into(), node_port);
    let seen = spread(
        &probe
            .tcp(&workload.clients[0], at_node1, 40)
            .expect("running netprobe tcp"),
        "client-0 -> node1 NodePort",
    );
    assert_eq!(seen.len(), 4, "client-0 -> {at_node1}: {seen:?}");

    // Shrink to the node-1 backends: node 0's NodePort now always forwards across the fabric.
    let written = cluster
        .api
        .replace_slice(&objects::slice(
            "front-1abcd",
            "front",
            BACKEND_PORT,
            &workload.endpoints(&bed, ["web-2", "web-3"]),
        ))
        .expect("updating the EndpointSlice");
    for (index, node_maps) in maps.iter_mut().enumerate() {
        let at_node = NodeMaps::node_port_keys(bed.node(index).address(), node_port);
        let took = node_maps.wait_for_any(&at_node, Some(2), written, PROPAGATION_LIMIT);
        eprintln!(
            "TIMING EndpointSlice update -> {} NodePort: {took:?}",
            node_maps.node
        );
    }
    let at_node0 = SocketAddr::new(bed.node(0).address().into(), node_port);
    let seen = spread(
        &probe
            .tcp(external, at_node0, 30)
            .expect("running netprobe tcp"),
        "external -> node0 after update",
    );
    assert_eq!(
        seen.keys().map(String::as_str).collect::<Vec<_>>(),
        ["web-2", "web-3"],
        "{seen:?}"
    );

    // Service deleted: the NodePort stops answering.
    let written = Instant::now();
    cluster
        .api
        .delete_service("front")
        .expect("deleting the Service");
    for (index, node_maps) in maps.iter_mut().enumerate() {
        let at_node = NodeMaps::node_port_keys(bed.node(index).address(), node_port);
        node_maps.wait_for_any(&at_node, None, written, PROPAGATION_LIMIT);
    }
    let attempts = probe
        .client(external, "tcp", at_node0, 1, &["--timeout-ms", "1000"])
        .expect("running netprobe tcp");
    assert!(
        !attempts[0].ok,
        "the deleted NodePort still answers: {attempts:#?}"
    );
    cluster.check_alive();
}
