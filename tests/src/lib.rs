//! End-to-end and data-path tests of Waggle, each on its own namespace test bed
//! ([`waggle_testbed::TestBed`]).
//!
//! The tests live in `tests/`; start with `datapath_counter.rs` (the first real eBPF
//! program on a pod veth). This library holds what they share. The crate also builds
//! `netprobe` (see [`waggle_testbed::probe`]) so its tests can use
//! `env!("CARGO_BIN_EXE_test-netprobe")`.
//!
//! The BPF object is embedded into `waggle-datapath` at build time: build it with
//! `cargo xtask build` (or set `WAGGLE_BPF_OBJECT`) before running these tests.

use waggle_testbed::{TestBed, TestBedBuilder};

/// Builds a bed, failing the test with the reason (e.g. not root) if it cannot.
pub fn bed(builder: TestBedBuilder) -> TestBed {
    builder
        .build()
        .unwrap_or_else(|error| panic!("cannot build the namespace test bed: {error}"))
}
