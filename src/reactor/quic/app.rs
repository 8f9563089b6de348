//! The application on QUIC connections: HTTP/3 with WebTransport sessions
//! carrying the Ludus protocol, and plain HTTP/3 requests.

use std::net::SocketAddr;

use super::endpoint::QuicApp;
use crate::proto::session::Now;
use crate::reactor::host::Host;

/// Per-connection state.
pub struct WtConnection {
    pub peer: SocketAddr,
}

/// The QUIC application of a shard; owns the shard's [`Host`].
pub struct WtServer<H: Host> {
    pub host: H,
    pub shard: u16,
    draining: bool,
}

impl<H: Host> WtServer<H> {
    pub fn new(shard: u16, host: H) -> WtServer<H> {
        WtServer { host, shard, draining: false }
    }
}

impl<H: Host> QuicApp for WtServer<H> {
    type Connection = WtConnection;

    fn accept(&mut self, peer: SocketAddr, _now: Now) -> WtConnection {
        WtConnection { peer }
    }

    fn process(&mut self, _quic: &mut quiche::Connection, _state: &mut WtConnection, _now: Now) {}

    fn timeout(&self, _state: &WtConnection) -> Option<u64> {
        None
    }

    fn closed(&mut self, _quic: &quiche::Connection, _state: WtConnection) {}

    fn begin_drain(&mut self) {
        self.draining = true;
    }
}
