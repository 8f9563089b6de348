//! A hashed timer wheel: one per shard, for QUIC timers, idle timeouts and
//! room ticks.
//!
//! quiche's example server finds the next timeout by scanning every
//! connection; with thousands of connections per shard that scan dominates.
//! The wheel makes arm, re-arm and cancel O(1) and expiry proportional to the
//! timers that actually fire. Time is passed in (milliseconds on the shard's
//! monotonic clock), so the wheel is deterministic and testable.
//!
//! Cancellation is lazy: re-arming a key bumps its generation, and stale
//! entries are dropped when their slot comes round.

use std::cell::Cell;

/// Slots in the wheel; a power of two so the slot is a mask of the tick.
pub const WHEEL_SLOTS: usize = 512;
/// Width of one slot, milliseconds. QUIC timers are rounded up to it.
pub const SLOT_MS: u64 = 1;
/// Most timers a wheel holds, stale entries included; past it arming fails.
pub const TIMERS_MAX: usize = 1 << 20;
/// Kinds of timer one owner may have at once (e.g. QUIC, idle, tick).
pub const TIMER_KINDS: usize = 4;

/// Who a timer belongs to: the slab index of a connection or room, plus the
/// kind of timer (below [`TIMER_KINDS`]), chosen by the shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerKey {
    pub owner: u32,
    pub kind: u8,
}

impl TimerKey {
    fn index(self) -> usize {
        assert!(usize::from(self.kind) < TIMER_KINDS, "timer kind {} out of range", self.kind);
        self.owner as usize * TIMER_KINDS + usize::from(self.kind)
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: TimerKey,
    deadline_ms: u64,
    generation: u32,
}

/// The state of one key: its generation and, when armed, its deadline.
#[derive(Debug, Clone, Copy, Default)]
struct KeyState {
    generation: u32,
    deadline_ms: Option<u64>,
}

/// The wheel could not take another timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("timer wheel full ({TIMERS_MAX} timers)")]
pub struct WheelFull;

#[derive(Debug)]
pub struct TimerWheel {
    slots: Vec<Vec<Entry>>,
    /// Per key (indexed by owner and kind): generation and deadline.
    keys: Vec<KeyState>,
    /// The tick (in slots) expiry has reached: every earlier slot is done,
    /// this one is looked at again on each expiry.
    cursor_tick: u64,
    /// Entries in the slots, stale ones included.
    entries: usize,
    armed: usize,
    /// Scratch space for expiry, kept to avoid allocating per call.
    due: Vec<Entry>,
    /// A deadline no later than every armed timer's (or than the end of
    /// the wheel's turn, when none is armed within it), from the last scan
    /// of `timeout_ms`, lowered by every `arm` since: the loop asks for its
    /// timeout on every turn, and a scan visits up to a whole turn of
    /// slots, stale entries included. Cancelling leaves it early, which
    /// only wakes the loop once for nothing; expiry past it clears it.
    earliest_hint_ms: Cell<Option<u64>>,
}

impl TimerWheel {
    pub fn new(now_ms: u64) -> TimerWheel {
        TimerWheel {
            slots: (0..WHEEL_SLOTS).map(|_| Vec::new()).collect(),
            keys: Vec::new(),
            cursor_tick: now_ms / SLOT_MS,
            entries: 0,
            armed: 0,
            due: Vec::new(),
            earliest_hint_ms: Cell::new(None),
        }
    }

    /// Number of armed (not cancelled) timers.
    pub fn len(&self) -> usize {
        self.armed
    }

    pub fn is_empty(&self) -> bool {
        self.armed == 0
    }

    fn state(&self, key: TimerKey) -> KeyState {
        self.keys.get(key.index()).copied().unwrap_or_default()
    }

    fn is_current(&self, entry: &Entry) -> bool {
        let state = self.state(entry.key);
        state.generation == entry.generation && state.deadline_ms.is_some()
    }

    /// Arms `key` to fire at `deadline_ms`, replacing any earlier arming.
    pub fn arm(&mut self, key: TimerKey, deadline_ms: u64) -> Result<(), WheelFull> {
        let index = key.index();
        if index >= self.keys.len() {
            self.keys.resize(index + 1, KeyState::default());
        }
        let state = &mut self.keys[index];
        if state.deadline_ms == Some(deadline_ms) {
            return Ok(());
        }
        if self.entries >= TIMERS_MAX {
            return Err(WheelFull);
        }
        if state.deadline_ms.is_none() {
            self.armed += 1;
        }
        state.generation = state.generation.wrapping_add(1);
        state.deadline_ms = Some(deadline_ms);
        if let Some(hint) = self.earliest_hint_ms.get() {
            self.earliest_hint_ms.set(Some(hint.min(deadline_ms)));
        }
        let generation = state.generation;
        // A deadline already past fires at the next expiry.
        let tick = (deadline_ms / SLOT_MS).max(self.cursor_tick);
        self.slots[(tick as usize) & (WHEEL_SLOTS - 1)].push(Entry {
            key,
            deadline_ms,
            generation,
        });
        self.entries += 1;
        Ok(())
    }

    /// Cancels `key` if armed.
    pub fn cancel(&mut self, key: TimerKey) {
        if let Some(state) = self.keys.get_mut(key.index()) {
            if state.deadline_ms.take().is_some() {
                self.armed -= 1;
            }
        }
    }

    /// The deadline of `key`, if armed.
    pub fn deadline(&self, key: TimerKey) -> Option<u64> {
        self.state(key).deadline_ms
    }

    /// How long the event loop may sleep: until the earliest deadline within
    /// one turn of the wheel, else one turn. `None` when nothing is armed.
    /// Scans at most one turn of slots, never every timer.
    pub fn timeout_ms(&self, now_ms: u64) -> Option<u64> {
        if self.armed == 0 {
            return None;
        }
        if let Some(hint) = self.earliest_hint_ms.get() {
            return Some(hint.saturating_sub(now_ms));
        }
        let deadline_ms = self.scan_earliest();
        self.earliest_hint_ms.set(Some(deadline_ms));
        Some(deadline_ms.saturating_sub(now_ms))
    }

    /// The earliest deadline of an armed timer within one turn of the
    /// wheel, else the end of that turn.
    fn scan_earliest(&self) -> u64 {
        let horizon_ms = (self.cursor_tick + WHEEL_SLOTS as u64) * SLOT_MS;
        for offset in 0..WHEEL_SLOTS as u64 {
            let slot = &self.slots[((self.cursor_tick + offset) as usize) & (WHEEL_SLOTS - 1)];
            let earliest = slot
                .iter()
                .filter(|entry| entry.deadline_ms < horizon_ms && self.is_current(entry))
                .map(|entry| entry.deadline_ms)
                .min();
            if let Some(deadline_ms) = earliest {
                return deadline_ms;
            }
        }
        horizon_ms
    }

    /// Moves the wheel to `now_ms` and calls `fire` for every timer due, in
    /// deadline order. A fired key is disarmed before `fire` runs, so `fire`
    /// may re-arm it.
    pub fn expire(&mut self, now_ms: u64, mut fire: impl FnMut(TimerKey, u64)) {
        if self.earliest_hint_ms.get().is_some_and(|hint| hint > now_ms) {
            // Nothing armed is due before the hint: only stale entries
            // could be collected, and they can wait for a later turn. The
            // cursor stays; the next expiry walks the slots skipped here.
            return;
        }
        self.earliest_hint_ms.set(None);
        let now_tick = now_ms / SLOT_MS;
        // After a long pause one turn visits every slot; more would repeat it.
        let last_tick = now_tick.min(self.cursor_tick + WHEEL_SLOTS as u64 - 1);
        let mut due = std::mem::take(&mut self.due);
        // Slots before the current tick are done with; the current tick's
        // slot is looked at again on every call, since a timer armed
        // during this tick with a deadline already past goes there.
        while self.cursor_tick < last_tick {
            self.collect_due(now_ms, &mut due);
            self.cursor_tick += 1;
        }
        self.collect_due(now_ms, &mut due);
        self.cursor_tick = self.cursor_tick.max(now_tick);
        due.sort_unstable_by_key(|entry| entry.deadline_ms);
        for entry in due.drain(..) {
            if let Some(state) = self.keys.get_mut(entry.key.index()) {
                state.deadline_ms = None;
                self.armed -= 1;
            }
            fire(entry.key, entry.deadline_ms);
        }
        self.due = due;
    }

    /// Moves due entries of the cursor's slot into `due` and drops stale ones.
    fn collect_due(&mut self, now_ms: u64, due: &mut Vec<Entry>) {
        let slot_index = (self.cursor_tick as usize) & (WHEEL_SLOTS - 1);
        let mut slot = std::mem::take(&mut self.slots[slot_index]);
        let before = slot.len();
        slot.retain(|entry| {
            if !self.is_current(entry) {
                return false;
            }
            if entry.deadline_ms <= now_ms {
                due.push(*entry);
                return false;
            }
            true
        });
        self.entries -= before - slot.len();
        self.slots[slot_index] = slot;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(owner: u32) -> TimerKey {
        TimerKey { owner, kind: 0 }
    }

    fn expire(wheel: &mut TimerWheel, now_ms: u64) -> Vec<(u32, u64)> {
        let mut fired = Vec::new();
        wheel.expire(now_ms, |key, deadline| fired.push((key.owner, deadline)));
        fired
    }

    #[test]
    fn timers_fire_once_in_deadline_order() {
        let mut wheel = TimerWheel::new(1_000);
        wheel.arm(key(1), 1_030).unwrap();
        wheel.arm(key(2), 1_010).unwrap();
        wheel.arm(key(3), 1_010).unwrap();
        assert_eq!(wheel.timeout_ms(1_000), Some(10));
        assert_eq!(expire(&mut wheel, 1_009), vec![]);
        let mut fired = expire(&mut wheel, 1_020);
        fired.sort();
        assert_eq!(fired, vec![(2, 1_010), (3, 1_010)]);
        assert_eq!(expire(&mut wheel, 1_030), vec![(1, 1_030)]);
        assert_eq!(expire(&mut wheel, 2_000), vec![]);
        assert!(wheel.is_empty());
    }

    #[test]
    fn rearming_replaces_and_cancel_removes() {
        let mut wheel = TimerWheel::new(0);
        wheel.arm(key(1), 5).unwrap();
        wheel.arm(key(1), 50).unwrap();
        wheel.arm(key(2), 7).unwrap();
        wheel.cancel(key(2));
        assert_eq!(expire(&mut wheel, 10), vec![]);
        assert_eq!(expire(&mut wheel, 50), vec![(1, 50)]);
    }

    #[test]
    fn deadlines_beyond_one_turn_wait_for_their_round() {
        let mut wheel = TimerWheel::new(0);
        let far = 3 * WHEEL_SLOTS as u64 + 5;
        wheel.arm(key(1), far).unwrap();
        for now in (0..far).step_by(97) {
            assert_eq!(expire(&mut wheel, now), vec![], "at {now}");
        }
        assert_eq!(expire(&mut wheel, far), vec![(1, far)]);
    }

    #[test]
    fn past_deadlines_and_long_pauses_still_fire() {
        let mut wheel = TimerWheel::new(100);
        wheel.arm(key(1), 40).unwrap();
        assert_eq!(expire(&mut wheel, 100), vec![(1, 40)]);
        wheel.arm(key(2), 150).unwrap();
        assert_eq!(expire(&mut wheel, 1_000_000), vec![(2, 150)]);
        wheel.arm(key(3), 1_000_001).unwrap();
        assert_eq!(expire(&mut wheel, 1_000_001), vec![(3, 1_000_001)]);
    }

    #[test]
    fn a_fired_timer_can_rearm_itself() {
        let mut wheel = TimerWheel::new(0);
        wheel.arm(key(1), 33).unwrap();
        let mut ticks = Vec::new();
        for now in 0..=100 {
            let mut fired = Vec::new();
            wheel.expire(now, |key, deadline| fired.push((key, deadline)));
            for (key, deadline) in fired {
                ticks.push(deadline);
                wheel.arm(key, deadline + 33).unwrap();
            }
        }
        assert_eq!(ticks, vec![33, 66, 99]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Arm { owner: u32, after_ms: u64 },
        Cancel { owner: u32 },
        Advance { ms: u64 },
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            // Deadlines from the past to beyond one turn of the wheel.
            (0..8u32, 0..1_500u64).prop_map(|(owner, after_ms)| Op::Arm { owner, after_ms }),
            (0..8u32).prop_map(|owner| Op::Cancel { owner }),
            prop_oneof![0..3u64, 0..40u64, 0..2_000u64].prop_map(|ms| Op::Advance { ms }),
        ]
    }

    proptest::proptest! {
        /// Against a plain map of deadlines: expiry fires exactly the armed
        /// timers that are due, and the loop's timeout never sleeps past the
        /// earliest deadline (the cached hint may only wake it early).
        #[test]
        fn the_wheel_agrees_with_a_map_of_deadlines(
            ops in proptest::collection::vec(op(), 1..300),
        ) {
            let mut wheel = TimerWheel::new(1_000);
            let mut model = std::collections::BTreeMap::new();
            let mut now = 1_000u64;
            for op in ops {
                match op {
                    Op::Arm { owner, after_ms } => {
                        // Some deadlines are already past when armed.
                        let deadline = (now + after_ms).saturating_sub(100);
                        wheel.arm(key(owner), deadline).unwrap();
                        model.insert(owner, deadline);
                    }
                    Op::Cancel { owner } => {
                        wheel.cancel(key(owner));
                        model.remove(&owner);
                    }
                    Op::Advance { ms } => now += ms,
                }
                let mut fired = expire(&mut wheel, now);
                fired.sort_unstable();
                let mut due: Vec<(u32, u64)> =
                    model.iter().filter(|(_, &d)| d <= now).map(|(&o, &d)| (o, d)).collect();
                due.sort_unstable();
                model.retain(|_, deadline| *deadline > now);
                proptest::prop_assert_eq!(fired, due);
                proptest::prop_assert_eq!(wheel.len(), model.len());
                match (wheel.timeout_ms(now), model.values().min()) {
                    (None, None) => {}
                    (Some(timeout), Some(&earliest)) => {
                        proptest::prop_assert!(now + timeout <= earliest, "slept past a deadline");
                    }
                    (timeout, earliest) => {
                        proptest::prop_assert!(false, "timeout {timeout:?}, earliest {earliest:?}");
                    }
                }
            }
        }
    }
}
