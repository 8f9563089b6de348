//! The events a game emits, in the catalog of the match-history design:
//! game_start, piece_spawn, piece_lock, line_clear, garbage_sent,
//! garbage_received, input, elimination, game_end. Every event has a tick,
//! a type, the player (slot) it concerns and its data. Events are plain
//! values with no heap data, so emitting them into a reused `Vec` costs no
//! allocation.

use arrayvec::ArrayVec;

use super::{Slot, MAX_PLAYERS};

/// Packed board bytes: 10x40 cells, 4 bits each, row 0 (bottom) first;
/// within a byte the low nibble is the even column. 0 empty, 1-7 the
/// [`Piece`] numbers, 8 garbage. The wire protocol's `TetrisBoard.cells`
/// uses the same layout.
pub const PACKED_BOARD_BYTES: usize = 200;
pub type PackedBoard = [u8; PACKED_BOARD_BYTES];

/// Pieces shown in the next queue.
pub const NEXT_QUEUE_LEN: usize = 5;

/// A tetromino. The numbers are the board's cell values (0 empty, 8 garbage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Piece {
    I = 1,
    O = 2,
    T = 3,
    S = 4,
    Z = 5,
    J = 6,
    L = 7,
}

impl Piece {
    pub const ALL: [Piece; 7] =
        [Piece::I, Piece::O, Piece::T, Piece::S, Piece::Z, Piece::J, Piece::L];

    pub fn from_u8(value: u8) -> Option<Piece> {
        Piece::ALL.get(usize::from(value).wrapping_sub(1)).copied()
    }

    pub fn letter(self) -> char {
        match self {
            Piece::I => 'I',
            Piece::O => 'O',
            Piece::T => 'T',
            Piece::S => 'S',
            Piece::Z => 'Z',
            Piece::J => 'J',
            Piece::L => 'L',
        }
    }
}

/// SRS rotation state: 0 spawn, R one clockwise turn, 2 two turns, L one
/// counter-clockwise turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Rotation {
    Spawn = 0,
    Right = 1,
    Reverse = 2,
    Left = 3,
}

impl Rotation {
    pub const ALL: [Rotation; 4] =
        [Rotation::Spawn, Rotation::Right, Rotation::Reverse, Rotation::Left];

    pub fn clockwise(self) -> Rotation {
        Rotation::ALL[(self as usize + 1) % 4]
    }

    pub fn counter_clockwise(self) -> Rotation {
        Rotation::ALL[(self as usize + 3) % 4]
    }

    pub fn half_turn(self) -> Rotation {
        Rotation::ALL[(self as usize + 2) % 4]
    }
}

/// T-spin recognition of a lock (3-corner rule, see docs/GAMES.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Spin {
    None = 0,
    Mini = 1,
    Full = 2,
}

/// A piece and where it is: pivot (x, y) with y growing upward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Placement {
    pub piece: Piece,
    pub rotation: Rotation,
    pub x: i8,
    pub y: i8,
}

/// Everything one lock resolved to (reference §7.5 and §9.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// Final position of the locked piece.
    pub placement: Placement,
    pub spin: Spin,
    /// Lines cleared by this lock, 0..=4.
    pub lines: u8,
    /// Combo counter after this lock: -1 when no combo is running.
    pub ren: i8,
    /// A difficult clear that continued a back-to-back chain.
    pub b2b_bonus: bool,
    /// Consecutive difficult line clears after this lock (0 when none).
    pub b2b_chain: u16,
    pub perfect_clear: bool,
    /// Attack before cancelling.
    pub attack: u16,
    /// Lines of the player's own incoming queue this attack cancelled.
    pub cancelled: u16,
    /// Lines sent to `target` after cancelling.
    pub sent: u16,
    pub target: Option<Slot>,
    /// 0 for an empty board, else 1 + the highest filled row (after garbage).
    pub stack_height: u8,
    /// Lines in the player's incoming queue after this lock.
    pub pending: u16,
    /// The player's score after this lock.
    pub score: u32,
    /// The board after the lock resolved (lines removed, garbage inserted).
    pub board: PackedBoard,
}

/// Why a player left the game.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EliminationCause {
    /// The new piece overlapped the stack at spawn.
    BlockOut = 1,
    /// A piece locked entirely above the visible field.
    LockOut = 2,
    /// Garbage pushed the stack out of the board.
    TopOut = 3,
    /// Left the room or disconnected for good.
    Forfeit = 4,
}

/// One player's outcome of a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlayerResult {
    pub slot: Slot,
    /// 1 for the winner; players eliminated in the same tick share one.
    pub placement: u8,
    pub score: u32,
    pub lines: u32,
    pub garbage_sent: u32,
    pub garbage_received: u32,
    pub pieces: u32,
    /// Ticks from the start until elimination or the end.
    pub survived_ticks: u32,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    GameStart {
        players: u8,
        seed: u64,
    },
    /// A new piece entered (also the piece coming out of hold).
    PieceSpawn {
        placement: Placement,
        next: [Piece; NEXT_QUEUE_LEN],
        hold: Option<Piece>,
    },
    PieceLock(Lock),
    /// Rows cleared by the lock just reported, bottom first (y before removal).
    LineClear {
        rows: ArrayVec<u8, 4>,
    },
    /// Garbage left for `target`'s queue (after cancelling).
    GarbageSent {
        target: Slot,
        lines: u16,
    },
    /// Garbage rose into this player's board.
    GarbageReceived {
        from: Slot,
        lines: u16,
        hole_column: u8,
    },
    /// An input the game applied (what replays are made from).
    Input {
        seq: u32,
        bits: u16,
    },
    Elimination {
        cause: EliminationCause,
        /// The player whose garbage did it, if any (KO credit).
        killer: Option<Slot>,
        placement: u8,
    },
    /// The match ended; results ordered by slot.
    GameEnd {
        results: ArrayVec<PlayerResult, MAX_PLAYERS>,
    },
}

impl EventKind {
    /// The event type's name in the history catalog.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::GameStart { .. } => "game_start",
            EventKind::PieceSpawn { .. } => "piece_spawn",
            EventKind::PieceLock(_) => "piece_lock",
            EventKind::LineClear { .. } => "line_clear",
            EventKind::GarbageSent { .. } => "garbage_sent",
            EventKind::GarbageReceived { .. } => "garbage_received",
            EventKind::Input { .. } => "input",
            EventKind::Elimination { .. } => "elimination",
            EventKind::GameEnd { .. } => "game_end",
        }
    }
}

/// One event: when, who, what. `player` is `None` for match-wide events
/// (game_start, game_end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub tick: u32,
    pub player: Option<Slot>,
    pub kind: EventKind,
}
