//! `waggle proxy` refusing to start says what is missing: privileges, a cgroup v2
//! directory, a BPF filesystem for its pins, the uplink, or a well-formed flag. Each
//! case runs the real binary in a test-bed node namespace and checks its exit status
//! and the message on stderr. (A kernel without BTF cannot be made here; that error
//! names `/sys/kernel/btf/vmlinux` and CONFIG_DEBUG_INFO_BTF.)
//!
//! Needs root (the unprivileged case drops to `nobody` with `setpriv`), the BPF object
//! and the `waggle` binary built beside the tests.

#[path = "daemon_support/mod.rs"]
mod daemon_support;

use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use daemon_support::{Daemon, waggle_binary};
use waggle_testbed::{Node, TestBed};

/// How long a failing start may take.
const FAIL_WITHIN: Duration = Duration::from_secs(15);

/// A world-readable directory with an empty objects file (the file source).
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        std::fs::write(dir.path().join("objects.yaml"), "").expect("objects file");
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// `waggle proxy` for `node` with `--cgroup`, `--pin-dir` and `extra` arguments.
fn proxy_command(
    prefix: &[&str],
    node: &Node,
    scratch: &Scratch,
    cgroup: &Path,
    pin_dir: &Path,
    extra: &[&str],
) -> Command {
    let waggle = waggle_binary();
    let mut command = match prefix.split_first() {
        Some((program, args)) => {
            let mut command = node.netns().command(program);
            command.args(args).arg(&waggle);
            command
        }
        None => node.netns().command(&waggle),
    };
    command
        .args(["proxy", "--node-name", node.name(), "--from-files"])
        .arg(scratch.path().join("objects.yaml"))
        .arg("--cgroup")
        .arg(cgroup)
        .arg("--pin-dir")
        .arg(pin_dir)
        .args(["--metrics-addr", "off", "--healthz-addr", "off"])
        .args(extra);
    command
}

/// Runs `command`, which must fail within [`FAIL_WITHIN`] with every one of
/// `expected` in its output; returns the output.
fn fails_saying(
    bed: &TestBed,
    scratch: &Scratch,
    case: &str,
    mut command: Command,
    expected: &[&str],
) -> String {
    // The message alone, without anyhow's backtrace.
    command.env("RUST_LIB_BACKTRACE", "0");
    let mut daemon = Daemon::start(bed, scratch.path(), case, command);
    let status = daemon.wait_exit(FAIL_WITHIN);
    let log = daemon.read_log();
    if status.is_none() {
        daemon.kill();
    }
    let status =
        status.unwrap_or_else(|| panic!("{case}: still running after {FAIL_WITHIN:?}:\n{log}"));
    assert!(!status.success(), "{case}: exited successfully:\n{log}");
    for text in expected {
        assert!(
            log.contains(text),
            "{case}: the error does not say `{text}`:\n{log}"
        );
    }
    let message: Vec<&str> = log
        .lines()
        .filter(|l| !l.contains(" INFO ") && !l.trim().is_empty())
        .collect();
    eprintln!("{case}: {}", message.join(" "));
    log
}

fn pin_dir(bed: &TestBed, tag: &str) -> PathBuf {
    let path = bed.bpf_dir().join(format!("errors-{tag}"));
    bed.register_pin_dir(&path)
        .expect("registering the pin dir");
    path
}

#[test]
fn startup_errors_name_what_is_missing() {
    let bed = waggle_tests::bed(TestBed::builder().nodes(1));
    let node = bed.node(0);
    let scratch = Scratch::new();
    let uplink = ["--uplink", node.uplink()];

    // Not root: the capability check names what loading BPF needs.
    let command = proxy_command(
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ],
        node,
        &scratch,
        node.cgroup(),
        &pin_dir(&bed, "unprivileged"),
        &uplink,
    );
    fails_saying(
        &bed,
        &scratch,
        "unprivileged",
        command,
        &[
            "needs root or CAP_BPF + CAP_NET_ADMIN",
            "effective uid 65534",
        ],
    );

    // The socket-LB cgroup is a plain directory, not cgroup v2.
    let plain = scratch.path().join("not-a-cgroup");
    std::fs::create_dir_all(&plain).expect("mkdir");
    let command = proxy_command(
        &[],
        node,
        &scratch,
        &plain,
        &pin_dir(&bed, "cgroup"),
        &uplink,
    );
    fails_saying(
        &bed,
        &scratch,
        "no-cgroup2",
        command,
        &["is not a cgroup v2 directory", "mount -t cgroup2"],
    );

    // The cgroup does not exist at all.
    let missing = node.cgroup().join("no-such-cgroup");
    let command = proxy_command(
        &[],
        node,
        &scratch,
        &missing,
        &pin_dir(&bed, "missing"),
        &uplink,
    );
    fails_saying(
        &bed,
        &scratch,
        "missing-cgroup",
        command,
        &["does not exist", "socket LB needs a cgroup v2 directory"],
    );

    // Pins on a filesystem that is not bpffs.
    let not_bpffs = scratch.path().join("pins");
    let command = proxy_command(&[], node, &scratch, node.cgroup(), &not_bpffs, &uplink);
    fails_saying(
        &bed,
        &scratch,
        "no-bpffs",
        command,
        &["is not on a BPF filesystem", "mount -t bpf"],
    );

    // An uplink the node does not have.
    let command = proxy_command(
        &[],
        node,
        &scratch,
        node.cgroup(),
        &pin_dir(&bed, "uplink"),
        &["--uplink", "nosuch0"],
    );
    fails_saying(
        &bed,
        &scratch,
        "no-uplink",
        command,
        &["the uplink `nosuch0` does not exist", "--uplink"],
    );

    // Malformed flags are refused before anything happens.
    let command = proxy_command(
        &[],
        node,
        &scratch,
        node.cgroup(),
        &pin_dir(&bed, "cidr"),
        &["--nodeport-addresses", "10.0.0.0/33"],
    );
    fails_saying(
        &bed,
        &scratch,
        "bad-cidr",
        command,
        &[
            "--nodeport-addresses",
            "prefix length longer than the address",
        ],
    );
    let command = proxy_command(
        &[],
        node,
        &scratch,
        node.cgroup(),
        &pin_dir(&bed, "glob"),
        &["--per-packet-interfaces", "veth/0"],
    );
    fails_saying(
        &bed,
        &scratch,
        "bad-pattern",
        command,
        &["--per-packet-interfaces", "not an interface pattern"],
    );
}
