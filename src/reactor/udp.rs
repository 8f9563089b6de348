//! Batched UDP I/O for one shard socket: many datagrams per system call, and
//! the kernel's segmentation offloads, behind one small interface.
//!
//! Contract:
//! - Owns one non-blocking UDP socket and every buffer it needs, allocated in
//!   [`UdpIo::new`]. Nothing allocates after construction: receiving,
//!   queueing and flushing reuse fixed arrays (the message headers are built
//!   on the stack for each call).
//! - Runs on its shard thread only; it never blocks and never sleeps.
//! - Receive: [`UdpIo::recv_batch`] reads up to [`BATCH_MAX`] messages with one
//!   `recvmmsg` and hands each datagram to a callback, splitting reads that
//!   UDP GRO coalesced back into the datagrams the peer sent.
//! - Send: the caller writes packets straight into a queued buffer
//!   ([`UdpIo::next_buffer`], then [`UdpIo::commit`]); [`UdpIo::flush`] sends the
//!   whole queue with one `sendmmsg`. A buffer may hold a train of equal-size
//!   datagrams to one destination, sent as one UDP GSO message.
//! - Degrades, never fails, when the kernel lacks a feature: no `recvmmsg` or
//!   `sendmmsg` (ENOSYS) means one `recvmsg`/`sendmsg` per datagram; no GSO,
//!   or a device that refuses it, means trains go out as single datagrams;
//!   no GRO means one datagram per read. Each fallback is detected once and
//!   remembered.
//! - Send errors other than WouldBlock (unreachable hosts, refused
//!   broadcasts) drop the datagrams concerned and count them; they are never
//!   fatal to the shard.
//!
//! Readiness discipline (mio is edge-triggered):
//! - On READABLE, call `recv_batch` until it returns `Ok(0)`.
//! - Queue a loop iteration's packets, calling `flush` whenever
//!   `next_buffer` returns `None` and once at the end of the iteration.
//! - `flush` returning [`Flush::Blocked`] means the kernel's send buffer is
//!   full: stop producing packets for this socket (`next_buffer` stays `None`
//!   once the queue is full), wait for WRITABLE, then `flush` again. Register
//!   the socket with `READABLE | WRITABLE` so that wake-up arrives.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::ptr;

use super::sys;

/// Most messages one `recvmmsg` or `sendmmsg` handles, and the length of the
/// transmit queue.
pub const BATCH_MAX: usize = 32;
/// Most datagrams one GSO train may hold (the kernel's UDP_MAX_SEGMENTS on
/// the oldest kernels with GSO).
pub const GSO_SEGMENTS_MAX: usize = 64;
/// Most payload bytes one send may carry: a whole GSO train, or one datagram
/// (the IPv4 UDP payload limit, 65 535 - 20 - 8).
pub const SEND_BYTES_MAX: usize = 65_507;
/// Receive buffer of one message when GRO may coalesce several datagrams.
pub const RECEIVE_BYTES_GRO: usize = 65_535;
/// Receive buffer of one message without GRO: above any path MTU QUIC uses.
pub const RECEIVE_BYTES_PLAIN: usize = 2_048;

/// Distance between send buffers; a page multiple above [`SEND_BYTES_MAX`].
const SEND_STRIDE: usize = 65_536;
/// Room for the control messages we read (UDP_GRO) or write (UDP_SEGMENT),
/// each CMSG_SPACE(4) = 24 bytes or less on 64-bit Linux.
const CONTROL_BYTES: usize = 64;

const _: () = assert!(SEND_BYTES_MAX <= SEND_STRIDE);
const _: () = assert!(GSO_SEGMENTS_MAX <= u16::MAX as usize);
const _: () = assert!(RECEIVE_BYTES_PLAIN <= RECEIVE_BYTES_GRO);

/// What `UdpIo` may use; both on by default. Turning a feature off forces the
/// fallback path, for tests and for operators working round a broken kernel
/// or driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpIoOptions {
    /// Use `recvmmsg`/`sendmmsg` (else one `recvmsg`/`sendmsg` per datagram).
    pub mmsg: bool,
    /// Send trains as one UDP GSO message when the kernel supports it.
    pub gso: bool,
}

impl Default for UdpIoOptions {
    fn default() -> Self {
        UdpIoOptions { mmsg: true, gso: true }
    }
}

/// Running totals since construction, for metrics and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpCounters {
    pub datagrams_received: u64,
    pub bytes_received: u64,
    pub datagrams_sent: u64,
    pub bytes_sent: u64,
    pub receive_syscalls: u64,
    pub send_syscalls: u64,
    /// Reads that GRO had coalesced from several datagrams.
    pub gro_reads: u64,
    /// Sends that carried a UDP_SEGMENT train of several datagrams.
    pub gso_trains: u64,
    /// Datagrams received but dropped: truncated, or from no address.
    pub receive_drops: u64,
    /// Errors the receive path skipped (e.g. a queued ICMP error).
    pub receive_errors: u64,
    /// Datagrams not sent because of an error other than WouldBlock.
    pub send_drops: u64,
}

/// The outcome of [`UdpIo::flush`].
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// The queue is empty.
    Done,
    /// The socket's send buffer is full; what is left stays queued. Wait for
    /// WRITABLE and flush again.
    Blocked,
}

/// The transmit queue has no free buffer; flush first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("UDP transmit queue full ({BATCH_MAX} buffers); flush first")]
pub struct QueueFull;

/// One queued send: `length` bytes in its slot's buffer, cut into datagrams
/// of `segment_bytes` (the last may be shorter).
#[derive(Debug, Clone, Copy)]
struct Transmit {
    name_length: libc::socklen_t,
    length: usize,
    segment_bytes: usize,
    datagrams: usize,
    datagrams_sent: usize,
}

impl Transmit {
    const EMPTY: Transmit =
        Transmit { name_length: 0, length: 0, segment_bytes: 1, datagrams: 0, datagrams_sent: 0 };
}

/// One message header of a send call, mapped back to its transmit.
#[derive(Debug, Clone, Copy, Default)]
struct Planned {
    slot: usize,
    datagrams: usize,
    bytes: usize,
    gso: bool,
}

/// Control-message space, aligned for `cmsghdr`.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct Control([u8; CONTROL_BYTES]);

/// Batched, offloaded I/O on one shard's UDP socket. See the module docs for
/// the calling discipline.
pub struct UdpIo {
    socket: mio::net::UdpSocket,
    /// An AF_INET6 socket: IPv4 destinations are sent as v4-mapped.
    ipv6: bool,
    mmsg: bool,
    gso: bool,
    /// Bytes of one receive buffer: [`RECEIVE_BYTES_GRO`] unless GRO is off.
    receive_bytes: usize,
    receive_buffers: Box<[u8]>,
    receive_names: Box<[libc::sockaddr_storage]>,
    receive_controls: Box<[Control]>,
    send_buffers: Box<[u8]>,
    send_names: Box<[libc::sockaddr_storage]>,
    send_controls: Box<[Control]>,
    /// A ring of queued transmits: `queued` of them from slot `head`.
    transmits: [Transmit; BATCH_MAX],
    head: usize,
    queued: usize,
    counters: UdpCounters,
    /// Errors the next send calls report instead of calling the kernel.
    #[cfg(test)]
    injected_send_errors: std::collections::VecDeque<i32>,
}

impl UdpIo {
    /// Wraps a socket (normally from [`sys::bind_udp`]) with every feature the
    /// kernel offers.
    pub fn new(socket: mio::net::UdpSocket) -> io::Result<UdpIo> {
        UdpIo::with_options(socket, UdpIoOptions::default())
    }

    /// Wraps a socket, using only the features `options` allow.
    pub fn with_options(socket: mio::net::UdpSocket, options: UdpIoOptions) -> io::Result<UdpIo> {
        let ipv6 = socket.local_addr()?.is_ipv6();
        // A kernel that can set GRO but not report it (5.0 to 5.x) may
        // coalesce: size for GRO unless it is known to be off.
        let gro_possible = sys::udp_gro_enabled(&socket).unwrap_or(true);
        let receive_bytes = if gro_possible { RECEIVE_BYTES_GRO } else { RECEIVE_BYTES_PLAIN };
        let gso = options.gso && sys::udp_gso_supported(&socket);
        // SAFETY: sockaddr_storage is plain data; all zeroes is valid.
        let empty_name: libc::sockaddr_storage = unsafe { mem::zeroed() };
        Ok(UdpIo {
            socket,
            ipv6,
            mmsg: options.mmsg,
            gso,
            receive_bytes,
            receive_buffers: vec![0; BATCH_MAX * receive_bytes].into_boxed_slice(),
            receive_names: vec![empty_name; BATCH_MAX].into_boxed_slice(),
            receive_controls: vec![Control([0; CONTROL_BYTES]); BATCH_MAX].into_boxed_slice(),
            send_buffers: vec![0; BATCH_MAX * SEND_STRIDE].into_boxed_slice(),
            send_names: vec![empty_name; BATCH_MAX].into_boxed_slice(),
            send_controls: vec![Control([0; CONTROL_BYTES]); BATCH_MAX].into_boxed_slice(),
            transmits: [Transmit::EMPTY; BATCH_MAX],
            head: 0,
            queued: 0,
            counters: UdpCounters::default(),
            #[cfg(test)]
            injected_send_errors: std::collections::VecDeque::new(),
        })
    }

    pub fn socket(&self) -> &mio::net::UdpSocket {
        &self.socket
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    pub fn counters(&self) -> UdpCounters {
        self.counters
    }

    /// How many equal-size datagrams one committed buffer may hold and still
    /// leave as one send: [`GSO_SEGMENTS_MAX`] with GSO, else 1. The train must
    /// also fit [`SEND_BYTES_MAX`]. It drops to 1 for good if the device
    /// refuses GSO; trains queued by then still go out, one datagram each.
    pub fn max_gso_segments(&self) -> usize {
        if self.gso {
            GSO_SEGMENTS_MAX
        } else {
            1
        }
    }

    pub fn gso_enabled(&self) -> bool {
        self.gso
    }

    /// Whether a read may hold several coalesced datagrams (or might, when
    /// the kernel cannot say).
    pub fn gro_possible(&self) -> bool {
        self.receive_bytes == RECEIVE_BYTES_GRO
    }

    pub fn mmsg_enabled(&self) -> bool {
        self.mmsg
    }

    /// Transmits queued and not yet sent.
    pub fn queued(&self) -> usize {
        self.queued
    }

    pub fn is_full(&self) -> bool {
        self.queued == BATCH_MAX
    }

    // ----- receive -----

    /// Reads what the socket holds, up to [`BATCH_MAX`] messages (one system
    /// call with `recvmmsg`), and calls `deliver(datagram, from)` once per
    /// datagram, in arrival order; GRO-coalesced reads are split back into
    /// their datagrams. The datagram may be modified in place (QUIC decrypts
    /// in place). IPv4 peers of a dual-stack socket appear as IPv4.
    ///
    /// Returns the datagrams delivered; `Ok(0)` means the socket is drained
    /// (WouldBlock). Errors are those of the socket itself (e.g. EBADF).
    pub fn recv_batch(
        &mut self,
        mut deliver: impl FnMut(&mut [u8], SocketAddr),
    ) -> io::Result<usize> {
        // SAFETY: mmsghdr and iovec are plain data; null pointers and zero
        // lengths are valid until `prepare_receive` fills them.
        let mut headers: [libc::mmsghdr; BATCH_MAX] = unsafe { mem::zeroed() };
        let mut iovecs: [libc::iovec; BATCH_MAX] = unsafe { mem::zeroed() };
        self.prepare_receive(&mut headers, &mut iovecs);
        let messages = match self.receive_messages(&mut headers) {
            Ok(messages) => messages,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(error) => return Err(error),
        };
        let mut delivered = 0;
        for (index, header) in headers[..messages].iter().enumerate() {
            let buffer =
                &mut self.receive_buffers[index * self.receive_bytes..][..self.receive_bytes];
            let name = &self.receive_names[index];
            delivered += deliver_message(header, name, buffer, &mut self.counters, &mut deliver);
        }
        Ok(delivered)
    }

    /// Points every header at its buffer, name and control space. Done before
    /// each call: the kernel overwrites the lengths.
    fn prepare_receive(
        &mut self,
        headers: &mut [libc::mmsghdr; BATCH_MAX],
        iovecs: &mut [libc::iovec; BATCH_MAX],
    ) {
        let buffers = self.receive_buffers.as_mut_ptr();
        for (index, (header, iovec)) in headers.iter_mut().zip(iovecs.iter_mut()).enumerate() {
            // SAFETY: index * receive_bytes is inside receive_buffers, which
            // holds BATCH_MAX buffers of receive_bytes.
            iovec.iov_base = unsafe { buffers.add(index * self.receive_bytes) }.cast();
            iovec.iov_len = self.receive_bytes;
            let message = &mut header.msg_hdr;
            message.msg_name =
                (&mut self.receive_names[index] as *mut libc::sockaddr_storage).cast();
            message.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            message.msg_iov = iovec;
            message.msg_iovlen = 1;
            message.msg_control = self.receive_controls[index].0.as_mut_ptr().cast();
            message.msg_controllen = CONTROL_BYTES as _;
            message.msg_flags = 0;
        }
    }

    /// Fills headers from the front; returns how many hold a message, or
    /// WouldBlock when none does.
    fn receive_messages(&mut self, headers: &mut [libc::mmsghdr; BATCH_MAX]) -> io::Result<usize> {
        let fd = self.socket.as_raw_fd();
        // Not bounded by a count: every error below is either EINTR or is
        // consumed by the call that reports it (a queued ICMP error), so the
        // next turn reads data or meets WouldBlock. Stopping early instead
        // would leave data behind that edge-triggered readiness never reports.
        loop {
            let result = if self.mmsg {
                self.counters.receive_syscalls += 1;
                // SAFETY: every header points into buffers owned by self,
                // sized as its lengths say (prepare_receive).
                let rc = unsafe {
                    libc::recvmmsg(
                        fd,
                        headers.as_mut_ptr(),
                        BATCH_MAX as libc::c_uint,
                        0,
                        ptr::null_mut(),
                    )
                };
                if rc >= 0 {
                    Ok(rc as usize)
                } else {
                    Err(io::Error::last_os_error())
                }
            } else {
                self.receive_one_by_one(headers)
            };
            let error = match result {
                Ok(messages) => return Ok(messages),
                Err(error) => error,
            };
            match error.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::ENOSYS) if self.mmsg => {
                    tracing::warn!("recvmmsg unavailable; receiving one datagram per call");
                    self.mmsg = false;
                }
                Some(errno) if is_transient_receive_error(errno) => {
                    self.counters.receive_errors += 1
                }
                _ => return Err(error),
            }
        }
    }

    /// The fallback of `recvmmsg`: `recvmsg` until WouldBlock or the batch is
    /// full.
    fn receive_one_by_one(
        &mut self,
        headers: &mut [libc::mmsghdr; BATCH_MAX],
    ) -> io::Result<usize> {
        let fd = self.socket.as_raw_fd();
        let mut messages = 0;
        while messages < BATCH_MAX {
            self.counters.receive_syscalls += 1;
            // SAFETY: as in receive_messages; one header at a time.
            let rc = unsafe { libc::recvmsg(fd, &mut headers[messages].msg_hdr, 0) };
            if rc >= 0 {
                headers[messages].msg_len = rc as libc::c_uint;
                messages += 1;
                continue;
            }
            let error = io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            if messages == 0 {
                return Err(error);
            }
            if error.kind() != io::ErrorKind::WouldBlock {
                self.counters.receive_errors += 1;
            }
            break;
        }
        Ok(messages)
    }

    // ----- send -----

    /// The buffer the next transmit is written into, [`SEND_BYTES_MAX`] bytes
    /// long; `None` when the queue is full (flush first). Write one datagram,
    /// or a train of datagrams of equal size (the last may be shorter) for one
    /// destination, then [`UdpIo::commit`]. A buffer not committed is reused.
    pub fn next_buffer(&mut self) -> Option<&mut [u8]> {
        if self.is_full() {
            return None;
        }
        let slot = (self.head + self.queued) % BATCH_MAX;
        Some(&mut self.send_buffers[slot * SEND_STRIDE..][..SEND_BYTES_MAX])
    }

    /// Queues the first `length` bytes of the buffer [`UdpIo::next_buffer`]
    /// handed out, as datagrams of `segment_bytes` each (the last may be
    /// shorter) to `destination`. For a single datagram pass `segment_bytes`
    /// = `length`, or use [`UdpIo::commit_datagram`]. A train is accepted
    /// without GSO too: it then leaves as single datagrams of one `sendmmsg`.
    ///
    /// A destination of the wrong address family for the socket (IPv6 on an
    /// IPv4 socket) is dropped here and counted in `send_drops`.
    ///
    /// Panics if the queue is full (no buffer was handed out), `length`
    /// exceeds [`SEND_BYTES_MAX`], or the train exceeds [`GSO_SEGMENTS_MAX`]
    /// datagrams.
    pub fn commit(&mut self, destination: SocketAddr, length: usize, segment_bytes: usize) {
        assert!(!self.is_full(), "commit with a full transmit queue: flush first");
        assert!(length <= SEND_BYTES_MAX, "transmit of {length} bytes exceeds {SEND_BYTES_MAX}");
        assert!(segment_bytes > 0 || length == 0, "segment_bytes must be positive");
        let datagrams = if segment_bytes >= length { 1 } else { length.div_ceil(segment_bytes) };
        assert!(
            datagrams <= GSO_SEGMENTS_MAX,
            "train of {datagrams} datagrams exceeds {GSO_SEGMENTS_MAX}"
        );

        let Some(destination) = self.destination_for_socket(destination) else {
            self.counters.send_drops += datagrams as u64;
            return;
        };
        let slot = (self.head + self.queued) % BATCH_MAX;
        let name_length = encode_address(destination, &mut self.send_names[slot]);
        self.transmits[slot] = Transmit {
            name_length,
            length,
            segment_bytes: segment_bytes.max(1),
            datagrams,
            datagrams_sent: 0,
        };
        self.queued += 1;
    }

    /// Queues the first `length` bytes of the buffer as one datagram.
    pub fn commit_datagram(&mut self, destination: SocketAddr, length: usize) {
        self.commit(destination, length, length);
    }

    /// Copies `payload` into the next buffer and queues it as one datagram:
    /// for the rare packets not built in place (stateless retry, version
    /// negotiation).
    pub fn push(&mut self, destination: SocketAddr, payload: &[u8]) -> Result<(), QueueFull> {
        let buffer = self.next_buffer().ok_or(QueueFull)?;
        buffer[..payload.len()].copy_from_slice(payload);
        self.commit_datagram(destination, payload.len());
        Ok(())
    }

    /// Sends everything queued: one `sendmmsg` per [`BATCH_MAX`] messages,
    /// repeated after partial sends. Datagrams that fail with an error other
    /// than WouldBlock are dropped and counted. Returns [`Flush::Blocked`] on
    /// WouldBlock, keeping the rest queued in order.
    pub fn flush(&mut self) -> Flush {
        while self.queued > 0 {
            // SAFETY: mmsghdr and iovec are plain data; prepare_send fills
            // the first `count`.
            let mut headers: [libc::mmsghdr; BATCH_MAX] = unsafe { mem::zeroed() };
            let mut iovecs: [libc::iovec; BATCH_MAX] = unsafe { mem::zeroed() };
            let mut plan = [Planned::default(); BATCH_MAX];
            let count = self.prepare_send(&mut headers, &mut iovecs, &mut plan);
            let error = match self.send_messages(&mut headers[..count]) {
                Ok(sent) => {
                    for planned in &plan[..sent] {
                        self.complete(planned, true);
                    }
                    continue;
                }
                Err(error) => error,
            };
            // Only the first message failed: sendmmsg reports an error only
            // when it sent nothing.
            match error.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::EAGAIN) => return Flush::Blocked,
                Some(libc::ENOSYS) if self.mmsg => {
                    tracing::warn!("sendmmsg unavailable; sending one datagram per call");
                    self.mmsg = false;
                }
                Some(errno) if plan[0].gso && is_gso_refusal(errno) => {
                    // The train stays queued and goes out as single datagrams
                    // on the next turn.
                    tracing::warn!(%error, "UDP GSO send refused; segmentation offload off for good");
                    self.gso = false;
                }
                _ => {
                    tracing::debug!(%error, datagrams = plan[0].datagrams, "UDP send dropped");
                    self.complete(&plan[0], false);
                }
            }
        }
        Flush::Done
    }

    /// Builds up to [`BATCH_MAX`] message headers from the front of the queue:
    /// one per GSO train, else one per datagram. Returns how many.
    fn prepare_send(
        &mut self,
        headers: &mut [libc::mmsghdr; BATCH_MAX],
        iovecs: &mut [libc::iovec; BATCH_MAX],
        plan: &mut [Planned; BATCH_MAX],
    ) -> usize {
        let buffers = self.send_buffers.as_mut_ptr();
        let mut count = 0;
        'transmits: for position in 0..self.queued {
            let slot = (self.head + position) % BATCH_MAX;
            let transmit = self.transmits[slot];
            let mut datagram = transmit.datagrams_sent;
            while datagram < transmit.datagrams {
                if count == BATCH_MAX {
                    break 'transmits;
                }
                let offset = datagram * transmit.segment_bytes;
                let remaining = transmit.datagrams - datagram;
                let gso = self.gso && remaining > 1;
                let (datagrams, bytes) = if gso {
                    (remaining, transmit.length - offset)
                } else {
                    (1, transmit.segment_bytes.min(transmit.length - offset))
                };
                // SAFETY: offset + bytes <= length <= SEND_BYTES_MAX, inside
                // the slot's buffer.
                iovecs[count].iov_base = unsafe { buffers.add(slot * SEND_STRIDE + offset) }.cast();
                iovecs[count].iov_len = bytes;
                let message = &mut headers[count].msg_hdr;
                message.msg_name =
                    (&mut self.send_names[slot] as *mut libc::sockaddr_storage).cast();
                message.msg_namelen = transmit.name_length;
                message.msg_iov = &mut iovecs[count];
                message.msg_iovlen = 1;
                if gso {
                    write_segment_control(
                        message,
                        &mut self.send_controls[slot],
                        transmit.segment_bytes,
                    );
                }
                plan[count] = Planned { slot, datagrams, bytes, gso };
                count += 1;
                datagram += datagrams;
            }
        }
        debug_assert!(count > 0, "prepare_send with an empty queue");
        count
    }

    /// Sends the messages in order; returns how many left before the first
    /// failure, or that failure if the first message failed.
    fn send_messages(&mut self, headers: &mut [libc::mmsghdr]) -> io::Result<usize> {
        #[cfg(test)]
        if let Some(errno) = self.injected_send_errors.pop_front() {
            self.counters.send_syscalls += 1;
            return Err(io::Error::from_raw_os_error(errno));
        }
        let fd = self.socket.as_raw_fd();
        if self.mmsg {
            self.counters.send_syscalls += 1;
            // SAFETY: every header points into buffers owned by self, with
            // the lengths prepare_send gave them.
            let rc = unsafe {
                libc::sendmmsg(fd, headers.as_mut_ptr(), headers.len() as libc::c_uint, 0)
            };
            return match rc {
                // sendmmsg sends at least one message or fails; treat a zero
                // like a full buffer rather than spin on it.
                0 => Err(io::ErrorKind::WouldBlock.into()),
                sent if sent > 0 => Ok(sent as usize),
                _ => Err(io::Error::last_os_error()),
            };
        }
        for (index, header) in headers.iter().enumerate() {
            self.counters.send_syscalls += 1;
            // SAFETY: as above, one header at a time.
            let rc = unsafe { libc::sendmsg(fd, &header.msg_hdr, 0) };
            if rc < 0 {
                let error = io::Error::last_os_error();
                return if index == 0 { Err(error) } else { Ok(index) };
            }
        }
        Ok(headers.len())
    }

    /// Records one planned message as sent (or dropped) and pops finished
    /// transmits off the front of the queue.
    fn complete(&mut self, planned: &Planned, sent: bool) {
        let transmit = &mut self.transmits[planned.slot];
        transmit.datagrams_sent += planned.datagrams;
        debug_assert!(transmit.datagrams_sent <= transmit.datagrams);
        if sent {
            self.counters.datagrams_sent += planned.datagrams as u64;
            self.counters.bytes_sent += planned.bytes as u64;
            self.counters.gso_trains += u64::from(planned.gso);
        } else {
            self.counters.send_drops += planned.datagrams as u64;
        }
        // Messages go out in queue order, so only the head can finish.
        while self.queued > 0 {
            let head = &self.transmits[self.head];
            if head.datagrams_sent < head.datagrams {
                break;
            }
            self.head = (self.head + 1) % BATCH_MAX;
            self.queued -= 1;
        }
    }

    /// The destination as this socket's family can address it, if it can.
    fn destination_for_socket(&self, destination: SocketAddr) -> Option<SocketAddr> {
        match (self.ipv6, destination) {
            (true, SocketAddr::V4(v4)) => {
                Some(SocketAddr::V6(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0)))
            }
            (false, SocketAddr::V6(v6)) => {
                let ip = v6.ip().to_ipv4_mapped()?;
                Some(SocketAddr::V4(SocketAddrV4::new(ip, v6.port())))
            }
            _ => Some(destination),
        }
    }

    /// Makes the next send calls fail with these errnos (tests only).
    #[cfg(test)]
    fn inject_send_errors(&mut self, errnos: &[i32]) {
        self.injected_send_errors.extend(errnos);
    }
}

impl mio::event::Source for UdpIo {
    fn register(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        self.socket.register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        self.socket.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        self.socket.deregister(registry)
    }
}

impl std::fmt::Debug for UdpIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpIo")
            .field("local", &self.socket.local_addr().ok())
            .field("mmsg", &self.mmsg)
            .field("gso", &self.gso)
            .field("receive_bytes", &self.receive_bytes)
            .field("queued", &self.queued)
            .field("counters", &self.counters)
            .finish()
    }
}

/// Hands one received message to `deliver`, split into its GRO segments.
/// Returns the datagrams delivered.
fn deliver_message(
    header: &libc::mmsghdr,
    name: &libc::sockaddr_storage,
    buffer: &mut [u8],
    counters: &mut UdpCounters,
    deliver: &mut impl FnMut(&mut [u8], SocketAddr),
) -> usize {
    let message = &header.msg_hdr;
    let length = header.msg_len as usize;
    if message.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 || length > buffer.len() {
        // Truncated data is corrupt; truncated control may have lost the GRO
        // segment size, without which a coalesced read cannot be split.
        counters.receive_drops += 1;
        return 0;
    }
    let Some(from) = decode_address(name, message.msg_namelen) else {
        counters.receive_drops += 1;
        return 0;
    };
    let datagram = &mut buffer[..length];
    counters.bytes_received += length as u64;
    let segment_bytes = match gro_segment_bytes(message) {
        Some(segment_bytes) if segment_bytes > 0 && segment_bytes < length => segment_bytes,
        _ => {
            counters.datagrams_received += 1;
            deliver(datagram, from);
            return 1;
        }
    };
    counters.gro_reads += 1;
    let mut delivered = 0;
    for segment in datagram.chunks_mut(segment_bytes) {
        deliver(segment, from);
        delivered += 1;
    }
    counters.datagrams_received += delivered as u64;
    delivered
}

/// The UDP_GRO segment size the kernel attached to a received message.
fn gro_segment_bytes(message: &libc::msghdr) -> Option<usize> {
    // SAFETY: the kernel set msg_controllen to the bytes of well-formed
    // control messages it wrote into msg_control; the CMSG_* functions stay
    // inside that range.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(message);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == sys::SOL_UDP && (*cmsg).cmsg_type == sys::UDP_GRO {
                let data_bytes = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let data = libc::CMSG_DATA(cmsg);
                // The kernel writes an int; accept a u16 from any other.
                return match data_bytes {
                    4 => Some(ptr::read_unaligned(data.cast::<i32>()) as usize),
                    2 => Some(usize::from(ptr::read_unaligned(data.cast::<u16>()))),
                    _ => None,
                };
            }
            cmsg = libc::CMSG_NXTHDR(message, cmsg);
        }
    }
    None
}

/// Attaches a UDP_SEGMENT control message carrying `segment_bytes`.
fn write_segment_control(message: &mut libc::msghdr, control: &mut Control, segment_bytes: usize) {
    let segment_bytes = u16::try_from(segment_bytes).expect("GSO segment size fits u16");
    control.0 = [0; CONTROL_BYTES];
    message.msg_control = control.0.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE(2) is 24 bytes, inside the control buffer, which
    // is aligned for cmsghdr; CMSG_FIRSTHDR is non-null for that length.
    unsafe {
        message.msg_controllen = libc::CMSG_SPACE(mem::size_of::<u16>() as u32) as _;
        let cmsg = libc::CMSG_FIRSTHDR(message);
        (*cmsg).cmsg_level = sys::SOL_UDP;
        (*cmsg).cmsg_type = sys::UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(mem::size_of::<u16>() as u32) as _;
        ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), segment_bytes);
    }
}

/// Errors a GSO send returns when the kernel or device cannot segment:
/// EIO (no checksum offload on the device), EINVAL, EOPNOTSUPP.
fn is_gso_refusal(errno: i32) -> bool {
    matches!(errno, libc::EIO | libc::EINVAL | libc::EOPNOTSUPP)
}

/// Errors a receive call may report about an earlier datagram (queued ICMP
/// errors), after which the socket is still good.
fn is_transient_receive_error(errno: i32) -> bool {
    matches!(errno, libc::ECONNREFUSED | libc::ECONNRESET | libc::EHOSTUNREACH | libc::ENETUNREACH)
}

/// Writes `address` as a sockaddr_in or sockaddr_in6; returns its length.
fn encode_address(address: SocketAddr, storage: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match address {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_in is plain data; all zeroes is valid.
            let mut sin: libc::sockaddr_in = unsafe { mem::zeroed() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
            // SAFETY: sockaddr_storage is larger than and aligned for
            // sockaddr_in.
            unsafe { ptr::write((storage as *mut libc::sockaddr_storage).cast(), sin) };
            mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(v6) => {
            // SAFETY: sockaddr_in6 is plain data; all zeroes is valid.
            let mut sin6: libc::sockaddr_in6 = unsafe { mem::zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_flowinfo = v6.flowinfo();
            sin6.sin6_addr.s6_addr = v6.ip().octets();
            sin6.sin6_scope_id = v6.scope_id();
            // SAFETY: sockaddr_storage is larger than and aligned for
            // sockaddr_in6.
            unsafe { ptr::write((storage as *mut libc::sockaddr_storage).cast(), sin6) };
            mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Reads a sockaddr_in or sockaddr_in6; v4-mapped IPv6 comes out as IPv4.
fn decode_address(storage: &libc::sockaddr_storage, length: libc::socklen_t) -> Option<SocketAddr> {
    let length = length as usize;
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET if length >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family and length say a sockaddr_in is there, and
            // sockaddr_storage is aligned for it.
            let sin =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 if length >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let port = u16::from_be(sin6.sin6_port);
            Some(match ip.to_ipv4_mapped() {
                Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, port)),
                None => SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    port,
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    const FALLBACK: UdpIoOptions = UdpIoOptions { mmsg: false, gso: false };
    const RECEIVE_TIMEOUT: Duration = Duration::from_secs(5);

    fn bind(addr: &str, options: UdpIoOptions) -> UdpIo {
        let socket = sys::bind_udp(addr.parse().unwrap(), false).unwrap();
        UdpIo::with_options(socket, options).unwrap()
    }

    /// A receiver on 127.0.0.1 with GRO switched as asked.
    fn receiver(gro: bool, options: UdpIoOptions) -> UdpIo {
        let socket = sys::bind_udp("127.0.0.1:0".parse().unwrap(), false).unwrap();
        let _ = sys::set_udp_gro(&socket, gro);
        UdpIo::with_options(socket, options).unwrap()
    }

    /// Receives until `expected` datagrams have arrived, then checks that no
    /// more follow.
    fn receive(io: &mut UdpIo, expected: usize) -> Vec<(Vec<u8>, SocketAddr)> {
        let deadline = Instant::now() + RECEIVE_TIMEOUT;
        let mut datagrams = Vec::new();
        while datagrams.len() < expected {
            let delivered =
                io.recv_batch(|datagram, from| datagrams.push((datagram.to_vec(), from))).unwrap();
            if delivered == 0 {
                assert!(Instant::now() < deadline, "got {} of {expected}", datagrams.len());
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(io.recv_batch(|_, _| panic!("unexpected datagram")).unwrap(), 0);
        datagrams
    }

    /// Queues a train of `segments` datagrams of `segment_bytes` (the last
    /// `last_bytes` long), each filled with its index.
    fn queue_train(
        io: &mut UdpIo,
        destination: SocketAddr,
        segments: usize,
        segment_bytes: usize,
        last_bytes: usize,
    ) {
        let buffer = io.next_buffer().unwrap();
        for index in 0..segments {
            let start = index * segment_bytes;
            let bytes = if index + 1 == segments { last_bytes } else { segment_bytes };
            buffer[start..start + bytes].fill(index as u8);
        }
        let length = (segments - 1) * segment_bytes + last_bytes;
        io.commit(destination, length, segment_bytes);
    }

    fn check_train(datagrams: &[(Vec<u8>, SocketAddr)], segment_bytes: usize, last_bytes: usize) {
        for (index, (datagram, _)) in datagrams.iter().enumerate() {
            let bytes = if index + 1 == datagrams.len() { last_bytes } else { segment_bytes };
            assert_eq!(datagram.len(), bytes, "datagram {index}");
            assert!(datagram.iter().all(|&byte| byte == index as u8), "datagram {index}");
        }
    }

    #[test]
    fn kernel_features_are_detected() {
        // Proves detection runs, and prints what this kernel offers.
        let io = bind("127.0.0.1:0", UdpIoOptions::default());
        let info = sys::udp_socket_info(io.socket()).unwrap();
        println!(
            "mmsg {} gso {} gro {} (max segments {}), buffers {info:?}",
            io.mmsg_enabled(),
            io.gso_enabled(),
            io.gro_possible(),
            io.max_gso_segments()
        );
        assert_eq!(io.max_gso_segments(), if io.gso_enabled() { GSO_SEGMENTS_MAX } else { 1 });
        let fallback = bind("127.0.0.1:0", FALLBACK);
        assert!(!fallback.mmsg_enabled() && !fallback.gso_enabled());
        assert_eq!(fallback.max_gso_segments(), 1);
    }

    #[test]
    fn a_hundred_datagrams_arrive_in_order() {
        // Proves batching across several flushes and recv_batch calls keeps
        // every datagram and their order, on both paths.
        for options in [UdpIoOptions::default(), FALLBACK] {
            let mut sender = bind("127.0.0.1:0", options);
            let mut receiver = receiver(false, options);
            let destination = receiver.local_addr().unwrap();
            for index in 0..100u32 {
                if sender.is_full() {
                    assert_eq!(sender.flush(), Flush::Done);
                }
                let buffer = sender.next_buffer().unwrap();
                buffer[..4].copy_from_slice(&index.to_le_bytes());
                buffer[4..40].fill(0xab);
                sender.commit_datagram(destination, 40);
            }
            assert_eq!(sender.flush(), Flush::Done);
            assert_eq!(sender.queued(), 0);

            let datagrams = receive(&mut receiver, 100);
            for (index, (datagram, from)) in datagrams.iter().enumerate() {
                assert_eq!(datagram[..4], (index as u32).to_le_bytes());
                assert_eq!(datagram.len(), 40);
                assert_eq!(*from, sender.local_addr().unwrap());
            }
            let sent = sender.counters();
            assert_eq!((sent.datagrams_sent, sent.bytes_sent, sent.send_drops), (100, 4000, 0));
            if options.mmsg {
                assert_eq!(sent.send_syscalls, 4, "100 datagrams in batches of {BATCH_MAX}");
            } else {
                assert_eq!(sent.send_syscalls, 100);
            }
            let received = receiver.counters();
            assert_eq!((received.datagrams_received, received.bytes_received), (100, 4000));
        }
    }

    #[test]
    fn a_gso_train_arrives_as_its_datagrams() {
        // Proves a train of 10 x 1200 bytes reaches the peer as 10 datagrams
        // of 1200 bytes, whether the receiver coalesces (GRO) or not, and
        // whether the sender uses GSO or the one-datagram-per-call fallback.
        for receiver_gro in [false, true] {
            for options in [UdpIoOptions::default(), FALLBACK] {
                let mut sender = bind("127.0.0.1:0", options);
                let mut receiver = receiver(receiver_gro, options);
                let destination = receiver.local_addr().unwrap();
                queue_train(&mut sender, destination, 10, 1200, 1200);
                assert_eq!(sender.flush(), Flush::Done);

                let datagrams = receive(&mut receiver, 10);
                check_train(&datagrams, 1200, 1200);
                let (sent, received) = (sender.counters(), receiver.counters());
                assert_eq!((sent.datagrams_sent, sent.bytes_sent), (10, 12_000));
                assert_eq!((received.datagrams_received, received.bytes_received), (10, 12_000));
                let gso = sender.gso_enabled();
                assert_eq!(sent.gso_trains, u64::from(gso));
                assert_eq!(sent.send_syscalls, if gso || options.mmsg { 1 } else { 10 });
                println!(
                    "receiver gro {receiver_gro}, sender gso {gso}: {} coalesced reads",
                    received.gro_reads
                );
                // Loopback hands a GSO train to a GRO socket whole (Linux
                // 5.x on): this is the case that exercises the split.
                let coalesced =
                    u64::from(gso && sys::udp_gro_enabled(receiver.socket()).unwrap_or(false));
                assert_eq!(received.gro_reads, coalesced);
            }
        }
    }

    #[test]
    fn a_train_with_a_short_last_datagram_keeps_its_sizes() {
        // Proves the last datagram of a train may be shorter, through GRO too.
        for receiver_gro in [false, true] {
            let mut sender = bind("127.0.0.1:0", UdpIoOptions::default());
            let mut receiver = receiver(receiver_gro, UdpIoOptions::default());
            let destination = receiver.local_addr().unwrap();
            queue_train(&mut sender, destination, 4, 1000, 500);
            assert_eq!(sender.flush(), Flush::Done);
            check_train(&receive(&mut receiver, 4), 1000, 500);
        }
    }

    #[test]
    fn the_largest_train_fits_the_limits() {
        // Proves GSO_SEGMENTS_MAX datagrams in one train go out whole.
        let mut sender = bind("127.0.0.1:0", UdpIoOptions::default());
        let mut receiver = receiver(true, UdpIoOptions::default());
        let destination = receiver.local_addr().unwrap();
        let segments = sender.max_gso_segments().max(GSO_SEGMENTS_MAX);
        let segment_bytes = SEND_BYTES_MAX / segments;
        queue_train(&mut sender, destination, segments, segment_bytes, segment_bytes);
        assert_eq!(sender.flush(), Flush::Done);
        check_train(&receive(&mut receiver, segments), segment_bytes, segment_bytes);
        assert_eq!(sender.counters().send_drops, 0);
    }

    #[test]
    fn would_block_keeps_the_queue_for_the_next_flush() {
        // Proves Blocked leaves every transmit queued, in order, and the
        // next flush sends them. The kernel's own EAGAIN is not reproducible
        // on loopback (loopback frees send buffer space at once), so the
        // error is injected at the system-call boundary.
        for options in [UdpIoOptions::default(), FALLBACK] {
            let mut sender = bind("127.0.0.1:0", options);
            let mut receiver = receiver(false, options);
            let destination = receiver.local_addr().unwrap();
            for index in 0..BATCH_MAX as u8 {
                sender.push(destination, &[index; 10]).unwrap();
            }
            assert_eq!(sender.push(destination, &[0; 10]), Err(QueueFull));
            assert!(sender.next_buffer().is_none());

            sender.inject_send_errors(&[libc::EAGAIN]);
            assert_eq!(sender.flush(), Flush::Blocked);
            assert_eq!(sender.queued(), BATCH_MAX);
            sender.inject_send_errors(&[libc::EINTR]);
            assert_eq!(sender.flush(), Flush::Done);
            assert_eq!(sender.queued(), 0);

            let datagrams = receive(&mut receiver, BATCH_MAX);
            for (index, (datagram, _)) in datagrams.iter().enumerate() {
                assert_eq!(*datagram, [index as u8; 10]);
            }
        }
    }

    #[test]
    fn a_kernel_without_sendmmsg_falls_back_to_sendmsg() {
        // Proves ENOSYS from sendmmsg switches to one sendmsg per datagram
        // for good, losing nothing.
        let mut sender = bind("127.0.0.1:0", UdpIoOptions::default());
        let mut receiver = receiver(false, UdpIoOptions::default());
        let destination = receiver.local_addr().unwrap();
        for index in 0..3u8 {
            sender.push(destination, &[index; 20]).unwrap();
        }
        sender.inject_send_errors(&[libc::ENOSYS]);
        assert_eq!(sender.flush(), Flush::Done);
        assert!(!sender.mmsg_enabled());
        let datagrams = receive(&mut receiver, 3);
        for (index, (datagram, _)) in datagrams.iter().enumerate() {
            assert_eq!(*datagram, [index as u8; 20]);
        }
        assert_eq!(sender.counters().send_syscalls, 1 + 3);
    }

    #[test]
    fn a_refused_gso_send_turns_gso_off_and_resends_one_by_one() {
        // Proves the GSO fallback: a device refusing segmentation (EIO) turns
        // GSO off for good and the same train still arrives whole.
        let mut sender = bind("127.0.0.1:0", UdpIoOptions::default());
        if !sender.gso_enabled() {
            return; // No GSO here; the fallback path is covered elsewhere.
        }
        let mut receiver = receiver(false, UdpIoOptions::default());
        let destination = receiver.local_addr().unwrap();
        queue_train(&mut sender, destination, 10, 1200, 1200);
        sender.inject_send_errors(&[libc::EIO]);
        assert_eq!(sender.flush(), Flush::Done);
        assert!(!sender.gso_enabled());
        assert_eq!(sender.max_gso_segments(), 1);
        check_train(&receive(&mut receiver, 10), 1200, 1200);
        let sent = sender.counters();
        assert_eq!((sent.datagrams_sent, sent.gso_trains, sent.send_drops), (10, 0, 0));
    }

    #[test]
    fn a_failing_destination_is_dropped_and_the_rest_are_sent() {
        // Proves errors other than WouldBlock cost only the datagrams
        // concerned: a broadcast without SO_BROADCAST fails (EACCES or
        // ENETUNREACH) between two good datagrams; an IPv6 destination on an
        // IPv4 socket is dropped at commit.
        for options in [UdpIoOptions::default(), FALLBACK] {
            let mut sender = bind("127.0.0.1:0", options);
            let mut receiver = receiver(false, options);
            let destination = receiver.local_addr().unwrap();
            sender.push(destination, b"first").unwrap();
            sender.push("255.255.255.255:9".parse().unwrap(), b"refused").unwrap();
            sender.push("[2001:db8::1]:9".parse().unwrap(), b"wrong family").unwrap();
            sender.push(destination, b"second").unwrap();
            assert_eq!(sender.queued(), 3);
            assert_eq!(sender.flush(), Flush::Done);

            let datagrams = receive(&mut receiver, 2);
            assert_eq!(datagrams[0].0, b"first");
            assert_eq!(datagrams[1].0, b"second");
            let sent = sender.counters();
            assert_eq!((sent.datagrams_sent, sent.send_drops), (2, 2));
        }
    }

    #[test]
    fn dual_stack_sockets_talk_to_ipv4_and_ipv6_peers() {
        // Proves sockaddr handling both ways: a [::] socket sends to an IPv4
        // peer (as v4-mapped) and to an IPv6 peer, and reports an IPv4 peer
        // as IPv4.
        let Ok(socket) = sys::bind_udp("[::]:0".parse().unwrap(), false) else {
            return; // No IPv6 on this host.
        };
        let mut dual = UdpIo::new(socket).unwrap();
        let dual_port = dual.local_addr().unwrap().port();
        let mut v4 = bind("127.0.0.1:0", UdpIoOptions::default());
        let Ok(v6_socket) = sys::bind_udp("[::1]:0".parse().unwrap(), false) else {
            return;
        };
        let mut v6 = UdpIo::new(v6_socket).unwrap();

        dual.push(v4.local_addr().unwrap(), b"to v4").unwrap();
        dual.push(v6.local_addr().unwrap(), b"to v6").unwrap();
        assert_eq!(dual.flush(), Flush::Done);
        let from_dual = receive(&mut v4, 1);
        assert_eq!(from_dual[0].0, b"to v4");
        assert_eq!(from_dual[0].1, SocketAddr::from((Ipv4Addr::LOCALHOST, dual_port)));
        let from_dual = receive(&mut v6, 1);
        assert_eq!(from_dual[0].0, b"to v6");
        assert_eq!(from_dual[0].1, SocketAddr::from((Ipv6Addr::LOCALHOST, dual_port)));

        let dual_v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, dual_port));
        v4.push(dual_v4, b"from v4").unwrap();
        assert_eq!(v4.flush(), Flush::Done);
        let from_v4 = receive(&mut dual, 1);
        assert_eq!(from_v4[0], (b"from v4".to_vec(), v4.local_addr().unwrap()));
    }

    #[test]
    fn buffers_never_move_or_grow() {
        // Proves the structure behind "no allocation per packet": after a
        // steady-state round trip every buffer is the one built at start-up.
        let mut sender = bind("127.0.0.1:0", UdpIoOptions::default());
        let mut receiver = receiver(true, UdpIoOptions::default());
        let destination = receiver.local_addr().unwrap();
        let before = (sender.send_buffers.as_ptr(), receiver.receive_buffers.as_ptr());
        for _ in 0..3 {
            for _ in 0..BATCH_MAX {
                sender.push(destination, &[7; 100]).unwrap();
            }
            assert_eq!(sender.flush(), Flush::Done);
            receive(&mut receiver, BATCH_MAX);
        }
        assert_eq!(before, (sender.send_buffers.as_ptr(), receiver.receive_buffers.as_ptr()));
        assert_eq!(sender.send_buffers.len(), BATCH_MAX * SEND_STRIDE);
    }

    #[test]
    fn address_encoding_round_trips() {
        // Proves encode_address and decode_address are inverse, mapped
        // addresses aside.
        // SAFETY: all zeroes is a valid sockaddr_storage.
        let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
        for text in ["127.0.0.1:4433", "[::1]:4433", "[fe80::1%2]:1", "0.0.0.0:0"] {
            let address: SocketAddr = text.parse().unwrap();
            let length = encode_address(address, &mut storage);
            assert_eq!(decode_address(&storage, length), Some(address));
        }
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:5".parse().unwrap();
        let length = encode_address(mapped, &mut storage);
        assert_eq!(decode_address(&storage, length), Some("10.0.0.1:5".parse().unwrap()));
        assert_eq!(decode_address(&storage, 4), None);
    }
}
