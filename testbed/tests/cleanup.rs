//! Clean-up: after a bed is dropped, normally or while a test panics, none of its
//! namespaces, cgroups, mounts, pin directories or processes remain.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    path::{Path, PathBuf},
    process::{Child, Stdio},
    sync::Mutex,
};

use waggle_testbed::{Spawned, TestBed};

/// What a bed left behind, looked up by its prefix alone.
fn leftovers(prefix: &str, pids: &[u32], pin: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(prefix) {
            found.push(format!("netns {name}"));
        }
    }
    let run_dir = Path::new("/run").join(prefix);
    if run_dir.exists() {
        found.push(format!("run dir {}", run_dir.display()));
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for line in mountinfo.lines().filter(|line| line.contains(prefix)) {
        found.push(format!("mount {line}"));
    }
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let dash = fields.iter().position(|field| *field == "-").unwrap();
        if fields[dash + 1] == "cgroup2" {
            let cgroup = Path::new(fields[4]).join(prefix);
            if cgroup.exists() {
                found.push(format!("cgroup {}", cgroup.display()));
            }
        }
    }
    if pin.exists() {
        found.push(format!("pin dir {}", pin.display()));
    }
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting to be reaped by this process: not running.
        let state = stat
            .rsplit(") ")
            .next()
            .and_then(|rest| rest.chars().next());
        if !stat.is_empty() && state != Some('Z') {
            found.push(format!("process {pid} ({stat})"));
        }
    }
    found
}

/// A bed with pods, processes (tracked by the bed, and one only in a pod cgroup)
/// and a registered pin directory.
struct Populated {
    bed: TestBed,
    pids: Vec<u32>,
    pin: PathBuf,
    tracked: Vec<Spawned>,
    untracked: Child,
}

fn populated_bed() -> Populated {
    let bed = TestBed::builder()
        .nodes(2)
        .external_client(true)
        .build()
        .unwrap_or_else(|error| panic!("cannot build the test bed: {error}"));
    let a = bed.add_pod(0, "a").unwrap();
    let b = bed.add_pod(1, "b").unwrap();
    let mut in_pod = a.command("sleep");
    in_pod.arg("600").stdin(Stdio::null());
    let mut in_node = bed.node(1).netns().command("sleep");
    in_node.arg("600");
    let tracked = vec![bed.spawn(in_pod).unwrap(), bed.spawn(in_node).unwrap()];
    // Not tracked by the bed: removed through the pod cgroup.
    let untracked = b.command("sleep").arg("600").spawn().unwrap();
    let pin = std::env::temp_dir().join(format!("{}-pins", bed.prefix()));
    std::fs::create_dir_all(pin.join("maps")).unwrap();
    bed.register_pin_dir(&pin).unwrap();
    let mut pids: Vec<u32> = tracked.iter().map(Spawned::id).collect();
    pids.push(untracked.id());
    Populated {
        bed,
        pids,
        pin,
        tracked,
        untracked,
    }
}

#[test]
fn dropping_a_bed_removes_everything_it_made() {
    let Populated {
        bed,
        pids,
        pin,
        tracked,
        mut untracked,
    } = populated_bed();
    let prefix = bed.prefix().to_owned();
    let alive = leftovers(&prefix, &pids, &pin);
    let count = |kind: &str| alive.iter().filter(|found| found.starts_with(kind)).count();
    // fabric, 2 nodes, external, 2 pods; 2 tracked + 1 untracked process; the cgroup
    // (seen through every cgroup2 mount); the private cgroup2 and bpf mounts.
    assert_eq!(
        (
            count("netns "),
            count("process "),
            count("pin dir "),
            count("run dir ")
        ),
        (6, 3, 1, 1),
        "{alive:#?}"
    );
    assert!(count("cgroup ") >= 1 && count("mount ") >= 2, "{alive:#?}");
    // Handles outliving the bed must not keep anything alive.
    drop(bed);
    assert_eq!(leftovers(&prefix, &pids, &pin), Vec::<String>::new());
    drop(tracked);
    assert!(
        untracked.wait().unwrap().code().is_none(),
        "killed by a signal"
    );
}

#[test]
fn a_panic_inside_a_test_still_removes_everything() {
    type Seen = (String, Vec<u32>, PathBuf, Child);
    let seen: Mutex<Option<Seen>> = Mutex::new(None);
    let result = catch_unwind(AssertUnwindSafe(|| {
        let Populated {
            bed,
            pids,
            pin,
            tracked: _tracked,
            untracked,
        } = populated_bed();
        *seen.lock().unwrap() = Some((bed.prefix().to_owned(), pids, pin, untracked));
        bed.node(0)
            .netns()
            .run(|| panic!("a failing assertion inside the node namespace"));
    }));
    assert!(result.is_err(), "the closure panicked");
    let (prefix, pids, pin, mut untracked) = seen.into_inner().unwrap().expect("the bed was built");
    assert_eq!(leftovers(&prefix, &pids, &pin), Vec::<String>::new());
    assert!(
        untracked.wait().unwrap().code().is_none(),
        "killed by a signal"
    );
}

#[test]
fn removing_a_pod_removes_its_namespace_cgroup_and_processes() {
    let bed = TestBed::builder()
        .nodes(1)
        .build()
        .unwrap_or_else(|error| panic!("cannot build the test bed: {error}"));
    let pod = bed.add_pod(0, "gone").unwrap();
    let keep = bed.add_pod(0, "kept").unwrap();
    let mut child = pod.command("sleep").arg("600").spawn().unwrap();
    bed.remove_pod("gone").unwrap();
    assert!(!pod.netns().path().exists());
    assert!(!pod.cgroup().exists());
    let links = bed.node(0).netns().ip(&["-br", "link"]).unwrap();
    assert!(
        !links.contains(pod.host_veth()),
        "host veth left behind:\n{links}"
    );
    assert!(links.contains(keep.host_veth()));
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z"),
        "pod process still runs: {stat}"
    );
    assert!(child.wait().unwrap().code().is_none(), "killed by a signal");
    assert!(bed.add_pod(0, "gone").is_ok(), "the name can be used again");
    assert!(bed.add_pod(0, "kept").is_err(), "pod names are unique");
}
