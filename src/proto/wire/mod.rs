//! The Ludus binary protocol (version 1): messages, their encoding, framing.
//!
//! Owns: the message catalog, field codecs, frames on streams and datagrams,
//! the schema shared with the JavaScript codec. Never does: I/O, clocks,
//! session policy (what is allowed when); that is the session layer's.
//! Runs on: any thread; shard threads call it on every packet, so the hot
//! messages (Input, ArenaState, ChatMessage) encode and decode without
//! touching the heap.
//!
//! The normative description is docs/PROTOCOL.md; its message catalog and
//! web/proto/schema.js are generated from the declarations in [`messages`].

#[macro_use]
pub mod macros;

pub mod codec;
pub mod error;
pub mod frame;
pub mod limits;
pub mod messages;
pub mod rng;
pub mod schema;

pub use codec::{Blob, Field, List, Reader, Text};
pub use error::{DecodeError, ErrorCode, LimitError};
pub use frame::{
    datagram_bodies, decode_body, decode_body_as, decode_frame, encode_frame, encode_message_frame,
    peek_type_code, DatagramPacker, FrameDecoder, MAX_CORE_TYPE_CODE, MAX_DATAGRAM_LEN,
    MAX_FRAME_LEN,
};
pub use limits::*;
pub use macros::{Direction, WireMessage};
pub use messages::*;
pub use rng::Rng;
