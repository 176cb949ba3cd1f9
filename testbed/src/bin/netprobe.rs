//! `netprobe`: see [`waggle_testbed::probe`].

fn main() -> anyhow::Result<()> {
    waggle_testbed::probe::main()
}
