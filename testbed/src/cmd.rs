//! Running iproute2 (`ip`) with errors that quote the command and its stderr.

use std::process::Command;

use crate::TestBedError;

/// Runs `ip ARGS...` and returns its stdout.
pub fn ip(args: &[&str]) -> Result<String, TestBedError> {
    run("ip", args)
}

/// Runs `ip -n NETNS ARGS...`.
pub fn ip_in(netns: &str, args: &[&str]) -> Result<String, TestBedError> {
    let mut full = vec!["-n", netns];
    full.extend_from_slice(args);
    run("ip", &full)
}

/// Runs `program ARGS...`, failing with the command line and stderr on non-zero exit.
pub fn run(program: &str, args: &[&str]) -> Result<String, TestBedError> {
    let command = format!("{program} {}", args.join(" "));
    tracing::debug!(%command, "testbed");
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| TestBedError::Spawn {
            command: command.clone(),
            source,
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(TestBedError::Command {
            command,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// Runs `ip [-n NETNS] -batch -` with one command per line (stops at the first error).
pub fn ip_batch(netns: Option<&str>, lines: &[String]) -> Result<(), TestBedError> {
    use std::io::Write;
    let mut args = Vec::new();
    if let Some(netns) = netns {
        args.extend(["-n", netns]);
    }
    args.extend(["-batch", "-"]);
    let script = lines.join("\n");
    let command = format!("ip {} <<< {script:?}", args.join(" "));
    tracing::debug!(%command, "testbed");
    let mut child = Command::new("ip")
        .args(&args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|source| TestBedError::Spawn {
            command: command.clone(),
            source,
        })?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let written = stdin
        .write_all(script.as_bytes())
        .and_then(|()| stdin.write_all(b"\n"));
    drop(stdin);
    let output = child
        .wait_with_output()
        .map_err(|source| TestBedError::Spawn {
            command: command.clone(),
            source,
        })?;
    if output.status.success() && written.is_ok() {
        Ok(())
    } else {
        Err(TestBedError::Command {
            command,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}
