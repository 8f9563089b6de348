//! The kernel's share of a game server's work, measured alone: what one
//! thread pays in system calls to send one state message to each of N
//! clients per tick and read one input from each, over loopback, with no
//! protocol, no encryption and no game around it. It is the floor under
//! any server on this machine: `ludus serve`'s cost per delivered state
//! (docs/BENCHMARKS.md, capacity) can only approach it from above.
//!
//! ```sh
//! cargo run --release --example kernel_floor -- --transport tcp --clients 1000
//! cargo run --release --example kernel_floor -- --transport udp --clients 1000
//! ```
//!
//! The "server" thread (pinned to core 0 when there are two or more)
//! does, each tick: TCP, one `write` of the state and one `read` per
//! client (one socket per client, as WebSocket has); UDP, the states in
//! `sendmmsg` batches of 64 from one socket, the inputs drained with
//! `recvmmsg` (as the QUIC endpoint does). The "clients" run on another
//! thread (core 1): once per tick each drains what arrived and sends one
//! input (its CPU is reported too: a load generator pays as much). The
//! server thread's CPU time (user + system, RUSAGE_THREAD) over the window
//! is divided by the client ticks served: microseconds per state sent and
//! input received. On loopback the sender's system call also runs the
//! receiving side of the kernel's network stack, as it does for the real
//! server in the capacity runs.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Datagrams per `sendmmsg`/`recvmmsg` call, as the endpoint batches.
const BATCH: usize = 64;

struct Options {
    transport: String,
    clients: usize,
    rate_hz: u64,
    state_bytes: usize,
    input_bytes: usize,
    warmup: Duration,
    window: Duration,
}

fn parse() -> Options {
    let mut options = Options {
        transport: "tcp".into(),
        clients: 1_000,
        rate_hz: 30,
        state_bytes: 200,
        input_bytes: 24,
        warmup: Duration::from_secs(1),
        window: Duration::from_secs(5),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--transport" => options.transport = value(),
            "--clients" => options.clients = value().parse().expect("--clients N"),
            "--rate" => options.rate_hz = value().parse().expect("--rate HZ"),
            "--state-bytes" => options.state_bytes = value().parse().expect("--state-bytes N"),
            "--input-bytes" => options.input_bytes = value().parse().expect("--input-bytes N"),
            "--seconds" => {
                options.window = Duration::from_secs(value().parse().expect("--seconds S"))
            }
            other => panic!("unknown flag {other}; see the file's header for usage"),
        }
    }
    assert!(options.transport == "tcp" || options.transport == "udp", "--transport tcp|udp");
    options
}

fn pin(core: usize) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        return;
    }
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// This thread's CPU time so far, user + system.
fn thread_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut usage);
        usage
    };
    let micros = |time: libc::timeval| time.tv_sec as u64 * 1_000_000 + time.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

fn raise_descriptor_limit() {
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
}

/// Runs `tick` at the rate until the warm-up and the window have passed;
/// returns (client ticks served in the window, server CPU in the window,
/// ticks that started late by more than a whole tick).
fn run_server(
    options: &Options,
    window_open: &AtomicBool,
    mut tick: impl FnMut(),
) -> (u64, Duration, u64) {
    let period = Duration::from_nanos(1_000_000_000 / options.rate_hz);
    let start = Instant::now();
    let mut next = start;
    let mut measuring = None;
    let mut ticks = 0;
    let mut late = 0;
    loop {
        let now = Instant::now();
        if now < next {
            std::thread::sleep(next - now);
            continue;
        }
        if now - next > period {
            late += 1;
        }
        if measuring.is_none() && now - start >= options.warmup {
            measuring = Some((now, thread_cpu()));
            window_open.store(true, Ordering::Relaxed);
            ticks = 0;
            late = 0;
        }
        if let Some((since, cpu)) = measuring {
            if now - since >= options.window {
                return (ticks * options.clients as u64, thread_cpu() - cpu, late);
            }
        }
        tick();
        ticks += 1;
        next += period;
    }
}

/// The client thread's CPU from the window's opening to the stop.
struct ClientCpu {
    window_open: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    since: Option<Duration>,
}

impl ClientCpu {
    fn new() -> ClientCpu {
        ClientCpu {
            window_open: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(AtomicBool::new(false)),
            since: None,
        }
    }

    fn share(&self) -> ClientCpu {
        ClientCpu { window_open: self.window_open.clone(), stop: self.stop.clone(), since: None }
    }

    /// False once stopped; notes the CPU clock when the window opens.
    fn running(&mut self) -> bool {
        if self.since.is_none() && self.window_open.load(Ordering::Relaxed) {
            self.since = Some(thread_cpu());
        }
        !self.stop.load(Ordering::Relaxed)
    }

    fn spent(&self) -> Duration {
        thread_cpu() - self.since.unwrap_or_default()
    }
}

type Outcome = (u64, Duration, u64, Duration);

/// Starts the clients' thread on core 1: `body` gets the CPU meter, the
/// input to send and the rate; the thread returns the CPU it spent in the
/// window.
fn spawn_clients(
    options: &Options,
    control: &ClientCpu,
    body: impl FnOnce(&mut ClientCpu, Vec<u8>, u64) + Send + 'static,
) -> std::thread::JoinHandle<Duration> {
    let mut cpu = control.share();
    let input = vec![7u8; options.input_bytes];
    let rate_hz = options.rate_hz;
    std::thread::spawn(move || {
        pin(1);
        body(&mut cpu, input, rate_hz);
        cpu.spent()
    })
}

/// The clients' loop: `tick` once per period until stopped.
fn every_tick(rate_hz: u64, cpu: &mut ClientCpu, mut tick: impl FnMut()) {
    let period = Duration::from_nanos(1_000_000_000 / rate_hz);
    let mut next = Instant::now();
    while cpu.running() {
        let now = Instant::now();
        if now < next {
            std::thread::sleep(next - now);
            continue;
        }
        tick();
        next += period;
    }
}

fn tcp(options: &Options) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let clients = options.clients;
    let control = ClientCpu::new();
    let client_thread = spawn_clients(options, &control, move |cpu, input, rate_hz| {
        let mut streams: Vec<TcpStream> = (0..clients)
            .map(|_| {
                let stream = TcpStream::connect(addr).unwrap();
                stream.set_nodelay(true).unwrap();
                stream.set_nonblocking(true).unwrap();
                stream
            })
            .collect();
        let mut buffer = vec![0u8; 65_536];
        // Each client drains what arrived and sends its input: two
        // reads (the last says WouldBlock) and one write.
        every_tick(rate_hz, cpu, || {
            for stream in &mut streams {
                while let Ok(read) = stream.read(&mut buffer) {
                    if read == 0 {
                        break;
                    }
                }
                let _ = stream.write(&input);
            }
        });
    });
    pin(0);
    let mut streams: Vec<TcpStream> = (0..clients)
        .map(|_| {
            let (stream, _) = listener.accept().unwrap();
            stream.set_nodelay(true).unwrap();
            stream.set_nonblocking(true).unwrap();
            stream
        })
        .collect();
    let state = vec![9u8; options.state_bytes];
    let mut buffer = vec![0u8; 65_536];
    let (ticks, cpu, late) = run_server(options, &control.window_open, || {
        for stream in &mut streams {
            let _ = stream.write(&state);
            match stream.read(&mut buffer) {
                Ok(_) => {}
                Err(error) if error.kind() == ErrorKind::WouldBlock => {}
                Err(error) => panic!("read: {error}"),
            }
        }
    });
    control.stop.store(true, Ordering::Relaxed);
    (ticks, cpu, late, client_thread.join().unwrap())
}

fn sockaddr(addr: SocketAddr) -> libc::sockaddr_in {
    let SocketAddr::V4(v4) = addr else { panic!("IPv4 loopback only") };
    // SAFETY: sockaddr_in is plain old data.
    let mut raw: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    raw.sin_family = libc::AF_INET as libc::sa_family_t;
    raw.sin_port = v4.port().to_be();
    raw.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
    raw
}

fn udp(options: &Options) -> Outcome {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    server.set_nonblocking(true).unwrap();
    let server_addr = server.local_addr().unwrap();
    let sockets: Vec<UdpSocket> = (0..options.clients)
        .map(|_| {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.set_nonblocking(true).unwrap();
            socket
        })
        .collect();
    let peers: Vec<libc::sockaddr_in> =
        sockets.iter().map(|socket| sockaddr(socket.local_addr().unwrap())).collect();
    let control = ClientCpu::new();
    let client_thread = spawn_clients(options, &control, move |cpu, input, rate_hz| {
        let mut buffer = vec![0u8; 2_048];
        every_tick(rate_hz, cpu, || {
            for socket in &sockets {
                while socket.recv(&mut buffer).is_ok() {}
                let _ = socket.send_to(&input, server_addr);
            }
        });
    });
    pin(0);
    let fd = server.as_raw_fd();
    let state = vec![9u8; options.state_bytes];
    let mut receive_buffers = vec![[0u8; 2_048]; BATCH];
    let (ticks, cpu, late) = run_server(options, &control.window_open, || {
        for chunk in peers.chunks(BATCH) {
            let mut iovecs: Vec<libc::iovec> = chunk
                .iter()
                .map(|_| libc::iovec { iov_base: state.as_ptr() as *mut _, iov_len: state.len() })
                .collect();
            let mut messages: Vec<libc::mmsghdr> = chunk
                .iter()
                .zip(iovecs.iter_mut())
                .map(|(peer, iovec)| {
                    // SAFETY: mmsghdr is plain old data; the pointers set
                    // below outlive the sendmmsg call.
                    let mut message: libc::mmsghdr = unsafe { std::mem::zeroed() };
                    message.msg_hdr.msg_name = peer as *const _ as *mut _;
                    message.msg_hdr.msg_namelen =
                        std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
                    message.msg_hdr.msg_iov = iovec;
                    message.msg_hdr.msg_iovlen = 1;
                    message
                })
                .collect();
            // SAFETY: `messages` points at live iovecs and addresses.
            unsafe { libc::sendmmsg(fd, messages.as_mut_ptr(), messages.len() as u32, 0) };
        }
        loop {
            let mut iovecs: Vec<libc::iovec> = receive_buffers
                .iter_mut()
                .map(|buffer| libc::iovec {
                    iov_base: buffer.as_mut_ptr() as *mut _,
                    iov_len: 2_048,
                })
                .collect();
            let mut messages: Vec<libc::mmsghdr> = iovecs
                .iter_mut()
                .map(|iovec| {
                    // SAFETY: as above.
                    let mut message: libc::mmsghdr = unsafe { std::mem::zeroed() };
                    message.msg_hdr.msg_iov = iovec;
                    message.msg_hdr.msg_iovlen = 1;
                    message
                })
                .collect();
            // SAFETY: `messages` points at live buffers.
            let received = unsafe {
                libc::recvmmsg(
                    fd,
                    messages.as_mut_ptr(),
                    BATCH as u32,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if received < BATCH as i32 {
                break;
            }
        }
    });
    control.stop.store(true, Ordering::Relaxed);
    (ticks, cpu, late, client_thread.join().unwrap())
}

fn main() {
    let options = parse();
    raise_descriptor_limit();
    let (client_ticks, cpu, late, client_cpu) =
        if options.transport == "tcp" { tcp(&options) } else { udp(&options) };
    let per_tick_us = cpu.as_secs_f64() * 1e6 / client_ticks as f64;
    let client_per_tick_us = client_cpu.as_secs_f64() * 1e6 / client_ticks as f64;
    let cores_at = |clients: f64| clients * options.rate_hz as f64 * per_tick_us / 1e6;
    println!(
        "{} clients={} rate={}Hz state={}B input={}B: server thread {:.3} s CPU for {} client \
         ticks = {:.2} us per state sent + input read; late ticks {}; one core would serve {:.0} \
         clients; 5,000 clients would need {:.2} cores; the clients' thread {:.2} us per client \
         tick (draining states, sending inputs)",
        options.transport,
        options.clients,
        options.rate_hz,
        options.state_bytes,
        options.input_bytes,
        cpu.as_secs_f64(),
        client_ticks,
        per_tick_us,
        late,
        1e6 / (per_tick_us * options.rate_hz as f64),
        cores_at(5_000.0),
        client_per_tick_us
    );
}
