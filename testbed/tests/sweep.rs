//! The sweep removes leftovers of a crashed run (owner pid dead) and never touches a
//! live bed's objects.

use std::{
    path::Path,
    process::{Child, Command},
};

use waggle_testbed::{NetNs, TestBed};

/// A live process standing in for a test binary: objects named after it are safe from
/// every sweep (ours and other processes') until it dies.
fn stand_in() -> Child {
    Command::new("sleep").arg("600").spawn().unwrap()
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().unwrap();
    assert!(status.success(), "ip {args:?}");
}

#[test]
fn building_a_bed_sweeps_a_crashed_runs_leftovers_but_not_a_live_beds() {
    let live = TestBed::builder()
        .nodes(1)
        .build()
        .unwrap_or_else(|error| panic!("cannot build the test bed: {error}"));
    let live_pod = live.add_pod(0, "alive").unwrap();
    let v2_root = live.cgroup_mount().to_owned();

    // Leftovers of a crashed run of `owner`: namespaces with a link and a
    // process in them, a cgroup tree with a process, a run dir with a cgroup2 mount
    // and a registered pin directory.
    let mut owner = stand_in();
    let owner_pid = owner.id();
    let prefix = format!("wgtb-{owner_pid}-0");
    let node_ns = format!("{prefix}-node0");
    let pod_ns = format!("{prefix}-n0-web");
    ip(&["netns", "add", &node_ns]);
    ip(&["netns", "add", &pod_ns]);
    ip(&[
        "-n", &node_ns, "link", "add", "wgp0", "type", "veth", "peer", "name", "eth0", "netns",
        &pod_ns,
    ]);
    let mut in_netns = NetNs::from_name(node_ns.as_str())
        .command("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let cgroup = v2_root.join(&prefix).join("node0").join("web");
    std::fs::create_dir_all(&cgroup).unwrap();
    let mut in_cgroup = Command::new("sleep").arg("600").spawn().unwrap();
    std::fs::write(cgroup.join("cgroup.procs"), in_cgroup.id().to_string()).unwrap();
    let run_dir = Path::new("/run").join(&prefix);
    let mount_point = run_dir.join("cgroup");
    std::fs::create_dir_all(&mount_point).unwrap();
    let status = Command::new("mount")
        .args(["-t", "cgroup2", "none"])
        .arg(&mount_point)
        .status()
        .unwrap();
    assert!(status.success());
    let pin = std::env::temp_dir().join(format!("{prefix}-pins"));
    std::fs::create_dir_all(pin.join("maps")).unwrap();
    std::fs::write(run_dir.join("pins"), format!("{}\n", pin.display())).unwrap();

    // The "test binary" crashes.
    owner.kill().unwrap();
    owner.wait().unwrap();
    let report = waggle_testbed::sweep::sweep(&v2_root);
    let fresh = TestBed::builder()
        .nodes(1)
        .build()
        .expect("a bed after the sweep");

    for ns in [&node_ns, &pod_ns] {
        assert!(
            !Path::new("/run/netns").join(ns).exists(),
            "{ns} survived the sweep ({report:?})"
        );
    }
    assert!(!v2_root.join(&prefix).exists(), "cgroup survived");
    assert!(!run_dir.exists(), "run dir survived");
    assert!(!pin.exists(), "pin dir survived");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(&prefix), "mount survived");
    // Both processes were killed (reap them: they are our children).
    assert!(
        in_netns.wait().unwrap().code().is_none(),
        "process in the netns was killed"
    );
    assert!(
        in_cgroup.wait().unwrap().code().is_none(),
        "process in the cgroup was killed"
    );

    // The live bed is intact and still works.
    assert!(live_pod.netns().path().exists());
    assert!(live_pod.cgroup().exists());
    assert!(live.run_dir().exists());
    let addresses = live_pod.netns().ip(&["-br", "addr"]).unwrap();
    assert!(
        addresses.contains(&live_pod.address().to_string()),
        "{addresses}"
    );
    drop(fresh);
}
