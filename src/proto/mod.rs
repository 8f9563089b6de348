//! Sans-IO protocol codecs and state machines. Nothing here touches a socket,
//! a clock or a thread: bytes in, values out, and the reverse.
//!
//! - [`wire`]: the Ludus binary protocol (docs/PROTOCOL.md).
//! - [`http`]: the request and response both HTTP versions hand the server.
//! - [`http1`]: HTTP/1.1 requests and responses, with limits.
//! - [`websocket`]: RFC 6455 handshake and framing, with limits.
//! - [`session`]: one client session: handshake, heartbeat, timeouts, errors.
//! - [`h3`]: the HTTP/3 subset WebTransport needs: QUIC varints, frames,
//!   QPACK with the static table only, capsules.

pub mod h3;
pub mod http;
pub mod http1;
pub mod session;
pub mod websocket;
pub mod wire;
