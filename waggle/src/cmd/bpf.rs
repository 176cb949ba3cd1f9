//! `waggle bpf ...`: inspect the eBPF maps a running proxy pinned.

use std::path::PathBuf;

use anyhow::Context as _;
use waggle_datapath::lb_maps::PinnedLbMaps;
use waggle_ebpf_common::drop::drop_reason_name;
use waggle_proxy::{dump::dump, state::MapState};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Service load-balancing maps.
    #[command(subcommand)]
    Lb(LbCommand),
}

#[derive(clap::Subcommand)]
pub enum LbCommand {
    /// Print programmed services, backends, reverse NAT, Maglev tables and node
    /// addresses.
    List(PinArgs),
    /// Print per-service traffic counters and drops by reason.
    Stats(PinArgs),
}

#[derive(clap::Args)]
pub struct PinArgs {
    /// The proxy's pin directory (default: the only one under /sys/fs/bpf/waggle).
    #[arg(long)]
    pin_dir: Option<PathBuf>,
}

impl PinArgs {
    fn open(&self) -> anyhow::Result<PinnedLbMaps> {
        let dir = match &self.pin_dir {
            Some(dir) => dir.clone(),
            None => default_pin_dir()?,
        };
        PinnedLbMaps::from_pin_dir(&dir)
            .with_context(|| format!("opening the maps pinned under {}", dir.display()))
    }
}

fn default_pin_dir() -> anyhow::Result<PathBuf> {
    let root = PathBuf::from(waggle_ebpf_common::maps::PIN_ROOT);
    let dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .with_context(|| format!("{} (is a proxy running? pass --pin-dir)", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(waggle_ebpf_common::maps::SERVICES_V4).exists())
        .collect();
    match dirs.as_slice() {
        [one] => Ok(one.clone()),
        [] => anyhow::bail!(
            "no proxy pin directory under {}; pass --pin-dir",
            root.display()
        ),
        many => anyhow::bail!("several pin directories ({many:?}); pass --pin-dir"),
    }
}

pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Lb(LbCommand::List(args)) => {
            let mut maps = args.open()?;
            let state = MapState::read(&mut maps).context("reading the LB maps")?;
            print!("{}", dump(&state));
        }
        Command::Lb(LbCommand::Stats(args)) => {
            let maps = args.open()?;
            println!("SERVICE COUNTERS (by rev_nat index)");
            let mut counters = maps
                .service_counters()
                .context("reading service counters")?;
            counters.sort_by_key(|(k, _)| *k);
            for (index, c) in counters {
                println!(
                    "{index} packets={} bytes={} connections={}",
                    c.packets, c.bytes, c.connections
                );
            }
            println!("DROPS");
            for (reason, count) in maps.drop_counters().context("reading drop counters")? {
                if reason != 0 && count != 0 {
                    println!("{} {count}", drop_reason_name(reason));
                }
            }
        }
    }
    Ok(())
}
