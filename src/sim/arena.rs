//! The arena: up to 8 players moving in a 1000 x 1000 world at 30 Hz, the
//! benchmark workload.
//!
//! Contract: a pure state machine. It owns the players' positions,
//! directions and acknowledged input sequence numbers; it never does I/O,
//! reads a clock or allocates after `new` (events go into the caller's
//! reused `Vec`). The room calls [`Game::input`] for every new input, then
//! [`Game::tick`] 30 times a second, then reads the state through the
//! accessors ([`Arena::avatars`] and friends) to send it to every member.
//!
//! The rules, as a player sees them:
//! - **Coordinates** are integer thousandths of a unit ("milli-units"),
//!   `0..=1_000_000` on both axes, as the wire's `ArenaPlayer.x/y`. x grows
//!   to the right and **y grows upward** (as in Tetris and docs/PROTOCOL.md),
//!   so input bit 2 "down" is −y and bit 3 "up" is +y.
//! - **Direction**: the latest applied input sets the direction until the
//!   next one; an input of 0 stands still. Left+right or down+up together
//!   is not a direction a client can mean: such an input is rejected, as are
//!   bits above 3.
//! - **Speed** 200 units/s along an axis. On the match's tick number `n`
//!   (0-based) an axis moving at `v` milli-units per second moves
//!   `floor(v·(n+1)/30) − floor(v·n/30)` (6 666 or 6 667 for 200 000): any
//!   30 consecutive ticks move exactly `v`, so one second at full speed is
//!   exactly 200 units, and no per-player remainder has to be stored.
//! - **Diagonals are normalised**: a player expects holding up+right to be
//!   no faster than holding right. Each axis then moves at
//!   [`DIAGONAL_AXIS_SPEED_MILLI_PER_SECOND`] = 141 421, the largest integer
//!   `d` with `d·√2 ≤ 200 000` (checked at compile time as
//!   `2·d² ≤ 200 000² < 2·(d+1)²`): 199.9995 units/s along the diagonal.
//! - **Walls** clamp each axis to the world independently, so a player
//!   pushing diagonally into a wall slides along it at the diagonal's axis
//!   speed.
//! - **Spawn** positions come from the seed (SplitMix64 below), uniform in
//!   the world minus a 100-unit margin, so nobody starts pinned to a wall.
//! - **Inputs per tick**: at most [`MAX_INPUTS_PER_TICK`] applied inputs per
//!   player per tick; more are `OverBudget`: dropped, not acknowledged (the
//!   player's `last_input_seq` stays at the newest applied input). A `seq`
//!   not above the last applied one is `Rejected` (the room filters the
//!   redundant copies before calling us; a stale one reaching the game is a
//!   caller or client bug worth counting). Refused inputs change nothing
//!   and emit nothing.
//! - **End**: with `duration_ticks > 0` the tick that reaches it moves the
//!   players, then emits `game_end` with placement 1 for every slot (the
//!   arena has no winner; nobody outranks anybody) and the game is finished.
//!   With 0 the room ends the match by dropping the game.
//! - **Forfeit**: the player stops where it is and stays in the state, not
//!   present (a spectator still sees where it was), with its last seq. It
//!   emits an `elimination` (cause forfeit, no killer, placement 1) so that a
//!   replay of the event log reproduces the state. The game does not end
//!   when everybody left: the room owns that decision.
//!
//! Stamping (as Tetris): `current_tick()` is the number of ticks simulated;
//! events of `input()` and `forfeit()` carry it; `tick()` increments first
//! and stamps its events with the new value.

use super::event::{EliminationCause, Event, EventKind, PlayerResult};
use super::{Game, InputOutcome, Slot, StateHasher, MAX_PLAYERS};

/// Simulation and state rate.
pub const TICK_HZ: u16 = 30;
const TICKS_PER_SECOND: usize = TICK_HZ as usize;

/// The world's side in milli-units: positions are `0..=WORLD_SIZE_MILLI`.
pub const WORLD_SIZE_MILLI: u32 = 1_000_000;

/// Speed along one axis, milli-units per second.
pub const SPEED_MILLI_PER_SECOND: u32 = 200_000;

/// Speed of each axis when moving diagonally: `floor(200 000 / √2)`.
pub const DIAGONAL_AXIS_SPEED_MILLI_PER_SECOND: u32 = 141_421;

/// Applied inputs per player per tick. Clients sample one input per tick;
/// 4 absorbs network jitter (two or three datagrams arriving in one tick)
/// while bounding what a flooding client can make the tick do.
pub const MAX_INPUTS_PER_TICK: u8 = 4;

/// Spawn positions keep this far from every wall.
pub const SPAWN_MARGIN_MILLI: u32 = 100_000;

/// Input bits of the arena (docs/PROTOCOL.md).
pub const INPUT_LEFT: u16 = 1 << 0;
pub const INPUT_RIGHT: u16 = 1 << 1;
pub const INPUT_DOWN: u16 = 1 << 2;
pub const INPUT_UP: u16 = 1 << 3;
const INPUT_KNOWN_BITS: u16 = INPUT_LEFT | INPUT_RIGHT | INPUT_DOWN | INPUT_UP;

// The diagonal rule: the largest axis speed whose diagonal is not faster.
const _: () = {
    let diagonal = DIAGONAL_AXIS_SPEED_MILLI_PER_SECOND as u64;
    let straight = SPEED_MILLI_PER_SECOND as u64;
    assert!(2 * diagonal * diagonal <= straight * straight);
    assert!(straight * straight < 2 * (diagonal + 1) * (diagonal + 1));
};

/// Per-tick distances of an axis moving at `speed` milli-units per second,
/// indexed by the tick's phase within the second (see the module docs).
const fn step_table(speed: u32) -> [u32; TICKS_PER_SECOND] {
    let mut table = [0; TICKS_PER_SECOND];
    let ticks = TICKS_PER_SECOND as u32;
    let mut phase = 0;
    while phase < TICKS_PER_SECOND {
        let n = phase as u32;
        table[phase] = speed * (n + 1) / ticks - speed * n / ticks;
        phase += 1;
    }
    table
}

const fn table_sum(table: &[u32; TICKS_PER_SECOND]) -> u32 {
    let mut sum = 0;
    let mut phase = 0;
    while phase < TICKS_PER_SECOND {
        sum += table[phase];
        phase += 1;
    }
    sum
}

const STRAIGHT_STEPS: [u32; TICKS_PER_SECOND] = step_table(SPEED_MILLI_PER_SECOND);
const DIAGONAL_STEPS: [u32; TICKS_PER_SECOND] = step_table(DIAGONAL_AXIS_SPEED_MILLI_PER_SECOND);
const _: () = assert!(table_sum(&STRAIGHT_STEPS) == SPEED_MILLI_PER_SECOND);
const _: () = assert!(table_sum(&DIAGONAL_STEPS) == DIAGONAL_AXIS_SPEED_MILLI_PER_SECOND);
// One step can never carry a position past a wall by more than it clamps.
const _: () = assert!(SPEED_MILLI_PER_SECOND / TICK_HZ as u32 + 1 < WORLD_SIZE_MILLI);

/// Room options of the arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ArenaConfig {
    /// Length of the match in ticks; 0: no end, the room ends it.
    pub duration_ticks: u32,
}

/// One player as the room reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Avatar {
    /// Milli-units, `0..=WORLD_SIZE_MILLI`.
    pub x: u32,
    /// Milli-units, `0..=WORLD_SIZE_MILLI`, growing upward.
    pub y: u32,
    /// Direction of the latest applied input: −1, 0 or 1 per axis.
    pub dx: i8,
    pub dy: i8,
    /// The newest input applied (0 before the first).
    pub last_input_seq: u32,
    /// False once the player forfeited.
    pub present: bool,
}

/// The arena game. See the module docs for the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arena {
    config: ArenaConfig,
    tick: u32,
    players: u8,
    finished: bool,
    avatars: [Avatar; MAX_PLAYERS],
    /// Inputs applied to each player during the current tick.
    inputs_this_tick: [u8; MAX_PLAYERS],
    /// The tick each player forfeited at (its survived ticks), if it did.
    left_at_tick: [Option<u32>; MAX_PLAYERS],
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, well-mixed generator, kept
/// private so that spawn positions never change with another module's RNG.
struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut mixed = self.state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        mixed ^ (mixed >> 31)
    }

    /// A value in `0..bound` by multiply-shift (no modulo bias worth
    /// mentioning for bounds this small, and no division).
    fn below(&mut self, bound: u32) -> u32 {
        let wide = u128::from(self.next_u64()) * u128::from(bound);
        // The high 64 bits are < bound, so they fit in u32.
        (wide >> 64) as u32
    }
}

/// The direction an input asks for, or `None` if it is not a possible input.
fn direction_of(bits: u16) -> Option<(i8, i8)> {
    if bits & !INPUT_KNOWN_BITS != 0 {
        return None;
    }
    let left = bits & INPUT_LEFT != 0;
    let right = bits & INPUT_RIGHT != 0;
    let down = bits & INPUT_DOWN != 0;
    let up = bits & INPUT_UP != 0;
    if (left && right) || (down && up) {
        return None;
    }
    Some((i8::from(right) - i8::from(left), i8::from(up) - i8::from(down)))
}

/// `position` moved `distance` in `direction` (−1, 0, 1), clamped to the world.
fn step(position: u32, direction: i8, distance: u32) -> u32 {
    match direction {
        -1 => position.saturating_sub(distance),
        1 => position.saturating_add(distance).min(WORLD_SIZE_MILLI),
        _ => position,
    }
}

impl Arena {
    /// Players in the game (slots `0..players`).
    pub fn players(&self) -> u8 {
        self.players
    }

    pub fn config(&self) -> &ArenaConfig {
        &self.config
    }

    /// Every player, indexed by slot.
    pub fn avatars(&self) -> &[Avatar] {
        &self.avatars[..usize::from(self.players)]
    }

    pub fn avatar(&self, slot: Slot) -> Option<&Avatar> {
        self.avatars().get(usize::from(slot))
    }

    /// (x, y) in milli-units.
    pub fn position(&self, slot: Slot) -> Option<(u32, u32)> {
        self.avatar(slot).map(|avatar| (avatar.x, avatar.y))
    }

    /// False for a player who forfeited and for a slot not in the game.
    pub fn is_present(&self, slot: Slot) -> bool {
        self.avatar(slot).is_some_and(|avatar| avatar.present)
    }

    /// The newest input applied for `slot` (0 before the first).
    pub fn last_input_seq(&self, slot: Slot) -> Option<u32> {
        self.avatar(slot).map(|avatar| avatar.last_input_seq)
    }

    /// The index of `slot` if it may act now: in the game, present, and
    /// the match not over.
    fn acting_index(&self, slot: Slot) -> Option<usize> {
        let index = usize::from(slot);
        let playing = !self.finished && self.avatars().get(index).is_some_and(|a| a.present);
        playing.then_some(index)
    }

    fn move_players(&mut self, phase: usize) {
        let players = usize::from(self.players);
        for avatar in self.avatars[..players].iter_mut().filter(|avatar| avatar.present) {
            let steps =
                if avatar.dx != 0 && avatar.dy != 0 { &DIAGONAL_STEPS } else { &STRAIGHT_STEPS };
            let distance = steps[phase];
            avatar.x = step(avatar.x, avatar.dx, distance);
            avatar.y = step(avatar.y, avatar.dy, distance);
            debug_assert!(avatar.x <= WORLD_SIZE_MILLI && avatar.y <= WORLD_SIZE_MILLI);
        }
    }

    fn end(&mut self, events: &mut Vec<Event>) {
        debug_assert!(!self.finished);
        self.finished = true;
        let results = (0..self.players)
            .map(|slot| PlayerResult {
                slot,
                placement: 1,
                survived_ticks: self.left_at_tick[usize::from(slot)].unwrap_or(self.tick),
                ..PlayerResult::default()
            })
            .collect();
        events.push(Event { tick: self.tick, player: None, kind: EventKind::GameEnd { results } });
    }
}

impl Game for Arena {
    type Config = ArenaConfig;

    const TICK_HZ: u16 = TICK_HZ;

    fn new(config: &ArenaConfig, seed: u64, players: u8, events: &mut Vec<Event>) -> Arena {
        assert!(
            (1..=MAX_PLAYERS).contains(&usize::from(players)),
            "an arena has 1..={MAX_PLAYERS} players, not {players}"
        );
        let mut random = SplitMix64 { state: seed };
        let spawn_span = WORLD_SIZE_MILLI - 2 * SPAWN_MARGIN_MILLI + 1;
        let mut avatars =
            [Avatar { x: 0, y: 0, dx: 0, dy: 0, last_input_seq: 0, present: false }; MAX_PLAYERS];
        for avatar in &mut avatars[..usize::from(players)] {
            avatar.x = SPAWN_MARGIN_MILLI + random.below(spawn_span);
            avatar.y = SPAWN_MARGIN_MILLI + random.below(spawn_span);
            avatar.present = true;
        }
        events.push(Event { tick: 0, player: None, kind: EventKind::GameStart { players, seed } });
        Arena {
            config: *config,
            tick: 0,
            players,
            finished: false,
            avatars,
            inputs_this_tick: [0; MAX_PLAYERS],
            left_at_tick: [None; MAX_PLAYERS],
        }
    }

    fn input(&mut self, slot: Slot, seq: u32, bits: u16, events: &mut Vec<Event>) -> InputOutcome {
        let Some(index) = self.acting_index(slot) else {
            return InputOutcome::Rejected;
        };
        let Some((dx, dy)) = direction_of(bits) else {
            return InputOutcome::Rejected;
        };
        let avatar = &mut self.avatars[index];
        if seq <= avatar.last_input_seq {
            return InputOutcome::Rejected;
        }
        if self.inputs_this_tick[index] >= MAX_INPUTS_PER_TICK {
            return InputOutcome::OverBudget;
        }
        self.inputs_this_tick[index] += 1;
        avatar.dx = dx;
        avatar.dy = dy;
        avatar.last_input_seq = seq;
        let kind = EventKind::Input { seq, bits };
        events.push(Event { tick: self.tick, player: Some(slot), kind });
        InputOutcome::Applied
    }

    fn tick(&mut self, events: &mut Vec<Event>) {
        if self.finished {
            return;
        }
        // The tick being simulated is number `self.tick` (0-based).
        let phase = (self.tick % u32::from(TICK_HZ)) as usize;
        self.tick = self.tick.checked_add(1).expect("arena tick counter overflowed (4.5 years)");
        self.move_players(phase);
        self.inputs_this_tick = [0; MAX_PLAYERS];
        if self.config.duration_ticks != 0 && self.tick >= self.config.duration_ticks {
            self.end(events);
        }
    }

    fn current_tick(&self) -> u32 {
        self.tick
    }

    fn state_hash(&self) -> u64 {
        let mut hasher = StateHasher::new();
        hasher.u32(self.config.duration_ticks);
        hasher.u32(self.tick);
        hasher.u8(self.players);
        hasher.bool(self.finished);
        for index in 0..usize::from(self.players) {
            let avatar = &self.avatars[index];
            hasher.u32(avatar.x);
            hasher.u32(avatar.y);
            hasher.bytes(&[avatar.dx as u8, avatar.dy as u8]);
            hasher.u32(avatar.last_input_seq);
            hasher.bool(avatar.present);
            hasher.u8(self.inputs_this_tick[index]);
            hasher.bool(self.left_at_tick[index].is_some());
            hasher.u32(self.left_at_tick[index].unwrap_or(0));
        }
        hasher.finish()
    }

    fn is_finished(&self) -> bool {
        self.finished
    }

    fn forfeit(&mut self, slot: Slot, events: &mut Vec<Event>) {
        let Some(index) = self.acting_index(slot) else {
            return;
        };
        let avatar = &mut self.avatars[index];
        avatar.present = false;
        avatar.dx = 0;
        avatar.dy = 0;
        self.left_at_tick[index] = Some(self.tick);
        let kind =
            EventKind::Elimination { cause: EliminationCause::Forfeit, killer: None, placement: 1 };
        events.push(Event { tick: self.tick, player: Some(slot), kind });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_tables_move_exactly_one_second_of_speed_in_thirty_ticks() {
        assert_eq!(STRAIGHT_STEPS.iter().sum::<u32>(), 200_000);
        assert!(STRAIGHT_STEPS.iter().all(|&d| d == 6_666 || d == 6_667));
        assert_eq!(DIAGONAL_STEPS.iter().sum::<u32>(), 141_421);
        assert!(DIAGONAL_STEPS.iter().all(|&d| d == 4_714 || d == 4_715));
    }

    #[test]
    fn directions_of_every_sixteen_bit_input() {
        for bits in 0..=u16::MAX {
            let expected = match bits {
                0 => Some((0, 0)),
                0b0001 => Some((-1, 0)),
                0b0010 => Some((1, 0)),
                0b0100 => Some((0, -1)),
                0b1000 => Some((0, 1)),
                0b0101 => Some((-1, -1)),
                0b1001 => Some((-1, 1)),
                0b0110 => Some((1, -1)),
                0b1010 => Some((1, 1)),
                _ => None,
            };
            assert_eq!(direction_of(bits), expected, "bits {bits:#06b}");
        }
    }

    #[test]
    fn steps_clamp_at_both_walls() {
        assert_eq!(step(3, -1, 6_667), 0);
        assert_eq!(step(999_999, 1, 6_667), WORLD_SIZE_MILLI);
        assert_eq!(step(500, 0, 6_667), 500);
    }

    #[test]
    fn spawns_are_inside_the_margin_and_depend_on_the_seed() {
        let mut events = Vec::new();
        for seed in 0..200 {
            let arena = Arena::new(&ArenaConfig::default(), seed, 8, &mut events);
            for avatar in arena.avatars() {
                let range = SPAWN_MARGIN_MILLI..=WORLD_SIZE_MILLI - SPAWN_MARGIN_MILLI;
                assert!(range.contains(&avatar.x) && range.contains(&avatar.y), "{avatar:?}");
            }
        }
        let a = Arena::new(&ArenaConfig::default(), 1, 8, &mut events);
        let b = Arena::new(&ArenaConfig::default(), 2, 8, &mut events);
        assert_ne!(a.avatars(), b.avatars());
    }

    #[test]
    fn a_forfeited_player_stops_and_acts_no_more() {
        let mut events = Vec::new();
        let mut arena = Arena::new(&ArenaConfig::default(), 7, 2, &mut events);
        assert_eq!(arena.input(1, 1, INPUT_RIGHT, &mut events), InputOutcome::Applied);
        arena.forfeit(1, &mut events);
        let before = arena.position(1);
        arena.tick(&mut events);
        assert_eq!(arena.position(1), before);
        assert!(!arena.is_present(1));
        assert_eq!(arena.input(1, 2, INPUT_LEFT, &mut events), InputOutcome::Rejected);
        let count = events.len();
        arena.forfeit(1, &mut events);
        assert_eq!(events.len(), count, "a second forfeit is a no-op");
    }
}
