//! `netprobe` for this crate's tests (`env!("CARGO_BIN_EXE_test-netprobe")`), named apart from
//! the testbed's own `netprobe` binary; the tool itself is [`waggle_testbed::probe`].

fn main() -> anyhow::Result<()> {
    waggle_testbed::probe::main()
}
