//! Typed errors of the wire codec, and the protocol's numeric error codes.

use thiserror::Error;

/// Why a frame or message could not be decoded. Every decoder returns one of
/// these instead of panicking; the connection that sent it is closed with the
/// matching [`ErrorCode`] (see [`DecodeError::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input ended before the value was complete.
    #[error("truncated: needed {needed} more bytes")]
    Truncated { needed: usize },
    /// A varint longer than its minimal encoding, or longer than 10 bytes.
    #[error("overlong or non-minimal varint")]
    OverlongVarint,
    /// A string or byte field longer than its limit.
    #[error("length {len} exceeds limit {max}")]
    TooLong { len: usize, max: usize },
    /// A list with more items than its limit.
    #[error("list of {count} items exceeds limit {max}")]
    TooManyItems { count: usize, max: usize },
    /// A string field that is not valid UTF-8.
    #[error("invalid UTF-8 in a string field")]
    InvalidUtf8,
    /// A bool or option tag other than 0 or 1.
    #[error("invalid tag {tag} (expected 0 or 1)")]
    InvalidTag { tag: u8 },
    /// An enumeration value this version does not define.
    #[error("invalid value {value} for enum {name}")]
    InvalidEnum { name: &'static str, value: u64 },
    /// A message type this version does not know. The frame was consumed;
    /// the session decides whether to skip it (optional range) or close.
    #[error("unknown message type {code:#x}")]
    UnknownType { code: u64 },
    /// Bytes left inside a frame after its message was decoded.
    #[error("{count} trailing bytes after the message")]
    TrailingBytes { count: usize },
    /// A frame whose length prefix is zero (a frame carries at least a type).
    #[error("empty frame")]
    EmptyFrame,
    /// A frame whose length prefix exceeds the frame limit.
    #[error("frame of {len} bytes exceeds limit {max}")]
    FrameTooLarge { len: u64, max: usize },
    /// A datagram longer than the datagram limit.
    #[error("datagram of {len} bytes exceeds limit {max}")]
    DatagramTooLarge { len: usize, max: usize },
}

impl DecodeError {
    /// The protocol error code a peer is told when it sent this.
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::UnknownType { .. } => ErrorCode::UnknownMessage,
            DecodeError::FrameTooLarge { .. } | DecodeError::DatagramTooLarge { .. } => {
                ErrorCode::FrameTooLarge
            }
            _ => ErrorCode::Malformed,
        }
    }

    /// A short stable name, used by the test vectors shared with the
    /// JavaScript codec (both must reject the same bytes for the same reason).
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::Truncated { .. } => "truncated",
            DecodeError::OverlongVarint => "overlong_varint",
            DecodeError::TooLong { .. } => "too_long",
            DecodeError::TooManyItems { .. } => "too_many_items",
            DecodeError::InvalidUtf8 => "invalid_utf8",
            DecodeError::InvalidTag { .. } => "invalid_tag",
            DecodeError::InvalidEnum { .. } => "invalid_enum",
            DecodeError::UnknownType { .. } => "unknown_type",
            DecodeError::TrailingBytes { .. } => "trailing_bytes",
            DecodeError::EmptyFrame => "empty_frame",
            DecodeError::FrameTooLarge { .. } => "frame_too_large",
            DecodeError::DatagramTooLarge { .. } => "datagram_too_large",
        }
    }
}

/// A value could not be built because it breaks a wire limit (a string or
/// list too long). Encoding itself never fails: limits are checked when a
/// value is constructed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("{what}: length {len} exceeds limit {max}")]
pub struct LimitError {
    pub what: &'static str,
    pub len: usize,
    pub max: usize,
}

macro_rules! error_codes {
    ($( $(#[doc = $doc:expr])* $name:ident = $value:expr, $text:expr; )*) => {
        /// Numeric error codes carried by `Error` and `Bye` messages
        /// (u16 on the wire). Ranges: 1-99 protocol, 100-199 session and
        /// auth, 200-299 lobby and rooms, 300-399 game, 400-499 chat and
        /// social, 500-599 server, 600-699 history and replays. A peer must
        /// accept codes it does not know (treat them by range).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u16)]
        pub enum ErrorCode {
            $( $(#[doc = $doc])* $name = $value, )*
        }

        impl ErrorCode {
            /// Every defined code, in numeric order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name),*];

            pub fn from_u16(value: u16) -> Option<ErrorCode> {
                match value {
                    $( $value => Some(ErrorCode::$name), )*
                    _ => None,
                }
            }

            /// The code's stable snake_case name.
            pub fn name(self) -> &'static str {
                match self { $( ErrorCode::$name => $text, )* }
            }

            /// What the code means, for documentation and logs.
            pub fn description(self) -> &'static str {
                match self { $( ErrorCode::$name => concat!($($doc),*), )* }
            }
        }
    };
}

error_codes! {
    /// Normal close: no error.
    None = 0, "none";
    /// Bytes that do not decode (truncated, bad varint, bad UTF-8, limits, trailing bytes).
    Malformed = 1, "malformed";
    /// A message type in the core range (0x00-0xFF) that the receiver does not know.
    UnknownMessage = 2, "unknown_message";
    /// A frame or datagram longer than the limit.
    FrameTooLarge = 3, "frame_too_large";
    /// A valid message sent in the wrong state (e.g. Input before Welcome, Hello twice).
    UnexpectedMessage = 4, "unexpected_message";
    /// No protocol version in common: Hello's range excludes every version the server speaks.
    UnsupportedVersion = 5, "unsupported_version";
    /// The peer sent more than its rate limit allows.
    RateLimited = 6, "rate_limited";
    /// Nothing heard from the peer within the idle timeout.
    Timeout = 7, "timeout";
    /// The access token is missing, malformed, expired or has a bad signature.
    InvalidToken = 100, "invalid_token";
    /// The resume token does not match a live session.
    ResumeFailed = 101, "resume_failed";
    /// The account is not allowed to do this (role, ban).
    Forbidden = 102, "forbidden";
    /// The same account connected again elsewhere; this session is replaced.
    SessionReplaced = 103, "session_replaced";
    /// The room does not exist (or no longer exists).
    RoomNotFound = 200, "room_not_found";
    /// The room has no free slot.
    RoomFull = 201, "room_full";
    /// The room's game has started and it takes no new players.
    RoomInProgress = 202, "room_in_progress";
    /// The reservation token is unknown, expired or for another player.
    InvalidReservation = 203, "invalid_reservation";
    /// The player is already queued or in a room.
    AlreadyInRoom = 204, "already_in_room";
    /// The request needs a room and the player is in none.
    NotInRoom = 205, "not_in_room";
    /// Room settings out of range (capacity, game, name).
    InvalidRoomSettings = 206, "invalid_room_settings";
    /// An input for a game the player is not playing, or out of range.
    InvalidInput = 300, "invalid_input";
    /// Chat refused by moderation (muted, filtered).
    ChatRejected = 400, "chat_rejected";
    /// The addressed player is not online or not reachable.
    PlayerUnavailable = 401, "player_unavailable";
    /// An unexpected server-side failure; the request may be retried.
    Internal = 500, "internal";
    /// The server is overloaded; retry later.
    Busy = 501, "busy";
    /// The server is shutting down; reconnect elsewhere or later.
    ServerDraining = 502, "server_draining";
    /// No such player, or a guest session asked for its own history (it has none).
    PlayerNotFound = 600, "player_not_found";
    /// No match has that id.
    MatchNotFound = 601, "match_not_found";
    /// The match has no stored events (a solo result, or past retention).
    ReplayNotFound = 602, "replay_not_found";
    /// A history request's fields are out of range (limit, mode or game name).
    InvalidQuery = 603, "invalid_query";
}
