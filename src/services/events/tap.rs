//! Where the shards hand game events to the services side. Each shard has
//! its own bounded lock-free queue (a `crossbeam` `ArrayQueue` used as
//! single producer, single consumer); the event writer thread drains them
//! all. Handing off is a push and a relaxed counter: no lock, no
//! allocation, no syscall, no wake-up (the writer polls every few
//! milliseconds; history is not latency-bound). A full queue drops the
//! event and counts it: a slow or stuck writer never slows a tick.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;

use crate::proto::wire::GameKind;
use crate::sim::event::Event;

/// Events one shard's queue holds; more are dropped (counted).
pub const TAP_CAPACITY: usize = 65_536;

/// One event as a room handed it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapRecord {
    pub room_id: u64,
    pub game: GameKind,
    /// The room's count of events handed over, from 1, across its matches:
    /// with the room id, the event's message id (a gap is a drop).
    pub seq: u64,
    /// The player the event concerns (the slot's player at the start).
    pub player_id: Option<u64>,
    /// Wall-clock milliseconds of the tick that produced it.
    pub time_ms: i64,
    /// Every seat's player id by game slot, on game_start and game_end
    /// only (once per match: the projector maps result slots to players).
    pub players: Option<Box<[u64]>>,
    pub event: Event,
}

/// Counters shared by a tap and its drain.
#[derive(Debug, Default)]
pub struct TapStats {
    pub handed: AtomicU64,
    pub dropped: AtomicU64,
}

/// A shard's end: cheap to clone, `hand` from the shard thread.
#[derive(Debug, Clone)]
pub struct EventTap {
    queue: Arc<ArrayQueue<TapRecord>>,
    stats: Arc<TapStats>,
}

/// The writer's end of every shard's tap.
#[derive(Debug)]
pub struct TapDrain {
    queues: Vec<Arc<ArrayQueue<TapRecord>>>,
    stats: Vec<Arc<TapStats>>,
}

/// One tap per shard, and the drain of them all.
pub fn taps(shards: usize, capacity: usize) -> (Vec<EventTap>, TapDrain) {
    assert!(capacity > 0, "a tap holds one event at least");
    let taps: Vec<EventTap> = (0..shards)
        .map(|_| EventTap {
            queue: Arc::new(ArrayQueue::new(capacity)),
            stats: Arc::new(TapStats::default()),
        })
        .collect();
    let drain = TapDrain {
        queues: taps.iter().map(|tap| Arc::clone(&tap.queue)).collect(),
        stats: taps.iter().map(|tap| Arc::clone(&tap.stats)).collect(),
    };
    (taps, drain)
}

impl EventTap {
    /// Hands one event over; false (and counted) when the queue is full.
    #[inline]
    pub fn hand(&self, record: TapRecord) -> bool {
        match self.queue.push(record) {
            Ok(()) => {
                self.stats.handed.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(_) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    pub fn stats(&self) -> &Arc<TapStats> {
        &self.stats
    }
}

impl TapDrain {
    /// Moves up to `max` waiting events into `out`, taking from every shard
    /// in turn so that none starves; returns how many.
    pub fn drain(&self, max: usize, out: &mut Vec<TapRecord>) -> usize {
        let mut moved = 0;
        let mut progress = true;
        while moved < max && progress {
            progress = false;
            for queue in &self.queues {
                if moved == max {
                    break;
                }
                if let Some(record) = queue.pop() {
                    out.push(record);
                    moved += 1;
                    progress = true;
                }
            }
        }
        moved
    }

    /// (handed, dropped) over every shard.
    pub fn totals(&self) -> (u64, u64) {
        self.stats.iter().fold((0, 0), |(handed, dropped), stats| {
            (
                handed + stats.handed.load(Ordering::Relaxed),
                dropped + stats.dropped.load(Ordering::Relaxed),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::event::EventKind;

    fn record(room_id: u64, seq: u64) -> TapRecord {
        TapRecord {
            room_id,
            game: GameKind::Tetris,
            seq,
            player_id: Some(7),
            time_ms: 1,
            players: None,
            event: Event {
                tick: seq as u32,
                player: Some(0),
                kind: EventKind::Input { seq: 1, bits: 2 },
            },
        }
    }

    #[test]
    fn events_flow_in_order_per_shard_and_a_full_queue_drops_and_counts() {
        let (taps, drain) = taps(2, 3);
        for seq in 1..=4 {
            let kept = taps[0].hand(record(1, seq));
            assert_eq!(kept, seq <= 3);
        }
        assert!(taps[1].hand(record(2, 1)));
        assert_eq!(drain.totals(), (4, 1));
        let mut out = Vec::new();
        assert_eq!(drain.drain(usize::MAX, &mut out), 4);
        let order: Vec<(u64, u64)> = out.iter().map(|r| (r.room_id, r.seq)).collect();
        assert_eq!(order, [(1, 1), (2, 1), (1, 2), (1, 3)], "shards in turn, each in order");
        assert!(taps[0].hand(record(1, 5)), "room again once drained");
        out.clear();
        assert_eq!(drain.drain(1, &mut out), 1);
    }
}
