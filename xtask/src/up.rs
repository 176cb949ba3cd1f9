//! `cargo xtask up`: builds Waggle and runs the API server (with the controllers) on the
//! embedded store in the foreground, with an admin kubeconfig for kubectl.

use std::process::Command;

use crate::{build, cmd, setup};

#[derive(clap::Args)]
pub struct Args {
    /// Where the server keeps its database, certificates and kubeconfig.
    #[arg(long, default_value = ".waggle/server")]
    pub data_dir: String,
    /// HTTPS address of the API server.
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub bind: String,
    /// Skip `cargo xtask setup`.
    #[arg(long)]
    pub no_setup: bool,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    if !args.no_setup {
        setup::run()?;
    }
    let object = build::build_bpf()?;
    build::build_userspace(&object, false, &[])?;
    let waggle = cmd::target_dir().join("debug/waggle");
    let data_dir = cmd::workspace_root().join(&args.data_dir);
    eprintln!(
        "up: starting the API server on {}; in another shell:\n    export KUBECONFIG={}\n    kubectl get namespaces",
        args.bind,
        data_dir.join("admin.kubeconfig").display()
    );
    cmd::run(
        Command::new(waggle)
            .arg("server")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--bind")
            .arg(&args.bind),
    )
}
