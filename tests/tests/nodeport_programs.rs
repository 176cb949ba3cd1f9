//! The per-packet programs without traffic, for IPv4 and IPv6: BPF_PROG_TEST_RUN on
//! crafted packets (the rewrites and every checksum, ICMP errors of translated
//! connections, IPv6 extension headers, fragments and neighbour discovery), the
//! verifier's instruction counts, and pinned TCX attachments surviving a daemon
//! restart. Each test runs inside a test-bed node namespace.

mod nodeport_support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{Context, Result, ensure};
use aya::{
    TestRun, TestRunOptions,
    programs::{SchedClassifier, TcAttachType},
};
use nodeport_support::{
    BOTH, EXTERNAL, Ip, NODE_PORT, ServiceSpec,
    packets::{
        L3, icmp_unreachable, inspect, inspect_icmp, inspect_ip_after, ip_packet, tcp_packet,
    },
};
use waggle_datapath::{
    Datapath,
    lb_maps::{FrontendKey, LbMaps, PinnedLbMaps, write_frontend},
    nodeport::{self, PerPacketProgram},
    socket_lb::AttachOutcome,
};
use waggle_ebpf_common::lb::{
    BackendV4, BackendV6, NodeConfig, PROTO_TCP, ServiceKeyV4, ServiceKeyV6, ServiceValue,
    backend_flags,
};
use waggle_testbed::TestBed;

const TC_ACT_OK: u32 = 0;
const TC_ACT_REDIRECT: u32 = 7;

/// The addresses of the crafted packets.
struct Hosts {
    node: IpAddr,
    client: IpAddr,
    local_pod: IpAddr,
    remote_pod: IpAddr,
    /// A router between the node and the remote pod.
    router: IpAddr,
}

fn hosts(ip: Ip) -> Hosts {
    let v6 = |last: u16, subnet: u16| Ipv6Addr::new(0xfd00, subnet, 0, 0, 0, 0, 0, last);
    Hosts {
        node: ip.pick(Ipv4Addr::new(10, 250, 0, 1), v6(1, 0x250)),
        client: ip.pick(Ipv4Addr::new(10, 250, 0, 200), v6(0x200, 0x250)),
        local_pod: ip.pick(Ipv4Addr::new(10, 244, 0, 2), v6(2, 0x244)),
        remote_pod: ip.pick(
            Ipv4Addr::new(10, 244, 1, 2),
            Ipv6Addr::new(0xfd00, 0x244, 1, 0, 0, 0, 0, 2),
        ),
        router: ip.pick(Ipv4Addr::new(10, 250, 0, 254), v6(0xfe, 0x250)),
    }
}

fn classifier(datapath: &mut Datapath, program: PerPacketProgram) -> Result<&mut SchedClassifier> {
    let classifier: &mut SchedClassifier = datapath
        .ebpf_mut()
        .program_mut(program.name())
        .context("program missing")?
        .try_into()?;
    if classifier.fd().is_err() {
        classifier.load()?;
    }
    Ok(classifier)
}

fn run(
    datapath: &mut Datapath,
    program: PerPacketProgram,
    packet: &[u8],
) -> Result<(u32, Vec<u8>)> {
    let mut out = vec![0u8; packet.len()];
    let result = classifier(datapath, program)?.test_run(TestRunOptions {
        data_in: Some(packet),
        data_out: Some(&mut out),
        ..TestRunOptions::default()
    })?;
    Ok((result.return_value, out))
}

/// NodePort `NODE_PORT` → the local pod, `NODE_PORT + 1` → the remote pod, in both
/// families.
fn program_services(maps: &mut PinnedLbMaps) -> Result<()> {
    let (v4, v6) = (hosts(Ip::V4), hosts(Ip::V6));
    let octets4 = |a: IpAddr| match a {
        IpAddr::V4(a) => u32::from_ne_bytes(a.octets()),
        IpAddr::V6(_) => unreachable!("an IPv4 host"),
    };
    let octets6 = |a: IpAddr| match a {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(_) => unreachable!("an IPv6 host"),
    };
    maps.set_node_config(&NodeConfig {
        node_address_v4: octets4(v4.node),
        node_address_v6: octets6(v6.node),
        ..Default::default()
    })?;
    maps.node_addrs_v4().insert(&octets4(v4.node), &1)?;
    maps.node_addrs_v6().insert(&octets6(v6.node), &1)?;
    let flags = |local: bool| backend_flags::ACTIVE | if local { backend_flags::LOCAL } else { 0 };
    let port = 8080u16.to_be();
    for (id, local) in [(1u32, true), (2, false)] {
        let (a4, a6) = if local {
            (v4.local_pod, v6.local_pod)
        } else {
            (v4.remote_pod, v6.remote_pod)
        };
        let b4 = BackendV4 {
            address: octets4(a4),
            port,
            protocol: PROTO_TCP,
            flags: flags(local),
        };
        let b6 = BackendV6 {
            address: octets6(a6),
            port,
            protocol: PROTO_TCP,
            flags: flags(local),
        };
        maps.backends_v4().insert(&id, &b4)?;
        maps.backends_v6().insert(&id, &b6)?;
    }
    for (node_port, rev, id) in [(NODE_PORT, 1u16, 1u32), (NODE_PORT + 1, 2, 2)] {
        let spec = ServiceSpec::node_port(rev, node_port, PROTO_TCP);
        let value = ServiceValue {
            slot_base: u32::from(rev),
            rev_nat_index: spec.rev_nat_index,
            flags: spec.flags,
            ..Default::default()
        };
        let key4 = ServiceKeyV4 {
            address: 0,
            port: node_port.to_be(),
            protocol: PROTO_TCP,
            scope: EXTERNAL,
        };
        let key6 = ServiceKeyV6 {
            address: [0; 16],
            port: key4.port,
            protocol: PROTO_TCP,
            scope: EXTERNAL,
        };
        write_frontend(maps, FrontendKey::V4(key4), value, &[id])?;
        write_frontend(maps, FrontendKey::V6(key6), value, &[id])?;
    }
    Ok(())
}

/// Loads a pinned data path in node 0 of a one-node bed, programs the services, and
/// runs `body` there.
fn with_datapath(name: &str, body: impl FnOnce(&mut Datapath) -> Result<()> + Send) -> Result<()> {
    let bed = TestBed::builder().nodes(1).build()?;
    let pin_dir = bed.bpf_dir().join(name);
    bed.register_pin_dir(&pin_dir)?;
    bed.node(0).netns().run(|| -> Result<()> {
        let mut datapath = Datapath::load_pinned(&pin_dir)?;
        let mut maps = PinnedLbMaps::from_ebpf(datapath.ebpf())?;
        program_services(&mut maps)?;
        body(&mut datapath)
    })
}

/// A TCP endpoint: address and port.
type End = (IpAddr, u16);

/// Runs `program` on a TCP packet `from → to` and checks what it wrote: valid
/// checksums and the tuple `want`. Returns the verdict.
fn expect_tcp(
    datapath: &mut Datapath,
    program: PerPacketProgram,
    (from, to, flags): (End, End, u8),
    want: (End, End),
) -> Result<u32> {
    let packet = tcp_packet(from, to, flags)?;
    let (verdict, out) = run(datapath, program, &packet)?;
    let seen = inspect(&out)?;
    ensure!(
        (seen.src, seen.dst) == want,
        "{program:?} turned {from:?} → {to:?} into {:?} → {:?}, expected {want:?}",
        seen.src,
        seen.dst
    );
    Ok(verdict)
}

#[test]
fn prog_test_run_rewrites_nodeport_packets_with_valid_checksums() -> Result<()> {
    use PerPacketProgram::{NodePortEgress as Egress, NodePortIngress as Ingress};
    with_datapath("test-run", |datapath| {
        for ip in BOTH {
            let Hosts {
                node,
                client,
                local_pod,
                remote_pod,
                ..
            } = hosts(ip);
            let (syn, syn_ack) = (0x02, 0x12);
            // Local backend: DNAT only.
            let packet = ((client, 40_000), (node, NODE_PORT), syn);
            let verdict = expect_tcp(
                datapath,
                Ingress,
                packet,
                ((client, 40_000), (local_pod, 8080)),
            )?;
            ensure!(verdict == TC_ACT_OK, "{ip:?}: verdict {verdict}");
            // Its reply, leaving through the uplink: reverse DNAT to the NodePort.
            let packet = ((local_pod, 8080), (client, 40_000), syn_ack);
            let verdict = expect_tcp(
                datapath,
                Egress,
                packet,
                ((node, NODE_PORT), (client, 40_000)),
            )?;
            ensure!(verdict == TC_ACT_OK, "{ip:?}: verdict {verdict}");

            // Remote backend: DNAT + SNAT to the node address, keeping the client's
            // port, then sent on by FIB lookup + redirect.
            let packet = ((client, 40_001), (node, NODE_PORT + 1), syn);
            let verdict = expect_tcp(
                datapath,
                Ingress,
                packet,
                ((node, 40_001), (remote_pod, 8080)),
            )?;
            ensure!(
                verdict == TC_ACT_OK || verdict == TC_ACT_REDIRECT,
                "{ip:?}: verdict {verdict}"
            );
            // The remote backend's reply to node:port comes back on the uplink.
            let packet = ((remote_pod, 8080), (node, 40_001), syn_ack);
            expect_tcp(
                datapath,
                Ingress,
                packet,
                ((node, NODE_PORT + 1), (client, 40_001)),
            )?;

            // Not for a service: untouched.
            let other = tcp_packet((client, 40_002), (node, 22), syn)?;
            let (verdict, out) = run(datapath, Ingress, &other)?;
            ensure!(
                verdict == TC_ACT_OK && out == other,
                "{ip:?}: a non-service packet was changed"
            );
        }
        Ok(())
    })
}

#[test]
fn prog_test_run_handles_ipv6_extension_headers_fragments_and_neighbour_discovery() -> Result<()> {
    with_datapath("test-run6", |datapath| {
        let Hosts {
            node,
            client,
            local_pod,
            ..
        } = hosts(Ip::V6);
        let plain = tcp_packet((client, 40_003), (node, NODE_PORT), 0x02)?;
        let tcp = &plain[L3 + 40..];

        // A hop-by-hop options header before TCP: skipped, and the packet translated.
        // (The TCP checksum does not cover extension headers, so it stays valid.)
        let mut payload = vec![PROTO_TCP, 0, 1, 4, 0, 0, 0, 0];
        payload.extend_from_slice(tcp);
        let with_options = ip_packet(client, node, 0, &payload)?;
        let (verdict, out) = run(datapath, PerPacketProgram::NodePortIngress, &with_options)?;
        ensure!(verdict == TC_ACT_OK, "verdict {verdict}");
        let seen = inspect_ip_after(&out[L3..], 8)?;
        ensure!(
            seen.dst == (local_pod, 8080),
            "not DNAT'ed past the options: {:?}",
            seen.dst
        );

        // A non-first fragment has no TCP header: untouched.
        let mut fragment = vec![PROTO_TCP, 0, 0, 0x08, 0, 0, 0, 1];
        fragment.extend_from_slice(tcp);
        let fragment = ip_packet(client, node, 44, &fragment)?;
        let (verdict, out) = run(datapath, PerPacketProgram::NodePortIngress, &fragment)?;
        ensure!(
            verdict == TC_ACT_OK && out == fragment,
            "a non-first fragment was changed"
        );

        // ICMPv6 neighbour solicitation for the node address: untouched by every program.
        let mut ns = vec![135u8, 0, 0, 0, 0, 0, 0, 0];
        if let IpAddr::V6(target) = node {
            ns.extend_from_slice(&target.octets());
        }
        let solicitation = ip_packet(client, node, 58, &ns)?;
        for program in [
            PerPacketProgram::NodePortIngress,
            PerPacketProgram::NodePortEgress,
            PerPacketProgram::PodEgress,
        ] {
            let (verdict, out) = run(datapath, program, &solicitation)?;
            ensure!(
                verdict == TC_ACT_OK && out == solicitation,
                "{program:?} changed ND"
            );
        }
        Ok(())
    })
}

/// Runs `program` on an ICMP port unreachable `from → to` quoting the IP packet of
/// `quoted` (a frame), and checks what it wrote: valid outer, ICMP and quoted
/// checksums, the outer addresses `want_outer` and the quoted tuple `want_quoted`.
fn expect_icmp(
    datapath: &mut Datapath,
    program: PerPacketProgram,
    (from, to, quoted): (IpAddr, IpAddr, &[u8]),
    want_outer: (IpAddr, IpAddr),
    want_quoted: (End, End),
) -> Result<()> {
    let error = icmp_unreachable(from, to, &quoted[L3..])?;
    let (verdict, out) = run(datapath, program, &error)?;
    ensure!(
        verdict == TC_ACT_OK || verdict == TC_ACT_REDIRECT,
        "verdict {verdict}"
    );
    let (src, dst, seen) = inspect_icmp(&out)?;
    ensure!(
        (src, dst) == want_outer,
        "{program:?}: outer {src} → {dst}, expected {want_outer:?}"
    );
    ensure!(
        (seen.src, seen.dst) == want_quoted,
        "{program:?}: quoted {:?} → {:?}, expected {want_quoted:?}",
        seen.src,
        seen.dst
    );
    Ok(())
}

#[test]
fn prog_test_run_translates_icmp_errors_with_valid_checksums() -> Result<()> {
    use PerPacketProgram::{NodePortEgress as Egress, NodePortIngress as Ingress};
    with_datapath("test-run-icmp", |datapath| {
        for ip in BOTH {
            let Hosts {
                node,
                client,
                local_pod,
                remote_pod,
                router,
            } = hosts(ip);

            // Local backend (DNAT only): its port unreachable leaves through the uplink.
            let syn = tcp_packet((client, 41_000), (node, NODE_PORT), 0x02)?;
            let (_, translated) = run(datapath, Ingress, &syn)?;
            let error = (local_pod, client, translated.as_slice());
            let quoted = ((client, 41_000), (node, NODE_PORT));
            expect_icmp(datapath, Egress, error, (node, client), quoted)
                .with_context(|| format!("{ip:?}: local backend"))?;

            // Remote backend (DNAT + SNAT): its error comes back to the node's address.
            let syn = tcp_packet((client, 41_001), (node, NODE_PORT + 1), 0x02)?;
            let (_, translated) = run(datapath, Ingress, &syn)?;
            let quoted = ((client, 41_001), (node, NODE_PORT + 1));
            let error = (remote_pod, node, translated.as_slice());
            expect_icmp(datapath, Ingress, error, (node, client), quoted)
                .with_context(|| format!("{ip:?}: remote backend"))?;

            // A router on the way: its address stays the source, the client gets it.
            let error = (router, node, translated.as_slice());
            expect_icmp(datapath, Ingress, error, (router, client), quoted)
                .with_context(|| format!("{ip:?}: router"))?;

            // An error about a connection nobody tracks: untouched.
            let stranger = tcp_packet((client, 41_002), (remote_pod, 9), 0x02)?;
            let error = icmp_unreachable(remote_pod, client, &stranger[L3..])?;
            let (verdict, out) = run(datapath, Egress, &error)?;
            ensure!(
                verdict == TC_ACT_OK && out == error,
                "{ip:?}: an untracked error was changed"
            );
        }
        Ok(())
    })
}

#[test]
fn per_packet_programs_pass_the_verifier_within_budget() -> Result<()> {
    with_datapath("verifier", |datapath| {
        for program in [
            PerPacketProgram::NodePortIngress,
            PerPacketProgram::NodePortEgress,
            PerPacketProgram::PodEgress,
        ] {
            let info = classifier(datapath, program)?.info()?;
            let verified = info
                .verified_instruction_count()
                .context("the kernel reports no verified instruction count (Linux 5.16)")?;
            println!("{}: {verified} instructions verified", program.name());
            // A fifth of the verifier's 1M budget: room for the programs to grow.
            ensure!(
                verified < 200_000,
                "{} needed {verified} verifier steps",
                program.name()
            );
        }
        Ok(())
    })
}

fn tcx_programs(interface: &str, hook: TcAttachType) -> Result<Vec<(u32, String)>> {
    let (_, programs) = SchedClassifier::query_tcx(interface, hook)?;
    Ok(programs
        .iter()
        .map(|p| (p.id(), p.name_as_str().unwrap_or_default().to_owned()))
        .collect())
}

#[test]
fn pinned_uplink_and_pod_programs_survive_a_restart_and_detach() -> Result<()> {
    let bed = TestBed::builder().nodes(1).build()?;
    let pod = bed.add_pod(0, "pinned")?;
    let pin_dir = bed.bpf_dir().join("pinned");
    bed.register_pin_dir(&pin_dir)?;
    let uplink = bed.node(0).uplink().to_owned();
    let veth = pod.host_veth().to_owned();
    bed.node(0).netns().run(|| -> Result<()> {
        let first_ids = {
            let mut datapath = Datapath::load_pinned(&pin_dir)?;
            let attached = datapath.attach_uplink_pinned(&uplink)?;
            ensure!(attached.iter().all(|(_, o)| *o == AttachOutcome::Attached));
            let (_, outcome) = datapath.attach_pod_egress_pinned(&veth)?;
            ensure!(outcome == AttachOutcome::Attached);
            tcx_programs(&uplink, TcAttachType::Ingress)?
            // The daemon "exits" here: the data path and its handles are dropped.
        };
        ensure!(first_ids.len() == 1, "ingress programs: {first_ids:?}");
        ensure!(
            first_ids[0].1.starts_with("tc_nodeport_in"),
            "{first_ids:?}"
        );
        let still = tcx_programs(&uplink, TcAttachType::Ingress)?;
        ensure!(
            still == first_ids,
            "the pinned link did not survive: {still:?}"
        );
        let pod_programs = tcx_programs(&veth, TcAttachType::Ingress)?;
        ensure!(
            pod_programs.len() == 1,
            "pod veth programs: {pod_programs:?}"
        );

        let mut datapath = Datapath::load_pinned(&pin_dir)?;
        let attached = datapath.attach_uplink_pinned(&uplink)?;
        ensure!(attached.iter().all(|(_, o)| *o == AttachOutcome::Replaced));
        let (_, outcome) = datapath.attach_pod_egress_pinned(&veth)?;
        ensure!(
            outcome == AttachOutcome::Replaced,
            "the pod program was not replaced: {outcome:?}"
        );
        let ingress = tcx_programs(&uplink, TcAttachType::Ingress)?;
        ensure!(ingress.len() == 1, "replace added a program: {ingress:?}");
        ensure!(
            ingress[0].0 != first_ids[0].0,
            "the new program did not replace the old one"
        );
        ensure!(tcx_programs(&uplink, TcAttachType::Egress)?.len() == 1);
        ensure!(tcx_programs(&veth, TcAttachType::Ingress)?.len() == 1);

        for program in PerPacketProgram::UPLINK {
            nodeport::detach_pinned(&pin_dir, program, &uplink)?;
        }
        waggle_datapath::pod::detach_pod_egress_pinned(&pin_dir, &veth)?;
        // The kernel releases an unpinned link asynchronously: allow it a moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let left = [
                tcx_programs(&uplink, TcAttachType::Ingress)?,
                tcx_programs(&uplink, TcAttachType::Egress)?,
                tcx_programs(&veth, TcAttachType::Ingress)?,
            ];
            if left.iter().all(Vec::is_empty) {
                break;
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "still attached after detach: {left:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(())
    })
}
