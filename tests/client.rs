//! The library's client against a real `ludus serve`: WebSocket (plain and
//! TLS) and WebTransport sessions, Hello / Welcome, Ping round trips on the
//! stream and in datagrams, and certificate pinning that refuses a wrong
//! hash, and hundreds of clients sharing one thread and one `Poll` as the
//! load tester runs them. Each test starts its own server on port 0 in a
//! fresh data dir and reads the bound addresses and the certificate hash
//! from its stdout. `SERVER_LOG=debug` shows the server's log.

mod support;

use std::time::Duration;

use support::start_server;

use ludus::client::blocking::{connect_wt, connect_wt_with};
use ludus::client::wt::{self, WtClient, WtOptions};
use ludus::client::{
    self, Channel, ClientError, ClientEvent, ClientSession, Clock, Credentials, Now, Trust,
    WsClient, WsOptions, WsUrl,
};
use ludus::proto::wire::ErrorCode;
use mio::{Events, Poll, Token};

const PINGS: usize = 20;

/// Hello, then `PINGS` Pings on `channel`; returns the round trips in
/// microseconds. Every one must be positive.
fn hello_and_pings(client: &mut client::Client, label: &str, channel: Channel) -> Vec<u64> {
    let welcome = client.hello("rusty").expect("Welcome");
    assert_eq!(welcome.nickname.as_str(), "rusty");
    assert_ne!(welcome.player_id, 0);
    assert_eq!(welcome.version, 1);
    let mut rtts_us = Vec::new();
    for _ in 0..PINGS {
        let sample = client.ping_on(channel, Duration::from_secs(5)).expect("Pong");
        assert!(sample.rtt_us > 0, "{label}: RTT of 0 us");
        rtts_us.push(sample.rtt_us);
    }
    report(label, &rtts_us);
    rtts_us
}

fn report(label: &str, rtts_us: &[u64]) {
    let mut sorted = rtts_us.to_vec();
    sorted.sort_unstable();
    let listed = match rtts_us.len() <= PINGS {
        true => format!(": {rtts_us:?}"),
        false => String::new(),
    };
    println!(
        "{label}: {} pings, RTT min {} us, median {} us, p99 {} us, max {} us{listed}",
        sorted.len(),
        sorted[0],
        sorted[sorted.len() / 2],
        sorted[sorted.len() * 99 / 100],
        sorted[sorted.len() - 1],
    );
}

#[test]
fn websocket_plain_hello_and_pings() {
    let server = start_server(1);
    let url = format!("ws://{}/ws", server.http);
    let mut client = client::blocking::connect_ws(&url, &WsOptions::default()).unwrap();
    hello_and_pings(&mut client, "ws", Channel::Reliable);
    assert_eq!(client.ws().unwrap().protocol(), Some("ludus.v1"));
    // An unreliable Ping falls back to the stream: WebSocket has no datagrams.
    let sample = client.ping_on(Channel::Datagram, Duration::from_secs(5)).unwrap();
    assert_eq!(sample.channel, Channel::Reliable);
    client.close().unwrap();
}

#[test]
fn websocket_tls_hello_and_pings_with_a_root_or_a_pinned_hash() {
    let server = start_server(1);
    let url = format!("wss://127.0.0.1:{}/ws", server.https.port());
    let by_root = WsOptions::with_trust(&Trust::RootPem(server.cert_pem.clone())).unwrap();
    let mut client = client::blocking::connect_ws(&url, &by_root).unwrap();
    hello_and_pings(&mut client, "wss (dev certificate as root)", Channel::Reliable);
    client.close().unwrap();

    let by_hash = WsOptions::with_trust(&Trust::CertificateHash(server.cert_sha256)).unwrap();
    let mut client = client::blocking::connect_ws(&url, &by_hash).unwrap();
    hello_and_pings(&mut client, "wss (pinned hash)", Channel::Reliable);
    client.close().unwrap();
}

#[test]
fn websocket_tls_refuses_a_wrong_certificate_hash() {
    let server = start_server(1);
    let url = format!("wss://127.0.0.1:{}/ws", server.https.port());
    let mut wrong = server.cert_sha256;
    wrong[0] ^= 1;
    let options = WsOptions::with_trust(&Trust::CertificateHash(wrong)).unwrap();
    let mut client = client::blocking::connect_ws(&url, &options).unwrap();
    match client.hello("mallory") {
        Err(ClientError::Tls(reason)) => println!("refused as expected: {reason}"),
        other => panic!("a wrong hash must be refused, got {other:?}"),
    }
}

#[test]
fn webtransport_refuses_a_wrong_certificate_hash() {
    let server = start_server(1);
    let mut wrong = server.cert_sha256;
    wrong[31] ^= 0x80;
    let mut client = connect_wt(server.udp, wrong).unwrap();
    match client.hello("mallory") {
        Err(ClientError::CertificateHash { expected, actual }) => {
            assert_eq!(expected, hex::encode(wrong));
            assert_eq!(actual, hex::encode(server.cert_sha256));
        }
        other => panic!("a wrong hash must be refused, got {other:?}"),
    }
}

/// Needs the server's WebTransport (src/reactor/quic/app.rs).
#[test]
fn webtransport_hello_and_pings_on_the_stream_and_in_datagrams() {
    let server = start_server(1);
    let mut client = connect_wt(server.udp, server.cert_sha256).unwrap();
    hello_and_pings(&mut client, "wt stream", Channel::Reliable);
    assert!(
        client.session().datagrams_enabled(),
        "the server grants CAP_DATAGRAMS over WebTransport"
    );
    // Datagrams may be lost, even on loopback: a lost Ping is retried.
    let mut rtts_us = Vec::new();
    let mut channels = Vec::new();
    let mut lost = 0;
    while rtts_us.len() < PINGS {
        match client.ping_on(Channel::Datagram, Duration::from_millis(500)) {
            Ok(sample) => {
                assert!(sample.rtt_us > 0);
                rtts_us.push(sample.rtt_us);
                channels.push(sample.channel);
            }
            Err(ClientError::Timeout(_)) if lost < PINGS => lost += 1,
            Err(error) => panic!("datagram ping: {error}"),
        }
    }
    report("wt datagrams", &rtts_us);
    println!("datagram pings lost: {lost}; Pongs came back by {channels:?}");
    if let Some(rtt) = client.wt().unwrap().connection().quic_rtt() {
        println!("quiche's own smoothed RTT: {} us", rtt.as_micros());
    }
    client.close().unwrap();
}

#[test]
fn webtransport_from_a_foreign_origin_is_refused_with_403() {
    let server = start_server(1);
    let mut options = WtOptions::new(Trust::CertificateHash(server.cert_sha256));
    options.origin = Some("https://evil.example".to_owned());
    let mut client = connect_wt_with(server.udp, &options).unwrap();
    match client.hello("mallory") {
        Err(ClientError::SessionRefused(403)) => {}
        other => panic!("a foreign origin must get 403, got {other:?}"),
    }
    // From a local development page it is accepted.
    options.origin = Some(format!("http://localhost:{}", server.http.port()));
    let mut client = connect_wt_with(server.udp, &options).unwrap();
    client.hello("local").unwrap();
    client.close().unwrap();
}

#[test]
fn websocket_refused_hello_reports_the_servers_error() {
    let server = start_server(1);
    let url = format!("ws://{}/ws", server.http);
    let mut client = client::blocking::connect_ws(&url, &WsOptions::default()).unwrap();
    let credentials =
        Credentials { access_token: Some("not.a.jwt".into()), ..Credentials::default() };
    match client.hello_with(&credentials, Duration::from_secs(5)) {
        Err(ClientError::Closed { code, reason }) => {
            assert_eq!(code, ErrorCode::InvalidToken as u16, "{reason}");
        }
        other => panic!("a token the server cannot check must be refused, got {other:?}"),
    }
    let error = client.session().last_error().expect("Error before Bye");
    assert_eq!(error.in_reply_to, 0x01, "in reply to Hello");
    assert!(client.closed().is_some());
}

/// One bot of [`many_clients_share_one_poll`]: either transport behind the
/// same readiness calls.
enum Bot {
    Ws(Box<WsClient>),
    Wt(Box<WtClient>),
}

impl Bot {
    fn session_mut(&mut self) -> &mut ClientSession {
        match self {
            Bot::Ws(bot) => bot.session_mut(),
            Bot::Wt(bot) => bot.session_mut(),
        }
    }

    fn poll_event(&mut self) -> Option<ClientEvent> {
        match self {
            Bot::Ws(bot) => bot.poll_event(),
            Bot::Wt(bot) => bot.poll_event(),
        }
    }

    fn poll_timeout(&self) -> Option<u64> {
        match self {
            Bot::Ws(bot) => bot.poll_timeout(),
            Bot::Wt(bot) => bot.poll_timeout(),
        }
    }

    fn on_ready(&mut self, now: Now) {
        match self {
            Bot::Ws(bot) => bot.on_readable(now),
            Bot::Wt(bot) => bot.on_readable(now),
        }
    }

    fn on_timeout(&mut self, now: Now) {
        match self {
            Bot::Ws(bot) => bot.on_timeout(now),
            Bot::Wt(bot) => bot.on_timeout(now),
        }
    }

    fn is_done(&self) -> bool {
        match self {
            Bot::Ws(bot) => bot.is_done(),
            Bot::Wt(bot) => bot.is_done(),
        }
    }
}

/// Proves the readiness-driven clients scale the way the load tester uses
/// them: hundreds of WebSocket and WebTransport clients on one thread and
/// one mio `Poll`, each saying Hello, pinging a few times and closing.
#[test]
fn many_clients_share_one_poll() {
    const WS_BOTS: usize = 200;
    const WT_BOTS: usize = 50;
    const PINGS_EACH: u32 = 5;
    let server = start_server(1);
    let clock = Clock::new();
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(1024);
    let url = WsUrl::parse(&format!("ws://{}/ws", server.http)).unwrap();
    let ws_options = WsOptions::default();
    let mut quic_config = wt::quiche_config().unwrap();
    let wt_options = WtOptions::new(Trust::CertificateHash(server.cert_sha256));
    let mut bots = Vec::new();
    for index in 0..WS_BOTS + WT_BOTS {
        let now = clock.now();
        let mut bot = match index < WS_BOTS {
            true => {
                Bot::Ws(Box::new(WsClient::connect(server.http, &url, &ws_options, now).unwrap()))
            }
            false => Bot::Wt(Box::new(
                WtClient::connect(server.udp, &wt_options, &mut quic_config, now).unwrap(),
            )),
        };
        match &mut bot {
            Bot::Ws(client) => client.register(poll.registry(), Token(index)).unwrap(),
            Bot::Wt(client) => client.register(poll.registry(), Token(index)).unwrap(),
        }
        bot.session_mut().hello(&Credentials::guest(&format!("bot{index}")), now).unwrap();
        bot.on_ready(now);
        bots.push(bot);
    }
    let mut pongs = vec![0u32; bots.len()];
    let mut rtts_us: Vec<u64> = Vec::new();
    let started = std::time::Instant::now();
    while bots.iter().any(|bot| !bot.is_done()) {
        assert!(started.elapsed() < Duration::from_secs(60), "bots stuck: {pongs:?}");
        let now = clock.now();
        let next = bots.iter().filter_map(Bot::poll_timeout).min();
        let wait = next.map_or(Duration::from_millis(100), |deadline| clock.until(now, deadline));
        poll.poll(&mut events, Some(wait.min(Duration::from_millis(100)))).unwrap();
        let now = clock.now();
        for event in events.iter() {
            bots[event.token().0].on_ready(now);
        }
        for (index, bot) in bots.iter_mut().enumerate() {
            if bot.poll_timeout().is_some_and(|deadline| deadline <= now.monotonic_us) {
                bot.on_timeout(now);
            }
            let mut commanded = false;
            while let Some(event) = bot.poll_event() {
                match event {
                    ClientEvent::Welcome(_) => {
                        bot.session_mut().ping(Channel::Datagram, now).unwrap();
                        commanded = true;
                    }
                    ClientEvent::Pong(sample) => {
                        rtts_us.push(sample.rtt_us);
                        pongs[index] += 1;
                        match pongs[index] < PINGS_EACH {
                            true => {
                                bot.session_mut().ping(Channel::Datagram, now).map(drop).unwrap()
                            }
                            false => bot.session_mut().close(ErrorCode::None, "done"),
                        }
                        commanded = true;
                    }
                    ClientEvent::Message(message) => panic!("bot {index}: {message:?}"),
                    ClientEvent::Closed(reason) => {
                        assert_eq!(reason.code, 0, "bot {index}: {reason:?}");
                    }
                }
            }
            if commanded {
                bot.on_ready(now);
            }
        }
    }
    assert!(pongs.iter().all(|&count| count == PINGS_EACH), "{pongs:?}");
    report(&format!("{WS_BOTS} ws + {WT_BOTS} wt bots on one thread"), &rtts_us);
    println!("all {} bots done in {:?}", bots.len(), started.elapsed());
}
