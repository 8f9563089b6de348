//! Thin, safe wrappers over the operating system calls a shard needs at
//! start-up: binding its own sockets with SO_REUSEPORT, pinning its thread to
//! a core, and reading CPU time for benchmarks.
//!
//! Contract: every function here is called once per socket or thread at
//! start-up (or by benchmarks), never per packet. Nothing here allocates on a
//! hot path. Linux only, like the rest of the reactor; every kernel feature
//! that may be missing (UDP GRO, UDP GSO) is probed and reported, never
//! assumed.
//!
//! Accepted TCP streams: use mio's `TcpStream::set_nodelay(true)` on each
//! stream after `accept`; TCP_NODELAY is per stream, not inherited from the
//! listener on every platform, so no helper is needed here.

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// Socket buffer size requested for every shard socket, bytes. The kernel caps
/// it at net.core.{r,w}mem_max and reports twice the granted value (its
/// bookkeeping overhead); [`udp_socket_info`] reads back what was granted.
pub const SOCKET_BUFFER_BYTES: usize = 4 << 20;

/// Pending-connection queue of every TCP listener. The kernel caps it at
/// net.core.somaxconn.
pub const TCP_BACKLOG: i32 = 1024;

/// `setsockopt(SOL_UDP, UDP_SEGMENT)`: UDP generic segmentation offload, as a
/// cmsg on send (Linux 4.18).
pub const UDP_SEGMENT: libc::c_int = 103;
/// `setsockopt(SOL_UDP, UDP_GRO)`: UDP generic receive offload (Linux 5.0).
pub const UDP_GRO: libc::c_int = 104;
/// The socket option level of UDP options (`IPPROTO_UDP`).
pub const SOL_UDP: libc::c_int = 17;

/// What the kernel actually granted a UDP socket, for the start-up log and for
/// [`super::udp::UdpIo`] to size its buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpSocketInfo {
    pub local: SocketAddr,
    /// SO_RCVBUF as reported (twice the granted payload budget on Linux).
    pub receive_buffer_bytes: usize,
    /// SO_SNDBUF as reported (twice the granted payload budget on Linux).
    pub send_buffer_bytes: usize,
    /// UDP_GRO is on: one read may return several coalesced datagrams.
    pub gro: bool,
    /// The kernel knows UDP_SEGMENT, so GSO sends may work. The egress device
    /// may still refuse them (EIO); `UdpIo` falls back then.
    pub gso: bool,
}

/// Binds a non-blocking UDP socket for one shard: optionally SO_REUSEPORT (so
/// every shard binds the same port and the kernel spreads flows by hash),
/// 4 MiB buffers requested, dual-stack for IPv6 addresses, and UDP GRO
/// enabled when the kernel has it. Logs what was granted.
pub fn bind_udp(addr: SocketAddr, reuse_port: bool) -> io::Result<mio::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // No SO_REUSEADDR on UDP: it buys nothing (UDP has no TIME_WAIT) and lets
    // a second process bind the same address and silently take its traffic.
    prepare(&socket, addr, reuse_port, false)?;
    socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES)?;
    socket.set_send_buffer_size(SOCKET_BUFFER_BYTES)?;
    socket.bind(&addr.into())?;
    // GRO is an optimisation: a kernel without it still serves, one datagram
    // per read.
    if let Err(error) = set_udp_gro(&socket, true) {
        tracing::debug!(%addr, %error, "UDP GRO unavailable");
    }
    let socket = mio::net::UdpSocket::from_std(socket.into());
    let info = udp_socket_info(&socket)?;
    tracing::debug!(
        local = %info.local,
        reuse_port,
        receive_buffer_bytes = info.receive_buffer_bytes,
        send_buffer_bytes = info.send_buffer_bytes,
        gro = info.gro,
        gso = info.gso,
        "bound UDP socket"
    );
    Ok(socket)
}

/// Binds a non-blocking TCP listener for one shard: SO_REUSEADDR, optionally
/// SO_REUSEPORT, dual-stack for IPv6 addresses, backlog [`TCP_BACKLOG`].
pub fn bind_tcp(addr: SocketAddr, reuse_port: bool) -> io::Result<mio::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // SO_REUSEADDR so a restart can bind while old connections sit in
    // TIME_WAIT.
    prepare(&socket, addr, reuse_port, true)?;
    socket.bind(&addr.into())?;
    socket.listen(TCP_BACKLOG)?;
    Ok(mio::net::TcpListener::from_std(socket.into()))
}

/// Options common to UDP and TCP shard sockets, set before `bind`.
fn prepare(
    socket: &Socket,
    addr: SocketAddr,
    reuse_port: bool,
    reuse_address: bool,
) -> io::Result<()> {
    socket.set_nonblocking(true)?;
    socket.set_reuse_address(reuse_address)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        // `[::]` then also accepts IPv4 peers, seen as ::ffff:a.b.c.d.
        socket.set_only_v6(false)?;
    }
    Ok(())
}

/// Turns UDP GRO on or off. Fails with ENOPROTOOPT on kernels before 5.0.
pub fn set_udp_gro(socket: &impl AsRawFd, enabled: bool) -> io::Result<()> {
    set_int_option(socket.as_raw_fd(), SOL_UDP, UDP_GRO, libc::c_int::from(enabled))
}

/// Reads back the buffers and offloads a UDP socket actually has.
pub fn udp_socket_info(socket: &mio::net::UdpSocket) -> io::Result<UdpSocketInfo> {
    let fd = socket.as_raw_fd();
    Ok(UdpSocketInfo {
        local: socket.local_addr()?,
        receive_buffer_bytes: int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUF)? as usize,
        send_buffer_bytes: int_option(fd, libc::SOL_SOCKET, libc::SO_SNDBUF)? as usize,
        gro: udp_gro_enabled(socket).unwrap_or(false),
        gso: udp_gso_supported(socket),
    })
}

/// Whether UDP_GRO is on. Kernels 5.0 to 5.x that can set GRO but not read it
/// back answer with an error; callers that must not truncate should then
/// assume it may be on.
pub fn udp_gro_enabled(socket: &impl AsRawFd) -> io::Result<bool> {
    Ok(int_option(socket.as_raw_fd(), SOL_UDP, UDP_GRO)? != 0)
}

/// Whether the kernel knows UDP_SEGMENT. Reading the option leaves the socket
/// untouched (setting it would segment every later send).
pub fn udp_gso_supported(socket: &impl AsRawFd) -> bool {
    int_option(socket.as_raw_fd(), SOL_UDP, UDP_SEGMENT).is_ok()
}

fn set_int_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` lives across the call and its exact size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn int_option(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut length = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `length` outlive the call; the kernel writes at
    // most `length` bytes.
    let rc = unsafe {
        libc::getsockopt(fd, level, name, (&mut value as *mut libc::c_int).cast(), &mut length)
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Most cores `cpu_set_t` can name.
const CORES_MAX: usize = libc::CPU_SETSIZE as usize;

/// Pins the calling thread to one core. Fails with InvalidInput for a core
/// number `cpu_set_t` cannot hold, and with the kernel's EINVAL for a core
/// this process may not run on.
pub fn pin_to_core(core: usize) -> io::Result<()> {
    if core >= CORES_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("core {core} is beyond the {CORES_MAX} cores cpu_set_t can name"),
        ));
    }
    // SAFETY: cpu_set_t is plain bits; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
    // SAFETY: `core` is below CPU_SETSIZE, checked above.
    unsafe { libc::CPU_SET(core, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the
    // calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The cores the calling thread may run on, ascending. Shards are pinned one
/// per entry. Should the affinity query fail (it does not on Linux), every
/// core `available_parallelism` counts is assumed.
pub fn available_cores() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain bits; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_getaffinity(0, mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        let error = io::Error::last_os_error();
        let count = std::thread::available_parallelism().map_or(1, |n| n.get());
        tracing::warn!(%error, count, "sched_getaffinity failed; assuming cores 0..count");
        return (0..count).collect();
    }
    // SAFETY: every index is below CPU_SETSIZE.
    (0..CORES_MAX).filter(|&core| unsafe { libc::CPU_ISSET(core, &set) }).collect()
}

/// CPU time of the whole process so far: (user, system).
pub fn rusage_self() -> (Duration, Duration) {
    // SAFETY: rusage is plain data; all zeroes is valid.
    let mut usage: libc::rusage = unsafe { mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage(RUSAGE_SELF) cannot fail: {}", io::Error::last_os_error());
    (duration_of_timeval(usage.ru_utime), duration_of_timeval(usage.ru_stime))
}

/// CPU time the calling thread has used so far (user and system together).
pub fn thread_cpu_time() -> Duration {
    // SAFETY: timespec is plain data; all zeroes is valid.
    let mut time: libc::timespec = unsafe { mem::zeroed() };
    // SAFETY: `time` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut time) };
    assert_eq!(rc, 0, "CLOCK_THREAD_CPUTIME_ID cannot fail: {}", io::Error::last_os_error());
    Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
}

fn duration_of_timeval(time: libc::timeval) -> Duration {
    Duration::new(time.tv_sec as u64, time.tv_usec as u32 * 1_000)
}

/// utime + stime of a whole process (all its threads) from /proc/PID/stat,
/// microseconds; None when the process is gone or the file unreadable.
pub fn process_cpu_us(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its ')'.
    let after_name = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = after_name.split_whitespace();
    // Fields 14 and 15 of stat(5) are the 12th and 13th after the name.
    let utime = fields.nth(11)?.parse::<u64>().ok()?;
    let stime = fields.next()?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some((utime + stime) * 1_000_000 / ticks_per_second)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};

    fn loopback_any_port() -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
    }

    #[test]
    fn udp_reuse_port_lets_two_sockets_share_a_port() {
        // Proves what a shard relies on: N sockets on one port, one per shard.
        let first = bind_udp(loopback_any_port(), true).unwrap();
        let port_addr = first.local_addr().unwrap();
        let second = bind_udp(port_addr, true).unwrap();
        assert_eq!(second.local_addr().unwrap(), port_addr);

        let info = udp_socket_info(&second).unwrap();
        assert!(info.receive_buffer_bytes > 0 && info.send_buffer_bytes > 0);
    }

    #[test]
    fn udp_without_reuse_port_refuses_a_shared_port() {
        // Proves the flag matters (and that the test above is not vacuous).
        let first = bind_udp(loopback_any_port(), false).unwrap();
        let error = bind_udp(first.local_addr().unwrap(), false).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    fn udp_gro_can_be_switched() {
        // Proves set_udp_gro and udp_gro_enabled agree, where the kernel has GRO.
        let socket = bind_udp(loopback_any_port(), false).unwrap();
        if udp_gro_enabled(&socket).is_err() {
            return; // Kernel cannot report GRO; nothing to check.
        }
        set_udp_gro(&socket, false).unwrap();
        assert!(!udp_gro_enabled(&socket).unwrap());
        set_udp_gro(&socket, true).unwrap();
        assert!(udp_gro_enabled(&socket).unwrap());
    }

    #[test]
    fn udp_dual_stack_binds_on_ipv6_any() {
        // Proves [::] binds dual-stack where the host has IPv6 at all.
        let addr: SocketAddr = "[::]:0".parse().unwrap();
        match bind_udp(addr, true) {
            Ok(socket) => assert!(socket.local_addr().unwrap().is_ipv6()),
            Err(error) => assert_eq!(error.kind(), io::ErrorKind::Unsupported, "{error}"),
        }
    }

    #[test]
    fn tcp_reuse_port_lets_two_listeners_share_a_port() {
        let first = bind_tcp(loopback_any_port(), true).unwrap();
        let port_addr = first.local_addr().unwrap();
        let second = bind_tcp(port_addr, true).unwrap();
        assert_eq!(second.local_addr().unwrap(), port_addr);
        // Both listen: a connection succeeds.
        let stream = std::net::TcpStream::connect(port_addr).unwrap();
        stream.set_nodelay(true).unwrap();
    }

    #[test]
    fn pinning_to_an_available_core_works_and_to_a_missing_one_fails() {
        // Run on a scratch thread so the test runner's threads stay unpinned.
        std::thread::spawn(|| {
            let cores = available_cores();
            assert!(!cores.is_empty());
            let core = *cores.last().unwrap();
            pin_to_core(core).unwrap();
            assert_eq!(available_cores(), vec![core]);

            let error = pin_to_core(100_000).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
            // Inside cpu_set_t but not a core this machine has (it has fewer
            // than 1023): the kernel refuses with EINVAL.
            let error = pin_to_core(CORES_MAX - 1).unwrap_err();
            assert_eq!(error.raw_os_error(), Some(libc::EINVAL));
            // A refused pin leaves the old affinity in place.
            assert_eq!(available_cores(), vec![core]);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn cpu_time_grows_with_busy_work() {
        // Work until the thread's CPU clock moves (bounded by a generous wall
        // limit): proves both clocks count this process's work without
        // assuming how much CPU a loaded machine grants per millisecond.
        let (user_before, system_before) = rusage_self();
        let thread_before = thread_cpu_time();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while thread_cpu_time() < thread_before + Duration::from_millis(5)
            && start.elapsed() < Duration::from_secs(20)
        {
            for _ in 0..10_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        let (user_after, system_after) = rusage_self();
        assert!(thread_cpu_time() >= thread_before + Duration::from_millis(5));
        assert!(user_after + system_after > user_before + system_before);
    }
}
