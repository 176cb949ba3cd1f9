//! The IPv6 per-packet programs without traffic: BPF_PROG_TEST_RUN on crafted
//! Ethernet + IPv6 + TCP packets (the rewrites and the TCP checksum over the IPv6
//! pseudo-header), neighbour discovery left alone, and the verifier's instruction
//! counts of the three per-packet programs. Each test runs inside a test-bed node
//! namespace.

mod nodeport_support;

use std::net::Ipv6Addr;

use anyhow::{Context, Result, ensure};
use aya::{
    TestRun, TestRunOptions,
    programs::SchedClassifier,
};
use nodeport_support::{EXTERNAL, NODE_PORT, port};
use waggle_datapath::{
    Datapath,
    lb_maps::{LbMaps, PinnedLbMaps},
    nodeport::PerPacketProgram,
};
use waggle_ebpf_common::lb::{
    BackendV6, NodeConfig, PROTO_TCP, ServiceKeyV6, ServiceValue, backend_flags, service_flags,
};
use waggle_testbed::TestBed;

const TC_ACT_OK: u32 = 0;
const TC_ACT_REDIRECT: u32 = 7;
const NODE: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x250, 0, 0, 0, 0, 0, 1);
const CLIENT: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x250, 0, 0, 0, 0, 0, 0x200);
const LOCAL_POD: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x244, 0, 0, 0, 0, 0, 2);
const REMOTE_POD: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x244, 1, 0, 0, 0, 0, 2);
const L3: usize = 14;
const L4: usize = 14 + 40;

/// An Ethernet + IPv6 packet carrying `payload` as protocol `next`.
fn ipv6_packet(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; L4];
    p[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    p[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    p[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    p[L3] = 0x60;
    p[L3 + 4..L3 + 6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    p[L3 + 6] = next;
    p[L3 + 7] = 64;
    p[L3 + 8..L3 + 24].copy_from_slice(&src.octets());
    p[L3 + 24..L3 + 40].copy_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

/// An Ethernet + IPv6 + TCP packet with a valid checksum.
fn tcp_packet(src: (Ipv6Addr, u16), dst: (Ipv6Addr, u16), flags: u8) -> Vec<u8> {
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&src.1.to_be_bytes());
    tcp[2..4].copy_from_slice(&dst.1.to_be_bytes());
    tcp[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&64_240u16.to_be_bytes());
    let mut p = ipv6_packet(src.0, dst.0, PROTO_TCP, &tcp);
    let sum = l4_checksum(&p, L4, PROTO_TCP);
    p[L4 + 16..L4 + 18].copy_from_slice(&sum.to_be_bytes());
    p
}

/// Internet checksum over the concatenation of `parts`.
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        for chunk in part.chunks(2) {
            sum += u32::from(u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The TCP checksum of `packet` (TCP header at `l4`) over the IPv6 pseudo-header,
/// computed with the checksum field as 0.
fn l4_checksum(packet: &[u8], l4: usize, next: u8) -> u16 {
    let mut segment = packet[l4..].to_vec();
    segment[16] = 0;
    segment[17] = 0;
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&packet[L3 + 8..L3 + 40]);
    pseudo.extend_from_slice(&(segment.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, next]);
    checksum(&[&pseudo, &segment])
}

#[derive(Debug, PartialEq)]
struct Seen {
    src: (Ipv6Addr, u16),
    dst: (Ipv6Addr, u16),
}

/// Parses a TCP packet the program wrote, checking its checksum.
fn inspect(packet: &[u8]) -> Result<Seen> {
    inspect_at(packet, L4)
}

/// [`inspect`] for a TCP header at `l4` (after extension headers).
fn inspect_at(packet: &[u8], l4: usize) -> Result<Seen> {
    let stored = u16::from_be_bytes([packet[l4 + 16], packet[l4 + 17]]);
    ensure!(stored == l4_checksum(packet, l4, PROTO_TCP), "TCP checksum is wrong");
    let ip = |at: usize| -> Ipv6Addr {
        let octets: [u8; 16] = packet[at..at + 16].try_into().expect("16 bytes");
        octets.into()
    };
    let port = |at: usize| u16::from_be_bytes([packet[at], packet[at + 1]]);
    Ok(Seen { src: (ip(L3 + 8), port(l4)), dst: (ip(L3 + 24), port(l4 + 2)) })
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

fn run(datapath: &mut Datapath, program: PerPacketProgram, packet: &[u8]) -> Result<(u32, Vec<u8>)> {
    let mut out = vec![0u8; packet.len()];
    let result = classifier(datapath, program)?.test_run(TestRunOptions {
        data_in: Some(packet),
        data_out: Some(&mut out),
        ..TestRunOptions::default()
    })?;
    Ok((result.return_value, out))
}

/// NodePort `NODE_PORT` → local pod, `NODE_PORT + 1` → remote pod (both IPv6).
fn program_services(maps: &mut PinnedLbMaps) -> Result<()> {
    maps.set_node_config(&NodeConfig { node_address_v6: NODE.octets(), ..Default::default() })?;
    maps.node_addrs_v6().insert(&NODE.octets(), &1)?;
    let backend = |ip: Ipv6Addr, flags: u8| BackendV6 {
        address: ip.octets(),
        port: port(8080),
        protocol: PROTO_TCP,
        flags: backend_flags::ACTIVE | flags,
    };
    maps.backends_v6().insert(&1, &backend(LOCAL_POD, backend_flags::LOCAL))?;
    maps.backends_v6().insert(&2, &backend(REMOTE_POD, 0))?;
    for (node_port, rev, id) in [(NODE_PORT, 1u16, 1u32), (NODE_PORT + 1, 2, 2)] {
        let key = |slot| ServiceKeyV6 {
            address: [0; 16],
            port: port(node_port),
            backend_slot: slot,
            protocol: PROTO_TCP,
            scope: EXTERNAL,
            _pad: [0; 2],
        };
        maps.services_v6().insert(&key(1), &ServiceValue { backend_id: id, ..Default::default() })?;
        let master = ServiceValue {
            count: 1,
            rev_nat_index: rev,
            flags: service_flags::NODE_PORT,
            ..Default::default()
        };
        maps.services_v6().insert(&key(0), &master)?;
    }
    Ok(())
}

#[test]
fn prog_test_run_rewrites_ipv6_nodeport_packets_with_valid_checksums() -> Result<()> {
    let bed = TestBed::builder().nodes(1).build()?;
    let pin_dir = bed.bpf_dir().join("test-run6");
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

        // Remote backend: DNAT + SNAT to the node address, keeping the client's port.
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

        // A hop-by-hop options header before TCP: skipped, and the packet translated.
        // (The TCP checksum does not cover extension headers, so it stays valid.)
        let plain = tcp_packet((CLIENT, 40_003), (NODE, NODE_PORT), 0x02);
        let mut payload = vec![PROTO_TCP, 0, 1, 4, 0, 0, 0, 0];
        payload.extend_from_slice(&plain[L4..]);
        let with_options = ipv6_packet(CLIENT, NODE, 0, &payload);
        let (verdict, out) = run(&mut datapath, PerPacketProgram::NodePortIngress, &with_options)?;
        ensure!(verdict == TC_ACT_OK, "verdict {verdict}");
        let seen = inspect_at(&out, L4 + 8)?;
        ensure!(seen.dst == (LOCAL_POD, 8080), "not DNAT'ed past the options: {:?}", seen.dst);

        // A non-first fragment has no TCP header: untouched.
        let mut fragment = vec![PROTO_TCP, 0, 0, 0x08, 0, 0, 0, 1];
        fragment.extend_from_slice(&plain[L4..]);
        let fragment = ipv6_packet(CLIENT, NODE, 44, &fragment);
        let (verdict, out) = run(&mut datapath, PerPacketProgram::NodePortIngress, &fragment)?;
        ensure!(verdict == TC_ACT_OK && out == fragment, "a non-first fragment was changed");

        // ICMPv6 neighbour solicitation for the node address: untouched by every program.
        let mut ns = vec![135u8, 0, 0, 0, 0, 0, 0, 0];
        ns.extend_from_slice(&NODE.octets());
        let solicitation = ipv6_packet(CLIENT, NODE, 58, &ns);
        for program in [
            PerPacketProgram::NodePortIngress,
            PerPacketProgram::NodePortEgress,
            PerPacketProgram::PodEgress,
        ] {
            let (verdict, out) = run(&mut datapath, program, &solicitation)?;
            ensure!(verdict == TC_ACT_OK && out == solicitation, "{program:?} changed ND");
        }
        Ok(())
    })
}

#[test]
fn per_packet_programs_pass_the_verifier_within_budget() -> Result<()> {
    let bed = TestBed::builder().nodes(1).build()?;
    let pin_dir = bed.bpf_dir().join("verifier");
    bed.register_pin_dir(&pin_dir)?;
    bed.node(0).netns().run(|| -> Result<()> {
        let mut datapath = Datapath::load_pinned(&pin_dir)?;
        for program in [
            PerPacketProgram::NodePortIngress,
            PerPacketProgram::NodePortEgress,
            PerPacketProgram::PodEgress,
        ] {
            let info = classifier(&mut datapath, program)?.info()?;
            let verified = info
                .verified_instruction_count()
                .context("the kernel reports no verified instruction count (Linux 5.16)")?;
            println!("{}: {verified} instructions verified", program.name());
            // A fifth of the verifier's 1M budget: room for the programs to grow.
            ensure!(verified < 200_000, "{} needed {verified} verifier steps", program.name());
        }
        Ok(())
    })
}
