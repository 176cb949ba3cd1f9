//! The sync against the kernel's LB maps (a private, unpinned load of Waggle's BPF
//! object; nothing attached): scale and timing, and agreement with the in-memory
//! maps used by the golden tests. Needs root (CAP_BPF + CAP_NET_ADMIN).

use std::{fmt::Write as _, net::IpAddr, time::Instant};

use waggle_datapath::{Datapath, lb_maps::PinnedLbMaps};
use waggle_proxy::{
    dump::dump,
    mem_maps::MemMaps,
    source::{TrackerHandle, file},
    state::MapState,
    sync::Syncer,
    translate::NodeInfo,
};

fn load() -> Datapath {
    Datapath::load().unwrap_or_else(|error| {
        panic!(
            "loading Waggle's BPF object failed (needs root or CAP_BPF + CAP_NET_ADMIN and \
             the object built by `cargo xtask build`): {error}"
        )
    })
}

/// CPU time this thread has used (`/proc/thread-self/schedstat`): on a loaded machine
/// the wall time of a sync includes waiting for a CPU, this does not.
fn thread_cpu() -> std::time::Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    let ns = stat.split_whitespace().next().and_then(|n| n.parse().ok());
    std::time::Duration::from_nanos(ns.expect("schedstat: time on CPU"))
}

/// CPU time of the whole process, all threads (the sync's helper threads included):
/// meaningful when this test runs alone.
fn process_cpu() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime: {}", std::io::Error::last_os_error());
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn node() -> NodeInfo {
    NodeInfo {
        name: "node-a".into(),
        addresses: vec!["192.168.0.10".parse::<IpAddr>().unwrap()],
    }
}

/// `services` ClusterIP services with `endpoints` endpoints each, as YAML.
fn many_services(services: usize, endpoints: usize) -> String {
    let mut yaml = String::with_capacity(services * 600);
    for i in 0..services {
        let ip = format!("10.96.{}.{}", i / 250, i % 250 + 1);
        writeln!(
            yaml,
            "kind: Service\napiVersion: v1\nmetadata: {{name: s{i}, namespace: bench}}\n\
             spec: {{clusterIP: {ip}, clusterIPs: [{ip}], ports: [{{port: 80, targetPort: 8080}}]}}\n---\n\
             kind: EndpointSlice\napiVersion: discovery.k8s.io/v1\n\
             metadata: {{name: s{i}-1, namespace: bench, labels: {{kubernetes.io/service-name: s{i}}}}}\n\
             addressType: IPv4\nports: [{{port: 8080, protocol: TCP}}]\nendpoints:"
        )
        .unwrap();
        for e in 0..endpoints {
            let n = i * endpoints + e;
            writeln!(
                yaml,
                "  - addresses: [10.{}.{}.{}]\n    nodeName: node-{}",
                100 + n / 62_500,
                (n / 250) % 250,
                n % 250 + 1,
                e % 3
            )
            .unwrap();
        }
        yaml.push_str("---\n");
    }
    yaml
}

#[test]
fn ten_thousand_services_with_four_endpoints_into_the_kernel_maps() {
    let yaml = many_services(10_000, 4);
    // Baseline in the same run: the same sync into in-memory maps (translation and
    // diffing without syscalls).
    let handle = TrackerHandle::new();
    file::relist(
        &handle,
        file::parse(&yaml, std::path::Path::new("bench.yaml")).unwrap(),
    );
    let mut baseline = Syncer::new(MemMaps::default(), node());
    let changes = handle.lock().take();
    let start = Instant::now();
    let base = baseline.sync(changes).expect("sync");
    let in_memory = start.elapsed();
    eprintln!("in-memory: {base:?}");

    let datapath = load();
    let maps = PinnedLbMaps::from_ebpf(datapath.ebpf()).expect("open LB maps");
    let handle = TrackerHandle::new();
    file::relist(
        &handle,
        file::parse(&yaml, std::path::Path::new("bench.yaml")).unwrap(),
    );
    let mut syncer = Syncer::new(maps, node());
    let changes = handle.lock().take();
    let (cpu, all_cpu) = (thread_cpu(), process_cpu());
    let start = Instant::now();
    let stats = syncer.sync(changes).expect("sync");
    let elapsed = start.elapsed();
    let (cpu, all_cpu) = (thread_cpu() - cpu, process_cpu() - all_cpu);
    eprintln!("kernel: {stats:?}");
    // 10,000 frontends, 40,000 slots, 40,000 backends, 10,000 rev NAT, node addresses.
    let state = MapState::read(syncer.maps_mut()).unwrap();
    assert_eq!(state.services_v4.len(), 10_000);
    assert_eq!(state.slots.len(), 40_000);
    assert_eq!(state.backends_v4.len(), 40_000);
    assert_eq!(state.rev_nat_v4.len(), 10_000);
    eprintln!(
        "| sync of 10,000 services x 4 endpoints | kernel maps {elapsed:?} (CPU: this thread {cpu:?}, all threads {all_cpu:?}; translate/diff {:?}, map writes {:?}) | in-memory maps {in_memory:?} | {} map writes | profile {} |",
        stats.translate,
        stats.duration - stats.translate,
        stats.writes.upserts,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );

    // One endpoint of one service changes: an incremental sync writes a handful of keys.
    let mut yaml = many_services(10_000, 4);
    yaml = yaml.replacen("10.100.0.1]", "10.200.0.1]", 1);
    file::relist(
        &handle,
        file::parse(&yaml, std::path::Path::new("bench.yaml")).unwrap(),
    );
    let changes = handle.lock().take();
    let start = Instant::now();
    let stats = syncer.sync(changes).expect("incremental sync");
    let elapsed = start.elapsed();
    eprintln!(
        "one endpoint changed among 10,000 services: sync {elapsed:?}, {:?}",
        stats.writes
    );
    assert!(!stats.full);
    // New backend, the removed one's slot takes the last slot's backend, the new one
    // is appended in the last slot, the old backend is removed: 3 upserts, 1 remove.
    assert_eq!(
        (stats.writes.upserts, stats.writes.removes),
        (3, 1),
        "{stats:?}"
    );
    // Typically under a millisecond in a debug build; the bound only has to tell an
    // incremental sync from a full one (seconds) on a loaded machine.
    assert!(
        elapsed.as_millis() < 500,
        "incremental sync took {elapsed:?}"
    );
}

#[test]
fn kernel_maps_hold_exactly_what_the_in_memory_maps_hold() {
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/loadbalancer-externalips/input.yaml"
    ))
    .unwrap()
        + "---\n"
        + &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/golden/dual-stack/input.yaml"
        ))
        .unwrap()
        + "---\n"
        + &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/golden/etp-local/input.yaml"
        ))
        .unwrap();
    let objects = || file::parse(&yaml, std::path::Path::new("x.yaml")).unwrap();

    let datapath = load();
    let handle = TrackerHandle::new();
    file::relist(&handle, objects());
    let mut real = Syncer::new(PinnedLbMaps::from_ebpf(datapath.ebpf()).unwrap(), node());
    real.sync(handle.lock().take()).unwrap();

    let handle = TrackerHandle::new();
    file::relist(&handle, objects());
    let mut mem = Syncer::new(MemMaps::default(), node());
    mem.sync(handle.lock().take()).unwrap();

    let real_dump = dump(&MapState::read(real.maps_mut()).unwrap());
    assert_eq!(real_dump, dump(&MapState::read(mem.maps_mut()).unwrap()));
    assert!(real_dump.contains("[fd00:96::20]:443/TCP"), "{real_dump}");
}

/// One backend per id, its address the id (port 80, `protocol`).
fn backends(ids: &[u32], protocol: u8) -> Vec<waggle_ebpf_common::lb::BackendV4> {
    ids.iter()
        .map(|&id| waggle_ebpf_common::lb::BackendV4 {
            address: id,
            port: 80u16.to_be(),
            protocol,
            flags: 1,
        })
        .collect()
}

#[test]
fn batched_writes_and_removals_in_the_kernel_maps() {
    use waggle_datapath::lb_maps::LbMaps;

    let datapath = load();
    let mut maps = PinnedLbMaps::from_ebpf(datapath.ebpf()).expect("open LB maps");
    // More than one batch chunk, so chunking is exercised too.
    let n = waggle_datapath::batch::CHUNK as u32 + 100;
    let ids: Vec<u32> = (1..=n).collect();
    maps.backends_v4()
        .insert_batch(&ids, &backends(&ids, 6))
        .unwrap();
    let mut read = maps.backends_v4().entries().unwrap();
    read.sort_by_key(|(id, _)| *id);
    assert_eq!(read.len(), n as usize);
    assert!(read.iter().all(|(id, b)| b.address == *id));

    // Removal skips absent keys (here 0 and n + 1, in the middle of the batch).
    let mut gone: Vec<u32> = (1..=n).filter(|id| id % 2 == 0).collect();
    gone.insert(10, 0);
    gone.insert(100, n + 1);
    maps.backends_v4().remove_batch(&gone).unwrap();
    let left = maps.backends_v4().entries().unwrap();
    assert_eq!(left.len(), (n as usize).div_ceil(2));
    assert!(left.iter().all(|(id, _)| id % 2 == 1), "{:?}", &left[..4]);

    // An unordered batch large enough to be split over threads (with an uneven last
    // part) writes every entry too, overwriting those already there.
    let n = 3 * waggle_datapath::batch::SPLIT_MIN as u32 + 7;
    let ids: Vec<u32> = (1..=n).collect();
    maps.backends_v4()
        .insert_batch_unordered(&ids, &backends(&ids, 17))
        .unwrap();
    let read = maps.backends_v4().entries().unwrap();
    assert_eq!(read.len(), n as usize);
    assert!(
        read.iter()
            .all(|(id, b)| b.address == *id && b.protocol == 17)
    );
}
