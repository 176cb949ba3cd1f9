//! `netprobe tcp` and `netprobe udp`: sequential attempts, one [`Attempt`] line each.

use std::{
    io::{BufRead, BufReader, Write},
    net::{SocketAddr, TcpStream, UdpSocket},
    time::{Duration, Instant},
};

use super::report::{Attempt, Greeting, errno_name, read_error_name, show};

/// Options shared by the client subcommands.
#[derive(Clone, Debug, clap::Args)]
pub struct ClientArgs {
    /// Where to connect / send.
    #[arg(long)]
    pub to: SocketAddr,
    /// Number of sequential attempts.
    #[arg(long, default_value_t = 1)]
    pub count: u32,
    /// Timeout per attempt (connect, then reply). Generous: on a loaded machine the
    /// server may wait seconds for a CPU; tests that expect a timeout pass their own.
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
    /// Pause between attempts.
    #[arg(long, default_value_t = 0)]
    pub interval_ms: u64,
}

/// Options of `netprobe udp`.
#[derive(Clone, Debug, clap::Args)]
pub struct UdpArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// connect() the socket and use send()/recv() (reports getpeername()).
    #[arg(long)]
    pub connected: bool,
}

pub fn tcp(args: &ClientArgs) -> anyhow::Result<()> {
    repeat(args, |seq| tcp_once(seq, args))
}

pub fn udp(args: &UdpArgs) -> anyhow::Result<()> {
    repeat(&args.client, |seq| {
        udp_once(seq, &args.client, args.connected)
    })
}

fn repeat(args: &ClientArgs, mut once: impl FnMut(u32) -> Attempt) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    for seq in 0..args.count {
        if seq > 0 && args.interval_ms > 0 {
            std::thread::sleep(Duration::from_millis(args.interval_ms));
        }
        let attempt = once(seq);
        let mut out = stdout.lock();
        writeln!(out, "{}", serde_json::to_string(&attempt)?)?;
        out.flush()?;
    }
    Ok(())
}

fn micros(start: Instant) -> u64 {
    start.elapsed().as_micros() as u64
}

fn tcp_once(seq: u32, args: &ClientArgs) -> Attempt {
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    let start = Instant::now();
    let stream = match TcpStream::connect_timeout(&args.to, timeout) {
        Ok(stream) => stream,
        Err(error) => return Attempt::failed(seq, "tcp", errno_name(&error), micros(start)),
    };
    let mut attempt = Attempt {
        seq,
        proto: "tcp".to_owned(),
        peer_name: stream.peer_addr().ok().map(show),
        local: stream.local_addr().ok().map(show),
        ..Attempt::default()
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let mut line = String::new();
    match BufReader::new(&stream).read_line(&mut line) {
        Ok(0) => attempt.error = Some("EOF".to_owned()),
        Ok(_) => match serde_json::from_str::<Greeting>(&line) {
            Ok(greeting) => fill(&mut attempt, greeting),
            Err(error) => attempt.error = Some(format!("bad greeting {line:?}: {error}")),
        },
        Err(error) => attempt.error = Some(read_error_name(&error)),
    }
    attempt.elapsed_us = micros(start);
    attempt
}

fn fill(attempt: &mut Attempt, greeting: Greeting) {
    attempt.ok = true;
    attempt.id = Some(greeting.id);
    attempt.server_saw = Some(greeting.peer);
    attempt.server_local = Some(greeting.local);
}

fn udp_once(seq: u32, args: &ClientArgs, connected: bool) -> Attempt {
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    let start = Instant::now();
    let fail =
        |error: std::io::Error| Attempt::failed(seq, "udp", errno_name(&error), micros(start));
    let bind: SocketAddr = if args.to.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .expect("literal");
    let socket = match UdpSocket::bind(bind) {
        Ok(socket) => socket,
        Err(error) => return fail(error),
    };
    if let Err(error) = socket.set_read_timeout(Some(timeout)) {
        return fail(error);
    }
    let payload = format!("netprobe {seq}");
    let mut attempt = Attempt {
        seq,
        proto: "udp".to_owned(),
        ..Attempt::default()
    };
    let mut buffer = [0u8; 64 * 1024];
    let received = if connected {
        if let Err(error) = socket.connect(args.to) {
            return fail(error);
        }
        attempt.peer_name = socket.peer_addr().ok().map(show);
        socket
            .send(payload.as_bytes())
            .and_then(|_| socket.recv(&mut buffer))
    } else {
        socket.send_to(payload.as_bytes(), args.to).and_then(|_| {
            let (len, from) = socket.recv_from(&mut buffer)?;
            attempt.from = Some(show(from));
            Ok(len)
        })
    };
    attempt.local = socket.local_addr().ok().map(show);
    match received {
        Ok(len) => match serde_json::from_slice::<Greeting>(&buffer[..len]) {
            Ok(greeting) => fill(&mut attempt, greeting),
            Err(error) => attempt.error = Some(format!("bad reply: {error}")),
        },
        Err(error) => attempt.error = Some(read_error_name(&error)),
    }
    attempt.elapsed_us = micros(start);
    attempt
}
