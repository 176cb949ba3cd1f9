//! The per-packet programs without traffic: BPF_PROG_TEST_RUN on crafted packets
//! (the rewrite and its checksums), and pinned TCX attachments surviving a daemon
//! restart. Each test runs inside a test-bed node namespace.

mod nodeport_support;

use std::net::Ipv4Addr;

use anyhow::{Context, Result, ensure};
use aya::{
    TestRun, TestRunOptions,
    programs::{SchedClassifier, TcAttachType},
};
use nodeport_support::{EXTERNAL, NODE_PORT, ServiceSpec, addr, port};
use waggle_datapath::{
    Datapath,
    lb_maps::{LbMaps, PinnedLbMaps},
    nodeport::{self, PerPacketProgram},
    socket_lb::AttachOutcome,
};
use waggle_ebpf_common::lb::{
    BackendV4, NodeConfig, PROTO_TCP, ServiceKeyV4, ServiceValue, backend_flags,
};
use waggle_testbed::TestBed;

const TC_ACT_OK: u32 = 0;
const TC_ACT_REDIRECT: u32 = 7;
const NODE: Ipv4Addr = Ipv4Addr::new(10, 250, 0, 1);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 250, 0, 200);
const LOCAL_POD: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 2);
const REMOTE_POD: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 2);

/// An Ethernet + IPv4 + TCP packet with valid checksums.
fn tcp_packet(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), flags: u8) -> Vec<u8> {
    let mut p = vec![0u8; 14 + 20 + 20];
    p[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    p[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    p[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut p[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&40u16.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = PROTO_TCP;
    ip[12..16].copy_from_slice(&src.0.octets());
    ip[16..20].copy_from_slice(&dst.0.octets());
    let tcp = &mut p[34..54];
    tcp[0..2].copy_from_slice(&src.1.to_be_bytes());
    tcp[2..4].copy_from_slice(&dst.1.to_be_bytes());
    tcp[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&64_240u16.to_be_bytes());
    let ip_sum = checksum(&[&p[14..34]]);
    p[24..26].copy_from_slice(&ip_sum.to_be_bytes());
    let tcp_sum = tcp_checksum(&p);
    p[50..52].copy_from_slice(&tcp_sum.to_be_bytes());
    p
}

/// Internet checksum over the concatenation of `parts` (field zeroed or included).
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        for chunk in part.chunks(2) {
            let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The TCP checksum of `packet` computed with its checksum field as 0.
fn tcp_checksum(packet: &[u8]) -> u16 {
    let mut segment = packet[34..].to_vec();
    segment[16] = 0;
    segment[17] = 0;
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&packet[26..34]);
    pseudo.extend_from_slice(&[0, PROTO_TCP]);
    pseudo.extend_from_slice(&(segment.len() as u16).to_be_bytes());
    checksum(&[&pseudo, &segment])
}

struct Seen {
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
}

/// Parses a packet the program wrote, checking both checksums.
fn inspect(packet: &[u8]) -> Result<Seen> {
    ensure!(checksum(&[&packet[14..34]]) == 0, "IPv4 header checksum is wrong");
    let stored = u16::from_be_bytes([packet[50], packet[51]]);
    ensure!(stored == tcp_checksum(packet), "TCP checksum is wrong");
    let ip = |at: usize| Ipv4Addr::new(packet[at], packet[at + 1], packet[at + 2], packet[at + 3]);
    let port = |at: usize| u16::from_be_bytes([packet[at], packet[at + 1]]);
    Ok(Seen { src: (ip(26), port(34)), dst: (ip(30), port(36)) })
}

fn run(datapath: &mut Datapath, program: PerPacketProgram, packet: &[u8]) -> Result<(u32, Vec<u8>)> {
    let classifier: &mut SchedClassifier = datapath
        .ebpf_mut()
        .program_mut(program.name())
        .context("program missing")?
        .try_into()?;
    if classifier.fd().is_err() {
        classifier.load()?;
    }
    let mut out = vec![0u8; packet.len()];
    let result = classifier.test_run(TestRunOptions {
        data_in: Some(packet),
        data_out: Some(&mut out),
        ..TestRunOptions::default()
    })?;
    Ok((result.return_value, out))
}

fn program_services(maps: &mut PinnedLbMaps) -> Result<()> {
    maps.set_node_config(&NodeConfig { node_address_v4: addr(NODE), ..Default::default() })?;
    maps.node_addrs_v4().insert(&addr(NODE), &1)?;
    let backend = |ip: Ipv4Addr, flags: u8| BackendV4 {
        address: addr(ip),
        port: port(8080),
        protocol: PROTO_TCP,
        flags: backend_flags::ACTIVE | flags,
    };
    maps.backends_v4().insert(&1, &backend(LOCAL_POD, backend_flags::LOCAL))?;
    maps.backends_v4().insert(&2, &backend(REMOTE_POD, 0))?;
    for (node_port, rev, id) in [(NODE_PORT, 1u16, 1u32), (NODE_PORT + 1, 2, 2)] {
        let spec = ServiceSpec::node_port(rev, node_port, PROTO_TCP);
        let key = |slot| ServiceKeyV4 {
            address: 0,
            port: port(node_port),
            backend_slot: slot,
            protocol: PROTO_TCP,
            scope: EXTERNAL,
            _pad: [0; 2],
        };
        maps.services_v4().insert(&key(1), &ServiceValue { backend_id: id, ..Default::default() })?;
        let master = ServiceValue {
            count: 1,
            rev_nat_index: spec.rev_nat_index,
            flags: spec.flags,
            ..Default::default()
        };
        maps.services_v4().insert(&key(0), &master)?;
    }
    Ok(())
}

#[test]
fn prog_test_run_rewrites_nodeport_packets_with_valid_checksums() -> Result<()> {
    let bed = TestBed::builder().nodes(1).build()?;
    let pin_dir = bed.bpf_dir().join("test-run");
    bed.register_pin_dir(&pin_dir)?;
    bed.node(0).netns().run(|| -> Result<()> {
        let mut datapath = Datapath::load_pinned(&pin_dir)?;
        let mut maps = PinnedLbMaps::from_ebpf(datapath.ebpf())?;
        program_services(&mut maps)?;

        // Local backend: DNAT only.
        let syn = tcp_packet((CLIENT, 40_000), (NODE, NODE_PORT), 0x02);
        let (verdict, out) = run(&mut datapath, PerPacketProgram::NodePortIngress, &syn)?;
        ensure!(verdict == TC_ACT_OK, "verdict {verdict}");
        let seen = inspect(&out)?;
        ensure!(seen.src == (CLIENT, 40_000), "source changed: {:?}", seen.src);
        ensure!(seen.dst == (LOCAL_POD, 8080), "not DNAT'ed: {:?}", seen.dst);

        // Its reply, leaving through the uplink: reverse DNAT to the NodePort.
        let syn_ack = tcp_packet((LOCAL_POD, 8080), (CLIENT, 40_000), 0x12);
        let (verdict, out) = run(&mut datapath, PerPacketProgram::NodePortEgress, &syn_ack)?;
        ensure!(verdict == TC_ACT_OK, "verdict {verdict}");
        let seen = inspect(&out)?;
        ensure!(seen.src == (NODE, NODE_PORT), "reply not reverse-translated: {:?}", seen.src);
        ensure!(seen.dst == (CLIENT, 40_000));

        // Remote backend: DNAT + SNAT to the node address, keeping the client's port,
        // then sent on by FIB lookup + redirect.
        let syn = tcp_packet((CLIENT, 40_001), (NODE, NODE_PORT + 1), 0x02);
        let (verdict, out) = run(&mut datapath, PerPacketProgram::NodePortIngress, &syn)?;
        ensure!(verdict == TC_ACT_OK || verdict == TC_ACT_REDIRECT, "verdict {verdict}");
        let seen = inspect(&out)?;
        ensure!(seen.src == (NODE, 40_001), "not SNAT'ed to node:client-port: {:?}", seen.src);
        ensure!(seen.dst == (REMOTE_POD, 8080), "not DNAT'ed: {:?}", seen.dst);

        // The remote backend's reply to node:port comes back on the uplink.
        let syn_ack = tcp_packet((REMOTE_POD, 8080), (NODE, 40_001), 0x12);
        let (_, out) = run(&mut datapath, PerPacketProgram::NodePortIngress, &syn_ack)?;
        let seen = inspect(&out)?;
        ensure!(seen.src == (NODE, NODE_PORT + 1), "reply source {:?}", seen.src);
        ensure!(seen.dst == (CLIENT, 40_001), "reply destination {:?}", seen.dst);

        // Not for a service: untouched.
        let other = tcp_packet((CLIENT, 40_002), (NODE, 22), 0x02);
        let (verdict, out) = run(&mut datapath, PerPacketProgram::NodePortIngress, &other)?;
        ensure!(verdict == TC_ACT_OK && out == other, "a non-service packet was changed");
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
fn pinned_uplink_programs_survive_a_restart_and_detach() -> Result<()> {
    let bed = TestBed::builder().nodes(1).build()?;
    let pin_dir = bed.bpf_dir().join("pinned");
    bed.register_pin_dir(&pin_dir)?;
    let uplink = bed.node(0).uplink().to_owned();
    bed.node(0).netns().run(|| -> Result<()> {
        let first_ids = {
            let mut datapath = Datapath::load_pinned(&pin_dir)?;
            let attached = datapath.attach_uplink_pinned(&uplink)?;
            ensure!(attached.iter().all(|(_, o)| *o == AttachOutcome::Attached));
            tcx_programs(&uplink, TcAttachType::Ingress)?
            // The daemon "exits" here: the data path and its handles are dropped.
        };
        ensure!(first_ids.len() == 1, "ingress programs: {first_ids:?}");
        ensure!(first_ids[0].1.starts_with("tc_nodeport_in"), "{first_ids:?}");
        let still = tcx_programs(&uplink, TcAttachType::Ingress)?;
        ensure!(still == first_ids, "the pinned link did not survive: {still:?}");

        let mut datapath = Datapath::load_pinned(&pin_dir)?;
        let attached = datapath.attach_uplink_pinned(&uplink)?;
        ensure!(attached.iter().all(|(_, o)| *o == AttachOutcome::Replaced));
        let ingress = tcx_programs(&uplink, TcAttachType::Ingress)?;
        ensure!(ingress.len() == 1, "replace added a program: {ingress:?}");
        ensure!(ingress[0].0 != first_ids[0].0, "the new program did not replace the old one");
        ensure!(tcx_programs(&uplink, TcAttachType::Egress)?.len() == 1);

        for program in PerPacketProgram::UPLINK {
            nodeport::detach_pinned(&pin_dir, program, &uplink)?;
        }
        // The kernel releases an unpinned link asynchronously: allow it a moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            let left = [TcAttachType::Ingress, TcAttachType::Egress]
                .into_iter()
                .map(|hook| tcx_programs(&uplink, hook))
                .collect::<Result<Vec<_>>>()?;
            if left.iter().all(Vec::is_empty) {
                break;
            }
            ensure!(std::time::Instant::now() < deadline, "still attached after detach: {left:?}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(())
    })
}
