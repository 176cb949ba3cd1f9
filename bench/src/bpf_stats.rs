//! What the kernel spends in the socket-LB programs per connection: the BPF run-time
//! statistics (`run_time_ns`, `run_cnt`) of the programs attached to a cgroup, and
//! whether any per-packet program (tc, XDP) sits in a namespace of the path.
//!
//! Statistics cost two clock reads per program run, so they are enabled only around
//! the windows that measure them ([`StatsEnabled`]), never during the rate windows.

use std::{
    collections::BTreeMap,
    os::fd::{FromRawFd, OwnedFd},
    path::Path,
    process::Command,
};

use anyhow::{Context, bail};
use serde_json::Value;

/// `BPF_ENABLE_STATS` from `<linux/bpf.h>`.
const BPF_ENABLE_STATS: libc::c_long = 32;
/// `BPF_STATS_RUN_TIME`.
const BPF_STATS_RUN_TIME: u32 = 0;

/// BPF run-time statistics switched on while this lives (`BPF_ENABLE_STATS`, the
/// fd-scoped equivalent of `sysctl kernel.bpf_stats_enabled=1`): the kernel counts
/// while the fd is open, so the previous setting comes back when it is dropped, also
/// when the benchmark dies.
pub struct StatsEnabled(#[allow(dead_code)] OwnedFd);

impl StatsEnabled {
    pub fn new() -> anyhow::Result<Self> {
        // union bpf_attr { struct { __u32 type; } enable_stats; ... }, zero-padded.
        let mut attr = [0u8; 16];
        attr[..4].copy_from_slice(&BPF_STATS_RUN_TIME.to_ne_bytes());
        // SAFETY: bpf(2) reads `attr.len()` bytes of `attr`, which lives for the call.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_ENABLE_STATS,
                attr.as_ptr(),
                attr.len() as libc::c_uint,
            )
        };
        if fd < 0 {
            bail!(
                "BPF_ENABLE_STATS failed: {} (needs root and Linux 5.8)",
                std::io::Error::last_os_error()
            );
        }
        // SAFETY: the kernel returned a new fd that nothing else owns.
        Ok(StatsEnabled(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
    }
}

/// Cumulative counters of one program.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgCounters {
    pub name: String,
    pub attach_type: String,
    pub run_time_ns: u64,
    pub run_cnt: u64,
}

/// Counters of every program attached to `cgroup`, by program id.
pub fn attached(cgroup: &Path) -> anyhow::Result<BTreeMap<u64, ProgCounters>> {
    let list = bpftool_json(
        Command::new("bpftool")
            .args(["-j", "cgroup", "show"])
            .arg(cgroup),
    )?;
    let mut out = BTreeMap::new();
    for entry in list.as_array().into_iter().flatten() {
        let id = entry["id"]
            .as_u64()
            .context("bpftool cgroup show: entry without id")?;
        let info = bpftool_json(Command::new("bpftool").args([
            "-j",
            "prog",
            "show",
            "id",
            &id.to_string(),
        ]))?;
        out.insert(id, counters(entry, &info));
    }
    Ok(out)
}

fn counters(cgroup_entry: &Value, prog_info: &Value) -> ProgCounters {
    ProgCounters {
        name: cgroup_entry["name"].as_str().unwrap_or_default().to_owned(),
        attach_type: cgroup_entry["attach_type"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        run_time_ns: prog_info["run_time_ns"].as_u64().unwrap_or(0),
        run_cnt: prog_info["run_cnt"].as_u64().unwrap_or(0),
    }
}

/// `after - before` for each program in both snapshots.
pub fn delta(
    before: &BTreeMap<u64, ProgCounters>,
    after: &BTreeMap<u64, ProgCounters>,
) -> Vec<ProgCounters> {
    after
        .iter()
        .filter_map(|(id, a)| {
            let b = before.get(id)?;
            Some(ProgCounters {
                run_time_ns: a.run_time_ns.saturating_sub(b.run_time_ns),
                run_cnt: a.run_cnt.saturating_sub(b.run_cnt),
                ..a.clone()
            })
        })
        .collect()
}

/// tc and XDP programs attached in the network namespace `command` runs in
/// (`bpftool net show`): a socket-LB path should have none.
pub fn per_packet_programs(mut command: Command) -> anyhow::Result<Vec<String>> {
    let value = bpftool_json(command.args(["-j", "net", "show"]))?;
    let mut out = Vec::new();
    for section in value.as_array().into_iter().flatten() {
        for kind in ["xdp", "tc"] {
            for attachment in section[kind].as_array().into_iter().flatten() {
                let device = attachment["devname"].as_str().unwrap_or("?");
                let name = attachment["name"].as_str().unwrap_or("?");
                let kind_detail = attachment["kind"].as_str().unwrap_or(kind);
                out.push(format!("{device} {kind_detail} {name}"));
            }
        }
    }
    Ok(out)
}

fn bpftool_json(command: &mut Command) -> anyhow::Result<Value> {
    let out = command.output().context("running bpftool")?;
    if !out.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("{command:?}: output is not JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_subtracts_per_program_and_skips_new_ones() {
        let prog = |ns, cnt| ProgCounters {
            name: "sock4_connect".into(),
            attach_type: "cgroup_inet4_connect".into(),
            run_time_ns: ns,
            run_cnt: cnt,
        };
        let before = BTreeMap::from([(7, prog(100, 2))]);
        let after = BTreeMap::from([(7, prog(1100, 12)), (8, prog(5, 1))]);
        assert_eq!(delta(&before, &after), vec![prog(1000, 10)]);
    }

    #[test]
    fn reads_bpftool_json() {
        let entry: Value = serde_json::from_str(
            r#"{"id":7,"attach_type":"cgroup_inet4_connect","attach_flags":"multi","name":"sock4_connect"}"#,
        )
        .unwrap();
        let info: Value =
            serde_json::from_str(r#"{"id":7,"type":"cgroup_sock_addr","name":"sock4_connect","run_time_ns":5000,"run_cnt":10}"#)
                .unwrap();
        let c = counters(&entry, &info);
        assert_eq!(
            (
                c.name.as_str(),
                c.attach_type.as_str(),
                c.run_time_ns,
                c.run_cnt
            ),
            ("sock4_connect", "cgroup_inet4_connect", 5000, 10)
        );
    }
}
