//! A WebTransport echo peer on the `wtransport` crate (quinn + rustls on
//! tokio), the yardstick `scripts/bench-transport.sh` measures `ludus
//! serve` against.
//!
//! What it does: it speaks just enough of the Ludus protocol for the load
//! core's clients, using `ludus::proto::wire` for framing:
//! - on the first bidirectional stream of a session (the control stream):
//!   Hello is answered with Welcome (version 1, CAP_DATAGRAMS granted when
//!   offered, the same heartbeat and limits as `ludus serve`), Ping with
//!   Pong, Bye ends the stream; anything else is ignored;
//! - each datagram: every Ping frame in it is answered with a Pong frame,
//!   all Pongs of one datagram in one datagram back.
//!
//! A Pong carries one clock reading as both `received_us` and `sent_us`,
//! as `ludus serve` does. No rooms, no session policy, no origin check: a
//! bare echo, so the comparison favours this peer slightly.
//!
//! Certificate: self-signed ECDSA P-256 (wtransport's `Identity`), valid
//! 14 days; its SHA-256 is printed like `ludus serve` prints its own, and
//! so is the bound address, so the same driver runs against both:
//!
//! ```text
//! listening udp=127.0.0.1:40123
//! certificate sha-256 (hex): 5f...
//! ```
//!
//! `--threads 1` (default) runs everything on one thread (tokio's
//! current-thread runtime); `--threads N` uses N tokio workers.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use ludus::proto::wire::{
    self, datagram_bodies, decode_body, encode_frame, FrameDecoder, Hello, Limits, Message, Ping,
    Pong, Text, Welcome,
};
use sha2::{Digest, Sha256};
use wtransport::endpoint::IncomingSession;
use wtransport::{Connection, Endpoint, Identity, RecvStream, SendStream, ServerConfig};

/// Read size on the control stream.
const READ_CHUNK_BYTES: usize = 16 * 1024;

struct Args {
    udp: SocketAddr,
    threads: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { udp: "127.0.0.1:0".parse().expect("constant"), threads: 1 };
    let mut items = std::env::args().skip(1);
    while let Some(flag) = items.next() {
        let value = items.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--udp" => args.udp = value.parse().map_err(|_| format!("bad address {value}"))?,
            "--threads" => {
                args.threads = value.parse().map_err(|_| format!("bad thread count {value}"))?
            }
            other => return Err(format!("unknown flag {other} (--udp ADDR, --threads N)")),
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(reason) => {
            eprintln!("wtransport_echo: {reason}");
            std::process::exit(2);
        }
    };
    let runtime = match args.threads {
        0 | 1 => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        threads => {
            tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()
        }
    }
    .expect("tokio runtime");
    if let Err(error) = runtime.block_on(serve(args.udp)) {
        eprintln!("wtransport_echo: {error}");
        std::process::exit(1);
    }
}

async fn serve(udp: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let identity = Identity::self_signed_builder()
        .subject_alt_names(["localhost", "127.0.0.1", "::1"])
        .from_now_utc()
        .validity_days(14)
        .build()?;
    let certificate = &identity.certificate_chain().as_slice()[0];
    let sha256 = hex::encode(Sha256::digest(certificate.der()));
    let config = ServerConfig::builder()
        .with_bind_address(udp)
        .with_identity(identity)
        .max_idle_timeout(Some(Duration::from_secs(30)))?
        .build();
    let endpoint = Endpoint::server(config)?;
    println!("listening udp={}", endpoint.local_addr()?);
    println!("certificate sha-256 (hex): {sha256}");
    let mut session_id = 0u64;
    loop {
        let incoming = endpoint.accept().await;
        session_id += 1;
        tokio::spawn(handle(incoming, session_id));
    }
}

async fn handle(incoming: IncomingSession, session_id: u64) {
    let Ok(request) = incoming.await else { return };
    let Ok(connection) = request.accept().await else { return };
    let datagrams = echo_datagrams(connection.clone());
    let control = async {
        // The first bidirectional stream is the control stream; v1 opens
        // no other.
        if let Ok((send, recv)) = connection.accept_bi().await {
            control_stream(send, recv, session_id).await;
        }
    };
    tokio::join!(datagrams, control);
}

async fn control_stream(mut send: SendStream, mut recv: RecvStream, session_id: u64) {
    let mut buffer = vec![0u8; READ_CHUNK_BYTES];
    let mut frames = FrameDecoder::new();
    let mut out = BytesMut::with_capacity(1_024);
    loop {
        let length = match recv.read(&mut buffer).await {
            Ok(Some(length)) => length,
            _ => return,
        };
        frames.extend(&buffer[..length]);
        while let Ok(Some(body)) = frames.next_body() {
            match decode_body(&body) {
                Ok(Message::Hello(hello)) => encode_frame(&welcome(&hello, session_id), &mut out),
                Ok(Message::Ping(ping)) => encode_frame(&pong(&ping), &mut out),
                Ok(Message::Bye(_)) => {
                    let _ = send.finish().await;
                    return;
                }
                _ => {}
            }
        }
        if !out.is_empty() {
            if send.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
    }
}

async fn echo_datagrams(connection: Connection) {
    let mut out = BytesMut::with_capacity(wire::MAX_DATAGRAM_LEN);
    while let Ok(datagram) = connection.receive_datagram().await {
        let payload = datagram.payload();
        let Ok(bodies) = datagram_bodies(&payload) else { continue };
        for body in bodies.flatten() {
            if let Ok(Message::Ping(ping)) = decode_body(&body) {
                encode_frame(&pong(&ping), &mut out);
            }
        }
        if !out.is_empty() {
            // A full send buffer drops it, as the network might have.
            let _ = connection.send_datagram(&out);
            out.clear();
        }
    }
}

fn unix_now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_micros() as u64)
}

fn pong(ping: &Ping) -> Pong {
    let now_us = unix_now_us();
    Pong { id: ping.id, ping_sent_us: ping.sent_us, received_us: now_us, sent_us: now_us }
}

/// What `ludus serve` grants a guest, minus rooms and tokens.
fn welcome(hello: &Hello, session_id: u64) -> Welcome {
    Welcome {
        version: wire::PROTOCOL_VERSION,
        capabilities: hello.capabilities & wire::CAP_DATAGRAMS,
        session_id,
        player_id: session_id,
        nickname: hello.nickname.clone().unwrap_or_else(|| Text::from_static("guest")),
        resumed: false,
        resume_token: Text::default(),
        server_time_us: unix_now_us(),
        heartbeat_ms: 5_000,
        idle_timeout_ms: 30_000,
        limits: Limits {
            max_frame_len: wire::MAX_FRAME_LEN as u32,
            max_datagram_len: wire::MAX_DATAGRAM_LEN as u16,
            max_chat_len: wire::MAX_CHAT_LEN as u16,
            max_inputs_per_second: 120,
        },
    }
}
