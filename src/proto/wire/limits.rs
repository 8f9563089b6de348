//! Protocol version, capability bits and the hard limits of every field.
//! Decoders check these before allocating; constructors refuse values past
//! them; the schema and docs/PROTOCOL.md are generated from them.

/// The protocol version this build speaks (and the only one, so far).
pub const PROTOCOL_VERSION: u16 = 1;
/// The oldest protocol version this build accepts.
pub const MIN_PROTOCOL_VERSION: u16 = 1;

/// Capability: the client receives datagrams (WebTransport only).
pub const CAP_DATAGRAMS: u32 = 1 << 0;
/// Capability: the client applies TetrisDelta between snapshots.
pub const CAP_DELTAS: u32 = 1 << 1;
/// Capability: the client can spectate.
pub const CAP_SPECTATE: u32 = 1 << 2;
/// Capability: the client relays WebRTC signaling for voice.
pub const CAP_VOICE: u32 = 1 << 3;
/// Capability: the client shows chat.
pub const CAP_CHAT: u32 = 1 << 4;
/// Every capability this version defines.
pub const CAP_ALL: u32 = CAP_DATAGRAMS | CAP_DELTAS | CAP_SPECTATE | CAP_VOICE | CAP_CHAT;

/// Nicknames and display names, bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 32;
/// Access, resume and reservation tokens.
pub const MAX_TOKEN_LEN: usize = 2_048;
/// Client software name in Hello.
pub const MAX_CLIENT_NAME_LEN: usize = 64;
/// Human-readable reasons in Bye and Error.
pub const MAX_REASON_LEN: usize = 256;
/// Room join codes.
pub const MAX_ROOM_CODE_LEN: usize = 16;
/// Room names.
pub const MAX_ROOM_NAME_LEN: usize = 48;
/// Server addresses (URLs) in MatchFound.
pub const MAX_ADDRESS_LEN: usize = 256;
/// Chat text.
pub const MAX_CHAT_LEN: usize = 512;
/// Presence activity text.
pub const MAX_ACTIVITY_LEN: usize = 64;
/// Notification title.
pub const MAX_NOTIFICATION_TITLE_LEN: usize = 96;
/// Notification body.
pub const MAX_NOTIFICATION_BODY_LEN: usize = 512;
/// Notification data (JSON text).
pub const MAX_NOTIFICATION_DATA_LEN: usize = 2_048;
/// WebRTC session descriptions.
pub const MAX_SDP_LEN: usize = 16_384;
/// One ICE candidate line.
pub const MAX_ICE_CANDIDATE_LEN: usize = 1_024;
/// ICE candidate media id.
pub const MAX_SDP_MID_LEN: usize = 64;
/// JSON text in HistoryPage, MatchDetail and ReplayChunk (the REST
/// bodies), bytes: with the message's other fields a frame stays under
/// MAX_FRAME_LEN. The server makes pages smaller rather than go past it.
pub const MAX_HISTORY_JSON_LEN: usize = 60_000;
/// Matches one HistoryRequest may ask for.
pub const MAX_HISTORY_PAGE: usize = 20;

/// Players in one room.
pub const MAX_ROOM_PLAYERS: usize = 8;
/// Rooms in one RoomList.
pub const MAX_ROOM_LIST: usize = 64;
/// Inputs carried by one Input message (the newest and its repeats).
pub const MAX_INPUT_REDUNDANCY: usize = 8;
/// Pieces shown in the Tetris next queue.
pub const TETRIS_NEXT_QUEUE_LEN: usize = 5;
/// Bytes of a packed 10x40 Tetris board, 4 bits per cell.
pub const TETRIS_BOARD_BYTES: usize = 200;
/// Rows one lock can clear.
pub const MAX_CLEARED_ROWS: usize = 4;

const _: () = assert!(TETRIS_BOARD_BYTES * 2 == 10 * 40);
