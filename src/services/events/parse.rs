//! Stored events back into simulation events: the exact inverse of
//! [`event_json`](super::json::event_json), for consumers of the stream
//! (the key-moment detector, history tools).
//!
//! The stored JSON names the player an event concerns by player id, not
//! by game slot, so turning it back needs the match's slot table: the
//! `data.player_ids` of its game_start (and game_end), read with
//! [`player_table`]. Callers keep that table per match and pass it to
//! [`event_from_json`] with every event of the match.
//!
//! Stored data is untrusted: every field is checked for presence, type and
//! range, and anything `event_json` cannot have written (a wrong type, a
//! missing field, a number out of range, an unknown name, a bad piece
//! letter, an overlong array, a non-canonical number string) is a
//! [`ParseError`] naming the field. Nothing here panics. Fields
//! `event_json` does not write are ignored.

use core::fmt;

use arrayvec::ArrayVec;
use serde_json::{Map, Value};

use crate::proto::wire::GameKind;
use crate::sim::event::{
    EliminationCause, Event, EventKind, Lock, PackedBoard, Piece, Placement, PlayerResult,
    Rotation, Spin, NEXT_QUEUE_LEN, PACKED_BOARD_BYTES,
};
use crate::sim::tetris::{BOARD_HEIGHT, BOARD_WIDTH};
use crate::sim::{Slot, MAX_PLAYERS};

/// What is wrong with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    Missing,
    WrongType,
    /// A number that does not fit the field's type or its documented range.
    OutOfRange,
    /// A name (type, rotation, spin, cause, game, piece letter) not in the
    /// catalog.
    UnknownName,
    /// An array or encoded string of the wrong length.
    WrongLength,
    /// A decimal or hex string not as `event_json` writes it.
    BadEncoding,
    /// A player id that is not in the match's slot table.
    Unseated,
    /// A player id or slot listed twice.
    Duplicate,
    /// A result's player id that disagrees with the slot table.
    Inconsistent,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Problem::Missing => "is missing",
            Problem::WrongType => "has the wrong type",
            Problem::OutOfRange => "is out of range",
            Problem::UnknownName => "is not a known name",
            Problem::WrongLength => "has the wrong length",
            Problem::BadEncoding => "is not canonically encoded",
            Problem::Unseated => "names a player not seated in the match",
            Problem::Duplicate => "repeats an entry",
            Problem::Inconsistent => "disagrees with the match's player table",
        })
    }
}

/// A stored event that is not one `event_json` could have written.
/// `field` is the path of the offending field, e.g. `data.placement.piece`
/// (array entries are named by the array: `data.results.slot`), or `event`
/// for the whole value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stored event field `{field}` {problem}")]
pub struct ParseError {
    pub field: &'static str,
    pub problem: Problem,
}

impl ParseError {
    fn new(field: &'static str, problem: Problem) -> ParseError {
        ParseError { field, problem }
    }
}

type Result<T> = core::result::Result<T, ParseError>;

/// A stored event's `type` and, for game_start and game_end, `data.game`,
/// read without building the JSON tree: consumers that act on few kinds of
/// event (the projector on game_end, the moment detector on Tetris
/// matches) look at this first, since the log holds every input of every
/// match. `None` when the payload is not an event object.
pub fn event_head(payload: &[u8]) -> Option<EventHead<'_>> {
    serde_json::from_slice(payload).ok()
}

/// What [`event_head`] reads.
#[derive(Debug, serde::Deserialize)]
pub struct EventHead<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    data: Option<HeadData<'a>>,
}

#[derive(Debug, serde::Deserialize)]
struct HeadData<'a> {
    #[serde(default, borrow)]
    game: Option<std::borrow::Cow<'a, str>>,
}

impl EventHead<'_> {
    /// `data.game`, present on game_start and game_end.
    pub fn game(&self) -> Option<&str> {
        self.data.as_ref()?.game.as_deref()
    }
}

/// The match's slot table from a stored game_start or game_end:
/// `data.player_ids`, player ids by game slot. At most `MAX_PLAYERS`
/// canonical decimal strings, no id twice.
pub fn player_table(value: &Value) -> Result<Vec<u64>> {
    let top = object(value, "event")?;
    let data = object(field(top, "data")?, "data")?;
    table(data).map(|ids| ids.to_vec())
}

/// One stored event back into the simulation's [`Event`]; the inverse of
/// `event_json`.
///
/// `players` is the match's slot table (see [`player_table`]; for a
/// game_start, its own table works, and so does an empty one, since
/// match-wide events concern no player). The stored `player_id` is mapped
/// back to its slot in it, so an event whose player is not in `players` is
/// an error ([`Problem::Unseated`]). A `player_id` of null is `player:
/// None`; `event_json` writes null also for an event whose slot had no
/// player id, which therefore comes back as `None`.
pub fn event_from_json(value: &Value, players: &[u64]) -> Result<Event> {
    let top = object(value, "event")?;
    let tick = unsigned(top, "tick")?;
    let kind = field(top, "type")?.as_str().ok_or(ParseError::new("type", Problem::WrongType))?;
    let player_id = optional(top, "player_id", |id| decimal(id, "player_id"))?;
    let data = object(field(top, "data")?, "data")?;
    let kind = match kind {
        "game_start" => game_start(data)?,
        "piece_spawn" => piece_spawn(data)?,
        "piece_lock" => EventKind::PieceLock(lock(data)?),
        "line_clear" => line_clear(data)?,
        "garbage_sent" => EventKind::GarbageSent {
            target: slot(field(data, "data.target_slot")?, "data.target_slot")?,
            lines: unsigned(data, "data.lines")?,
        },
        "garbage_received" => EventKind::GarbageReceived {
            from: slot(field(data, "data.from_slot")?, "data.from_slot")?,
            lines: unsigned(data, "data.lines")?,
            hole_column: below(data, "data.hole_column", BOARD_WIDTH as u64)?,
        },
        "input" => EventKind::Input {
            seq: unsigned(data, "data.seq")?,
            bits: unsigned(data, "data.bits")?,
        },
        "elimination" => EventKind::Elimination {
            cause: named(data, "data.cause", &CAUSES)?,
            killer: optional(data, "data.killer_slot", |v| slot(v, "data.killer_slot"))?,
            placement: unsigned(data, "data.placement")?,
        },
        "game_end" => game_end(data)?,
        _ => return Err(ParseError::new("type", Problem::UnknownName)),
    };
    let player = player_id.map(|id| slot_of(id, players)).transpose()?;
    Ok(Event { tick, player, kind })
}

/// The slot of `id` in the table: its only position.
fn slot_of(id: u64, players: &[u64]) -> Result<Slot> {
    let mut seats = players.iter().enumerate().filter(|(_, p)| **p == id).map(|(slot, _)| slot);
    match (seats.next(), seats.next()) {
        (Some(slot), None) => {
            Slot::try_from(slot).map_err(|_| ParseError::new("player_id", Problem::OutOfRange))
        }
        (Some(_), Some(_)) => Err(ParseError::new("player_id", Problem::Duplicate)),
        (None, _) => Err(ParseError::new("player_id", Problem::Unseated)),
    }
}

const ROTATIONS: [(&str, Rotation); 4] = [
    ("spawn", Rotation::Spawn),
    ("right", Rotation::Right),
    ("reverse", Rotation::Reverse),
    ("left", Rotation::Left),
];

const SPINS: [(&str, Spin); 3] = [("none", Spin::None), ("mini", Spin::Mini), ("full", Spin::Full)];

const CAUSES: [(&str, EliminationCause); 4] = [
    ("block_out", EliminationCause::BlockOut),
    ("lock_out", EliminationCause::LockOut),
    ("top_out", EliminationCause::TopOut),
    ("forfeit", EliminationCause::Forfeit),
];

fn game_start(data: &Map<String, Value>) -> Result<EventKind> {
    game(data)?;
    table(data)?;
    let players = unsigned::<u8>(data, "data.players")?;
    if players == 0 || usize::from(players) > MAX_PLAYERS {
        return Err(ParseError::new("data.players", Problem::OutOfRange));
    }
    let seed = decimal(field(data, "data.seed")?, "data.seed")?;
    Ok(EventKind::GameStart { players, seed })
}

fn piece_spawn(data: &Map<String, Value>) -> Result<EventKind> {
    let placement = placement(data)?;
    let queue = array(data, "data.next", NEXT_QUEUE_LEN)?;
    let mut next = [Piece::I; NEXT_QUEUE_LEN];
    if queue.len() != NEXT_QUEUE_LEN {
        return Err(ParseError::new("data.next", Problem::WrongLength));
    }
    for (slot, letter) in next.iter_mut().zip(queue) {
        *slot = piece(letter, "data.next")?;
    }
    let hold = optional(data, "data.hold", |v| piece(v, "data.hold"))?;
    Ok(EventKind::PieceSpawn { placement, next, hold })
}

fn lock(data: &Map<String, Value>) -> Result<Lock> {
    let lines = below(data, "data.lines", 5)?;
    let ren = signed::<i8>(data, "data.ren")?;
    if ren < -1 {
        return Err(ParseError::new("data.ren", Problem::OutOfRange));
    }
    Ok(Lock {
        placement: placement(data)?,
        spin: named(data, "data.spin", &SPINS)?,
        lines,
        ren,
        b2b_bonus: boolean(data, "data.b2b_bonus")?,
        b2b_chain: unsigned(data, "data.b2b_chain")?,
        perfect_clear: boolean(data, "data.perfect_clear")?,
        attack: unsigned(data, "data.attack")?,
        cancelled: unsigned(data, "data.cancelled")?,
        sent: unsigned(data, "data.sent")?,
        target: optional(data, "data.target_slot", |v| slot(v, "data.target_slot"))?,
        stack_height: below(data, "data.stack_height", BOARD_HEIGHT as u64 + 1)?,
        pending: unsigned(data, "data.pending")?,
        score: unsigned(data, "data.score")?,
        board: board(field(data, "data.board")?)?,
    })
}

fn line_clear(data: &Map<String, Value>) -> Result<EventKind> {
    let mut rows = ArrayVec::new();
    for row in array(data, "data.rows", 4)? {
        let row = number::<u8>(row, "data.rows")?;
        if row >= BOARD_HEIGHT as u8 {
            return Err(ParseError::new("data.rows", Problem::OutOfRange));
        }
        rows.push(row);
    }
    Ok(EventKind::LineClear { rows })
}

fn game_end(data: &Map<String, Value>) -> Result<EventKind> {
    game(data)?;
    let ids = table(data)?;
    let mut results = ArrayVec::<PlayerResult, MAX_PLAYERS>::new();
    for entry in array(data, "data.results", MAX_PLAYERS)? {
        let entry = object(entry, "data.results")?;
        let slot = slot(field(entry, "data.results.slot")?, "data.results.slot")?;
        if results.iter().any(|result| result.slot == slot) {
            return Err(ParseError::new("data.results.slot", Problem::Duplicate));
        }
        let id =
            optional(entry, "data.results.player_id", |v| decimal(v, "data.results.player_id"))?;
        if id != ids.get(usize::from(slot)).copied() {
            return Err(ParseError::new("data.results.player_id", Problem::Inconsistent));
        }
        results.push(PlayerResult {
            slot,
            placement: unsigned(entry, "data.results.placement")?,
            score: unsigned(entry, "data.results.score")?,
            lines: unsigned(entry, "data.results.lines")?,
            garbage_sent: unsigned(entry, "data.results.garbage_sent")?,
            garbage_received: unsigned(entry, "data.results.garbage_received")?,
            pieces: unsigned(entry, "data.results.pieces")?,
            survived_ticks: unsigned(entry, "data.results.survived_ticks")?,
        });
    }
    Ok(EventKind::GameEnd { results })
}

/// `data.game`: a known game's name (not part of the event, but checked).
fn game(data: &Map<String, Value>) -> Result<GameKind> {
    let name = field(data, "data.game")?;
    let name = name.as_str().ok_or(ParseError::new("data.game", Problem::WrongType))?;
    GameKind::from_name(name).ok_or(ParseError::new("data.game", Problem::UnknownName))
}

/// `data.player_ids`: the slot table.
fn table(data: &Map<String, Value>) -> Result<ArrayVec<u64, MAX_PLAYERS>> {
    let mut ids = ArrayVec::new();
    for id in array(data, "data.player_ids", MAX_PLAYERS)? {
        let id = decimal(id, "data.player_ids")?;
        if ids.contains(&id) {
            return Err(ParseError::new("data.player_ids", Problem::Duplicate));
        }
        ids.push(id);
    }
    Ok(ids)
}

/// `data.placement`.
fn placement(data: &Map<String, Value>) -> Result<Placement> {
    let at = object(field(data, "data.placement")?, "data.placement")?;
    Ok(Placement {
        piece: piece(field(at, "data.placement.piece")?, "data.placement.piece")?,
        rotation: named(at, "data.placement.rotation", &ROTATIONS)?,
        x: signed(at, "data.placement.x")?,
        y: signed(at, "data.placement.y")?,
    })
}

/// A piece letter: one of `IOTSZJL`, alone.
fn piece(value: &Value, path: &'static str) -> Result<Piece> {
    let letter = value.as_str().ok_or(ParseError::new(path, Problem::WrongType))?;
    let mut chars = letter.chars();
    let (Some(letter), None) = (chars.next(), chars.next()) else {
        return Err(ParseError::new(path, Problem::UnknownName));
    };
    Piece::ALL
        .into_iter()
        .find(|piece| piece.letter() == letter)
        .ok_or(ParseError::new(path, Problem::UnknownName))
}

/// `data.board`: 400 lowercase hex digits, every cell 0..=8.
fn board(value: &Value) -> Result<PackedBoard> {
    const PATH: &str = "data.board";
    let text = value.as_str().ok_or(ParseError::new(PATH, Problem::WrongType))?;
    if text.len() != 2 * PACKED_BOARD_BYTES {
        return Err(ParseError::new(PATH, Problem::WrongLength));
    }
    let nibble = |digit: u8| match digit {
        b'0'..=b'9' => Ok(digit - b'0'),
        b'a'..=b'f' => Ok(digit - b'a' + 10),
        _ => Err(ParseError::new(PATH, Problem::BadEncoding)),
    };
    let mut board = [0u8; PACKED_BOARD_BYTES];
    for (byte, pair) in board.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        let (high, low) = (nibble(pair[0])?, nibble(pair[1])?);
        if high > 8 || low > 8 {
            return Err(ParseError::new(PATH, Problem::OutOfRange));
        }
        *byte = high << 4 | low;
    }
    Ok(board)
}

/// A canonical decimal string of a `u64`, as `u64::to_string` writes it:
/// digits only, no sign, no leading zero.
fn decimal(value: &Value, path: &'static str) -> Result<u64> {
    let text = value.as_str().ok_or(ParseError::new(path, Problem::WrongType))?;
    let canonical = !text.is_empty()
        && text.len() <= 20
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if !canonical {
        return Err(ParseError::new(path, Problem::BadEncoding));
    }
    text.parse().map_err(|_| ParseError::new(path, Problem::OutOfRange))
}

/// The last segment of a path: the key in its object.
fn key(path: &'static str) -> &'static str {
    path.rsplit('.').next().unwrap_or(path)
}

fn object<'a>(value: &'a Value, path: &'static str) -> Result<&'a Map<String, Value>> {
    value.as_object().ok_or(ParseError::new(path, Problem::WrongType))
}

fn field<'a>(object: &'a Map<String, Value>, path: &'static str) -> Result<&'a Value> {
    object.get(key(path)).ok_or(ParseError::new(path, Problem::Missing))
}

/// A field that may be null (`None`), but not missing.
fn optional<'a, T>(
    object: &'a Map<String, Value>,
    path: &'static str,
    parse: impl FnOnce(&'a Value) -> Result<T>,
) -> Result<Option<T>> {
    match field(object, path)? {
        Value::Null => Ok(None),
        value => parse(value).map(Some),
    }
}

/// An array of at most `max` entries.
fn array<'a>(
    object: &'a Map<String, Value>,
    path: &'static str,
    max: usize,
) -> Result<&'a [Value]> {
    let entries =
        field(object, path)?.as_array().ok_or(ParseError::new(path, Problem::WrongType))?;
    if entries.len() > max {
        return Err(ParseError::new(path, Problem::WrongLength));
    }
    Ok(entries)
}

fn boolean(object: &Map<String, Value>, path: &'static str) -> Result<bool> {
    field(object, path)?.as_bool().ok_or(ParseError::new(path, Problem::WrongType))
}

/// A JSON integer as an unsigned type: negative or too big is out of
/// range; a float or a non-number is the wrong type.
fn number<T: TryFrom<u64>>(value: &Value, path: &'static str) -> Result<T> {
    match value.as_u64() {
        Some(n) => T::try_from(n).map_err(|_| ParseError::new(path, Problem::OutOfRange)),
        None if value.is_i64() => Err(ParseError::new(path, Problem::OutOfRange)),
        None => Err(ParseError::new(path, Problem::WrongType)),
    }
}

fn unsigned<T: TryFrom<u64>>(object: &Map<String, Value>, path: &'static str) -> Result<T> {
    number(field(object, path)?, path)
}

/// An unsigned integer below `bound` (which fits a `u8`).
fn below(object: &Map<String, Value>, path: &'static str, bound: u64) -> Result<u8> {
    let n = unsigned::<u64>(object, path)?;
    if n >= bound {
        return Err(ParseError::new(path, Problem::OutOfRange));
    }
    u8::try_from(n).map_err(|_| ParseError::new(path, Problem::OutOfRange))
}

fn signed<T: TryFrom<i64>>(object: &Map<String, Value>, path: &'static str) -> Result<T> {
    let value = field(object, path)?;
    match value.as_i64() {
        Some(n) => T::try_from(n).map_err(|_| ParseError::new(path, Problem::OutOfRange)),
        None if value.is_u64() => Err(ParseError::new(path, Problem::OutOfRange)),
        None => Err(ParseError::new(path, Problem::WrongType)),
    }
}

/// A game slot: below `MAX_PLAYERS`.
fn slot(value: &Value, path: &'static str) -> Result<Slot> {
    let slot = number::<u8>(value, path)?;
    if usize::from(slot) >= MAX_PLAYERS {
        return Err(ParseError::new(path, Problem::OutOfRange));
    }
    Ok(slot)
}

fn named<T: Copy>(
    object: &Map<String, Value>,
    path: &'static str,
    names: &[(&str, T)],
) -> Result<T> {
    let name = field(object, path)?.as_str().ok_or(ParseError::new(path, Problem::WrongType))?;
    names
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, value)| *value)
        .ok_or(ParseError::new(path, Problem::UnknownName))
}

/// Simulated matches for the tests of the stream's consumers.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::proto::wire::Rng;
    use crate::services::events::tap::TapRecord;
    use crate::sim::tetris::{
        piece_cells, Mode, TetrisBattle, TetrisConfig, INPUT_HARD_DROP, INPUT_LEFT, INPUT_RIGHT,
        INPUT_ROTATE_CCW, INPUT_ROTATE_CW, INPUT_SOFT_DROP,
    };
    use crate::sim::Game;

    const WIDTH: usize = BOARD_WIDTH as usize;
    const HEIGHT: usize = BOARD_HEIGHT as usize;

    type Grid = [[bool; WIDTH]; HEIGHT];

    fn fits(grid: &Grid, at: &Placement) -> bool {
        piece_cells(at).iter().all(|&(x, y)| {
            (0..BOARD_WIDTH).contains(&x)
                && (0..BOARD_HEIGHT).contains(&y)
                && !grid[y as usize][x as usize]
        })
    }

    /// Greedy placement: lines good; height, holes and bumpiness bad.
    fn score(grid: &Grid, at: &Placement) -> i64 {
        let mut after = *grid;
        for (x, y) in piece_cells(at) {
            after[y as usize][x as usize] = true;
        }
        let lines = after.iter().filter(|row| row.iter().all(|&c| c)).count() as i64;
        let kept: Vec<&[bool; WIDTH]> =
            after.iter().filter(|row| !row.iter().all(|&c| c)).collect();
        let mut heights = [0i64; WIDTH];
        let mut holes = 0;
        for (x, height) in heights.iter_mut().enumerate() {
            let top = kept.iter().rposition(|row| row[x]).map_or(0, |y| y + 1);
            *height = top as i64;
            holes += kept[..top].iter().filter(|row| !row[x]).count() as i64;
        }
        let aggregate: i64 = heights.iter().sum();
        let bumpiness: i64 = heights.windows(2).map(|w| (w[0] - w[1]).abs()).sum();
        76 * lines - 51 * aggregate - 108 * holes - 18 * bumpiness
    }

    /// The inputs that put the active piece where the greedy bot wants it.
    fn bot_inputs(battle: &TetrisBattle, slot: Slot, rng: &mut Rng) -> Vec<u16> {
        let Some(player) = battle.player(slot) else { return Vec::new() };
        let Some(active) = player.active() else { return Vec::new() };
        let mut grid = [[false; WIDTH]; HEIGHT];
        for (y, row) in grid.iter_mut().enumerate() {
            for (x, cell) in row.iter_mut().enumerate() {
                *cell = player.cell(x as i8, y as i8).is_some_and(|c| c != 0);
            }
        }
        let mut best: Option<(i64, Rotation, i8)> = None;
        for rotation in Rotation::ALL {
            for x in -2..BOARD_WIDTH + 2 {
                let mut at = Placement { rotation, x, ..active };
                if !fits(&grid, &at) {
                    continue;
                }
                while at.y > 0 && fits(&grid, &Placement { y: at.y - 1, ..at }) {
                    at.y -= 1;
                }
                let value = score(&grid, &at) + rng.below(30) as i64;
                if best.is_none_or(|(top, _, _)| value > top) {
                    best = Some((value, rotation, x));
                }
            }
        }
        let Some((_, rotation, x)) = best else { return vec![INPUT_HARD_DROP] };
        let mut inputs = match rotation {
            Rotation::Spawn => vec![],
            Rotation::Right => vec![INPUT_ROTATE_CW],
            Rotation::Reverse => vec![INPUT_ROTATE_CW, INPUT_ROTATE_CW],
            Rotation::Left => vec![INPUT_ROTATE_CCW],
        };
        let shift = if x < active.x { INPUT_LEFT } else { INPUT_RIGHT };
        inputs.extend((0..(x - active.x).unsigned_abs()).map(|_| shift));
        inputs.push(INPUT_HARD_DROP);
        inputs
    }

    /// A versus match of greedy bots (slot 0 plays randomly) until it ends
    /// or `max_ticks`; every event in order.
    pub(crate) fn bot_match(seed: u64, players: u8, max_ticks: u32) -> Vec<Event> {
        let mut rng = Rng::new(seed);
        let config = TetrisConfig { mode: Mode::Versus, ..TetrisConfig::default() };
        let mut events = Vec::new();
        let mut battle = TetrisBattle::new(&config, seed, players, &mut events);
        let mut seq = 0;
        for _ in 0..max_ticks {
            for slot in 0..players {
                let inputs = if slot == 0 {
                    let moves = [INPUT_LEFT, INPUT_RIGHT, INPUT_ROTATE_CW, INPUT_SOFT_DROP];
                    match rng.below(12) {
                        0 => vec![INPUT_HARD_DROP],
                        1..=3 => vec![moves[rng.below(4) as usize]],
                        _ => vec![],
                    }
                } else if rng.below(6) == 0 {
                    bot_inputs(&battle, slot, &mut rng)
                } else {
                    Vec::new()
                };
                for bits in inputs {
                    seq += 1;
                    battle.input(slot, seq, bits, &mut events);
                }
            }
            battle.tick(&mut events);
            if battle.is_finished() {
                break;
            }
        }
        events
    }

    /// The record the room would hand over for `event`, seats `players`.
    pub(crate) fn record(event: Event, players: &[u64], seq: u64) -> TapRecord {
        let table = matches!(event.kind, EventKind::GameStart { .. } | EventKind::GameEnd { .. })
            .then(|| players.to_vec().into_boxed_slice());
        TapRecord {
            room_id: 42,
            game: GameKind::Tetris,
            seq,
            player_id: event.player.and_then(|slot| players.get(usize::from(slot)).copied()),
            time_ms: 0,
            players: table,
            event,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{bot_match, record};
    use super::*;
    use crate::services::events::json::event_json;
    use serde_json::json;

    const PLAYERS: [u64; 3] = [u64::MAX, 77, 4_611_686_018_427_388_000];

    fn board() -> PackedBoard {
        core::array::from_fn(|i| ((i % 9) as u8) << 4 | ((i * 7) % 9) as u8)
    }

    fn results() -> ArrayVec<PlayerResult, MAX_PLAYERS> {
        let mut results = ArrayVec::new();
        for slot in 0..3 {
            results.push(PlayerResult {
                slot,
                placement: 3 - slot,
                score: u32::MAX - u32::from(slot),
                lines: 40,
                garbage_sent: 7,
                garbage_received: 9,
                pieces: 100,
                survived_ticks: 3_600,
            });
        }
        results
    }

    /// One event of every kind, with every optional filled and empty, and
    /// numbers at their edges.
    fn every_kind() -> Vec<Event> {
        let at = |piece, rotation, x, y| Placement { piece, rotation, x, y };
        let lock = Lock {
            placement: at(Piece::T, Rotation::Left, -2, 38),
            spin: Spin::Full,
            lines: 4,
            ren: -1,
            b2b_bonus: true,
            b2b_chain: u16::MAX,
            perfect_clear: true,
            attack: 10,
            cancelled: 3,
            sent: 7,
            target: Some(2),
            stack_height: 40,
            pending: u16::MAX,
            score: u32::MAX,
            board: board(),
        };
        let kinds = vec![
            (None, EventKind::GameStart { players: 3, seed: u64::MAX }),
            (
                Some(0),
                EventKind::PieceSpawn {
                    placement: at(Piece::I, Rotation::Spawn, 4, 21),
                    next: [Piece::O, Piece::T, Piece::S, Piece::Z, Piece::J],
                    hold: Some(Piece::L),
                },
            ),
            (
                Some(2),
                EventKind::PieceSpawn {
                    placement: at(Piece::Z, Rotation::Reverse, i8::MIN, i8::MAX),
                    next: [Piece::L; NEXT_QUEUE_LEN],
                    hold: None,
                },
            ),
            (Some(1), EventKind::PieceLock(lock.clone())),
            (
                Some(1),
                EventKind::PieceLock(Lock {
                    placement: at(Piece::S, Rotation::Right, 0, 0),
                    spin: Spin::Mini,
                    lines: 0,
                    ren: i8::MAX,
                    b2b_bonus: false,
                    perfect_clear: false,
                    target: None,
                    board: [0; PACKED_BOARD_BYTES],
                    ..lock.clone()
                }),
            ),
            (Some(0), EventKind::PieceLock(Lock { spin: Spin::None, ..lock })),
            (Some(1), EventKind::LineClear { rows: [0, 1, 2, 39].into_iter().collect() }),
            (Some(1), EventKind::LineClear { rows: ArrayVec::new() }),
            (Some(1), EventKind::GarbageSent { target: 7, lines: u16::MAX }),
            (Some(2), EventKind::GarbageReceived { from: 0, lines: 4, hole_column: 9 }),
            (Some(0), EventKind::Input { seq: u32::MAX, bits: u16::MAX }),
        ];
        let mut events: Vec<Event> = kinds
            .into_iter()
            .enumerate()
            .map(|(tick, (player, kind))| Event { tick: tick as u32, player, kind })
            .collect();
        let causes = [
            (EliminationCause::BlockOut, Some(2)),
            (EliminationCause::LockOut, None),
            (EliminationCause::TopOut, Some(0)),
            (EliminationCause::Forfeit, None),
        ];
        for (cause, killer) in causes {
            let kind = EventKind::Elimination { cause, killer, placement: u8::MAX };
            events.push(Event { tick: 500, player: Some(1), kind });
        }
        events.push(Event {
            tick: u32::MAX,
            player: None,
            kind: EventKind::GameEnd { results: results() },
        });
        events.push(Event {
            tick: 0,
            player: None,
            kind: EventKind::GameEnd { results: ArrayVec::new() },
        });
        events
    }

    fn round_trip(event: &Event, players: &[u64]) -> Value {
        let value = event_json(&record(event.clone(), players, 1));
        assert_eq!(event_from_json(&value, players).as_ref(), Ok(event), "{value}");
        value
    }

    #[test]
    fn every_event_kind_round_trips() {
        let events = every_kind();
        let names: std::collections::BTreeSet<&str> =
            events.iter().map(|event| event.kind.name()).collect();
        assert_eq!(names.len(), 9, "all nine kinds are covered");
        for event in &events {
            round_trip(event, &PLAYERS);
        }
        let start = event_json(&record(events[0].clone(), &PLAYERS, 1));
        assert_eq!(player_table(&start), Ok(PLAYERS.to_vec()));
        assert_eq!(event_from_json(&start, &[]).as_ref(), Ok(&events[0]));
    }

    #[test]
    fn a_simulated_match_round_trips_event_for_event() {
        let players = [11, 22, 33, 44];
        let events = bot_match(0x5eed, 4, 20_000);
        assert!(matches!(events.last().map(|e| &e.kind), Some(EventKind::GameEnd { .. })));
        let mut seen = std::collections::BTreeSet::new();
        let mut table = Vec::new();
        for event in &events {
            let value = event_json(&record(event.clone(), &players, 1));
            if matches!(event.kind, EventKind::GameStart { .. }) {
                table = player_table(&value).unwrap();
            }
            assert_eq!(event_from_json(&value, &table).as_ref(), Ok(event), "{value}");
            seen.insert(event.kind.name());
        }
        assert_eq!(seen.len(), 9, "the match has every kind: {seen:?}");
    }

    fn lock_json() -> Value {
        let lock = every_kind().into_iter().find(|e| matches!(e.kind, EventKind::PieceLock(_)));
        event_json(&record(lock.unwrap(), &PLAYERS, 1))
    }

    fn err(field: &'static str, problem: Problem) -> core::result::Result<Event, ParseError> {
        Err(ParseError { field, problem })
    }

    /// `value` with the field at `path` (keys) set to `to`, or removed.
    fn edit(mut value: Value, path: &[&str], to: Option<Value>) -> Value {
        let (last, parents) = path.split_last().unwrap();
        let mut at = &mut value;
        for key in parents {
            at = &mut at[*key];
        }
        let object = at.as_object_mut().unwrap();
        match to {
            Some(to) => object.insert((*last).to_owned(), to),
            None => object.remove(*last),
        };
        value
    }

    #[test]
    fn hostile_fields_are_errors_naming_the_field() {
        use Problem::*;
        let lock = lock_json();
        let parse = |path: &[&str], to: Option<Value>| {
            event_from_json(&edit(lock.clone(), path, to), &PLAYERS)
        };
        assert!(event_from_json(&lock, &PLAYERS).is_ok());
        assert_eq!(event_from_json(&json!([1]), &PLAYERS), err("event", WrongType));
        assert_eq!(parse(&["tick"], None), err("tick", Missing));
        assert_eq!(parse(&["tick"], Some(json!(1u64 << 32))), err("tick", OutOfRange));
        assert_eq!(parse(&["tick"], Some(json!(-1))), err("tick", OutOfRange));
        assert_eq!(parse(&["tick"], Some(json!(1.5))), err("tick", WrongType));
        assert_eq!(parse(&["tick"], Some(json!("1"))), err("tick", WrongType));
        assert_eq!(parse(&["type"], Some(json!("piece_locked"))), err("type", UnknownName));
        assert_eq!(parse(&["type"], Some(json!(3))), err("type", WrongType));
        assert_eq!(parse(&["data"], Some(json!("x"))), err("data", WrongType));
        assert_eq!(parse(&["player_id"], Some(json!("5"))), err("player_id", Unseated));
        assert_eq!(parse(&["player_id"], Some(json!(77))), err("player_id", WrongType));
        for bad in ["+77", "077", "", " 77", "7e1", "18446744073709551616"] {
            let expected = if bad.len() == 20 { OutOfRange } else { BadEncoding };
            assert_eq!(parse(&["player_id"], Some(json!(bad))), err("player_id", expected));
        }
        assert_eq!(event_from_json(&lock, &[77, 77]), err("player_id", Duplicate));
        let placement = ["data", "placement"];
        let piece = [&placement[..], &["piece"]].concat();
        for bad in ["t", "TT", "X", "", "\u{0}"] {
            let to = Some(json!(bad));
            assert_eq!(parse(&piece, to), err("data.placement.piece", UnknownName));
        }
        assert_eq!(parse(&piece, Some(json!(3))), err("data.placement.piece", WrongType));
        let x = [&placement[..], &["x"]].concat();
        assert_eq!(parse(&x, Some(json!(128))), err("data.placement.x", OutOfRange));
        assert_eq!(parse(&x, Some(json!(u64::MAX))), err("data.placement.x", OutOfRange));
        let rotation = [&placement[..], &["rotation"]].concat();
        let to = Some(json!("Spawn"));
        assert_eq!(parse(&rotation, to), err("data.placement.rotation", UnknownName));
        assert_eq!(parse(&placement, Some(json!(null))), err("data.placement", WrongType));
        assert_eq!(parse(&["data", "spin"], Some(json!("t"))), err("data.spin", UnknownName));
        assert_eq!(parse(&["data", "lines"], Some(json!(5))), err("data.lines", OutOfRange));
        assert_eq!(parse(&["data", "ren"], Some(json!(-2))), err("data.ren", OutOfRange));
        let to = Some(json!(41));
        assert_eq!(parse(&["data", "stack_height"], to), err("data.stack_height", OutOfRange));
        let to = Some(json!(8));
        assert_eq!(parse(&["data", "target_slot"], to), err("data.target_slot", OutOfRange));
        let to = Some(json!("true"));
        assert_eq!(parse(&["data", "b2b_bonus"], to), err("data.b2b_bonus", WrongType));
        let to = Some(json!(70_000));
        assert_eq!(parse(&["data", "attack"], to), err("data.attack", OutOfRange));
        assert_eq!(parse(&["data", "score"], None), err("data.score", Missing));
        let hex = lock["data"]["board"].as_str().unwrap().to_owned();
        for (bad, problem) in [
            (hex[..398].to_owned(), WrongLength),
            (format!("{hex}00"), WrongLength),
            (hex.to_uppercase().replace('0', "A"), BadEncoding),
            (format!("9{}", &hex[1..]), OutOfRange),
            (format!("g{}", &hex[1..]), BadEncoding),
            (format!("é{}", &hex[2..]), BadEncoding),
        ] {
            assert_eq!(parse(&["data", "board"], Some(json!(bad))), err("data.board", problem));
        }
    }

    #[test]
    fn hostile_arrays_and_tables_are_errors() {
        use Problem::*;
        let events = every_kind();
        let json_of = |kind: &str| {
            let event = events.iter().find(|e| e.kind.name() == kind).unwrap();
            event_json(&record(event.clone(), &PLAYERS, 1))
        };
        let check = |kind: &str, path: &[&str], to: Value, field, problem| {
            let value = edit(json_of(kind), path, Some(to));
            assert_eq!(event_from_json(&value, &PLAYERS), err(field, problem), "{value}");
        };
        check("piece_spawn", &["data", "next"], json!(vec!["I"; 6]), "data.next", WrongLength);
        check("piece_spawn", &["data", "next"], json!(vec!["I"; 4]), "data.next", WrongLength);
        check(
            "piece_spawn",
            &["data", "next"],
            json!(["I", "I", "I", "I", 1]),
            "data.next",
            WrongType,
        );
        check("piece_spawn", &["data", "hold"], json!("Q"), "data.hold", UnknownName);
        check("line_clear", &["data", "rows"], json!([1, 2, 3, 4, 5]), "data.rows", WrongLength);
        check("line_clear", &["data", "rows"], json!([40]), "data.rows", OutOfRange);
        check("line_clear", &["data", "rows"], json!([-1]), "data.rows", OutOfRange);
        check("line_clear", &["data", "rows"], json!({"0": 1}), "data.rows", WrongType);
        check(
            "garbage_received",
            &["data", "hole_column"],
            json!(10),
            "data.hole_column",
            OutOfRange,
        );
        check("garbage_sent", &["data", "target_slot"], json!(null), "data.target_slot", WrongType);
        check("input", &["data", "bits"], json!(65_536), "data.bits", OutOfRange);
        check("elimination", &["data", "cause"], json!("quit"), "data.cause", UnknownName);
        check("game_start", &["data", "players"], json!(0), "data.players", OutOfRange);
        check("game_start", &["data", "players"], json!(9), "data.players", OutOfRange);
        check("game_start", &["data", "game"], json!("chess"), "data.game", UnknownName);
        check("game_start", &["data", "seed"], json!(12), "data.seed", WrongType);
        check("game_start", &["data", "seed"], json!("-1"), "data.seed", BadEncoding);
        let nine = json!(["1", "2", "3", "4", "5", "6", "7", "8", "9"]);
        check("game_start", &["data", "player_ids"], nine, "data.player_ids", WrongLength);
        let twice = json!(["1", "1"]);
        check("game_start", &["data", "player_ids"], twice, "data.player_ids", Duplicate);
        let results = ["data", "results"];
        let end = json_of("game_end");
        let mut entries = end["data"]["results"].as_array().unwrap().clone();
        entries[1]["player_id"] = json!("4611686018427388000");
        check("game_end", &results, json!(entries), "data.results.player_id", Inconsistent);
        entries[1]["player_id"] = json!("77");
        entries[1]["slot"] = json!(0);
        check("game_end", &results, json!(entries), "data.results.slot", Duplicate);
        let nine = json!(vec![json!({}); 9]);
        check("game_end", &results, nine, "data.results", WrongLength);
        check("game_end", &results, json!([1]), "data.results", WrongType);
        check("game_end", &results, json!([{}]), "data.results.slot", Missing);
        assert_eq!(
            player_table(&json!({"data": {}})),
            Err(ParseError::new("data.player_ids", Missing))
        );
    }

    /// Random JSON, JSON shaped like events, and valid events with one
    /// field replaced: never a panic.
    mod random_input {
        use super::*;
        use proptest::prelude::*;

        fn any_json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                "[a-z_0-9IOTSZJL]{0,6}".prop_map(Value::from),
                (0u8..12).prop_map(Value::from),
            ];
            leaf.prop_recursive(3, 24, 9, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..10).prop_map(Value::from),
                    prop::collection::btree_map("[a-z_]{1,8}", inner, 0..6)
                        .prop_map(|map| Value::Object(map.into_iter().collect())),
                ]
            })
        }

        const KINDS: [&str; 9] = [
            "game_start",
            "piece_spawn",
            "piece_lock",
            "line_clear",
            "garbage_sent",
            "garbage_received",
            "input",
            "elimination",
            "game_end",
        ];

        /// Every field path of `value`, objects and arrays both.
        fn paths(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
            let children: Vec<(String, &Value)> = match value {
                Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
                Value::Array(items) => {
                    items.iter().enumerate().map(|(i, v)| (i.to_string(), v)).collect()
                }
                _ => return,
            };
            for (key, child) in children {
                prefix.push(key);
                out.push(prefix.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn random_json_never_panics(value in any_json(), kind in 0usize..9) {
                let _ = event_from_json(&value, &PLAYERS);
                let _ = player_table(&value);
                let name = KINDS[kind];
                let shaped = json!({"tick": 1, "type": name, "player_id": "77", "data": value});
                let _ = event_from_json(&shaped, &PLAYERS);
            }

            #[test]
            fn one_replaced_field_never_panics(
                which in any::<prop::sample::Index>(),
                field in any::<prop::sample::Index>(),
                to in any_json(),
            ) {
                let events = every_kind();
                let event = which.get(&events);
                let mut value = event_json(&record(event.clone(), &PLAYERS, 1));
                let mut all = Vec::new();
                paths(&value, &mut Vec::new(), &mut all);
                let path = field.get(&all);
                let mut at = &mut value;
                for key in path {
                    at = match at {
                        Value::Array(items) => &mut items[key.parse::<usize>().unwrap()],
                        other => &mut other[key.as_str()],
                    };
                }
                *at = to;
                let _ = event_from_json(&value, &PLAYERS);
                let _ = player_table(&value);
            }
        }
    }
}
