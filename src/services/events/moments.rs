//! The stream side of the key-moment detector: stored game events in, key
//! moments out, for `game.{room_id}.moments`. Pure (no I/O, no clock): the
//! service around it reads the events stream and publishes what
//! [`MomentDetector::on_event`] hands back.
//!
//! Per room it keeps the match's slot table and the simulation's
//! [`MomentState`], and runs [`detect_moments`] on each event turned back
//! into a sim event, so the moments are exactly those of `detect_all` over
//! the match (history and replay tools get the same answer).
//!
//! - A game_start (re)starts the room's match; a game_end finishes it and
//!   forgets the room.
//! - Events of a room whose game_start was not seen (the detector started
//!   mid-match, or the room was evicted) are skipped and counted, never
//!   guessed at: moments need the match from its start.
//! - At most [`MAX_ROOMS_TRACKED`] rooms are tracked; a new match beyond
//!   that evicts the room whose match started longest ago (counted), which
//!   also bounds rooms whose game_end never comes.
//! - A moment's message id is `{room}-{event_seq}-{n}`: the triggering
//!   event's room sequence number and the moment's index among that
//!   event's moments, so a moment detected again (a restart re-reading the
//!   stream) is a duplicate the log drops.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use super::parse::{event_from_json, player_table, EventHead, ParseError};
use crate::proto::wire::GameKind;
use crate::sim::event::{EliminationCause, EventKind};
use crate::sim::moments::{detect_moments, Moment, MomentData, MomentState};

/// Most rooms whose match the detector follows at once.
pub const MAX_ROOMS_TRACKED: usize = 100_000;

/// The subject a room's key moments go to.
pub fn moments_subject(room_id: u64) -> String {
    format!("game.{room_id}.moments")
}

/// One detected moment, ready to publish on [`moments_subject`].
#[derive(Debug, Clone, PartialEq)]
pub struct MomentOut {
    pub room_id: u64,
    /// `{room}-{event_seq}-{n}`: the same for a moment detected again.
    pub message_id: String,
    /// `{tick, type, player_id, data}`, see [`moment_json`].
    pub moment: Value,
}

/// What the detector has seen, since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MomentStats {
    /// Events handed to [`MomentDetector::on_event`].
    pub events: u64,
    pub moments: u64,
    /// Matches followed from game_start to game_end.
    pub matches_finished: u64,
    /// Events skipped: their room's game_start was not seen.
    pub skipped_not_started: u64,
    /// Events of matches the detector does not follow (not Tetris).
    pub skipped_other_game: u64,
    /// Rooms dropped to keep within the bound.
    pub rooms_evicted: u64,
    /// Events that were not valid stored events.
    pub malformed: u64,
}

/// One room's match in progress.
#[derive(Debug, Clone)]
struct RoomMoments {
    /// Player ids by game slot (game_start's `data.player_ids`).
    players: Vec<u64>,
    state: MomentState,
    /// When the match started, in the detector's order of game_starts.
    started: u64,
}

/// Per-room key-moment detection over the stored event stream.
#[derive(Debug)]
pub struct MomentDetector {
    rooms: HashMap<u64, RoomMoments>,
    /// Rooms by `started`: the oldest is evicted first.
    by_start: BTreeMap<u64, u64>,
    next_start: u64,
    max_rooms: usize,
    stats: MomentStats,
}

impl Default for MomentDetector {
    fn default() -> Self {
        MomentDetector::new()
    }
}

impl MomentDetector {
    /// A detector following at most [`MAX_ROOMS_TRACKED`] rooms.
    pub fn new() -> MomentDetector {
        MomentDetector::with_max_rooms(MAX_ROOMS_TRACKED)
    }

    /// A detector following at most `max_rooms` rooms (at least one).
    pub fn with_max_rooms(max_rooms: usize) -> MomentDetector {
        MomentDetector {
            rooms: HashMap::new(),
            by_start: BTreeMap::new(),
            next_start: 0,
            max_rooms: max_rooms.max(1),
            stats: MomentStats::default(),
        }
    }

    pub fn stats(&self) -> MomentStats {
        self.stats
    }

    /// Rooms whose match is being followed.
    pub fn rooms(&self) -> usize {
        self.rooms.len()
    }

    pub fn is_tracking(&self, room_id: u64) -> bool {
        self.rooms.contains_key(&room_id)
    }

    /// Stops following a room (it closed); false if it was not followed.
    pub fn forget(&mut self, room_id: u64) -> bool {
        match self.rooms.remove(&room_id) {
            Some(room) => {
                self.by_start.remove(&room.started);
                true
            }
            None => false,
        }
    }

    /// Feeds one stored event of `room_id`; `event_seq` is its room
    /// sequence number (the `{seq}` of its message id `{room}-{seq}`).
    /// Moments it completes are appended to `out`, in detection order.
    ///
    /// An event that is not a valid stored event is an error (counted);
    /// the room's match is still followed, except that a malformed
    /// game_start or game_end ends it. Events of a room not followed are
    /// skipped without being parsed.
    /// Whether an event can be passed over on its head alone (see
    /// [`event_head`]), without the whole JSON: an event of a room whose
    /// match is not followed, or the game_start of a game other than
    /// Tetris (moments are Tetris's). Counted as `on_event` would.
    pub fn skips(&mut self, room_id: u64, head: &EventHead<'_>) -> bool {
        if head.kind == "game_start" {
            if head.game().is_none_or(|game| game == GameKind::Tetris.name()) {
                return false;
            }
            // The room's previous match, if any, is over either way.
            self.forget(room_id);
            self.stats.events += 1;
            self.stats.skipped_other_game += 1;
            return true;
        }
        if self.rooms.contains_key(&room_id) {
            return false;
        }
        self.stats.events += 1;
        self.stats.skipped_not_started += 1;
        true
    }

    pub fn on_event(
        &mut self,
        room_id: u64,
        event_seq: u64,
        event_json: &Value,
        out: &mut Vec<MomentOut>,
    ) -> Result<(), ParseError> {
        self.stats.events += 1;
        let kind = event_json.get("type").and_then(Value::as_str);
        if kind == Some("game_start") {
            return self.start(room_id, event_seq, event_json, out);
        }
        let Some(room) = self.rooms.get_mut(&room_id) else {
            self.stats.skipped_not_started += 1;
            return Ok(());
        };
        let event = match event_from_json(event_json, &room.players) {
            Ok(event) => event,
            Err(error) => {
                self.stats.malformed += 1;
                if kind == Some("game_end") {
                    self.forget(room_id);
                }
                return Err(error);
            }
        };
        let before = out.len();
        let players = &room.players;
        detect_moments(&mut room.state, &event, &mut |moment| {
            out.push(moment_out(room_id, event_seq, out.len() - before, &moment, players));
        });
        self.stats.moments += (out.len() - before) as u64;
        if matches!(event.kind, EventKind::GameEnd { .. }) {
            self.forget(room_id);
            self.stats.matches_finished += 1;
        }
        Ok(())
    }

    /// A game_start: the room's previous match (if any) is over either way.
    fn start(
        &mut self,
        room_id: u64,
        event_seq: u64,
        event_json: &Value,
        out: &mut Vec<MomentOut>,
    ) -> Result<(), ParseError> {
        self.forget(room_id);
        let parsed = player_table(event_json).and_then(|players| {
            event_from_json(event_json, &players).map(|event| (players, event))
        });
        let (players, event) = parsed.inspect_err(|_| self.stats.malformed += 1)?;
        while self.rooms.len() >= self.max_rooms {
            let Some((_, oldest)) = self.by_start.pop_first() else { break };
            self.rooms.remove(&oldest);
            self.stats.rooms_evicted += 1;
        }
        let started = self.next_start;
        self.next_start += 1;
        let mut room = RoomMoments { players, state: MomentState::default(), started };
        let before = out.len();
        detect_moments(&mut room.state, &event, &mut |moment| {
            out.push(moment_out(room_id, event_seq, out.len() - before, &moment, &room.players));
        });
        self.stats.moments += (out.len() - before) as u64;
        self.by_start.insert(started, room_id);
        self.rooms.insert(room_id, room);
        Ok(())
    }
}

fn moment_out(
    room_id: u64,
    event_seq: u64,
    index: usize,
    moment: &Moment,
    players: &[u64],
) -> MomentOut {
    MomentOut {
        room_id,
        message_id: format!("{room_id}-{event_seq}-{index}"),
        moment: moment_json(moment, players),
    }
}

/// A moment as the stream stores it: `{tick, type, player_id, data}`, the
/// type named as [`MomentKind::name`](crate::sim::moments::MomentKind::name)
/// does, the player id a decimal string (null if the slot is not in
/// `players`, the match's slot table), other players by slot as in the
/// event stream, and `data` the moment's payload:
///
/// - tetris, t_spin_*: `{}`
/// - perfect_clear: `{lines}`; back_to_back: `{chain}`
/// - garbage_surge: `{streak_sent, streak_len}`
/// - near_death_survival: `{peak_height, danger_ticks}`
/// - elimination: `{cause, killer_slot, placement}` (as the elimination
///   event's data)
/// - comeback: `{worst_danger, worst_tick}`
pub fn moment_json(moment: &Moment, players: &[u64]) -> Value {
    let data = match moment.data {
        MomentData::None => json!({}),
        MomentData::PerfectClear { lines } => json!({ "lines": lines }),
        MomentData::BackToBack { chain } => json!({ "chain": chain }),
        MomentData::GarbageSurge { streak_sent, streak_len } => {
            json!({ "streak_sent": streak_sent, "streak_len": streak_len })
        }
        MomentData::NearDeathSurvival { peak_height, danger_ticks } => {
            json!({ "peak_height": peak_height, "danger_ticks": danger_ticks })
        }
        MomentData::Elimination { cause, killer, placement } => json!({
            "cause": cause_name(cause),
            "killer_slot": killer,
            "placement": placement,
        }),
        MomentData::Comeback { worst_danger, worst_tick } => {
            json!({ "worst_danger": worst_danger, "worst_tick": worst_tick })
        }
    };
    json!({
        "tick": moment.tick,
        "type": moment.kind.name(),
        "player_id": players.get(usize::from(moment.player)).map(u64::to_string),
        "data": data,
    })
}

/// As the elimination event names it (json.rs).
fn cause_name(cause: EliminationCause) -> &'static str {
    match cause {
        EliminationCause::BlockOut => "block_out",
        EliminationCause::LockOut => "lock_out",
        EliminationCause::TopOut => "top_out",
        EliminationCause::Forfeit => "forfeit",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::services::events::json::event_json;
    use crate::services::events::parse::testing::{bot_match, record};
    use crate::services::events::parse::Problem;
    use crate::sim::event::{Event, Lock, Piece, Placement, PlayerResult, Rotation, Spin};
    use crate::sim::moments::{detect_all, MomentKind};
    use crate::sim::Slot;

    const PLAYERS: [u64; 4] = [1 << 60, 22, 33, 44];

    /// The match as stored: (room seq, JSON), seqs from `first_seq`.
    fn stored(events: &[Event], players: &[u64], first_seq: u64) -> Vec<(u64, Value)> {
        (first_seq..)
            .zip(events)
            .map(|(seq, event)| (seq, event_json(&record(event.clone(), players, seq))))
            .collect()
    }

    fn feed(detector: &mut MomentDetector, room: u64, stream: &[(u64, Value)]) -> Vec<MomentOut> {
        let mut out = Vec::new();
        for (seq, value) in stream {
            detector.on_event(room, *seq, value, &mut out).unwrap();
        }
        out
    }

    fn expected(events: &[Event], players: &[u64]) -> Vec<Value> {
        detect_all(0, events).iter().map(|moment| moment_json(moment, players)).collect()
    }

    fn lock(slot: Slot, tick: u32, edit: impl FnOnce(&mut Lock)) -> Event {
        let mut lock = Lock {
            placement: Placement { piece: Piece::L, rotation: Rotation::Spawn, x: 4, y: 3 },
            spin: Spin::None,
            lines: 0,
            ren: -1,
            b2b_bonus: false,
            b2b_chain: 0,
            perfect_clear: false,
            attack: 0,
            cancelled: 0,
            sent: 0,
            target: None,
            stack_height: 2,
            pending: 0,
            score: 0,
            board: [0; 200],
        };
        edit(&mut lock);
        Event { tick, player: Some(slot), kind: EventKind::PieceLock(lock) }
    }

    /// A made-up 3-player match with every kind of moment: slot 0 nearly
    /// dies, recovers with a perfect-clear tetris and T-spins, and wins.
    fn every_moment() -> Vec<Event> {
        let t_spin = |lines, sent| {
            move |lock: &mut Lock| {
                lock.placement.piece = Piece::T;
                (lock.spin, lock.lines, lock.sent, lock.target) =
                    (Spin::Full, lines, sent, Some(1));
                (lock.b2b_bonus, lock.b2b_chain) = (true, 2);
            }
        };
        let mut results = arrayvec::ArrayVec::new();
        for (slot, placement) in [(0, 1), (1, 3), (2, 2)] {
            results.push(PlayerResult { slot, placement, ..PlayerResult::default() });
        }
        let eliminated = |slot, cause, killer, placement| Event {
            tick: 9,
            player: Some(slot),
            kind: EventKind::Elimination { cause, killer, placement },
        };
        vec![
            Event { tick: 0, player: None, kind: EventKind::GameStart { players: 3, seed: 5 } },
            lock(1, 1, |_| {}),
            lock(0, 2, |lock| (lock.stack_height, lock.pending) = (18, 2)),
            lock(0, 3, |lock| {
                (lock.lines, lock.perfect_clear, lock.stack_height) = (4, true, 0);
                (lock.sent, lock.target) = (10, Some(2));
            }),
            lock(0, 4, t_spin(2, 4)),
            lock(0, 5, t_spin(1, 2)),
            lock(0, 6, t_spin(3, 6)),
            eliminated(1, EliminationCause::TopOut, Some(0), 3),
            eliminated(2, EliminationCause::Forfeit, None, 2),
            Event { tick: 9, player: None, kind: EventKind::GameEnd { results } },
        ]
    }

    #[test]
    fn stream_moments_equal_the_simulations_own() {
        let players = &PLAYERS[..3];
        let events = every_moment();
        let mut detector = MomentDetector::new();
        let out = feed(&mut detector, 7, &stored(&events, players, 100));
        let moments: Vec<Value> = out.iter().map(|m| m.moment.clone()).collect();
        assert_eq!(moments, expected(&events, players));
        let kinds: BTreeSet<&str> = moments.iter().filter_map(|m| m["type"].as_str()).collect();
        assert_eq!(kinds.len(), MomentKind::ALL.len(), "every kind: {kinds:?}");
        assert!(out.iter().all(|m| m.room_id == 7));
        let ids: BTreeSet<&str> = out.iter().map(|m| m.message_id.as_str()).collect();
        assert_eq!(ids.len(), out.len(), "message ids are unique");
        assert!(ids.contains("7-103-0") && ids.contains("7-103-1"), "{ids:?}");
        assert_eq!(moments[0]["player_id"], "1152921504606846976");

        // The elimination moment names the cause as the event does.
        let stored_elimination = event_json(&record(events[7].clone(), players, 1));
        let moment = moments.iter().find(|m| m["type"] == "elimination").unwrap();
        assert_eq!(moment["data"]["cause"], stored_elimination["data"]["cause"]);
        assert_eq!(moment["data"]["killer_slot"], 0);
        let stats = detector.stats();
        assert_eq!((stats.events, stats.moments), (events.len() as u64, out.len() as u64));
        assert_eq!((stats.matches_finished, detector.rooms()), (1, 0));
    }

    #[test]
    fn heads_alone_pass_over_other_games_and_unfollowed_rooms() {
        use crate::services::events::parse::event_head;
        let events = every_moment();
        let players = &PLAYERS[..3];
        let bytes = |record: crate::services::events::tap::TapRecord| {
            serde_json::to_vec(&event_json(&record)).unwrap()
        };
        let mut detector = MomentDetector::new();

        // An arena match: its game_start and everything after are passed over.
        let mut arena_start = record(events[0].clone(), players, 1);
        arena_start.game = GameKind::Arena;
        let head_bytes = bytes(arena_start);
        let head = event_head(&head_bytes).unwrap();
        assert_eq!((&*head.kind, head.game()), ("game_start", Some("arena")));
        assert!(detector.skips(5, &head));
        let lock = bytes(record(events[1].clone(), players, 2));
        assert!(detector.skips(5, &event_head(&lock).unwrap()));

        // A Tetris game_start is read whole; then its room's events are too.
        let tetris_start = bytes(record(events[0].clone(), players, 1));
        let head = event_head(&tetris_start).unwrap();
        assert!(!detector.skips(6, &head));
        let value: Value = serde_json::from_slice(&tetris_start).unwrap();
        detector.on_event(6, 1, &value, &mut Vec::new()).unwrap();
        assert!(!detector.skips(6, &event_head(&lock).unwrap()));

        let stats = detector.stats();
        assert_eq!((stats.skipped_other_game, stats.skipped_not_started, stats.events), (1, 1, 3));
        assert!(event_head(b"{\"no\":\"type\"}").is_none() && event_head(b"[1]").is_none());
    }

    #[test]
    fn a_simulated_matchs_moments_are_found_through_the_stream() {
        let mut all_kinds = BTreeSet::new();
        let mut detector = MomentDetector::new();
        for (room, seed) in [(1u64, 0x5eed), (2, 7), (3, 99)] {
            let events = bot_match(seed, 4, 20_000);
            let stream = stored(&events, &PLAYERS, 1);
            let out = feed(&mut detector, room, &stream);
            let moments: Vec<Value> = out.iter().map(|m| m.moment.clone()).collect();
            assert_eq!(moments, expected(&events, &PLAYERS), "seed {seed}");
            all_kinds.extend(moments.iter().filter_map(|m| m["type"].as_str().map(str::to_owned)));

            // Reading the stream again gives the same ids: duplicates.
            let again = feed(&mut detector, room, &stream);
            assert_eq!(again, out);
        }
        // Bots make real moments, not only eliminations (the made-up match
        // above has every kind).
        for kind in ["elimination", "garbage_surge", "near_death_survival", "tetris"] {
            assert!(all_kinds.contains(kind), "{kind} missing: {all_kinds:?}");
        }
        assert_eq!((detector.rooms(), detector.stats().matches_finished), (0, 6));
    }

    #[test]
    fn a_match_joined_midway_is_skipped_until_the_next_start() {
        let players = &PLAYERS[..3];
        let events = every_moment();
        let stream = stored(&events, players, 1);
        let mut detector = MomentDetector::new();
        let out = feed(&mut detector, 9, &stream[1..]);
        assert!(out.is_empty());
        let stats = detector.stats();
        assert_eq!(stats.skipped_not_started, stream.len() as u64 - 1);
        assert!(!detector.is_tracking(9));

        // The room's next match is followed from its start, seqs going on.
        let next = stored(&events, players, 1 + stream.len() as u64);
        let out = feed(&mut detector, 9, &next);
        assert_eq!(out.len(), expected(&events, players).len());
        assert!(out[0].message_id.starts_with(&format!("9-{}-", next[3].0)));

        // A game_start in the middle of a match starts it afresh.
        let mut restarted = feed(&mut detector, 9, &next[..3]);
        restarted.extend(feed(&mut detector, 9, &next));
        let moments: Vec<Value> = restarted.iter().map(|m| m.moment.clone()).collect();
        let fresh = [&expected(&events[..3], players)[..], &expected(&events, players)].concat();
        assert_eq!(moments, fresh);
    }

    #[test]
    fn malformed_events_are_errors_and_counted() {
        let players = &PLAYERS[..3];
        let stream = stored(&every_moment(), players, 1);
        let mut detector = MomentDetector::new();
        let mut out = Vec::new();
        let mut bad_start = stream[0].1.clone();
        bad_start["data"]["player_ids"] = json!(["1", "1"]);
        let error = detector.on_event(4, 1, &bad_start, &mut out).unwrap_err();
        assert_eq!((error.field, error.problem), ("data.player_ids", Problem::Duplicate));
        assert!(!detector.is_tracking(4));

        detector.on_event(4, 1, &stream[0].1, &mut out).unwrap();
        let mut bad_lock = stream[2].1.clone();
        bad_lock["player_id"] = json!("999");
        let error = detector.on_event(4, 3, &bad_lock, &mut out).unwrap_err();
        assert_eq!((error.field, error.problem), ("player_id", Problem::Unseated));
        assert!(detector.is_tracking(4), "one bad event does not end the match");
        let error = detector.on_event(4, 4, &json!({"type": "game_end"}), &mut out).unwrap_err();
        assert_eq!(error.field, "tick");
        assert!(!detector.is_tracking(4), "a bad game_end ends it");
        // Not followed: skipped unparsed, not an error.
        detector.on_event(4, 5, &json!("junk"), &mut out).unwrap();
        let stats = detector.stats();
        assert_eq!((stats.malformed, stats.skipped_not_started, stats.events), (3, 1, 5));
        assert!(out.is_empty());
    }

    #[test]
    fn the_room_bound_holds_by_evicting_the_oldest_match() {
        let start = &stored(&every_moment(), &PLAYERS[..3], 1)[0].1;
        let mut detector = MomentDetector::with_max_rooms(3);
        let mut out = Vec::new();
        for room in [1, 2, 3, 1, 4, 5] {
            detector.on_event(room, 1, start, &mut out).unwrap();
            assert!(detector.rooms() <= 3);
        }
        // Room 1 restarted after 2 and 3, so 2 and 3 went first.
        let tracked: Vec<bool> = (1..=5).map(|room| detector.is_tracking(room)).collect();
        assert_eq!(tracked, [true, false, false, true, true]);
        assert_eq!(detector.stats().rooms_evicted, 2);
        assert!(detector.forget(1) && !detector.forget(1));
        assert_eq!(detector.rooms(), 2);

        let mut detector = MomentDetector::new();
        for room in 0..MAX_ROOMS_TRACKED as u64 + 10 {
            detector.on_event(room, 1, start, &mut out).unwrap();
        }
        assert_eq!(detector.rooms(), MAX_ROOMS_TRACKED);
        assert_eq!(detector.stats().rooms_evicted, 10);
        assert!(!detector.is_tracking(9) && detector.is_tracking(10));
        assert!(out.is_empty());
    }

    #[test]
    fn moments_go_to_the_rooms_moments_subject() {
        assert_eq!(moments_subject(281_474_976_710_659), "game.281474976710659.moments");
        let moment = Moment {
            tick: 3,
            player: 5,
            kind: MomentKind::GarbageSurge,
            data: MomentData::GarbageSurge { streak_sent: 6, streak_len: 2 },
        };
        assert_eq!(
            moment_json(&moment, &[1, 2]),
            json!({"tick": 3, "type": "garbage_surge", "player_id": null,
                   "data": {"streak_sent": 6, "streak_len": 2}})
        );
    }
}
