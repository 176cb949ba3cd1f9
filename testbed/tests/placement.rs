//! Where things run: `Pod::command` children are in the pod's netns and cgroup,
//! `NetNs::run` closures see the namespace's interfaces and sysctls.

use std::{os::unix::fs::MetadataExt, process::Stdio};

use waggle_testbed::{Place, TestBed};

fn netns_inode_of(pid: u32) -> u64 {
    std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .unwrap()
        .ino()
}

/// The v2 cgroup path of `pid`, relative to the hierarchy root.
fn cgroup_of(pid: u32) -> String {
    let content = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    content
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .unwrap()
        .to_owned()
}

#[test]
fn pod_and_node_commands_run_in_their_namespace_and_cgroup() {
    let bed = TestBed::builder()
        .nodes(2)
        .build()
        .unwrap_or_else(|error| panic!("cannot build the test bed: {error}"));
    let pod = bed.add_pod(1, "web-0").unwrap();
    let mut command = pod.command("sleep");
    command.arg("600").stdin(Stdio::null());
    let in_pod = bed.spawn(command).unwrap();
    let node = bed.node(1);
    let mut command = Place::command(node, "sleep");
    command.arg("600").stdin(Stdio::null());
    let in_node = bed.spawn(command).unwrap();

    assert_eq!(
        netns_inode_of(in_pod.id()),
        std::fs::metadata(pod.netns().path()).unwrap().ino()
    );
    let relative = pod.cgroup().strip_prefix(bed.cgroup_mount()).unwrap();
    assert_eq!(cgroup_of(in_pod.id()), format!("/{}", relative.display()));
    let relative = node.cgroup().strip_prefix(bed.cgroup_mount()).unwrap();
    assert_eq!(cgroup_of(in_node.id()), format!("/{}", relative.display()));
    assert_eq!(
        netns_inode_of(in_node.id()),
        std::fs::metadata(node.netns().path()).unwrap().ino()
    );
    assert!(
        pod.cgroup().starts_with(node.cgroup()),
        "pod cgroups sit under their node's"
    );
    assert!(node.cgroup().starts_with(bed.cgroup_root()));
    assert_ne!(
        bed.cgroup_root(),
        bed.cgroup_mount(),
        "never the root cgroup"
    );
}

#[test]
fn run_executes_inside_the_namespace() {
    let bed = TestBed::builder()
        .nodes(1)
        .build()
        .unwrap_or_else(|error| panic!("cannot build the test bed: {error}"));
    let pod = bed.add_pod(0, "web").unwrap();
    let node = bed.node(0);
    let (uplink, host_veth, forwarding) = node.netns().run(|| {
        (
            nix::net::if_::if_nametoindex(node.uplink()).is_ok(),
            nix::net::if_::if_nametoindex(pod.host_veth()).is_ok(),
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        )
    });
    assert!(
        uplink && host_veth,
        "the node namespace has {} and {}",
        node.uplink(),
        pod.host_veth()
    );
    assert_eq!(forwarding.trim(), "1");
    assert_eq!(
        pod.netns().sysctl("net/ipv4/ip_forward").unwrap(),
        "0",
        "pods do not forward"
    );
    assert!(
        pod.netns()
            .run(|| nix::net::if_::if_nametoindex(pod.host_veth()))
            .is_err(),
        "the host veth is not in the pod"
    );
    // The calling thread is untouched.
    assert!(nix::net::if_::if_nametoindex(pod.host_veth()).is_err());
}
