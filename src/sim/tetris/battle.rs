//! The match: 1..=8 players, inputs, ticks, the order of resolution of a
//! lock (reference §7.5), garbage sending, cancelling and insertion,
//! targeting (§8.1), eliminations, placements, KO credit and the end of the
//! match (§8.2), and the solo modes.
//!
//! Steps. The game changes only inside a step: one `tick()`, one applied
//! `input()`, or one `forfeit()`. Players eliminated in the same step share
//! their placement; Elimination events (and game_end) are emitted when the
//! step ends, after the events of the locks that caused them.

use arrayvec::ArrayVec;

use super::bag::match_seed;
use super::board::Insertion;
use super::config::{Mode, TetrisConfig, MARATHON_LINES, SPRINT_LINES};
use super::garbage::{Insertions, Packet};
use super::gravity::{marathon_level, versus_level};
use super::input::{
    is_valid, INPUT_HARD_DROP, INPUT_HOLD, INPUT_LEFT, INPUT_RIGHT, INPUT_ROTATE_180,
    INPUT_ROTATE_CCW, INPUT_ROTATE_CW, INPUT_SOFT_DROP,
};
use super::player::{LocalLock, Status, TetrisPlayer, Turn};
use crate::sim::event::{EliminationCause, Event, EventKind, Lock, PlayerResult};
use crate::sim::hash::StateHasher;
use crate::sim::{Game, InputOutcome, Slot, MAX_PLAYERS};

/// KO credit goes to the sender of the last garbage inserted at most this
/// many ticks before the elimination (§8.2: 10 s).
pub const KILLER_WINDOW_TICKS: u32 = 600;

/// What step 5 of a lock did: cancel, then send.
#[derive(Debug, Clone, Copy, Default)]
struct Exchange {
    cancelled: u32,
    sent: u32,
    target: Option<Slot>,
}

/// A Tetris match. See the module docs and docs/GAMES.md.
#[derive(Debug, Clone)]
pub struct TetrisBattle {
    config: TetrisConfig,
    seed: u64,
    match_seed: u32,
    tick: u32,
    finished: bool,
    players: Box<[TetrisPlayer]>,
    /// Players eliminated in the current step, in order.
    step_eliminated: ArrayVec<Slot, MAX_PLAYERS>,
    /// Solo players who reached the goal in the current step.
    step_finished: ArrayVec<Slot, MAX_PLAYERS>,
    /// Inputs for a slot that does not exist.
    inputs_rejected_unknown_slot: u32,
}

fn emit(events: &mut Vec<Event>, tick: u32, player: Option<Slot>, kind: EventKind) {
    events.push(Event { tick, player, kind });
}

impl TetrisBattle {
    // ---- read-only accessors ----

    pub fn config(&self) -> &TetrisConfig {
        &self.config
    }

    /// Number of players (slots `0..players()`).
    pub fn players(&self) -> u8 {
        self.players.len() as u8
    }

    /// One player's state, or `None` for a slot that does not exist.
    pub fn player(&self, slot: Slot) -> Option<&TetrisPlayer> {
        self.players.get(usize::from(slot))
    }

    /// The room seed this match was created with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The MINSTD seed derived from it: `(seed % 2147483646) + 1`.
    pub fn match_seed(&self) -> u32 {
        self.match_seed
    }

    /// Results by slot once the match ended.
    pub fn results(&self) -> Option<ArrayVec<PlayerResult, MAX_PLAYERS>> {
        self.finished.then(|| self.build_results())
    }

    /// Inputs rejected over the whole match (all slots, unknown slots too).
    pub fn inputs_rejected_total(&self) -> u32 {
        let players = self.players.iter().map(|player| player.inputs_rejected);
        players.fold(self.inputs_rejected_unknown_slot, u32::saturating_add)
    }

    /// Inputs dropped over the per-tick budget over the whole match.
    pub fn inputs_over_budget_total(&self) -> u32 {
        self.players.iter().map(|player| player.inputs_over_budget).fold(0, u32::saturating_add)
    }

    fn playing_count(&self) -> usize {
        self.players.iter().filter(|player| player.status == Status::Playing).count()
    }

    fn finished_count(&self) -> usize {
        self.players.iter().filter(|player| player.status == Status::Finished).count()
    }

    fn build_results(&self) -> ArrayVec<PlayerResult, MAX_PLAYERS> {
        self.players
            .iter()
            .enumerate()
            .map(|(index, player)| PlayerResult {
                slot: index as Slot,
                placement: player.placement,
                score: player.score,
                lines: player.lines,
                garbage_sent: player.garbage_sent,
                garbage_received: player.garbage_received,
                pieces: player.pieces_placed,
                survived_ticks: player.end_tick,
            })
            .collect()
    }

    // ---- spawning ----

    fn emit_spawn(&self, slot: Slot, events: &mut Vec<Event>) {
        let player = &self.players[usize::from(slot)];
        if let Some(placement) = player.active() {
            let kind =
                EventKind::PieceSpawn { placement, next: player.next_queue(), hold: player.hold };
            emit(events, self.tick, Some(slot), kind);
        }
    }

    /// §7.5 step 8: the next piece from the queue; block out ends the player.
    fn spawn_next(&mut self, slot: Slot, events: &mut Vec<Event>) {
        let player = &mut self.players[usize::from(slot)];
        player.hold_used = false;
        let piece = player.queue.pop();
        if player.spawn(piece) {
            self.emit_spawn(slot, events);
        } else {
            self.eliminate(slot, EliminationCause::BlockOut);
        }
    }

    // ---- eliminations and the end of a step ----

    fn eliminate(&mut self, slot: Slot, cause: EliminationCause) {
        let now = self.tick;
        let player = &mut self.players[usize::from(slot)];
        player.retire(Status::Eliminated, now);
        player.cause = Some(cause);
        player.killer = player
            .last_garbage_from
            .filter(|&(_, at)| now.saturating_sub(at) <= KILLER_WINDOW_TICKS)
            .map(|(sender, _)| sender);
        self.step_eliminated.push(slot);
    }

    /// Solo modes: the player reached the goal.
    fn finish_goal(&mut self, slot: Slot) {
        self.players[usize::from(slot)].retire(Status::Finished, self.tick);
        self.step_finished.push(slot);
    }

    /// Placements of the step's finishers and eliminated players (§8.2),
    /// their Elimination events, and the end of the match.
    fn end_step(&mut self, events: &mut Vec<Event>) {
        if self.step_eliminated.is_empty() && self.step_finished.is_empty() {
            // Only eliminations and finishes can end a match.
            return;
        }
        let finished_total = self.finished_count();
        let finished_before = finished_total - self.step_finished.len();
        for &slot in &self.step_finished {
            self.players[usize::from(slot)].placement = (finished_before + 1) as u8;
        }
        self.step_finished.clear();
        // Eliminated players rank below everyone still playing or finished:
        // with n alive before and k out now this is n − k + 1.
        let placement = (finished_total + self.playing_count() + 1) as u8;
        for &slot in &self.step_eliminated {
            let player = &mut self.players[usize::from(slot)];
            player.placement = placement;
            let kind = EventKind::Elimination {
                cause: player.cause.unwrap_or(EliminationCause::Forfeit),
                killer: player.killer,
                placement,
            };
            emit(events, self.tick, Some(slot), kind);
        }
        self.step_eliminated.clear();
        if self.is_over() {
            self.end_match(events);
        }
    }

    /// Versus ends when at most one player is left (a one-player versus
    /// practice match when nobody is); solo modes when nobody is playing.
    fn is_over(&self) -> bool {
        let playing = self.playing_count();
        if self.config.is_solo() || self.players.len() == 1 {
            playing == 0
        } else {
            playing <= 1
        }
    }

    fn end_match(&mut self, events: &mut Vec<Event>) {
        let placement = (self.finished_count() + 1) as u8;
        for player in self.players.iter_mut().filter(|player| player.status == Status::Playing) {
            player.placement = placement;
            player.end_tick = self.tick;
        }
        self.finished = true;
        let results = self.build_results();
        emit(events, self.tick, None, EventKind::GameEnd { results });
    }

    // ---- garbage ----

    /// §8.1: in a two-player match the opponent; with more, a uniform draw
    /// from the sender's targeting stream among alive opponents by slot.
    fn choose_target(&mut self, sender: Slot) -> Option<Slot> {
        if self.config.is_solo() {
            return None;
        }
        let count = self.players.len();
        if count == 2 {
            let other = 1 - usize::from(sender);
            return self.is_target(sender, other).then_some(other as Slot);
        }
        let opponents = (0..count).filter(|&index| self.is_target(sender, index)).count();
        if opponents == 0 {
            return None;
        }
        let pick = self.players[usize::from(sender)].targeting.below(opponents as u32) as usize;
        let target = (0..count).filter(|&index| self.is_target(sender, index)).nth(pick);
        target.map(|index| index as Slot)
    }

    fn is_target(&self, sender: Slot, index: usize) -> bool {
        index != usize::from(sender) && self.players[index].status == Status::Playing
    }

    /// Puts `lines` into `target`'s queue; the hole column is drawn from the
    /// receiver's stream now, when the packet is created (§7.4).
    fn deliver(&mut self, sender: Slot, target: Slot, lines: u32) {
        let ready_tick = self.tick.saturating_add(u32::from(self.config.garbage_delay_ticks));
        let change_percent = self.config.hole_change_percent;
        let receiver = &mut self.players[usize::from(target)];
        if receiver.garbage.is_full() {
            receiver.garbage.merge_into_newest(lines, ready_tick);
        } else {
            let hole_column = receiver.holes.next_column(change_percent);
            receiver.garbage.push(Packet { lines, sender, hole_column, ready_tick });
        }
    }

    /// §7.3: cancel the sender's own queue, then send what is left.
    fn exchange_garbage(&mut self, slot: Slot, attack: u16) -> Exchange {
        if attack == 0 {
            return Exchange::default();
        }
        let player = &mut self.players[usize::from(slot)];
        let cancelled = player.garbage.cancel(u32::from(attack));
        player.garbage_cancelled += cancelled;
        let remaining = u32::from(attack) - cancelled;
        let target = if remaining > 0 { self.choose_target(slot) } else { None };
        let Some(target) = target else {
            // Nobody left to receive it: the attack is reported, not sent.
            return Exchange { cancelled, sent: 0, target: None };
        };
        self.deliver(slot, target, remaining);
        self.players[usize::from(slot)].garbage_sent += remaining;
        Exchange { cancelled, sent: remaining, target: Some(target) }
    }

    /// §7.5 step 6: ready garbage enters the board (0-line locks only).
    fn insert_ready_garbage(&mut self, slot: Slot) -> (Insertions, Insertion) {
        let now = self.tick;
        let cap = self.config.garbage_cap;
        let player = &mut self.players[usize::from(slot)];
        let taken = player.garbage.take_ready(now, cap);
        let mut result = Insertion::Fits;
        for inserted in &taken {
            if player.board.insert_garbage(inserted.lines, inserted.hole_column)
                == Insertion::ToppedOut
            {
                result = Insertion::ToppedOut;
            }
            player.garbage_received += u32::from(inserted.lines);
            player.last_garbage_from = Some((inserted.sender, now));
        }
        (taken, result)
    }

    // ---- locks ----

    /// The whole §7.5 order of resolution for the active piece of `slot`.
    fn resolve_lock(&mut self, slot: Slot, events: &mut Vec<Event>) {
        let Some(local) = self.players[usize::from(slot)].lock_local() else {
            debug_assert!(false, "lock without an active piece");
            return;
        };
        if local.lock_out {
            self.emit_lock(slot, &local, Exchange::default(), events);
            self.eliminate(slot, EliminationCause::LockOut);
            return;
        }
        let exchange = self.exchange_garbage(slot, local.attack);
        let (insertions, insertion) = if local.outcome.lines == 0 {
            self.insert_ready_garbage(slot)
        } else {
            (Insertions::new(), Insertion::Fits)
        };
        self.emit_lock(slot, &local, exchange, events);
        for inserted in &insertions {
            let kind = EventKind::GarbageReceived {
                from: inserted.sender,
                lines: u16::from(inserted.lines),
                hole_column: inserted.hole_column,
            };
            emit(events, self.tick, Some(slot), kind);
        }
        if insertion == Insertion::ToppedOut {
            self.eliminate(slot, EliminationCause::TopOut);
            return;
        }
        if self.update_solo_progress(slot) {
            self.finish_goal(slot);
            return;
        }
        self.spawn_next(slot, events);
    }

    /// Marathon level after a lock; true if a solo goal was reached.
    fn update_solo_progress(&mut self, slot: Slot) -> bool {
        let player = &mut self.players[usize::from(slot)];
        match self.config.mode {
            Mode::Versus => false,
            Mode::Sprint => player.lines >= SPRINT_LINES,
            Mode::Marathon => {
                player.level = marathon_level(player.lines);
                player.lines >= MARATHON_LINES
            }
        }
    }

    /// §7.5 step 7 (PieceLock with the post-resolution board), then
    /// LineClear and GarbageSent.
    fn emit_lock(
        &self,
        slot: Slot,
        local: &LocalLock,
        exchange: Exchange,
        events: &mut Vec<Event>,
    ) {
        let player = &self.players[usize::from(slot)];
        let outcome = &local.outcome;
        let lock = Lock {
            placement: local.placement,
            spin: local.spin,
            lines: outcome.lines,
            ren: outcome.ren.clamp(-1, i32::from(i8::MAX)) as i8,
            b2b_bonus: outcome.b2b_bonus,
            b2b_chain: player.streaks.b2b_chain,
            perfect_clear: outcome.perfect_clear,
            attack: local.attack,
            cancelled: exchange.cancelled as u16,
            sent: exchange.sent as u16,
            target: exchange.target,
            stack_height: player.board.stack_height(),
            pending: player.garbage.pending_lines().min(u32::from(u16::MAX)) as u16,
            score: player.score,
            board: player.board.packed(),
        };
        emit(events, self.tick, Some(slot), EventKind::PieceLock(lock));
        if !local.rows.is_empty() {
            emit(events, self.tick, Some(slot), EventKind::LineClear { rows: local.rows.clone() });
        }
        if let Some(target) = exchange.target {
            let kind = EventKind::GarbageSent { target, lines: exchange.sent as u16 };
            emit(events, self.tick, Some(slot), kind);
        }
    }

    // ---- inputs ----

    /// Applies a validated input: hold, rotation, shift, soft-drop state,
    /// hard drop.
    fn apply_input(&mut self, slot: Slot, bits: u16, events: &mut Vec<Event>) {
        let index = usize::from(slot);
        if bits & INPUT_HOLD != 0 {
            match self.players[index].hold_piece() {
                Some(true) => self.emit_spawn(slot, events),
                Some(false) => return self.eliminate(slot, EliminationCause::BlockOut),
                None => {}
            }
        }
        let config = &self.config;
        let player = &mut self.players[index];
        if bits & INPUT_ROTATE_CW != 0 {
            player.rotate(Turn::Clockwise, config);
        } else if bits & INPUT_ROTATE_CCW != 0 {
            player.rotate(Turn::CounterClockwise, config);
        } else if bits & INPUT_ROTATE_180 != 0 {
            player.rotate(Turn::Half, config);
        }
        if bits & INPUT_LEFT != 0 {
            player.shift(-1, config);
        } else if bits & INPUT_RIGHT != 0 {
            player.shift(1, config);
        }
        player.soft_drop_held = bits & INPUT_SOFT_DROP != 0;
        if bits & INPUT_HARD_DROP != 0 {
            player.hard_drop();
            self.resolve_lock(slot, events);
        }
    }
}

impl Game for TetrisBattle {
    type Config = TetrisConfig;

    const TICK_HZ: u16 = 60;

    fn new(config: &TetrisConfig, seed: u64, players: u8, events: &mut Vec<Event>) -> Self {
        debug_assert!((1..=MAX_PLAYERS as u8).contains(&players));
        let count = players.clamp(1, MAX_PLAYERS as u8);
        let match_seed = match_seed(seed);
        let mut battle = TetrisBattle {
            config: config.clamped(),
            seed,
            match_seed,
            tick: 0,
            finished: false,
            players: (0..usize::from(count))
                .map(|index| TetrisPlayer::new(match_seed, index))
                .collect(),
            step_eliminated: ArrayVec::new(),
            step_finished: ArrayVec::new(),
            inputs_rejected_unknown_slot: 0,
        };
        emit(events, 0, None, EventKind::GameStart { players: count, seed });
        for slot in 0..count {
            let player = &mut battle.players[usize::from(slot)];
            let piece = player.queue.pop();
            let spawned = player.spawn(piece);
            debug_assert!(spawned, "an empty board cannot block out");
            battle.emit_spawn(slot, events);
        }
        battle
    }

    fn input(&mut self, slot: Slot, seq: u32, bits: u16, events: &mut Vec<Event>) -> InputOutcome {
        let finished = self.finished;
        let Some(player) = self.players.get_mut(usize::from(slot)) else {
            self.inputs_rejected_unknown_slot = self.inputs_rejected_unknown_slot.saturating_add(1);
            return InputOutcome::Rejected;
        };
        if finished || player.status != Status::Playing {
            player.inputs_rejected = player.inputs_rejected.saturating_add(1);
            return InputOutcome::Rejected;
        }
        // The budget counts every input received, valid or not.
        if player.inputs_this_tick >= self.config.max_inputs_per_tick {
            player.inputs_over_budget = player.inputs_over_budget.saturating_add(1);
            return InputOutcome::OverBudget;
        }
        player.inputs_this_tick += 1;
        if !is_valid(bits, self.config.rotation_system) {
            player.inputs_rejected = player.inputs_rejected.saturating_add(1);
            return InputOutcome::Rejected;
        }
        player.last_input_seq = seq;
        emit(events, self.tick, Some(slot), EventKind::Input { seq, bits });
        self.apply_input(slot, bits, events);
        self.end_step(events);
        InputOutcome::Applied
    }

    fn tick(&mut self, events: &mut Vec<Event>) {
        if self.finished {
            return;
        }
        self.tick += 1;
        let versus = self.config.mode == Mode::Versus;
        let level = versus_level(self.tick);
        for index in 0..self.players.len() {
            let player = &mut self.players[index];
            player.inputs_this_tick = 0;
            if player.status != Status::Playing {
                continue;
            }
            if versus {
                player.level = level;
            }
            if player.fall_tick(&self.config) {
                self.resolve_lock(index as Slot, events);
            }
        }
        self.end_step(events);
    }

    fn current_tick(&self) -> u32 {
        self.tick
    }

    fn state_hash(&self) -> u64 {
        let mut hasher = StateHasher::new();
        hasher.u32(self.tick);
        hasher.bool(self.finished);
        hasher.u8(self.players());
        for player in self.players.iter() {
            player.hash_into(&mut hasher);
        }
        hasher.finish()
    }

    fn is_finished(&self) -> bool {
        self.finished
    }

    fn forfeit(&mut self, slot: Slot, events: &mut Vec<Event>) {
        let playing = self.player(slot).is_some_and(|player| player.status == Status::Playing);
        if self.finished || !playing {
            return;
        }
        self.eliminate(slot, EliminationCause::Forfeit);
        self.end_step(events);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::event::{Piece, Rotation, Spin};
    use crate::sim::tetris::bag::{hole_stream_seed, target_stream_seed, HoleStream, Minstd};
    use crate::sim::tetris::board::board_from_picture;
    use crate::sim::tetris::config::RotationSystem;
    use crate::sim::tetris::player::tests::set_active;

    /// Four rows open in column 9 under one stray cell: an I dropped in
    /// column 9 is a Tetris (attack 4) but not a perfect clear.
    const TETRIS_READY: [&str; 5] =
        ["X.........", "XXXXXXXXX.", "XXXXXXXXX.", "XXXXXXXXX.", "XXXXXXXXX."];

    fn start(players: u8, config: TetrisConfig) -> (TetrisBattle, Vec<Event>) {
        let mut events = Vec::new();
        // Room seed 12 344 is MINSTD seed 12 345, the seed of TV8.
        let battle = TetrisBattle::new(&config, 12_344, players, &mut events);
        (battle, events)
    }

    impl TetrisBattle {
        fn player_mut(&mut self, slot: Slot) -> &mut TetrisPlayer {
            &mut self.players[usize::from(slot)]
        }

        /// Hard-drops an I in column 9 of `slot` (a Tetris on `TETRIS_READY`).
        fn drop_i_in_column_9(&mut self, slot: Slot, events: &mut Vec<Event>) -> InputOutcome {
            set_active(self.player_mut(slot), Piece::I, Rotation::Right, 8, 10);
            self.input(slot, 1, INPUT_HARD_DROP, events)
        }

        fn run_ticks(&mut self, ticks: u32, events: &mut Vec<Event>) {
            for _ in 0..ticks {
                self.tick(events);
            }
        }
    }

    fn kinds(events: &[Event]) -> Vec<&'static str> {
        events.iter().map(|event| event.kind.name()).collect()
    }

    fn lock_of(events: &[Event]) -> &Lock {
        events
            .iter()
            .find_map(|event| match &event.kind {
                EventKind::PieceLock(lock) => Some(lock),
                _ => None,
            })
            .expect("a piece_lock event")
    }

    /// Creation emits game_start and every player's first piece; everyone
    /// gets the same piece sequence (§3.2).
    #[test]
    fn creation_events_and_shared_sequence() {
        let (battle, events) = start(3, TetrisConfig::default());
        assert_eq!(kinds(&events), ["game_start", "piece_spawn", "piece_spawn", "piece_spawn"]);
        assert!(events.iter().all(|event| event.tick == 0));
        let first = battle.player(0).map(|player| (player.active(), player.next_queue()));
        for slot in 1..3 {
            assert_eq!(battle.player(slot).map(|p| (p.active(), p.next_queue())), first);
        }
        // Seed 12345: the first bag is L O S T I J Z.
        assert_eq!(first.and_then(|(active, _)| active).map(|p| p.piece), Some(Piece::L));
        assert_eq!(battle.match_seed(), 12_345);
        let next: String =
            first.map(|(_, next)| next.iter().map(|p| p.letter()).collect()).unwrap_or_default();
        assert_eq!(next, "OSTIJ");
    }

    /// Rejections and the input budget, each counted, none changing state.
    #[test]
    fn rejected_and_over_budget_inputs() {
        let (mut battle, _) = start(2, TetrisConfig::default());
        let mut events = Vec::new();
        let hash = battle.state_hash();
        for bits in
            [1 << 8, INPUT_LEFT | INPUT_RIGHT, INPUT_ROTATE_CW | INPUT_ROTATE_CCW, INPUT_ROTATE_180]
        {
            assert_eq!(battle.input(0, 1, bits, &mut events), InputOutcome::Rejected);
        }
        assert_eq!(battle.input(9, 1, 0, &mut events), InputOutcome::Rejected);
        assert_eq!(battle.state_hash(), hash);
        assert!(events.is_empty());
        assert_eq!(battle.inputs_rejected_total(), 5);
        // Four rejected inputs used four of the 16 budget slots this tick.
        for _ in 4..16 {
            assert_eq!(battle.input(0, 2, 0, &mut events), InputOutcome::Applied);
        }
        assert_eq!(battle.input(0, 3, 0, &mut events), InputOutcome::OverBudget);
        assert_eq!(
            battle.input(1, 3, 0, &mut events),
            InputOutcome::Applied,
            "budget is per player"
        );
        assert_eq!(battle.inputs_over_budget_total(), 1);
        assert_eq!(battle.player(0).map(TetrisPlayer::last_input_seq), Some(2));
        battle.tick(&mut events);
        assert_eq!(
            battle.input(0, 4, 0, &mut events),
            InputOutcome::Applied,
            "budget resets each tick"
        );
        // Eliminated players and finished matches reject everything.
        battle.forfeit(1, &mut events);
        assert!(battle.is_finished());
        assert_eq!(battle.input(0, 5, 0, &mut events), InputOutcome::Rejected);
        assert_eq!(battle.input(1, 5, 0, &mut events), InputOutcome::Rejected);
    }

    /// SRS+ accepts the 180 bit.
    #[test]
    fn half_turn_accepted_with_srs_plus() {
        let config =
            TetrisConfig { rotation_system: RotationSystem::SrsPlus, ..TetrisConfig::default() };
        let (mut battle, _) = start(1, config);
        let mut events = Vec::new();
        assert_eq!(battle.input(0, 1, INPUT_ROTATE_180, &mut events), InputOutcome::Applied);
        let rotation = battle.player(0).and_then(TetrisPlayer::active).map(|p| p.rotation);
        assert_eq!(rotation, Some(Rotation::Reverse));
    }

    /// One input applies hold, then rotation, then shift, then hard drop.
    #[test]
    fn input_parts_apply_in_order() {
        let (mut battle, _) = start(2, TetrisConfig::default());
        let mut events = Vec::new();
        let first = battle.player(0).and_then(TetrisPlayer::active).map(|p| p.piece);
        let second = battle.player(0).map(|p| p.next_queue()[0]);
        let bits = INPUT_HOLD | INPUT_ROTATE_CW | INPUT_LEFT | INPUT_HARD_DROP;
        assert_eq!(battle.input(0, 7, bits, &mut events), InputOutcome::Applied);
        assert_eq!(kinds(&events), ["input", "piece_spawn", "piece_lock", "piece_spawn"]);
        let lock = lock_of(&events);
        assert_eq!(Some(lock.placement.piece), second);
        assert_eq!((lock.placement.rotation, lock.placement.x), (Rotation::Right, 3));
        assert_eq!(battle.player(0).and_then(TetrisPlayer::hold), first);
        assert!(!battle.player(0).is_some_and(TetrisPlayer::hold_used), "a lock re-enables hold");
    }

    /// §7.5: the events of a Tetris and the garbage it sends; the packet
    /// enters the opponent's board only on a 0-line lock after its delay,
    /// with the hole drawn from the receiver's stream.
    #[test]
    fn tetris_sends_garbage_that_enters_after_the_delay() {
        let (mut battle, _) = start(2, TetrisConfig::default());
        let mut events = Vec::new();
        battle.player_mut(0).board = board_from_picture(&TETRIS_READY);
        assert_eq!(battle.drop_i_in_column_9(0, &mut events), InputOutcome::Applied);
        assert_eq!(
            kinds(&events),
            ["input", "piece_lock", "line_clear", "garbage_sent", "piece_spawn"]
        );
        let lock = lock_of(&events);
        assert_eq!((lock.lines, lock.attack, lock.cancelled, lock.sent), (4, 4, 0, 4));
        assert_eq!(
            (lock.target, lock.spin, lock.stack_height, lock.pending),
            (Some(1), Spin::None, 1, 0)
        );
        assert_eq!(lock.score, 800 + 2 * 8);
        assert_eq!(battle.player(1).map(TetrisPlayer::pending_garbage), Some(4));
        let expected_hole =
            HoleStream::new(hole_stream_seed(battle.match_seed(), 1)).next_column(100);
        let packet = battle.player(1).and_then(|player| player.incoming_packet(0));
        assert_eq!(
            packet,
            Some(Packet { lines: 4, sender: 0, hole_column: expected_hole, ready_tick: 20 })
        );

        // Not ready yet: a 0-line lock at tick 19 inserts nothing.
        battle.run_ticks(19, &mut events);
        events.clear();
        battle.input(1, 1, INPUT_HARD_DROP, &mut events);
        assert_eq!(kinds(&events), ["input", "piece_lock", "piece_spawn"]);
        assert_eq!(lock_of(&events).pending, 4);
        battle.tick(&mut events);
        events.clear();
        battle.input(1, 2, INPUT_HARD_DROP, &mut events);
        assert_eq!(kinds(&events), ["input", "piece_lock", "garbage_received", "piece_spawn"]);
        let received = events.iter().find_map(|event| match event.kind {
            EventKind::GarbageReceived { from, lines, hole_column } => {
                Some((from, lines, hole_column))
            }
            _ => None,
        });
        assert_eq!(received, Some((0, 4, expected_hole)));
        let receiver = battle.player(1).expect("slot 1");
        assert_eq!((receiver.pending_garbage(), receiver.garbage_received()), (0, 4));
        for y in 0..4 {
            for x in 0..10 {
                let expected = if x == expected_hole as i8 { 0 } else { 8 };
                assert_eq!(receiver.cell(x, y), Some(expected));
            }
        }
        assert_eq!(lock_of(&events).stack_height, 4 + 2 + 2, "garbage under an L and an O");
    }

    /// §7.3: an attack cancels incoming garbage that is not ready yet.
    #[test]
    fn attack_cancels_packets_before_they_are_ready() {
        let (mut battle, _) = start(2, TetrisConfig::default());
        let mut events = Vec::new();
        battle.player_mut(0).board = board_from_picture(&TETRIS_READY);
        battle.player_mut(1).board = board_from_picture(&TETRIS_READY);
        battle.drop_i_in_column_9(0, &mut events);
        events.clear();
        battle.drop_i_in_column_9(1, &mut events);
        let lock = lock_of(&events);
        assert_eq!((lock.attack, lock.cancelled, lock.sent, lock.target), (4, 4, 0, None));
        assert!(!kinds(&events).contains(&"garbage_sent"));
        let player = battle.player(1).expect("slot 1");
        assert_eq!((player.pending_garbage(), player.garbage_cancelled()), (0, 4));
    }

    /// §7.3: at most `garbage_cap` rows per lock, oldest first; the rest of
    /// a packet stays queued with its hole.
    #[test]
    fn garbage_cap_and_partial_packets() {
        let (mut battle, _) = start(2, TetrisConfig::default());
        let mut events = Vec::new();
        let receiver = battle.player_mut(1);
        receiver.garbage.push(Packet { lines: 5, sender: 0, hole_column: 2, ready_tick: 0 });
        receiver.garbage.push(Packet { lines: 6, sender: 0, hole_column: 7, ready_tick: 0 });
        battle.input(1, 1, INPUT_HARD_DROP, &mut events);
        let received: Vec<(u16, u8)> = events
            .iter()
            .filter_map(|event| match event.kind {
                EventKind::GarbageReceived { lines, hole_column, .. } => Some((lines, hole_column)),
                _ => None,
            })
            .collect();
        assert_eq!(received, [(5, 2), (3, 7)]);
        assert_eq!(lock_of(&events).pending, 3);
        let packet = battle.player(1).and_then(|player| player.incoming_packet(0));
        assert_eq!(packet.map(|packet| (packet.lines, packet.hole_column)), Some((3, 7)));
    }

    /// §8.1: with 3+ players each sending lock draws its target from the
    /// sender's targeting stream among alive opponents, by slot.
    #[test]
    fn targeting_with_four_players() {
        let (mut battle, _) = start(4, TetrisConfig::default());
        let mut events = Vec::new();
        battle.forfeit(2, &mut events);
        let mut stream = Minstd::new(target_stream_seed(battle.match_seed(), 0));
        let alive_opponents = [1, 3];
        for _ in 0..40 {
            battle.player_mut(0).board = board_from_picture(&TETRIS_READY);
            battle.player_mut(0).garbage = Default::default();
            battle.player_mut(0).streaks = Default::default();
            events.clear();
            battle.drop_i_in_column_9(0, &mut events);
            battle.tick(&mut events);
            let expected = alive_opponents[stream.below(2) as usize];
            assert_eq!(lock_of(&events).target, Some(expected));
        }
        assert_eq!(battle.player(2).map(TetrisPlayer::pending_garbage), Some(0));
        let total = battle.player(1).map_or(0, |p| p.pending_garbage())
            + battle.player(3).map_or(0, |p| p.pending_garbage());
        assert_eq!(total, 40 * 4);
    }

    /// Fills rows 0..20 but column 0 so that a spawned piece is grounded
    /// and locks out when its lock delay runs out.
    fn doomed(battle: &mut TetrisBattle, slot: Slot) {
        let player = battle.player_mut(slot);
        for _ in 0..20 {
            player.board.insert_garbage(1, 0);
        }
    }

    /// §8.2: players eliminated in the same tick share the placement; a 1v1
    /// double KO is a draw.
    #[test]
    fn same_tick_double_ko_is_a_draw() {
        let (mut battle, _) = start(2, TetrisConfig::default());
        let mut events = Vec::new();
        doomed(&mut battle, 0);
        doomed(&mut battle, 1);
        battle.run_ticks(31, &mut events);
        assert!(battle.is_finished());
        let eliminations: Vec<(Option<Slot>, u32, EventKind)> = events
            .iter()
            .filter(|event| matches!(event.kind, EventKind::Elimination { .. }))
            .map(|event| (event.player, event.tick, event.kind.clone()))
            .collect();
        let kind =
            EventKind::Elimination { cause: EliminationCause::LockOut, killer: None, placement: 1 };
        assert_eq!(eliminations, [(Some(0), 31, kind.clone()), (Some(1), 31, kind)]);
        let results = battle.results().expect("results");
        assert_eq!(results.iter().map(|r| r.placement).collect::<Vec<_>>(), [1, 1]);
        assert_eq!(results.iter().map(|r| r.survived_ticks).collect::<Vec<_>>(), [31, 31]);
        assert_eq!(events.last().map(|event| event.kind.name()), Some("game_end"));
    }

    /// Three players, two out in one tick: both get n − k + 1 = 2.
    #[test]
    fn two_of_three_out_in_one_tick_share_second_place() {
        let (mut battle, _) = start(3, TetrisConfig::default());
        let mut events = Vec::new();
        doomed(&mut battle, 0);
        doomed(&mut battle, 2);
        battle.run_ticks(31, &mut events);
        let results = battle.results().expect("finished");
        assert_eq!(results.iter().map(|r| r.placement).collect::<Vec<_>>(), [2, 1, 2]);
        assert_eq!(results[1].survived_ticks, 31);
    }

    /// An earlier elimination ranks below a later one.
    #[test]
    fn placements_follow_the_order_of_elimination() {
        let (mut battle, _) = start(3, TetrisConfig::default());
        let mut events = Vec::new();
        battle.forfeit(1, &mut events);
        battle.tick(&mut events);
        battle.forfeit(0, &mut events);
        let results = battle.results().expect("finished");
        assert_eq!(results.iter().map(|r| r.placement).collect::<Vec<_>>(), [2, 3, 1]);
    }

    /// §8.2 KO credit: a top out by garbage credits the sender; the credit
    /// lapses 600 ticks after the last insertion.
    #[test]
    fn killer_credit_and_its_window() {
        for (wait, expected) in
            [(0, Some(0)), (KILLER_WINDOW_TICKS, Some(0)), (KILLER_WINDOW_TICKS + 1, None)]
        {
            let (mut battle, _) = start(3, TetrisConfig::default());
            let mut events = Vec::new();
            battle.player_mut(1).garbage.push(Packet {
                lines: 2,
                sender: 0,
                hole_column: 0,
                ready_tick: 0,
            });
            battle.input(1, 1, INPUT_HARD_DROP, &mut events);
            assert_eq!(battle.player(1).map(TetrisPlayer::garbage_received), Some(2));
            battle.run_ticks(wait, &mut events);
            battle.forfeit(1, &mut events);
            assert_eq!(battle.player(1).and_then(TetrisPlayer::killer), expected, "wait {wait}");
        }
    }

    /// §1.4 top out: garbage pushing a cell to y ≥ 40 eliminates, after the
    /// lock event and the garbage_received event; the sender gets the KO.
    #[test]
    fn garbage_top_out() {
        let (mut battle, _) = start(2, TetrisConfig::default());
        let mut events = Vec::new();
        let receiver = battle.player_mut(1);
        // A tower in column 9 up to y = 37; the O locks at the bottom.
        receiver.board = board_from_picture(&[".........X"; 38]);
        receiver.garbage.push(Packet { lines: 3, sender: 0, hole_column: 4, ready_tick: 0 });
        receiver.garbage.push(Packet { lines: 3, sender: 0, hole_column: 5, ready_tick: 500 });
        set_active(receiver, Piece::O, Rotation::Spawn, 0, 30);
        battle.input(1, 1, INPUT_HARD_DROP, &mut events);
        assert_eq!(
            kinds(&events),
            ["input", "piece_lock", "garbage_received", "elimination", "game_end"]
        );
        let elimination =
            events.iter().find(|event| event.kind.name() == "elimination").map(|e| &e.kind);
        let expected = EventKind::Elimination {
            cause: EliminationCause::TopOut,
            killer: Some(0),
            placement: 2,
        };
        assert_eq!(elimination, Some(&expected));
        let loser = battle.player(1).expect("slot 1");
        assert_eq!((loser.pending_garbage(), loser.garbage_discarded()), (0, 3));
        assert_eq!(battle.results().map(|r| (r[0].placement, r[1].placement)), Some((1, 2)));
    }

    /// Block out on the spawn after a lock.
    #[test]
    fn block_out_after_lock() {
        let (mut battle, _) = start(2, TetrisConfig::default());
        let mut events = Vec::new();
        let picture: Vec<&str> =
            std::iter::once("..XXXXXXX.").chain(std::iter::repeat_n("..........", 20)).collect();
        battle.player_mut(0).board = board_from_picture(&picture);
        set_active(battle.player_mut(0), Piece::O, Rotation::Spawn, 0, 10);
        battle.input(0, 1, INPUT_HARD_DROP, &mut events);
        assert_eq!(kinds(&events), ["input", "piece_lock", "elimination", "game_end"]);
        assert_eq!(
            battle.player(0).and_then(TetrisPlayer::elimination_cause),
            Some(EliminationCause::BlockOut)
        );
        assert_eq!(battle.player(0).and_then(TetrisPlayer::active), None);
    }

    /// Sprint ends with placement 1 at 40 lines.
    #[test]
    fn sprint_ends_at_forty_lines() {
        let config = TetrisConfig { mode: Mode::Sprint, ..TetrisConfig::default() };
        let (mut battle, _) = start(1, config);
        let mut events = Vec::new();
        battle.player_mut(0).lines = 36;
        battle.player_mut(0).board = board_from_picture(&TETRIS_READY);
        battle.drop_i_in_column_9(0, &mut events);
        assert_eq!(kinds(&events), ["input", "piece_lock", "line_clear", "game_end"]);
        assert_eq!(lock_of(&events).target, None, "solo modes send nothing");
        let results = battle.results().expect("finished");
        assert_eq!((results[0].placement, results[0].lines), (1, 40));
        assert_eq!(battle.player(0).map(TetrisPlayer::status), Some(Status::Finished));
    }

    /// Marathon levels follow lines; a solo top out ends the game.
    #[test]
    fn marathon_levels_and_solo_top_out() {
        let config = TetrisConfig { mode: Mode::Marathon, ..TetrisConfig::default() };
        let (mut battle, _) = start(1, config);
        let mut events = Vec::new();
        battle.player_mut(0).lines = 8;
        battle.player_mut(0).board = board_from_picture(&TETRIS_READY);
        battle.drop_i_in_column_9(0, &mut events);
        assert_eq!(battle.player(0).map(|p| (p.lines(), p.level())), Some((12, 2)));
        assert_eq!(lock_of(&events).score, 800 + 2 * 8, "scored at the level before the clear");
        doomed(&mut battle, 0);
        let mut ticks = 0;
        while !battle.is_finished() && ticks < 1_000 {
            battle.tick(&mut events);
            ticks += 1;
        }
        assert_eq!(battle.results().map(|r| r[0].placement), Some(1));
    }

    /// Versus gravity rises every 30 s.
    #[test]
    fn versus_level_follows_time() {
        let (mut battle, _) = start(2, TetrisConfig::default());
        let mut events = Vec::new();
        battle.run_ticks(1_799, &mut events);
        assert_eq!(battle.player(0).map(TetrisPlayer::level), Some(1));
        battle.tick(&mut events);
        assert_eq!(battle.player(0).map(TetrisPlayer::level), Some(2));
    }

    /// A one-player versus match runs until that player is out.
    #[test]
    fn one_player_versus_ends_on_elimination_only() {
        let (mut battle, _) = start(1, TetrisConfig::default());
        let mut events = Vec::new();
        battle.tick(&mut events);
        assert!(!battle.is_finished());
        battle.forfeit(0, &mut events);
        assert!(battle.is_finished());
        assert_eq!(battle.results().map(|r| r[0].placement), Some(1));
    }

    /// The hash covers the state: any change of a piece, queue or counter
    /// changes it; the input budget does not.
    #[test]
    fn state_hash_sees_state_changes() {
        let (mut battle, _) = start(2, TetrisConfig::default());
        let mut events = Vec::new();
        let base = battle.state_hash();
        battle.player_mut(1).inputs_this_tick = 3;
        assert_eq!(battle.state_hash(), base);
        battle.input(1, 1, INPUT_LEFT, &mut events);
        let shifted = battle.state_hash();
        assert_ne!(shifted, base);
        battle.player_mut(0).holes.next_column(100);
        assert_ne!(battle.state_hash(), shifted);
    }
}
