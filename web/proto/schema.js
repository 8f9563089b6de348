// Generated from src/proto/wire by `make generated`; do not edit.
// The Ludus protocol schema that codec.js interprets.
export const SCHEMA = {
  "protocol_version": 1,
  "min_protocol_version": 1,
  "limits": {
    "MAX_FRAME_LEN": 65536,
    "MAX_DATAGRAM_LEN": 1200,
    "MAX_TYPE_CODE": 16383,
    "MAX_CORE_TYPE_CODE": 255,
    "MAX_NAME_LEN": 32,
    "MAX_TOKEN_LEN": 2048,
    "MAX_CLIENT_NAME_LEN": 64,
    "MAX_REASON_LEN": 256,
    "MAX_ROOM_CODE_LEN": 16,
    "MAX_ROOM_NAME_LEN": 48,
    "MAX_ADDRESS_LEN": 256,
    "MAX_CHAT_LEN": 512,
    "MAX_ACTIVITY_LEN": 64,
    "MAX_NOTIFICATION_TITLE_LEN": 96,
    "MAX_NOTIFICATION_BODY_LEN": 512,
    "MAX_NOTIFICATION_DATA_LEN": 2048,
    "MAX_SDP_LEN": 16384,
    "MAX_ICE_CANDIDATE_LEN": 1024,
    "MAX_SDP_MID_LEN": 64,
    "MAX_HISTORY_JSON_LEN": 60000,
    "MAX_HISTORY_PAGE": 20,
    "MAX_ROOM_PLAYERS": 8,
    "MAX_ROOM_LIST": 64,
    "MAX_INPUT_REDUNDANCY": 8,
    "TETRIS_NEXT_QUEUE_LEN": 5,
    "TETRIS_BOARD_BYTES": 200,
    "MAX_CLEARED_ROWS": 4
  },
  "capabilities": {
    "CAP_DATAGRAMS": 1,
    "CAP_DELTAS": 2,
    "CAP_SPECTATE": 4,
    "CAP_VOICE": 8,
    "CAP_CHAT": 16
  },
  "error_codes": [
    {
      "code": 0,
      "name": "none",
      "doc": "Normal close: no error."
    },
    {
      "code": 1,
      "name": "malformed",
      "doc": "Bytes that do not decode (truncated, bad varint, bad UTF-8, limits, trailing bytes)."
    },
    {
      "code": 2,
      "name": "unknown_message",
      "doc": "A message type in the core range (0x00-0xFF) that the receiver does not know."
    },
    {
      "code": 3,
      "name": "frame_too_large",
      "doc": "A frame or datagram longer than the limit."
    },
    {
      "code": 4,
      "name": "unexpected_message",
      "doc": "A valid message sent in the wrong state (e.g. Input before Welcome, Hello twice)."
    },
    {
      "code": 5,
      "name": "unsupported_version",
      "doc": "No protocol version in common: Hello's range excludes every version the server speaks."
    },
    {
      "code": 6,
      "name": "rate_limited",
      "doc": "The peer sent more than its rate limit allows."
    },
    {
      "code": 7,
      "name": "timeout",
      "doc": "Nothing heard from the peer within the idle timeout."
    },
    {
      "code": 100,
      "name": "invalid_token",
      "doc": "The access token is missing, malformed, expired or has a bad signature."
    },
    {
      "code": 101,
      "name": "resume_failed",
      "doc": "The resume token does not match a live session."
    },
    {
      "code": 102,
      "name": "forbidden",
      "doc": "The account is not allowed to do this (role, ban)."
    },
    {
      "code": 103,
      "name": "session_replaced",
      "doc": "The same account connected again elsewhere; this session is replaced."
    },
    {
      "code": 200,
      "name": "room_not_found",
      "doc": "The room does not exist (or no longer exists)."
    },
    {
      "code": 201,
      "name": "room_full",
      "doc": "The room has no free slot."
    },
    {
      "code": 202,
      "name": "room_in_progress",
      "doc": "The room's game has started and it takes no new players."
    },
    {
      "code": 203,
      "name": "invalid_reservation",
      "doc": "The reservation token is unknown, expired or for another player."
    },
    {
      "code": 204,
      "name": "already_in_room",
      "doc": "The player is already queued or in a room."
    },
    {
      "code": 205,
      "name": "not_in_room",
      "doc": "The request needs a room and the player is in none."
    },
    {
      "code": 206,
      "name": "invalid_room_settings",
      "doc": "Room settings out of range (capacity, game, name)."
    },
    {
      "code": 300,
      "name": "invalid_input",
      "doc": "An input for a game the player is not playing, or out of range."
    },
    {
      "code": 400,
      "name": "chat_rejected",
      "doc": "Chat refused by moderation (muted, filtered)."
    },
    {
      "code": 401,
      "name": "player_unavailable",
      "doc": "The addressed player is not online or not reachable."
    },
    {
      "code": 500,
      "name": "internal",
      "doc": "An unexpected server-side failure; the request may be retried."
    },
    {
      "code": 501,
      "name": "busy",
      "doc": "The server is overloaded; retry later."
    },
    {
      "code": 502,
      "name": "server_draining",
      "doc": "The server is shutting down; reconnect elsewhere or later."
    },
    {
      "code": 600,
      "name": "player_not_found",
      "doc": "No such player, or a guest session asked for its own history (it has none)."
    },
    {
      "code": 601,
      "name": "match_not_found",
      "doc": "No match has that id."
    },
    {
      "code": 602,
      "name": "replay_not_found",
      "doc": "The match has no stored events (a solo result, or past retention)."
    },
    {
      "code": 603,
      "name": "invalid_query",
      "doc": "A history request's fields are out of range (limit, mode or game name)."
    }
  ],
  "enums": [
    {
      "name": "GameKind",
      "repr": "u8",
      "doc": "The game a room plays.",
      "values": [
        {
          "name": "tetris",
          "value": 1,
          "doc": "Competitive Tetris battle with garbage, 1 to 8 players (60 Hz)."
        },
        {
          "name": "arena",
          "value": 2,
          "doc": "2D movement arena, up to 8 players (30 Hz); the benchmark workload."
        }
      ]
    },
    {
      "name": "RoomPhase",
      "repr": "u8",
      "doc": "Where a room is in its life.",
      "values": [
        {
          "name": "waiting",
          "value": 0,
          "doc": "Gathering players; members toggle ready."
        },
        {
          "name": "countdown",
          "value": 1,
          "doc": "Everyone is ready; the game starts when the countdown ends."
        },
        {
          "name": "playing",
          "value": 2,
          "doc": "The game is running."
        },
        {
          "name": "finished",
          "value": 3,
          "doc": "Results are out; the room closes or returns to waiting."
        }
      ]
    },
    {
      "name": "QueueState",
      "repr": "u8",
      "doc": "A matchmaking queue entry's state.",
      "values": [
        {
          "name": "idle",
          "value": 0,
          "doc": "Not queued."
        },
        {
          "name": "searching",
          "value": 1,
          "doc": "Queued and waiting for opponents."
        },
        {
          "name": "found",
          "value": 2,
          "doc": "A match was found; MatchFound follows."
        }
      ]
    },
    {
      "name": "LeaveReason",
      "repr": "u8",
      "doc": "Why a member left a room.",
      "values": [
        {
          "name": "left",
          "value": 0,
          "doc": "The player asked to leave."
        },
        {
          "name": "disconnected",
          "value": 1,
          "doc": "The connection dropped; the slot is kept for a reconnect."
        },
        {
          "name": "kicked",
          "value": 2,
          "doc": "Removed by the room's owner or a moderator."
        },
        {
          "name": "timed_out",
          "value": 3,
          "doc": "Disconnected for longer than the reconnect grace period."
        }
      ]
    },
    {
      "name": "ChatChannel",
      "repr": "u8",
      "doc": "A chat channel.",
      "values": [
        {
          "name": "room",
          "value": 0,
          "doc": "Everyone in the sender's room (players and spectators)."
        },
        {
          "name": "private",
          "value": 1,
          "doc": "One player, named by `to_player`."
        },
        {
          "name": "lobby",
          "value": 2,
          "doc": "Everyone in the lobby of the sender's server."
        },
        {
          "name": "system",
          "value": 3,
          "doc": "Messages from the server itself (server to client only)."
        }
      ]
    },
    {
      "name": "PresenceStatus",
      "repr": "u8",
      "doc": "What a player is doing, as friends see it.",
      "values": [
        {
          "name": "offline",
          "value": 0,
          "doc": "Not connected (or invisible)."
        },
        {
          "name": "online",
          "value": 1,
          "doc": "Connected and idle."
        },
        {
          "name": "away",
          "value": 2,
          "doc": "Connected but inactive."
        },
        {
          "name": "in_queue",
          "value": 3,
          "doc": "Waiting in a matchmaking queue."
        },
        {
          "name": "in_game",
          "value": 4,
          "doc": "Playing in a room."
        },
        {
          "name": "spectating",
          "value": 5,
          "doc": "Watching a room."
        }
      ]
    },
    {
      "name": "NotificationKind",
      "repr": "u8",
      "doc": "What a notification is about.",
      "values": [
        {
          "name": "system",
          "value": 0,
          "doc": "An announcement from the operators."
        },
        {
          "name": "friend_request",
          "value": 1,
          "doc": "Someone asked to be friends."
        },
        {
          "name": "room_invite",
          "value": 2,
          "doc": "Someone invited the player to a room; `data` holds the room."
        },
        {
          "name": "match_ready",
          "value": 3,
          "doc": "A queued match is ready."
        },
        {
          "name": "rating_changed",
          "value": 4,
          "doc": "A rating or leaderboard change."
        }
      ]
    },
    {
      "name": "PieceKind",
      "repr": "u8",
      "doc": "A tetromino. Board cells use the same numbers (0 empty, 8 garbage).",
      "values": [
        {
          "name": "I",
          "value": 1,
          "doc": ""
        },
        {
          "name": "O",
          "value": 2,
          "doc": ""
        },
        {
          "name": "T",
          "value": 3,
          "doc": ""
        },
        {
          "name": "S",
          "value": 4,
          "doc": ""
        },
        {
          "name": "Z",
          "value": 5,
          "doc": ""
        },
        {
          "name": "J",
          "value": 6,
          "doc": ""
        },
        {
          "name": "L",
          "value": 7,
          "doc": ""
        }
      ]
    },
    {
      "name": "Rotation",
      "repr": "u8",
      "doc": "SRS rotation state.",
      "values": [
        {
          "name": "0",
          "value": 0,
          "doc": "Spawn state."
        },
        {
          "name": "R",
          "value": 1,
          "doc": "One clockwise turn from spawn."
        },
        {
          "name": "2",
          "value": 2,
          "doc": "Two turns from spawn."
        },
        {
          "name": "L",
          "value": 3,
          "doc": "One counter-clockwise turn from spawn."
        }
      ]
    },
    {
      "name": "TSpin",
      "repr": "u8",
      "doc": "T-spin recognition of a lock.",
      "values": [
        {
          "name": "none",
          "value": 0,
          "doc": ""
        },
        {
          "name": "mini",
          "value": 1,
          "doc": ""
        },
        {
          "name": "full",
          "value": 2,
          "doc": ""
        }
      ]
    },
    {
      "name": "MomentKind",
      "repr": "u8",
      "doc": "A key moment found by the moment detector.",
      "values": [
        {
          "name": "tetris",
          "value": 1,
          "doc": ""
        },
        {
          "name": "t_spin_single",
          "value": 2,
          "doc": ""
        },
        {
          "name": "t_spin_double",
          "value": 3,
          "doc": ""
        },
        {
          "name": "t_spin_triple",
          "value": 4,
          "doc": ""
        },
        {
          "name": "back_to_back",
          "value": 5,
          "doc": ""
        },
        {
          "name": "garbage_surge",
          "value": 6,
          "doc": ""
        },
        {
          "name": "near_death_survival",
          "value": 7,
          "doc": ""
        },
        {
          "name": "elimination",
          "value": 8,
          "doc": ""
        },
        {
          "name": "comeback",
          "value": 9,
          "doc": ""
        },
        {
          "name": "perfect_clear",
          "value": 10,
          "doc": ""
        }
      ]
    }
  ],
  "structs": [
    {
      "name": "Limits",
      "doc": "Limits the server enforces on this session.",
      "fields": [
        {
          "name": "max_frame_len",
          "type": {
            "kind": "u32"
          },
          "doc": "Largest frame body the server accepts, in bytes."
        },
        {
          "name": "max_datagram_len",
          "type": {
            "kind": "u16"
          },
          "doc": "Largest datagram payload the server accepts, in bytes."
        },
        {
          "name": "max_chat_len",
          "type": {
            "kind": "u16"
          },
          "doc": "Longest chat text, in bytes."
        },
        {
          "name": "max_inputs_per_second",
          "type": {
            "kind": "u16"
          },
          "doc": "Most Input messages per second before rate limiting."
        }
      ]
    },
    {
      "name": "Member",
      "doc": "A player in a room.",
      "fields": [
        {
          "name": "player_id",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        },
        {
          "name": "slot",
          "type": {
            "kind": "u8"
          },
          "doc": "Seat in the room, 0 to capacity - 1; game state refers to players by slot."
        },
        {
          "name": "nickname",
          "type": {
            "kind": "text",
            "max": 32
          },
          "doc": ""
        },
        {
          "name": "ready",
          "type": {
            "kind": "bool"
          },
          "doc": ""
        },
        {
          "name": "connected",
          "type": {
            "kind": "bool"
          },
          "doc": "False while the player is disconnected but within the reconnect grace period."
        }
      ]
    },
    {
      "name": "RoomSummary",
      "doc": "A public room, as the room list shows it.",
      "fields": [
        {
          "name": "room_id",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        },
        {
          "name": "code",
          "type": {
            "kind": "text",
            "max": 16
          },
          "doc": "Short code to join by."
        },
        {
          "name": "name",
          "type": {
            "kind": "text",
            "max": 48
          },
          "doc": ""
        },
        {
          "name": "game",
          "type": {
            "kind": "enum",
            "name": "GameKind"
          },
          "doc": ""
        },
        {
          "name": "phase",
          "type": {
            "kind": "enum",
            "name": "RoomPhase"
          },
          "doc": ""
        },
        {
          "name": "members",
          "type": {
            "kind": "u8"
          },
          "doc": ""
        },
        {
          "name": "capacity",
          "type": {
            "kind": "u8"
          },
          "doc": ""
        },
        {
          "name": "spectators",
          "type": {
            "kind": "u16"
          },
          "doc": ""
        }
      ]
    },
    {
      "name": "ArenaPlayer",
      "doc": "One player's place in the arena.",
      "fields": [
        {
          "name": "slot",
          "type": {
            "kind": "u8"
          },
          "doc": ""
        },
        {
          "name": "x",
          "type": {
            "kind": "u32"
          },
          "doc": "Position in thousandths of a world unit, 0 to 1 000 000."
        },
        {
          "name": "y",
          "type": {
            "kind": "u32"
          },
          "doc": "Position in thousandths of a world unit, 0 to 1 000 000."
        },
        {
          "name": "last_input_seq",
          "type": {
            "kind": "u32"
          },
          "doc": "Sequence number of the latest input the server has applied."
        }
      ]
    },
    {
      "name": "TetrisPiece",
      "doc": "A falling piece: its kind, rotation and pivot position (y grows upward).",
      "fields": [
        {
          "name": "kind",
          "type": {
            "kind": "enum",
            "name": "PieceKind"
          },
          "doc": ""
        },
        {
          "name": "rotation",
          "type": {
            "kind": "enum",
            "name": "Rotation"
          },
          "doc": ""
        },
        {
          "name": "x",
          "type": {
            "kind": "i8"
          },
          "doc": ""
        },
        {
          "name": "y",
          "type": {
            "kind": "i8"
          },
          "doc": ""
        }
      ]
    },
    {
      "name": "TetrisBoard",
      "doc": "One player's complete Tetris state.",
      "fields": [
        {
          "name": "slot",
          "type": {
            "kind": "u8"
          },
          "doc": ""
        },
        {
          "name": "alive",
          "type": {
            "kind": "bool"
          },
          "doc": ""
        },
        {
          "name": "cells",
          "type": {
            "kind": "bytes",
            "max": 200
          },
          "doc": "10x40 cells, 4 bits each, 200 bytes: row 0 (bottom) first; within a byte the low nibble is the even column. 0 empty, 1-7 PieceKind, 8 garbage."
        },
        {
          "name": "piece",
          "type": {
            "kind": "option",
            "item": {
              "kind": "struct",
              "name": "TetrisPiece"
            }
          },
          "doc": ""
        },
        {
          "name": "hold",
          "type": {
            "kind": "option",
            "item": {
              "kind": "enum",
              "name": "PieceKind"
            }
          },
          "doc": ""
        },
        {
          "name": "hold_used",
          "type": {
            "kind": "bool"
          },
          "doc": "True once hold was used for the current piece."
        },
        {
          "name": "next",
          "type": {
            "kind": "list",
            "max": 5,
            "item": {
              "kind": "enum",
              "name": "PieceKind"
            }
          },
          "doc": ""
        },
        {
          "name": "pending_garbage",
          "type": {
            "kind": "u16"
          },
          "doc": "Garbage lines queued against this player, not yet inserted."
        },
        {
          "name": "score",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "lines",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "level",
          "type": {
            "kind": "u8"
          },
          "doc": ""
        },
        {
          "name": "combo",
          "type": {
            "kind": "u8"
          },
          "doc": "Consecutive line-clearing locks (REN); 0 when no combo is running."
        },
        {
          "name": "back_to_back",
          "type": {
            "kind": "u8"
          },
          "doc": "Back-to-back chain length; 0 when none."
        },
        {
          "name": "pieces",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "last_input_seq",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        }
      ]
    },
    {
      "name": "TetrisPieceUpdate",
      "doc": "A player's falling piece after this tick.",
      "fields": [
        {
          "name": "slot",
          "type": {
            "kind": "u8"
          },
          "doc": ""
        },
        {
          "name": "piece",
          "type": {
            "kind": "option",
            "item": {
              "kind": "struct",
              "name": "TetrisPiece"
            }
          },
          "doc": "Absent between a lock and the next spawn, or after elimination."
        },
        {
          "name": "last_input_seq",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        }
      ]
    },
    {
      "name": "PlayerResult",
      "doc": "One player's outcome of a match.",
      "fields": [
        {
          "name": "player_id",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        },
        {
          "name": "slot",
          "type": {
            "kind": "u8"
          },
          "doc": ""
        },
        {
          "name": "placement",
          "type": {
            "kind": "u8"
          },
          "doc": "1 for the winner."
        },
        {
          "name": "score",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "lines",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "garbage_sent",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "garbage_received",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "pieces",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "survived_ticks",
          "type": {
            "kind": "u32"
          },
          "doc": "Ticks from the start until elimination or the end."
        }
      ]
    }
  ],
  "messages": [
    {
      "code": 1,
      "name": "Hello",
      "direction": "client",
      "doc": "Opens a session; the first message a client sends. The server answers with Welcome, or Error then Bye.",
      "fields": [
        {
          "name": "min_version",
          "type": {
            "kind": "u16"
          },
          "doc": "Oldest protocol version the client speaks."
        },
        {
          "name": "max_version",
          "type": {
            "kind": "u16"
          },
          "doc": "Newest protocol version the client speaks."
        },
        {
          "name": "capabilities",
          "type": {
            "kind": "u32"
          },
          "doc": "Capability bits the client supports (CAP_* constants)."
        },
        {
          "name": "client_name",
          "type": {
            "kind": "text",
            "max": 64
          },
          "doc": "Client software and version, for logs (\"ludus-web/0.1\")."
        },
        {
          "name": "access_token",
          "type": {
            "kind": "option",
            "item": {
              "kind": "text",
              "max": 2048
            }
          },
          "doc": "JWT access token; absent for a guest."
        },
        {
          "name": "resume_token",
          "type": {
            "kind": "option",
            "item": {
              "kind": "text",
              "max": 2048
            }
          },
          "doc": "Resume token of an earlier session, to return to its room."
        },
        {
          "name": "nickname",
          "type": {
            "kind": "option",
            "item": {
              "kind": "text",
              "max": 32
            }
          },
          "doc": "Nickname wanted by a guest; ignored with an access token."
        }
      ]
    },
    {
      "code": 2,
      "name": "Welcome",
      "direction": "server",
      "doc": "Accepts a session.",
      "fields": [
        {
          "name": "version",
          "type": {
            "kind": "u16"
          },
          "doc": "The protocol version in use: the highest both sides speak."
        },
        {
          "name": "capabilities",
          "type": {
            "kind": "u32"
          },
          "doc": "Capability bits in use: those both sides support."
        },
        {
          "name": "session_id",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        },
        {
          "name": "player_id",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        },
        {
          "name": "nickname",
          "type": {
            "kind": "text",
            "max": 32
          },
          "doc": ""
        },
        {
          "name": "resumed",
          "type": {
            "kind": "bool"
          },
          "doc": "True when the Hello's resume token brought back an earlier session."
        },
        {
          "name": "resume_token",
          "type": {
            "kind": "text",
            "max": 2048
          },
          "doc": "Token to resume this session after a disconnect."
        },
        {
          "name": "server_time_us",
          "type": {
            "kind": "u64"
          },
          "doc": "Server clock, microseconds since the Unix epoch."
        },
        {
          "name": "heartbeat_ms",
          "type": {
            "kind": "u32"
          },
          "doc": "The client should send Ping at least this often."
        },
        {
          "name": "idle_timeout_ms",
          "type": {
            "kind": "u32"
          },
          "doc": "The server closes a session silent for this long."
        },
        {
          "name": "limits",
          "type": {
            "kind": "struct",
            "name": "Limits"
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 3,
      "name": "Ping",
      "direction": "both",
      "doc": "Asks for a Pong; either side may send it.",
      "fields": [
        {
          "name": "id",
          "type": {
            "kind": "u32"
          },
          "doc": "Chosen by the sender, echoed in the Pong."
        },
        {
          "name": "sent_us",
          "type": {
            "kind": "u64"
          },
          "doc": "Sender's clock when sent, microseconds."
        }
      ]
    },
    {
      "code": 4,
      "name": "Pong",
      "direction": "both",
      "doc": "Answers a Ping. RTT = now - ping_sent_us - (sent_us - received_us); clock offset = ((received_us - ping_sent_us) + (sent_us - now)) / 2.",
      "fields": [
        {
          "name": "id",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "ping_sent_us",
          "type": {
            "kind": "u64"
          },
          "doc": "The Ping's sent_us, echoed."
        },
        {
          "name": "received_us",
          "type": {
            "kind": "u64"
          },
          "doc": "Responder's clock when the Ping arrived, microseconds."
        },
        {
          "name": "sent_us",
          "type": {
            "kind": "u64"
          },
          "doc": "Responder's clock when the Pong was sent, microseconds."
        }
      ]
    },
    {
      "code": 5,
      "name": "Bye",
      "direction": "both",
      "doc": "Ends the session; the sender closes the transport after it.",
      "fields": [
        {
          "name": "code",
          "type": {
            "kind": "u16"
          },
          "doc": "An ErrorCode; 0 for a normal close."
        },
        {
          "name": "reason",
          "type": {
            "kind": "text",
            "max": 256
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 6,
      "name": "Error",
      "direction": "server",
      "doc": "Reports a failed request or a protocol violation. A fatal error is followed by Bye.",
      "fields": [
        {
          "name": "code",
          "type": {
            "kind": "u16"
          },
          "doc": "An ErrorCode."
        },
        {
          "name": "in_reply_to",
          "type": {
            "kind": "u16"
          },
          "doc": "Type code of the message that caused it; 0 if none."
        },
        {
          "name": "text",
          "type": {
            "kind": "text",
            "max": 256
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 16,
      "name": "QueueJoin",
      "direction": "client",
      "doc": "Enters the matchmaking queue.",
      "fields": [
        {
          "name": "game",
          "type": {
            "kind": "enum",
            "name": "GameKind"
          },
          "doc": ""
        },
        {
          "name": "room_size",
          "type": {
            "kind": "u8"
          },
          "doc": "Players per room wanted, 2 to 8."
        },
        {
          "name": "ranked",
          "type": {
            "kind": "bool"
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 17,
      "name": "QueueLeave",
      "direction": "client",
      "doc": "Leaves the matchmaking queue.",
      "fields": []
    },
    {
      "code": 18,
      "name": "QueueStatus",
      "direction": "server",
      "doc": "The player's queue state, sent on change and every few seconds while searching.",
      "fields": [
        {
          "name": "state",
          "type": {
            "kind": "enum",
            "name": "QueueState"
          },
          "doc": ""
        },
        {
          "name": "game",
          "type": {
            "kind": "enum",
            "name": "GameKind"
          },
          "doc": ""
        },
        {
          "name": "players_waiting",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "waited_ms",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "estimated_wait_ms",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 19,
      "name": "MatchFound",
      "direction": "server",
      "doc": "A match is ready: join it with RoomJoin and the reservation token, on this connection when `address` is empty, else at that server.",
      "fields": [
        {
          "name": "room_id",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        },
        {
          "name": "game",
          "type": {
            "kind": "enum",
            "name": "GameKind"
          },
          "doc": ""
        },
        {
          "name": "address",
          "type": {
            "kind": "text",
            "max": 256
          },
          "doc": "URL of the server hosting the room; empty for this server."
        },
        {
          "name": "reservation_token",
          "type": {
            "kind": "text",
            "max": 2048
          },
          "doc": ""
        },
        {
          "name": "expires_in_ms",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 20,
      "name": "RoomListRequest",
      "direction": "client",
      "doc": "Asks for the public rooms, optionally of one game.",
      "fields": [
        {
          "name": "game",
          "type": {
            "kind": "option",
            "item": {
              "kind": "enum",
              "name": "GameKind"
            }
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 21,
      "name": "RoomList",
      "direction": "server",
      "doc": "Public rooms, most recently active first, at most 64.",
      "fields": [
        {
          "name": "rooms",
          "type": {
            "kind": "list",
            "max": 64,
            "item": {
              "kind": "struct",
              "name": "RoomSummary"
            }
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 22,
      "name": "RoomCreate",
      "direction": "client",
      "doc": "Creates a room and joins it; answered with RoomJoined.",
      "fields": [
        {
          "name": "game",
          "type": {
            "kind": "enum",
            "name": "GameKind"
          },
          "doc": ""
        },
        {
          "name": "capacity",
          "type": {
            "kind": "u8"
          },
          "doc": "1 to 8 players."
        },
        {
          "name": "private",
          "type": {
            "kind": "bool"
          },
          "doc": "Private rooms are not listed and are joined by code."
        },
        {
          "name": "name",
          "type": {
            "kind": "text",
            "max": 48
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 23,
      "name": "RoomJoinByCode",
      "direction": "client",
      "doc": "Joins a room by its code; answered with RoomJoined.",
      "fields": [
        {
          "name": "code",
          "type": {
            "kind": "text",
            "max": 16
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 24,
      "name": "QuickJoin",
      "direction": "client",
      "doc": "Joins any waiting public room of the game, or creates one.",
      "fields": [
        {
          "name": "game",
          "type": {
            "kind": "enum",
            "name": "GameKind"
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 32,
      "name": "RoomJoin",
      "direction": "client",
      "doc": "Joins a room by id (from RoomList or MatchFound); answered with RoomJoined.",
      "fields": [
        {
          "name": "room_id",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        },
        {
          "name": "reservation_token",
          "type": {
            "kind": "option",
            "item": {
              "kind": "text",
              "max": 2048
            }
          },
          "doc": "Required for rooms made by matchmaking."
        }
      ]
    },
    {
      "code": 33,
      "name": "RoomLeave",
      "direction": "client",
      "doc": "Leaves the current room.",
      "fields": []
    },
    {
      "code": 34,
      "name": "RoomReady",
      "direction": "client",
      "doc": "Marks the player ready or not; the game starts when all members are ready.",
      "fields": [
        {
          "name": "ready",
          "type": {
            "kind": "bool"
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 35,
      "name": "RoomJoined",
      "direction": "server",
      "doc": "The player is in the room; the full room as it is now.",
      "fields": [
        {
          "name": "room_id",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        },
        {
          "name": "code",
          "type": {
            "kind": "text",
            "max": 16
          },
          "doc": ""
        },
        {
          "name": "name",
          "type": {
            "kind": "text",
            "max": 48
          },
          "doc": ""
        },
        {
          "name": "game",
          "type": {
            "kind": "enum",
            "name": "GameKind"
          },
          "doc": ""
        },
        {
          "name": "phase",
          "type": {
            "kind": "enum",
            "name": "RoomPhase"
          },
          "doc": ""
        },
        {
          "name": "capacity",
          "type": {
            "kind": "u8"
          },
          "doc": ""
        },
        {
          "name": "tick_hz",
          "type": {
            "kind": "u16"
          },
          "doc": "Simulation ticks per second."
        },
        {
          "name": "your_slot",
          "type": {
            "kind": "u8"
          },
          "doc": ""
        },
        {
          "name": "members",
          "type": {
            "kind": "list",
            "max": 8,
            "item": {
              "kind": "struct",
              "name": "Member"
            }
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 36,
      "name": "MemberJoined",
      "direction": "server",
      "doc": "Someone joined the room.",
      "fields": [
        {
          "name": "member",
          "type": {
            "kind": "struct",
            "name": "Member"
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 37,
      "name": "MemberLeft",
      "direction": "server",
      "doc": "Someone left the room (or the receiver itself, when it is removed).",
      "fields": [
        {
          "name": "player_id",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        },
        {
          "name": "slot",
          "type": {
            "kind": "u8"
          },
          "doc": ""
        },
        {
          "name": "reason",
          "type": {
            "kind": "enum",
            "name": "LeaveReason"
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 38,
      "name": "MemberReady",
      "direction": "server",
      "doc": "A member's ready flag changed.",
      "fields": [
        {
          "name": "player_id",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        },
        {
          "name": "ready",
          "type": {
            "kind": "bool"
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 39,
      "name": "Countdown",
      "direction": "server",
      "doc": "The game starts in `remaining_ms`.",
      "fields": [
        {
          "name": "room_id",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        },
        {
          "name": "remaining_ms",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 40,
      "name": "GameStart",
      "direction": "server",
      "doc": "The game started; the seed makes every client's prediction match the server.",
      "fields": [
        {
          "name": "room_id",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        },
        {
          "name": "game",
          "type": {
            "kind": "enum",
            "name": "GameKind"
          },
          "doc": ""
        },
        {
          "name": "seed",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        },
        {
          "name": "tick_hz",
          "type": {
            "kind": "u16"
          },
          "doc": ""
        },
        {
          "name": "start_tick",
          "type": {
            "kind": "u32"
          },
          "doc": "Tick number of the first simulated tick."
        },
        {
          "name": "players",
          "type": {
            "kind": "list",
            "max": 8,
            "item": {
              "kind": "u64"
            }
          },
          "doc": "Player ids by slot."
        }
      ]
    },
    {
      "code": 41,
      "name": "GameResults",
      "direction": "server",
      "doc": "The game ended.",
      "fields": [
        {
          "name": "room_id",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        },
        {
          "name": "game",
          "type": {
            "kind": "enum",
            "name": "GameKind"
          },
          "doc": ""
        },
        {
          "name": "duration_ticks",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "results",
          "type": {
            "kind": "list",
            "max": 8,
            "item": {
              "kind": "struct",
              "name": "PlayerResult"
            }
          },
          "doc": "By placement, winner first."
        }
      ]
    },
    {
      "code": 48,
      "name": "Input",
      "direction": "client",
      "doc": "Player input, with the last few inputs repeated against datagram loss. `inputs[i]` has sequence number `seq - i`. Input bits per game: arena bit 0 left, 1 right, 2 down, 3 up; Tetris bit 0 move left, 1 move right, 2 soft drop held, 3 hard drop, 4 rotate clockwise, 5 rotate counter-clockwise, 6 rotate 180, 7 hold.",
      "fields": [
        {
          "name": "seq",
          "type": {
            "kind": "u32"
          },
          "doc": "Sequence number of inputs[0], the newest; starts at 1, +1 per new input."
        },
        {
          "name": "client_frame",
          "type": {
            "kind": "u32"
          },
          "doc": "The server tick the client was showing when it sampled inputs[0]."
        },
        {
          "name": "inputs",
          "type": {
            "kind": "list",
            "max": 8,
            "item": {
              "kind": "u16"
            }
          },
          "doc": "Newest first, 1 to 8 entries."
        }
      ]
    },
    {
      "code": 49,
      "name": "ArenaState",
      "direction": "server",
      "doc": "The arena room's state after a tick, sent to every member every tick.",
      "fields": [
        {
          "name": "tick",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "players",
          "type": {
            "kind": "list",
            "max": 8,
            "item": {
              "kind": "struct",
              "name": "ArenaPlayer"
            }
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 50,
      "name": "TetrisSnapshot",
      "direction": "server",
      "doc": "Complete Tetris state of every player; on join, on request and periodically.",
      "fields": [
        {
          "name": "tick",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "state_hash",
          "type": {
            "kind": "u64"
          },
          "doc": "The simulation's state hash at this tick."
        },
        {
          "name": "boards",
          "type": {
            "kind": "list",
            "max": 8,
            "item": {
              "kind": "struct",
              "name": "TetrisBoard"
            }
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 51,
      "name": "TetrisDelta",
      "direction": "server",
      "doc": "Falling pieces that moved since `base_tick`; board changes come as events.",
      "fields": [
        {
          "name": "tick",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "base_tick",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "pieces",
          "type": {
            "kind": "list",
            "max": 8,
            "item": {
              "kind": "struct",
              "name": "TetrisPieceUpdate"
            }
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 52,
      "name": "PieceSpawned",
      "direction": "server",
      "doc": "A new piece entered at the top.",
      "fields": [
        {
          "name": "tick",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "slot",
          "type": {
            "kind": "u8"
          },
          "doc": ""
        },
        {
          "name": "piece",
          "type": {
            "kind": "struct",
            "name": "TetrisPiece"
          },
          "doc": ""
        },
        {
          "name": "next",
          "type": {
            "kind": "list",
            "max": 5,
            "item": {
              "kind": "enum",
              "name": "PieceKind"
            }
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 53,
      "name": "PieceLocked",
      "direction": "server",
      "doc": "A piece locked into the board.",
      "fields": [
        {
          "name": "tick",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "slot",
          "type": {
            "kind": "u8"
          },
          "doc": ""
        },
        {
          "name": "piece",
          "type": {
            "kind": "struct",
            "name": "TetrisPiece"
          },
          "doc": ""
        },
        {
          "name": "t_spin",
          "type": {
            "kind": "enum",
            "name": "TSpin"
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 54,
      "name": "LinesCleared",
      "direction": "server",
      "doc": "Rows were cleared by the last lock.",
      "fields": [
        {
          "name": "tick",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "slot",
          "type": {
            "kind": "u8"
          },
          "doc": ""
        },
        {
          "name": "rows",
          "type": {
            "kind": "list",
            "max": 4,
            "item": {
              "kind": "u8"
            }
          },
          "doc": "Cleared rows, bottom first (y, 0 = bottom)."
        },
        {
          "name": "t_spin",
          "type": {
            "kind": "enum",
            "name": "TSpin"
          },
          "doc": ""
        },
        {
          "name": "combo",
          "type": {
            "kind": "u8"
          },
          "doc": ""
        },
        {
          "name": "back_to_back",
          "type": {
            "kind": "bool"
          },
          "doc": ""
        },
        {
          "name": "perfect_clear",
          "type": {
            "kind": "bool"
          },
          "doc": ""
        },
        {
          "name": "score",
          "type": {
            "kind": "u32"
          },
          "doc": "Score after the clear."
        }
      ]
    },
    {
      "code": 55,
      "name": "GarbageSent",
      "direction": "server",
      "doc": "Garbage was sent after cancelling against the sender's own queue.",
      "fields": [
        {
          "name": "tick",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "from_slot",
          "type": {
            "kind": "u8"
          },
          "doc": ""
        },
        {
          "name": "to_slot",
          "type": {
            "kind": "u8"
          },
          "doc": ""
        },
        {
          "name": "lines",
          "type": {
            "kind": "u8"
          },
          "doc": "Lines that reach the target's queue."
        },
        {
          "name": "cancelled",
          "type": {
            "kind": "u8"
          },
          "doc": "Lines that cancelled the sender's own pending garbage."
        }
      ]
    },
    {
      "code": 56,
      "name": "GarbageReceived",
      "direction": "server",
      "doc": "Garbage rose into a board.",
      "fields": [
        {
          "name": "tick",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "slot",
          "type": {
            "kind": "u8"
          },
          "doc": ""
        },
        {
          "name": "from_slot",
          "type": {
            "kind": "u8"
          },
          "doc": ""
        },
        {
          "name": "lines",
          "type": {
            "kind": "u8"
          },
          "doc": ""
        },
        {
          "name": "hole_column",
          "type": {
            "kind": "u8"
          },
          "doc": "The column left open in the inserted rows."
        }
      ]
    },
    {
      "code": 57,
      "name": "PlayerEliminated",
      "direction": "server",
      "doc": "A player topped out.",
      "fields": [
        {
          "name": "tick",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "slot",
          "type": {
            "kind": "u8"
          },
          "doc": ""
        },
        {
          "name": "placement",
          "type": {
            "kind": "u8"
          },
          "doc": ""
        },
        {
          "name": "by_slot",
          "type": {
            "kind": "option",
            "item": {
              "kind": "u8"
            }
          },
          "doc": "The player whose garbage did it, if any."
        }
      ]
    },
    {
      "code": 58,
      "name": "KeyMoment",
      "direction": "server",
      "doc": "A key moment the detector found.",
      "fields": [
        {
          "name": "tick",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "slot",
          "type": {
            "kind": "u8"
          },
          "doc": ""
        },
        {
          "name": "kind",
          "type": {
            "kind": "enum",
            "name": "MomentKind"
          },
          "doc": ""
        },
        {
          "name": "value",
          "type": {
            "kind": "u32"
          },
          "doc": "Moment-specific size (lines, garbage rows, combo length)."
        }
      ]
    },
    {
      "code": 64,
      "name": "SpectateStart",
      "direction": "client",
      "doc": "Starts watching a room.",
      "fields": [
        {
          "name": "room_id",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 65,
      "name": "SpectateStop",
      "direction": "client",
      "doc": "Stops watching.",
      "fields": []
    },
    {
      "code": 66,
      "name": "SpectateJoined",
      "direction": "server",
      "doc": "Watching a room: its members; state messages follow, delayed.",
      "fields": [
        {
          "name": "room_id",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        },
        {
          "name": "game",
          "type": {
            "kind": "enum",
            "name": "GameKind"
          },
          "doc": ""
        },
        {
          "name": "tick_hz",
          "type": {
            "kind": "u16"
          },
          "doc": ""
        },
        {
          "name": "delay_ticks",
          "type": {
            "kind": "u32"
          },
          "doc": "Spectators see the game this many ticks late."
        },
        {
          "name": "members",
          "type": {
            "kind": "list",
            "max": 8,
            "item": {
              "kind": "struct",
              "name": "Member"
            }
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 67,
      "name": "SpectatorCount",
      "direction": "server",
      "doc": "How many are watching the room.",
      "fields": [
        {
          "name": "room_id",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        },
        {
          "name": "count",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 80,
      "name": "ChatSend",
      "direction": "client",
      "doc": "Sends a chat message.",
      "fields": [
        {
          "name": "channel",
          "type": {
            "kind": "enum",
            "name": "ChatChannel"
          },
          "doc": ""
        },
        {
          "name": "to_player",
          "type": {
            "kind": "u64"
          },
          "doc": "The addressee on the private channel; 0 otherwise."
        },
        {
          "name": "client_message_id",
          "type": {
            "kind": "u32"
          },
          "doc": "Chosen by the client, echoed in the resulting ChatMessage."
        },
        {
          "name": "text",
          "type": {
            "kind": "text",
            "max": 512
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 81,
      "name": "ChatMessage",
      "direction": "server",
      "doc": "A chat message, delivered to everyone on its channel (the sender too).",
      "fields": [
        {
          "name": "channel",
          "type": {
            "kind": "enum",
            "name": "ChatChannel"
          },
          "doc": ""
        },
        {
          "name": "message_id",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        },
        {
          "name": "from_player",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        },
        {
          "name": "from_name",
          "type": {
            "kind": "text",
            "max": 32
          },
          "doc": ""
        },
        {
          "name": "to_player",
          "type": {
            "kind": "u64"
          },
          "doc": "The addressee on the private channel; 0 otherwise."
        },
        {
          "name": "client_message_id",
          "type": {
            "kind": "u32"
          },
          "doc": "The sender's client_message_id; 0 for others' messages."
        },
        {
          "name": "sent_at_ms",
          "type": {
            "kind": "u64"
          },
          "doc": "Server clock, milliseconds since the Unix epoch."
        },
        {
          "name": "text",
          "type": {
            "kind": "text",
            "max": 512
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 96,
      "name": "PresenceSet",
      "direction": "client",
      "doc": "Sets the player's own presence.",
      "fields": [
        {
          "name": "status",
          "type": {
            "kind": "enum",
            "name": "PresenceStatus"
          },
          "doc": ""
        },
        {
          "name": "activity",
          "type": {
            "kind": "text",
            "max": 64
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 97,
      "name": "PresenceUpdate",
      "direction": "server",
      "doc": "A friend's presence changed.",
      "fields": [
        {
          "name": "player_id",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        },
        {
          "name": "status",
          "type": {
            "kind": "enum",
            "name": "PresenceStatus"
          },
          "doc": ""
        },
        {
          "name": "activity",
          "type": {
            "kind": "text",
            "max": 64
          },
          "doc": ""
        },
        {
          "name": "room_id",
          "type": {
            "kind": "option",
            "item": {
              "kind": "u64"
            }
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 98,
      "name": "Notification",
      "direction": "server",
      "doc": "Something for the player's attention.",
      "fields": [
        {
          "name": "notification_id",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        },
        {
          "name": "kind",
          "type": {
            "kind": "enum",
            "name": "NotificationKind"
          },
          "doc": ""
        },
        {
          "name": "title",
          "type": {
            "kind": "text",
            "max": 96
          },
          "doc": ""
        },
        {
          "name": "body",
          "type": {
            "kind": "text",
            "max": 512
          },
          "doc": ""
        },
        {
          "name": "data",
          "type": {
            "kind": "text",
            "max": 2048
          },
          "doc": "Kind-specific JSON."
        }
      ]
    },
    {
      "code": 112,
      "name": "RtcOffer",
      "direction": "both",
      "doc": "An SDP offer, relayed unchanged.",
      "fields": [
        {
          "name": "peer",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        },
        {
          "name": "call_id",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "sdp",
          "type": {
            "kind": "text",
            "max": 16384
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 113,
      "name": "RtcAnswer",
      "direction": "both",
      "doc": "An SDP answer, relayed unchanged.",
      "fields": [
        {
          "name": "peer",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        },
        {
          "name": "call_id",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "sdp",
          "type": {
            "kind": "text",
            "max": 16384
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 114,
      "name": "RtcIceCandidate",
      "direction": "both",
      "doc": "A trickled ICE candidate, relayed unchanged.",
      "fields": [
        {
          "name": "peer",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        },
        {
          "name": "call_id",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "candidate",
          "type": {
            "kind": "text",
            "max": 1024
          },
          "doc": ""
        },
        {
          "name": "sdp_mid",
          "type": {
            "kind": "text",
            "max": 64
          },
          "doc": ""
        },
        {
          "name": "sdp_mline_index",
          "type": {
            "kind": "u16"
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 115,
      "name": "RtcHangup",
      "direction": "both",
      "doc": "Ends a call.",
      "fields": [
        {
          "name": "peer",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        },
        {
          "name": "call_id",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 128,
      "name": "HistoryRequest",
      "direction": "client",
      "doc": "Asks for a page of a player's matches, newest first; answered with HistoryPage (the body of GET /api/players/{id}/matches).",
      "fields": [
        {
          "name": "request_id",
          "type": {
            "kind": "u32"
          },
          "doc": "Chosen by the client, echoed in the answer."
        },
        {
          "name": "player_id",
          "type": {
            "kind": "u64"
          },
          "doc": "The player; 0 for the session's own account."
        },
        {
          "name": "cursor",
          "type": {
            "kind": "u64"
          },
          "doc": "The next_cursor of the page before; 0 for the newest matches."
        },
        {
          "name": "limit",
          "type": {
            "kind": "u8"
          },
          "doc": "Matches wanted, 1 to MAX_HISTORY_PAGE (the page may hold fewer)."
        },
        {
          "name": "mode",
          "type": {
            "kind": "text",
            "max": 32
          },
          "doc": "Only matches of this mode (\"versus\", \"solo\"); empty for any."
        },
        {
          "name": "game",
          "type": {
            "kind": "text",
            "max": 32
          },
          "doc": "Only matches of this game (\"tetris\"); empty for any."
        }
      ]
    },
    {
      "code": 129,
      "name": "HistoryPage",
      "direction": "server",
      "doc": "A page of a player's matches.",
      "fields": [
        {
          "name": "request_id",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "matches_json",
          "type": {
            "kind": "text",
            "max": 60000
          },
          "doc": "`{\"matches\": [...], \"next_cursor\"}` as GET /api/players/{id}/matches answers."
        },
        {
          "name": "next_cursor",
          "type": {
            "kind": "u64"
          },
          "doc": "The cursor of the next page; 0 when this is the last."
        }
      ]
    },
    {
      "code": 130,
      "name": "MatchRequest",
      "direction": "client",
      "doc": "Asks for one match with every seat; answered with MatchDetail.",
      "fields": [
        {
          "name": "request_id",
          "type": {
            "kind": "u32"
          },
          "doc": "Chosen by the client, echoed in the answer."
        },
        {
          "name": "match_id",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        }
      ]
    },
    {
      "code": 131,
      "name": "MatchDetail",
      "direction": "server",
      "doc": "One match.",
      "fields": [
        {
          "name": "request_id",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "match_json",
          "type": {
            "kind": "text",
            "max": 60000
          },
          "doc": "The match as GET /api/matches/{id} answers."
        }
      ]
    },
    {
      "code": 132,
      "name": "ReplayRequest",
      "direction": "client",
      "doc": "Asks for a chunk of a match's replay: its events after the stream sequence `after`; answered with ReplayChunk.",
      "fields": [
        {
          "name": "request_id",
          "type": {
            "kind": "u32"
          },
          "doc": "Chosen by the client, echoed in the answer."
        },
        {
          "name": "match_id",
          "type": {
            "kind": "u64"
          },
          "doc": ""
        },
        {
          "name": "after",
          "type": {
            "kind": "u64"
          },
          "doc": "The next_after of the chunk before; 0 for the first chunk."
        }
      ]
    },
    {
      "code": 133,
      "name": "ReplayChunk",
      "direction": "server",
      "doc": "A chunk of a match's replay, as many events as fit.",
      "fields": [
        {
          "name": "request_id",
          "type": {
            "kind": "u32"
          },
          "doc": ""
        },
        {
          "name": "page_json",
          "type": {
            "kind": "text",
            "max": 60000
          },
          "doc": "`{\"match\", \"events\", \"moments\", \"next_after\"}` as\n GET /api/matches/{id}/replay answers."
        },
        {
          "name": "next_after",
          "type": {
            "kind": "u64"
          },
          "doc": "The `after` of the next chunk; 0 when this is the last."
        }
      ]
    }
  ]
};
