//! One player's state and the moves that only touch that player: spawn,
//! hold, shifts, SRS rotation, gravity, lock delay (Extended Placement) and
//! the local part of a lock (write, lock out, T-spin, line clear, points,
//! attack). Everything between players (garbage, targeting, eliminations)
//! is in `battle.rs`.

use arrayvec::ArrayVec;

use super::bag::{hole_stream_seed, target_stream_seed, HoleStream, Minstd, PieceQueue};
use super::board::{Board, BOARD_HEIGHT, BOARD_WIDTH, VISIBLE_HEIGHT};
use super::config::TetrisConfig;
use super::garbage::{GarbageQueue, Packet};
use super::gravity::{gravity, GRAVITY_ONE_ROW, GRAVITY_SHIFT};
use super::piece::{cells, spawn_placement};
use super::scoring::{attack, lock_points, ClearKind, ClearOutcome, Streaks};
use super::srs::{half_turn_kicks, quarter_turn_kicks};
use crate::sim::event::{EliminationCause, PackedBoard, Piece, Placement, Spin, NEXT_QUEUE_LEN};
use crate::sim::hash::StateHasher;
use crate::sim::Slot;

/// Points per row moved by soft drop and by hard drop (§6, not level-scaled).
pub const SOFT_DROP_POINTS_PER_ROW: u32 = 1;
pub const HARD_DROP_POINTS_PER_ROW: u32 = 2;
/// The 90° kick test whose success upgrades a mini to a full T-spin (§5).
pub const TST_KICK_TEST: u8 = 5;
/// Longest possible fall: the board's height.
const MAX_DROP_ROWS: u32 = 40;

/// A rotation input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    Clockwise,
    CounterClockwise,
    Half,
}

/// Where a player is in the match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    Playing = 0,
    /// Solo modes: reached the goal; the board is frozen.
    Finished = 1,
    /// Out of the match; the board is frozen.
    Eliminated = 2,
}

/// The falling piece and its lock-delay and T-spin bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ActivePiece {
    pub placement: Placement,
    /// Ticks left before locking while grounded; 0 = not running.
    pub lock_timer: u16,
    /// Lock resets used since the piece last reached a new lowest row.
    pub resets_used: u16,
    /// Lowest pivot row reached.
    pub lowest_y: i8,
    pub last_action_was_rotation: bool,
    /// Kick test (1-based) of the last successful rotation.
    pub last_kick_test: u8,
    pub last_rotation_was_half_turn: bool,
}

impl ActivePiece {
    fn new(placement: Placement) -> ActivePiece {
        ActivePiece {
            placement,
            lock_timer: 0,
            resets_used: 0,
            lowest_y: placement.y,
            last_action_was_rotation: false,
            last_kick_test: 0,
            last_rotation_was_half_turn: false,
        }
    }

    fn hash_into(&self, hasher: &mut StateHasher) {
        hash_placement(hasher, &self.placement);
        hasher.u16(self.lock_timer);
        hasher.u16(self.resets_used);
        hasher.u8(self.lowest_y as u8);
        hasher.bool(self.last_action_was_rotation);
        hasher.u8(self.last_kick_test);
        hasher.bool(self.last_rotation_was_half_turn);
    }
}

fn hash_placement(hasher: &mut StateHasher, placement: &Placement) {
    hasher.u8(placement.piece as u8);
    hasher.u8(placement.rotation as u8);
    hasher.u8(placement.x as u8);
    hasher.u8(placement.y as u8);
}

/// The part of a lock resolved on the player's own board (§7.5 steps 1–4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalLock {
    pub placement: Placement,
    pub lock_out: bool,
    pub spin: Spin,
    /// Rows removed, bottom first, y before removal.
    pub rows: ArrayVec<u8, 4>,
    pub outcome: ClearOutcome,
    pub attack: u16,
}

/// One player of a match. Read it through the accessors; the battle owns
/// every change.
#[derive(Debug, Clone)]
pub struct TetrisPlayer {
    pub(crate) board: Board,
    pub(crate) active: Option<ActivePiece>,
    pub(crate) hold: Option<Piece>,
    pub(crate) hold_used: bool,
    pub(crate) queue: PieceQueue,
    pub(crate) holes: HoleStream,
    pub(crate) targeting: Minstd,
    /// Fractional rows of gravity banked, in 1/65536ths.
    pub(crate) gravity_acc: u32,
    pub(crate) soft_drop_held: bool,
    pub(crate) level: u8,
    pub(crate) score: u32,
    pub(crate) lines: u32,
    pub(crate) streaks: Streaks,
    pub(crate) pieces_placed: u32,
    pub(crate) garbage: GarbageQueue,
    pub(crate) garbage_sent: u32,
    pub(crate) garbage_received: u32,
    pub(crate) garbage_cancelled: u32,
    pub(crate) garbage_discarded: u32,
    /// Sender and tick of the last garbage inserted (KO credit).
    pub(crate) last_garbage_from: Option<(Slot, u32)>,
    pub(crate) status: Status,
    pub(crate) cause: Option<EliminationCause>,
    pub(crate) killer: Option<Slot>,
    /// 0 until decided.
    pub(crate) placement: u8,
    /// Tick of elimination or finish; the match's last tick for survivors.
    pub(crate) end_tick: u32,
    pub(crate) last_input_seq: u32,
    /// Inputs received this tick (the budget); not game state.
    pub(crate) inputs_this_tick: u16,
    pub(crate) inputs_rejected: u32,
    pub(crate) inputs_over_budget: u32,
}

impl TetrisPlayer {
    pub(crate) fn new(match_seed: u32, index: usize) -> TetrisPlayer {
        TetrisPlayer {
            board: Board::default(),
            active: None,
            hold: None,
            hold_used: false,
            queue: PieceQueue::new(match_seed),
            holes: HoleStream::new(hole_stream_seed(match_seed, index)),
            targeting: Minstd::new(target_stream_seed(match_seed, index)),
            gravity_acc: 0,
            soft_drop_held: false,
            level: 1,
            score: 0,
            lines: 0,
            streaks: Streaks::default(),
            pieces_placed: 0,
            garbage: GarbageQueue::default(),
            garbage_sent: 0,
            garbage_received: 0,
            garbage_cancelled: 0,
            garbage_discarded: 0,
            last_garbage_from: None,
            status: Status::Playing,
            cause: None,
            killer: None,
            placement: 0,
            end_tick: 0,
            last_input_seq: 0,
            inputs_this_tick: 0,
            inputs_rejected: 0,
            inputs_over_budget: 0,
        }
    }

    // ---- read-only accessors (no allocation) ----

    /// Not eliminated (a solo player who finished is still alive).
    pub fn alive(&self) -> bool {
        self.status != Status::Eliminated
    }

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn write_packed_board(&self, packed: &mut PackedBoard) {
        self.board.write_packed(packed);
    }

    pub fn packed_board(&self) -> PackedBoard {
        self.board.packed()
    }

    /// Cell kind at (x, y), y up: 0 empty, 1..=7 a piece, 8 garbage; `None`
    /// outside the board.
    pub fn cell(&self, x: i8, y: i8) -> Option<u8> {
        let inside = (0..BOARD_WIDTH).contains(&x) && (0..BOARD_HEIGHT).contains(&y);
        inside.then(|| self.board.cell(x, y))
    }

    pub fn active(&self) -> Option<Placement> {
        self.active.map(|active| active.placement)
    }

    pub fn hold(&self) -> Option<Piece> {
        self.hold
    }

    pub fn hold_used(&self) -> bool {
        self.hold_used
    }

    pub fn next_queue(&self) -> [Piece; NEXT_QUEUE_LEN] {
        self.queue.next_pieces()
    }

    /// The `index`-th packet of the incoming queue (0 = oldest).
    pub fn incoming_packet(&self, index: usize) -> Option<Packet> {
        self.garbage.packet(index).copied()
    }

    /// Lines in the incoming queue, ready or not.
    pub fn pending_garbage(&self) -> u32 {
        self.garbage.pending_lines()
    }

    pub fn score(&self) -> u32 {
        self.score
    }

    pub fn lines(&self) -> u32 {
        self.lines
    }

    pub fn level(&self) -> u8 {
        self.level
    }

    /// −1 when no combo runs.
    pub fn ren(&self) -> i32 {
        self.streaks.ren
    }

    pub fn b2b_chain(&self) -> u16 {
        self.streaks.b2b_chain
    }

    pub fn pieces_placed(&self) -> u32 {
        self.pieces_placed
    }

    pub fn last_input_seq(&self) -> u32 {
        self.last_input_seq
    }

    pub fn soft_drop_held(&self) -> bool {
        self.soft_drop_held
    }

    pub fn stack_height(&self) -> u8 {
        self.board.stack_height()
    }

    /// Lines this player put into opponents' queues (after cancelling).
    pub fn garbage_sent(&self) -> u32 {
        self.garbage_sent
    }

    /// Garbage rows that entered this player's board.
    pub fn garbage_received(&self) -> u32 {
        self.garbage_received
    }

    /// Lines of this player's queue cancelled by this player's attacks.
    pub fn garbage_cancelled(&self) -> u32 {
        self.garbage_cancelled
    }

    /// Lines of this player's queue dropped at elimination.
    pub fn garbage_discarded(&self) -> u32 {
        self.garbage_discarded
    }

    /// Final or elimination placement, once decided.
    pub fn placement(&self) -> Option<u8> {
        (self.placement != 0).then_some(self.placement)
    }

    pub fn elimination_cause(&self) -> Option<EliminationCause> {
        self.cause
    }

    pub fn killer(&self) -> Option<Slot> {
        self.killer
    }

    pub fn inputs_rejected(&self) -> u32 {
        self.inputs_rejected
    }

    pub fn inputs_over_budget(&self) -> u32 {
        self.inputs_over_budget
    }

    // ---- moves ----

    fn fits(&self, placement: &Placement) -> bool {
        self.board.fits(&cells(placement))
    }

    fn moved(placement: Placement, dx: i8, dy: i8) -> Placement {
        Placement { x: placement.x + dx, y: placement.y + dy, ..placement }
    }

    /// True if the active piece cannot move down one row.
    pub(crate) fn is_grounded(&self) -> bool {
        self.active.is_some_and(|active| !self.fits(&Self::moved(active.placement, 0, -1)))
    }

    /// Spawns `piece` at (4, 20) state 0. Returns false on block out (the
    /// piece overlaps the stack); the player then has no active piece.
    pub(crate) fn spawn(&mut self, piece: Piece) -> bool {
        let placement = spawn_placement(piece);
        self.gravity_acc = 0;
        if !self.fits(&placement) {
            self.active = None;
            return false;
        }
        self.active = Some(ActivePiece::new(placement));
        true
    }

    /// Hold (§3.3). `None` if hold was already used for this piece;
    /// otherwise whether the piece that came out spawned (false = block out).
    pub(crate) fn hold_piece(&mut self) -> Option<bool> {
        let active = self.active?;
        if self.hold_used {
            return None;
        }
        let next = match self.hold.replace(active.placement.piece) {
            Some(held) => held,
            None => self.queue.pop(),
        };
        self.hold_used = true;
        Some(self.spawn(next))
    }

    /// Lock-delay bookkeeping after a successful shift or rotation (§4.2
    /// rules 2 and 4).
    fn after_move(&mut self, grounded_before: bool, config: &TetrisConfig) {
        let Some(active) = self.active.as_mut() else { return };
        if grounded_before && active.resets_used < config.lock_resets {
            active.resets_used += 1;
            active.lock_timer = config.lock_delay_ticks;
        }
        if active.placement.y < active.lowest_y {
            active.lowest_y = active.placement.y;
            active.resets_used = 0;
        }
    }

    /// Shifts one column left (−1) or right (+1). Returns true if it moved.
    pub(crate) fn shift(&mut self, dx: i8, config: &TetrisConfig) -> bool {
        let Some(active) = self.active else { return false };
        let candidate = Self::moved(active.placement, dx, 0);
        if !self.fits(&candidate) {
            return false;
        }
        let grounded_before = self.is_grounded();
        if let Some(active) = self.active.as_mut() {
            active.placement = candidate;
            active.last_action_was_rotation = false;
        }
        self.after_move(grounded_before, config);
        true
    }

    /// SRS rotation (§2.1): the first kick test that fits wins; its number
    /// is kept for T-spin detection. Returns true if it rotated.
    pub(crate) fn rotate(&mut self, turn: Turn, config: &TetrisConfig) -> bool {
        let Some(active) = self.active else { return false };
        let placement = active.placement;
        let from = placement.rotation;
        let system = config.rotation_system;
        let (to, kicks) = match turn {
            Turn::Clockwise => {
                (from.clockwise(), quarter_turn_kicks(system, placement.piece, from, true))
            }
            Turn::CounterClockwise => {
                (from.counter_clockwise(), quarter_turn_kicks(system, placement.piece, from, false))
            }
            Turn::Half => (from.half_turn(), half_turn_kicks(placement.piece, from)),
        };
        let grounded_before = self.is_grounded();
        for (index, &(dx, dy)) in kicks.iter().enumerate() {
            let candidate = Placement { rotation: to, ..Self::moved(placement, dx, dy) };
            if self.fits(&candidate) {
                if let Some(active) = self.active.as_mut() {
                    active.placement = candidate;
                    active.last_action_was_rotation = true;
                    active.last_kick_test = index as u8 + 1;
                    active.last_rotation_was_half_turn = turn == Turn::Half;
                }
                self.after_move(grounded_before, config);
                return true;
            }
        }
        false
    }

    /// Moves the piece down up to `rows` rows; returns the rows moved.
    fn fall(&mut self, rows: u32) -> u32 {
        let Some(mut active) = self.active else { return 0 };
        let mut moved = 0;
        while moved < rows.min(MAX_DROP_ROWS) {
            let candidate = Self::moved(active.placement, 0, -1);
            if !self.fits(&candidate) {
                break;
            }
            active.placement = candidate;
            moved += 1;
        }
        if moved > 0 {
            active.last_action_was_rotation = false;
            if active.placement.y < active.lowest_y {
                active.lowest_y = active.placement.y;
                active.resets_used = 0;
            }
            self.active = Some(active);
        }
        moved
    }

    /// Hard drop (§4.3): to the lowest legal row, 2 points per row. The
    /// caller locks the piece.
    pub(crate) fn hard_drop(&mut self) {
        let rows = self.fall(MAX_DROP_ROWS);
        self.score = self.score.saturating_add(rows * HARD_DROP_POINTS_PER_ROW);
    }

    /// One tick of gravity and lock delay (§4.1, §4.2). Returns true when
    /// the piece must lock now.
    pub(crate) fn fall_tick(&mut self, config: &TetrisConfig) -> bool {
        if self.active.is_none() {
            return false;
        }
        let mut per_tick = gravity(self.level);
        if self.soft_drop_held {
            per_tick *= u32::from(config.soft_drop_factor);
        }
        self.gravity_acc += per_tick;
        let rows = self.gravity_acc >> GRAVITY_SHIFT;
        self.gravity_acc &= GRAVITY_ONE_ROW - 1;
        let moved = self.fall(rows);
        if self.soft_drop_held {
            self.score = self.score.saturating_add(moved * SOFT_DROP_POINTS_PER_ROW);
        }
        let grounded = self.is_grounded();
        let Some(active) = self.active.as_mut() else { return false };
        if !grounded {
            // The timer only runs while grounded; it restarts on landing.
            active.lock_timer = 0;
            return false;
        }
        // A grounded piece does not bank gravity.
        self.gravity_acc = 0;
        if active.resets_used >= config.lock_resets {
            return true;
        }
        if active.lock_timer == 0 {
            active.lock_timer = config.lock_delay_ticks;
            return false;
        }
        active.lock_timer -= 1;
        active.lock_timer == 0
    }

    /// §7.5 steps 1–4 and the points: writes the piece, checks lock out,
    /// classifies the T-spin, removes full rows, updates REN/B2B, score,
    /// lines and pieces, and computes the attack. The caller does the rest.
    pub(crate) fn lock_local(&mut self) -> Option<LocalLock> {
        let active = self.active.take()?;
        let placement = active.placement;
        self.board.place(&placement);
        self.pieces_placed += 1;
        let nothing = ClearOutcome {
            kind: ClearKind::Nothing,
            lines: 0,
            ren: self.streaks.ren,
            b2b_bonus: false,
            perfect_clear: false,
        };
        let lock_out = cells(&placement).iter().all(|&(_, y)| y >= VISIBLE_HEIGHT);
        if lock_out {
            let rows = ArrayVec::new();
            return Some(LocalLock {
                placement,
                lock_out,
                spin: Spin::None,
                rows,
                outcome: nothing,
                attack: 0,
            });
        }
        let spin = spin_of(&self.board, &active);
        let rows = self.board.full_rows_of(&placement);
        self.board.remove_rows(&rows);
        let lines = rows.len() as u8;
        let kind = ClearKind::classify(spin, lines);
        let b2b_bonus = self.streaks.record(kind, lines);
        let perfect_clear = lines > 0 && self.board.is_empty();
        let outcome = ClearOutcome { kind, lines, ren: self.streaks.ren, b2b_bonus, perfect_clear };
        let points = lock_points(&outcome, u32::from(self.level));
        self.score = self.score.saturating_add(points);
        self.lines += u32::from(lines);
        let attack = attack(&outcome);
        Some(LocalLock { placement, lock_out, spin, rows, outcome, attack })
    }

    /// Freezes the player: no active piece, queue of garbage discarded.
    pub(crate) fn retire(&mut self, status: Status, tick: u32) {
        debug_assert!(self.status == Status::Playing && status != Status::Playing);
        self.status = status;
        self.active = None;
        self.end_tick = tick;
        self.garbage_discarded += self.garbage.discard();
    }

    /// Hashes every part of the state that the simulation depends on. The
    /// input budget and abuse counters are diagnostics and left out.
    pub(crate) fn hash_into(&self, hasher: &mut StateHasher) {
        hasher.u8(self.status as u8);
        hasher.u8(self.cause.map_or(0, |cause| cause as u8));
        hasher.u8(self.killer.map_or(u8::MAX, |killer| killer));
        hasher.u8(self.placement);
        hasher.u32(self.end_tick);
        self.board.hash_into(hasher);
        hasher.bool(self.active.is_some());
        if let Some(active) = &self.active {
            active.hash_into(hasher);
        }
        hasher.u8(self.hold.map_or(0, |piece| piece as u8));
        hasher.bool(self.hold_used);
        self.queue.hash_into(hasher);
        self.holes.hash_into(hasher);
        hasher.u32(self.targeting.state());
        hasher.u32(self.gravity_acc);
        hasher.bool(self.soft_drop_held);
        hasher.u8(self.level);
        hasher.u32(self.score);
        hasher.u32(self.lines);
        hasher.i32(self.streaks.ren);
        hasher.u16(self.streaks.b2b_chain);
        hasher.u32(self.pieces_placed);
        self.garbage.hash_into(hasher);
        for counter in [
            self.garbage_sent,
            self.garbage_received,
            self.garbage_cancelled,
            self.garbage_discarded,
        ] {
            hasher.u32(counter);
        }
        let (sender, tick) = self.last_garbage_from.unwrap_or((u8::MAX, u32::MAX));
        hasher.u8(sender);
        hasher.u32(tick);
        hasher.u32(self.last_input_seq);
    }
}

/// Corners diagonal to the pivot: (−1,+1), (+1,+1), (−1,−1), (+1,−1).
const CORNERS: [(i8, i8); 4] = [(-1, 1), (1, 1), (-1, -1), (1, -1)];
/// Indices into `CORNERS` of the two front corners, by rotation state.
const FRONT_CORNERS: [[usize; 2]; 4] = [[0, 1], [1, 3], [2, 3], [0, 2]];

/// T-spin classification (§5): 3-corner rule, front corners decide full or
/// mini, and a 90° rotation that used kick test 5 makes it full.
pub(crate) fn spin_of(board: &Board, active: &ActivePiece) -> Spin {
    let placement = &active.placement;
    if placement.piece != Piece::T || !active.last_action_was_rotation {
        return Spin::None;
    }
    let occupied = CORNERS.map(|(dx, dy)| board.occupied(placement.x + dx, placement.y + dy));
    if occupied.iter().filter(|&&corner| corner).count() < 3 {
        return Spin::None;
    }
    let [first, second] = FRONT_CORNERS[placement.rotation as usize];
    let tst_kick = !active.last_rotation_was_half_turn && active.last_kick_test == TST_KICK_TEST;
    if occupied[first] && occupied[second] || tst_kick {
        Spin::Full
    } else {
        Spin::Mini
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sim::event::Rotation;
    use crate::sim::tetris::board::board_from_picture;
    use crate::sim::tetris::config::RotationSystem;

    /// A player on `picture` (see `board_from_picture`) with no active piece.
    pub(crate) fn player_on(picture: &[&str]) -> TetrisPlayer {
        let mut player = TetrisPlayer::new(1, 0);
        player.board = board_from_picture(picture);
        player
    }

    /// Puts a fresh active piece at a given state and pivot.
    pub(crate) fn set_active(
        player: &mut TetrisPlayer,
        piece: Piece,
        rotation: Rotation,
        x: i8,
        y: i8,
    ) {
        let placement = Placement { piece, rotation, x, y };
        assert!(player.fits(&placement), "test piece overlaps the board");
        player.active = Some(ActivePiece::new(placement));
    }

    fn pivot(player: &TetrisPlayer) -> (Rotation, i8, i8) {
        let placement = player.active().expect("active piece");
        (placement.rotation, placement.x, placement.y)
    }

    fn srs() -> TetrisConfig {
        TetrisConfig::default()
    }

    fn srs_plus() -> TetrisConfig {
        TetrisConfig { rotation_system: RotationSystem::SrsPlus, ..TetrisConfig::default() }
    }

    /// TV1: a T-spin double with no kick; attack 4 on a fresh state and
    /// only the two overhang cells left.
    #[test]
    fn tv1_t_spin_double_without_kick() {
        let mut player = player_on(&["XX........", "X...XXXXXX", "XX.XXXXXXX"]);
        set_active(&mut player, Piece::T, Rotation::Right, 2, 10);
        player.hard_drop();
        assert_eq!(pivot(&player), (Rotation::Right, 2, 1));
        assert!(player.rotate(Turn::Clockwise, &srs()));
        assert_eq!(pivot(&player), (Rotation::Reverse, 2, 1));
        assert_eq!(player.active.map(|active| active.last_kick_test), Some(1));
        let lock = player.lock_local().expect("lock");
        assert_eq!(lock.spin, Spin::Full);
        assert_eq!(lock.rows.as_slice(), &[0, 1]);
        assert_eq!(lock.outcome.kind, ClearKind::TSpinDouble);
        assert_eq!(lock.attack, 4);
        assert_eq!(player.board, board_from_picture(&["XX........"]));
    }

    /// TV1's note: a state-L T cannot pass the overhang.
    #[test]
    fn tv1_state_l_t_is_blocked_by_the_overhang() {
        let mut player = player_on(&["XX........", "X...XXXXXX", "XX.XXXXXXX"]);
        set_active(&mut player, Piece::T, Rotation::Left, 2, 10);
        player.hard_drop();
        assert_eq!(pivot(&player), (Rotation::Left, 2, 3));
    }

    /// TV2: a mini by the corners, upgraded to a full T-spin double because
    /// the rotation succeeded on kick test 5.
    #[test]
    fn tv2_mini_upgraded_by_the_tst_kick() {
        let mut player =
            player_on(&["...XXXXXXX", "....XXXXXX", "XXX.XXXXXX", "XX..XXXXXX", "XX..XXXXXX"]);
        set_active(&mut player, Piece::T, Rotation::Spawn, 1, 10);
        player.hard_drop();
        assert_eq!(pivot(&player), (Rotation::Spawn, 1, 3));
        assert!(player.shift(1, &srs()));
        assert!(player.is_grounded(), "(2,2) is filled");
        assert!(player.rotate(Turn::CounterClockwise, &srs()));
        assert_eq!(pivot(&player), (Rotation::Left, 3, 1));
        assert_eq!(player.active.map(|active| active.last_kick_test), Some(5));
        let lock = player.lock_local().expect("lock");
        assert_eq!(lock.spin, Spin::Full);
        assert_eq!(lock.rows.as_slice(), &[1, 2]);
        assert_eq!(lock.attack, 4, "a T-spin double, not a mini double");
    }

    /// The same corners without the test-5 kick stay a mini; and a 180°
    /// rotation never gets the upgrade.
    #[test]
    fn mini_without_tst_kick_and_half_turns_never_upgrade() {
        let board = board_from_picture(&["XXX.XXXXXX", "XX..XXXXXX", "XX..XXXXXX"]);
        let placement = Placement { piece: Piece::T, rotation: Rotation::Left, x: 3, y: 1 };
        let mut active = ActivePiece::new(placement);
        active.last_action_was_rotation = true;
        active.last_kick_test = 1;
        assert_eq!(spin_of(&board, &active), Spin::Mini);
        active.last_kick_test = 5;
        assert_eq!(spin_of(&board, &active), Spin::Full);
        active.last_rotation_was_half_turn = true;
        assert_eq!(spin_of(&board, &active), Spin::Mini);
        active.last_action_was_rotation = false;
        assert_eq!(spin_of(&board, &active), Spin::None);
    }

    /// TV3 (a): the same blocked I rotation kicks left in SRS, right in SRS+.
    #[test]
    fn tv3a_i_kicks_differ_between_srs_and_srs_plus() {
        let picture: Vec<&str> =
            std::iter::once(".....X....").chain(std::iter::repeat_n("..........", 9)).collect();
        for (config, expected_x) in [(srs(), 2), (srs_plus(), 5)] {
            let mut player = player_on(&picture);
            assert!(player.board.occupied(5, 9));
            set_active(&mut player, Piece::I, Rotation::Spawn, 4, 10);
            assert!(player.rotate(Turn::Clockwise, &config));
            assert_eq!(pivot(&player), (Rotation::Right, expected_x, 10));
            assert_eq!(player.active.map(|active| active.last_kick_test), Some(2));
        }
    }

    /// TV3 (b): an I floor kick, test 5, in both systems.
    #[test]
    fn tv3b_i_floor_kick() {
        for config in [srs(), srs_plus()] {
            let mut player = player_on(&[]);
            set_active(&mut player, Piece::I, Rotation::Spawn, 1, 0);
            assert!(player.rotate(Turn::Clockwise, &config));
            assert_eq!(pivot(&player), (Rotation::Right, 2, 2));
            assert_eq!(player.active.map(|active| active.last_kick_test), Some(5));
        }
    }

    /// TV3 (c): a JLSTZ wall kick off the left wall, test 2.
    #[test]
    fn tv3c_jlstz_wall_kick() {
        let mut player = player_on(&[]);
        set_active(&mut player, Piece::T, Rotation::Right, 0, 5);
        assert!(player.rotate(Turn::CounterClockwise, &srs()));
        assert_eq!(pivot(&player), (Rotation::Spawn, 1, 5));
        assert_eq!(player.active.map(|active| active.last_kick_test), Some(2));
    }

    /// A rotation whose five tests all fail changes nothing.
    #[test]
    fn failed_rotation_changes_nothing() {
        let mut player = player_on(&["X.X.......", "X.X.......", "X.X.......", "X.X......."]);
        set_active(&mut player, Piece::I, Rotation::Right, 0, 2);
        let before = player.active;
        assert!(!player.rotate(Turn::Clockwise, &srs()));
        assert_eq!(player.active, before);
    }

    /// 180° rotations follow the SRS+ table: in the open, test 1; against
    /// the floor, a JLSTZ 0→2 kicks up with test 2.
    #[test]
    fn half_turns_use_the_srs_plus_table() {
        let mut player = player_on(&[]);
        set_active(&mut player, Piece::T, Rotation::Spawn, 4, 5);
        assert!(player.rotate(Turn::Half, &srs_plus()));
        assert_eq!(pivot(&player), (Rotation::Reverse, 4, 5));
        let mut player = player_on(&[]);
        set_active(&mut player, Piece::T, Rotation::Spawn, 4, 0);
        assert!(player.rotate(Turn::Half, &srs_plus()));
        assert_eq!(pivot(&player), (Rotation::Reverse, 4, 1));
        assert_eq!(player.active.map(|active| active.last_kick_test), Some(2));
        assert_eq!(player.active.map(|active| active.last_rotation_was_half_turn), Some(true));
        let mut player = player_on(&[]);
        set_active(&mut player, Piece::I, Rotation::Right, 0, 5);
        assert!(player.rotate(Turn::Half, &srs_plus()));
        // I R→L at the left wall: test 1 fits (column 0).
        assert_eq!(pivot(&player), (Rotation::Left, 0, 5));
    }

    /// §4.2: landing starts the timer; the piece locks `lock_delay_ticks`
    /// ticks after the tick it landed in.
    #[test]
    fn lock_delay_counts_grounded_ticks() {
        let config = srs();
        let mut player = player_on(&[]);
        set_active(&mut player, Piece::O, Rotation::Spawn, 4, 0);
        assert!(!player.fall_tick(&config), "landing tick starts the timer");
        for _ in 1..config.lock_delay_ticks {
            assert!(!player.fall_tick(&config));
        }
        assert!(player.fall_tick(&config));
    }

    /// §4.2 rules 2 and 3: each grounded move resets the timer, up to 15;
    /// then the piece locks at the end of the next grounded tick.
    #[test]
    fn fifteen_resets_then_lock() {
        let config = srs();
        let mut player = player_on(&[]);
        set_active(&mut player, Piece::T, Rotation::Spawn, 4, 0);
        for reset in 0..config.lock_resets {
            for _ in 0..config.lock_delay_ticks - 1 {
                assert!(!player.fall_tick(&config), "reset {reset}");
            }
            let dx = if reset % 2 == 0 { 1 } else { -1 };
            assert!(player.shift(dx, &config));
            assert_eq!(player.active.map(|active| active.resets_used), Some(reset + 1));
        }
        let timer = player.active.map(|active| active.lock_timer);
        assert_eq!(timer, Some(config.lock_delay_ticks));
        // A 16th move is still allowed but resets nothing; the lock comes at
        // the end of the next tick.
        assert!(player.shift(1, &config));
        assert_eq!(player.active.map(|active| active.resets_used), Some(15));
        assert!(player.fall_tick(&config));
    }

    /// §4.2 rule 4: reaching a new lowest row gives the 15 resets back.
    #[test]
    fn falling_below_lowest_row_restores_resets() {
        let config = srs();
        let mut player = player_on(&["XXXXX.....", "XXXXX.....", "XXXXX....."]);
        set_active(&mut player, Piece::O, Rotation::Spawn, 3, 3);
        assert!(player.is_grounded());
        for step in 0..6 {
            let dx = if step % 2 == 0 { -1 } else { 1 };
            assert!(player.shift(dx, &config));
        }
        assert_eq!(player.active.map(|active| active.resets_used), Some(6));
        // Off the ledge: the move itself counts, then the fall restores them.
        assert!(player.shift(1, &config));
        assert!(player.shift(1, &config));
        assert!(!player.is_grounded());
        assert_eq!(player.active.map(|active| active.resets_used), Some(8));
        player.hard_drop();
        assert_eq!(pivot(&player), (Rotation::Spawn, 5, 0));
        assert_eq!(player.active.map(|active| (active.resets_used, active.lowest_y)), Some((0, 0)));
    }

    /// A move that leaves the ground stops the timer; it restarts on landing.
    #[test]
    fn timer_stops_while_airborne() {
        let config = srs();
        let mut player = player_on(&["XXXXX....."]);
        set_active(&mut player, Piece::O, Rotation::Spawn, 3, 1);
        assert!(!player.fall_tick(&config));
        assert_eq!(player.active.map(|active| active.lock_timer), Some(30));
        assert!(player.shift(1, &config));
        assert!(player.shift(1, &config));
        assert!(!player.fall_tick(&config));
        assert_eq!(player.active.map(|active| active.lock_timer), Some(0));
    }

    /// §3.3: hold once per piece; the held piece comes back fresh at spawn.
    #[test]
    fn hold_rules() {
        let mut player = player_on(&[]);
        let first = player.queue.pop();
        assert!(player.spawn(first));
        let second = player.queue.peek(0);
        assert!(player.shift(-1, &srs()));
        assert_eq!(player.hold_piece(), Some(true));
        assert_eq!(player.hold(), Some(first));
        assert_eq!(player.active(), Some(spawn_placement(second)));
        assert_eq!(player.hold_piece(), None, "hold is used for this piece");
        assert_eq!(player.active().map(|active| active.piece), Some(second));
        // After a lock hold works again and swaps.
        player.hard_drop();
        player.lock_local();
        player.hold_used = false;
        let third = player.queue.pop();
        assert!(player.spawn(third));
        assert_eq!(player.hold_piece(), Some(true));
        assert_eq!(player.hold(), Some(third));
        assert_eq!(player.active(), Some(spawn_placement(first)));
    }

    /// §1.4 block out: the piece from hold overlaps the stack.
    #[test]
    fn block_out_from_hold() {
        let mut player = player_on(&[]);
        assert!(player.spawn(Piece::T));
        player.hold = Some(Piece::I);
        // A cell at (6, 20), where an I spawns but a T does not reach.
        let picture: Vec<&str> =
            std::iter::once("......X...").chain(std::iter::repeat_n("..........", 20)).collect();
        player.board = board_from_picture(&picture);
        assert!(player.board.occupied(6, 20));
        assert_eq!(player.hold_piece(), Some(false));
        assert!(player.active.is_none());
    }

    /// §1.4 lock out: all four cells at y ≥ 20.
    #[test]
    fn lock_out_when_all_cells_are_above_the_field() {
        let mut player = player_on(&[]);
        for _ in 0..20 {
            player.board.insert_garbage(1, 0);
        }
        assert_eq!(player.board.stack_height(), 20);
        assert!(player.spawn(Piece::O));
        player.hard_drop();
        let lock = player.lock_local().expect("lock");
        assert!(lock.lock_out);
        // Partly above row 20 is legal.
        let mut player = player_on(&[]);
        for _ in 0..19 {
            player.board.insert_garbage(1, 0);
        }
        set_active(&mut player, Piece::I, Rotation::Right, 1, 25);
        player.hard_drop();
        assert!(!player.lock_local().expect("lock").lock_out);
    }

    /// Soft drop multiplies gravity and scores 1 per row; hard drop 2.
    #[test]
    fn drop_points() {
        let config = srs();
        let mut player = player_on(&[]);
        assert!(player.spawn(Piece::T));
        player.soft_drop_held = true;
        // Level 1: 1092 × 20 per tick → one row every 3 ticks.
        for _ in 0..3 {
            player.fall_tick(&config);
        }
        assert_eq!(pivot(&player).2, 19);
        assert_eq!(player.score, 1);
        player.hard_drop();
        assert_eq!(player.score, 1 + 2 * 19);
    }

    /// Plain gravity at level 1 moves one row every 60 ticks.
    #[test]
    fn gravity_level_one() {
        let config = srs();
        let mut player = player_on(&[]);
        assert!(player.spawn(Piece::T));
        for _ in 0..60 {
            player.fall_tick(&config);
        }
        assert_eq!(pivot(&player).2, 19);
        assert_eq!(player.score, 0);
    }
}
