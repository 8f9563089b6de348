//! Sans-IO protocol codecs and state machines. Nothing here touches a socket,
//! a clock or a thread: bytes in, values out, and the reverse.

pub mod wire;
