//! netprobe: test traffic with JSON reports, one object per line.
//!
//! * `netprobe serve --id NAME [--tcp PORT] [--udp PORT] [--bind ADDR] [--echo]` prints
//!   `{"listening":{"id":..,"tcp":..,"udp":..}}` once bound, then answers each TCP
//!   connection and UDP datagram with `{"id","peer","local","proto"}` ([`Greeting`]).
//! * `netprobe tcp --to ADDR:PORT [--count N] [--timeout-ms T] [--interval-ms I]` and
//!   `netprobe udp --to ADDR:PORT [--count N] [--connected] ...` print one [`Attempt`]
//!   per try and exit 0 even when attempts fail (the JSON says why, as an errno name).
//!
//! [`Netprobe`] runs these in bed members and parses the output.

mod client;
mod harness;
mod report;
mod server;

use clap::{Parser, Subcommand};

pub use client::{ClientArgs, UdpArgs};
pub use harness::{Netprobe, ProbeServer};
pub use report::{
    Attempt, Greeting, Listening, ListeningLine, errno_name, read_error_name, show, spread,
};
pub use server::ServeArgs;

/// The netprobe command line.
#[derive(Debug, Parser)]
#[command(
    name = "netprobe",
    about = "Test traffic for Waggle's namespace test beds (JSON lines)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: ProbeCommand,
}

#[derive(Debug, Subcommand)]
pub enum ProbeCommand {
    /// Answer TCP connections and UDP datagrams with who we are and who they are.
    Serve(ServeArgs),
    /// Sequential TCP connects, reading the server's greeting.
    Tcp(ClientArgs),
    /// Sequential UDP request/replies.
    Udp(UdpArgs),
}

/// Entry point of the `netprobe` binaries.
pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        ProbeCommand::Serve(args) => server::serve(args),
        ProbeCommand::Tcp(args) => client::tcp(&args),
        ProbeCommand::Udp(args) => client::udp(&args),
    }
}
