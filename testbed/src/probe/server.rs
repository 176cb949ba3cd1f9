//! `netprobe serve`: answers every TCP connection and UDP datagram with a [`Greeting`].

use std::{
    io::{IoSlice, IoSliceMut, Read, Write},
    net::{
        IpAddr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener, TcpStream, UdpSocket,
    },
    os::fd::AsRawFd,
};

use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, sendmsg, setsockopt,
    sockopt,
};

use super::report::{Greeting, Listening, ListeningLine, show};

/// Options of `netprobe serve`.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// Name reported to clients.
    #[arg(long)]
    pub id: String,
    /// TCP port to listen on.
    #[arg(long)]
    pub tcp: Option<u16>,
    /// UDP port to listen on.
    #[arg(long)]
    pub udp: Option<u16>,
    /// Address to bind (default `::`, dual stack).
    #[arg(long, default_value = "::")]
    pub bind: IpAddr,
    /// After the greeting, echo what the TCP client sends until it closes.
    #[arg(long)]
    pub echo: bool,
}

pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.tcp.is_some() || args.udp.is_some(),
        "serve needs --tcp PORT and/or --udp PORT"
    );
    let tcp = args
        .tcp
        .map(|port| TcpListener::bind((args.bind, port)))
        .transpose()?;
    let udp = args
        .udp
        .map(|port| UdpSocket::bind((args.bind, port)))
        .transpose()?;
    let line = ListeningLine {
        listening: Listening {
            id: args.id.clone(),
            tcp: tcp.as_ref().map(|l| l.local_addr().map(show)).transpose()?,
            udp: udp.as_ref().map(|s| s.local_addr().map(show)).transpose()?,
        },
    };
    println!("{}", serde_json::to_string(&line)?);
    std::io::stdout().flush()?;

    let udp_thread = udp.map(|socket| {
        let id = args.id.clone();
        std::thread::spawn(move || serve_udp(socket, &id))
    });
    if let Some(listener) = tcp {
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => {
                    let (id, echo) = (args.id.clone(), args.echo);
                    std::thread::spawn(move || {
                        if let Err(error) = answer_tcp(stream, &id, echo) {
                            eprintln!("netprobe serve: tcp: {error}");
                        }
                    });
                }
                Err(error) => eprintln!("netprobe serve: accept: {error}"),
            }
        }
    }
    if let Some(thread) = udp_thread {
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("udp thread panicked"))??;
    }
    Ok(())
}

fn answer_tcp(mut stream: TcpStream, id: &str, echo: bool) -> anyhow::Result<()> {
    let greeting = Greeting {
        id: id.to_owned(),
        peer: show(stream.peer_addr()?),
        local: show(stream.local_addr()?),
        proto: "tcp".to_owned(),
    };
    let mut line = serde_json::to_vec(&greeting)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    if echo {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            let read = stream.read(&mut buffer)?;
            if read == 0 {
                break;
            }
            stream.write_all(&buffer[..read])?;
        }
    }
    stream.shutdown(std::net::Shutdown::Write)?;
    Ok(())
}

fn serve_udp(socket: UdpSocket, id: &str) -> anyhow::Result<()> {
    let v6 = socket.local_addr()?.is_ipv6();
    if v6 {
        setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true)?;
    } else {
        setsockopt(&socket, sockopt::Ipv4PacketInfo, &true)?;
    }
    let port = socket.local_addr()?.port();
    let mut buffer = [0u8; 64 * 1024];
    loop {
        let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::in_pktinfo);
        let (peer, local_ip, pktinfo) = {
            let mut iov = [IoSliceMut::new(&mut buffer)];
            let message = recvmsg::<SockaddrStorage>(
                socket.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::empty(),
            )?;
            let peer = message.address.and_then(storage_to_std);
            let mut local_ip = None;
            let mut pktinfo = None;
            for control in message.cmsgs()? {
                match control {
                    ControlMessageOwned::Ipv6PacketInfo(info) => {
                        local_ip = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
                        pktinfo = Some(PktInfo::V6(info));
                    }
                    ControlMessageOwned::Ipv4PacketInfo(info) => {
                        local_ip = Some(IpAddr::V4(u32::from_be(info.ipi_addr.s_addr).into()));
                        pktinfo = Some(PktInfo::V4(info));
                    }
                    _ => {}
                }
            }
            (peer, local_ip, pktinfo)
        };
        let Some(peer) = peer else { continue };
        let local = SocketAddr::new(local_ip.unwrap_or(socket.local_addr()?.ip()), port);
        let greeting = Greeting {
            id: id.to_owned(),
            peer: show(peer),
            local: show(local),
            proto: "udp".to_owned(),
        };
        let reply = serde_json::to_vec(&greeting)?;
        let iov = [IoSlice::new(&reply)];
        let destination = SockaddrStorage::from(peer);
        // Answer from the address the datagram was sent to (wildcard bind).
        let result = match &pktinfo {
            Some(PktInfo::V6(info)) => {
                let mut info = *info;
                info.ipi6_ifindex = 0;
                sendmsg(
                    socket.as_raw_fd(),
                    &iov,
                    &[ControlMessage::Ipv6PacketInfo(&info)],
                    MsgFlags::empty(),
                    Some(&destination),
                )
            }
            Some(PktInfo::V4(info)) => {
                let mut info = *info;
                info.ipi_ifindex = 0;
                info.ipi_spec_dst = info.ipi_addr;
                sendmsg(
                    socket.as_raw_fd(),
                    &iov,
                    &[ControlMessage::Ipv4PacketInfo(&info)],
                    MsgFlags::empty(),
                    Some(&destination),
                )
            }
            None => sendmsg(
                socket.as_raw_fd(),
                &iov,
                &[],
                MsgFlags::empty(),
                Some(&destination),
            ),
        };
        if let Err(error) = result {
            eprintln!("netprobe serve: udp reply to {peer}: {error}");
        }
    }
}

enum PktInfo {
    V4(libc::in_pktinfo),
    V6(libc::in6_pktinfo),
}

fn storage_to_std(storage: SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = storage.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::new(v4.ip(), v4.port())));
    }
    let v6 = storage.as_sockaddr_in6()?;
    Some(SocketAddr::V6(SocketAddrV6::new(
        v6.ip(),
        v6.port(),
        v6.flowinfo(),
        v6.scope_id(),
    )))
}
