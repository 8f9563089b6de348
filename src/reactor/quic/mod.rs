//! The QUIC side of a shard: connection IDs that name their shard, stateless
//! retry, and (next) the endpoint that drives quiche connections.

pub mod app;
pub mod cid;
pub mod endpoint;
pub mod retry;
