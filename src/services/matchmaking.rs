//! The quick-match queue: accounts wait per game, first come first
//! served, and are placed together in a new room. Pure (the caller passes
//! the time and creates the rooms); hosted by shard 0's game host, the
//! one place every shard's queue requests meet.
//!
//! A Tetris match is a duel: two waiting players make one at once. An
//! arena match takes up to eight: it forms when eight wait, or when the
//! oldest has waited [`ARENA_FILL_WAIT_MS`] and at least two do.
//! Skill-based matchmaking replaces this later; the REST contract
//! (queue, status, leave) stays.

use std::collections::{HashMap, VecDeque};

use arrayvec::ArrayVec;

use crate::proto::wire::GameKind;
use crate::sim::MAX_PLAYERS;

/// Accounts waiting at once (all games); more are refused (Busy).
pub const MAX_QUEUED: usize = 100_000;
/// How long a wait lasts before the player is dropped from the queue
/// (a client that went away without leaving it).
pub const QUEUE_WAIT_MAX_MS: u64 = 10 * 60 * 1_000;
/// How long an arena match waits for more players once two wait.
pub const ARENA_FILL_WAIT_MS: u64 = 5_000;
/// How long a match's answer is kept for the status call; the seats are
/// held as long (`RESERVATION_TTL_MS` in the host), so a later status
/// would only point at a room that gave the seats away.
pub const MATCHED_KEEP_MS: u64 = 30_000;

/// Players in one match of `game`.
pub fn match_size(game: GameKind) -> usize {
    match game {
        GameKind::Tetris => 2,
        GameKind::Arena => MAX_PLAYERS,
    }
}

/// Where one account stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueStatus {
    Idle,
    Queued {
        game: GameKind,
        waited_ms: u64,
        /// 1 for the next to be matched.
        position: u32,
    },
    Matched(MatchSeat),
}

/// A seat a match gave one player: join `room_id` with `token` before
/// `expires_at_ms` (the matchmaker's clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchSeat {
    pub game: GameKind,
    pub room_id: u64,
    pub token: u64,
    pub expires_at_ms: u64,
}

/// Why an account cannot queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// The queue holds [`MAX_QUEUED`] accounts.
    Full,
}

/// Players the caller must place in one new room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormedMatch {
    pub game: GameKind,
    /// In queue order, with their nicknames.
    pub players: ArrayVec<(u64, String), MAX_PLAYERS>,
}

#[derive(Debug, Clone)]
struct Waiting {
    player_id: u64,
    nickname: String,
    since_ms: u64,
}

#[derive(Debug, Clone, Copy)]
enum Entry {
    Queued { game: GameKind },
    Matched(MatchSeat),
}

/// Everything here runs on shard 0 for each queue call, so expiry and
/// deadlines never walk every entry: waits and matches expire from the
/// front of queues kept in time order.
#[derive(Debug, Default)]
pub struct QuickMatch {
    /// Per game (index: `game_index`), oldest first.
    waiting: [VecDeque<Waiting>; 2],
    entries: HashMap<u64, Entry>,
    /// (expiry, player, room) of every seat recorded, in expiry order (the
    /// caller gives each the same lifetime); stale ones are skipped.
    matched: VecDeque<(u64, u64, u64)>,
}

fn game_index(game: GameKind) -> usize {
    match game {
        GameKind::Tetris => 0,
        GameKind::Arena => 1,
    }
}

impl QuickMatch {
    pub fn new() -> QuickMatch {
        QuickMatch::default()
    }

    pub fn queued(&self) -> usize {
        self.waiting.iter().map(VecDeque::len).sum()
    }

    /// Puts the player in `game`'s queue. Queuing again for the same game
    /// keeps the place; for another game, moves to its end; a player with
    /// a match not yet taken gives it up and queues anew.
    pub fn enqueue(
        &mut self,
        player_id: u64,
        nickname: &str,
        game: GameKind,
        now_ms: u64,
    ) -> Result<QueueStatus, QueueError> {
        match self.entries.get(&player_id) {
            Some(Entry::Queued { game: current }) if *current == game => {}
            _ => {
                self.dequeue(player_id);
                if self.queued() >= MAX_QUEUED {
                    return Err(QueueError::Full);
                }
                let waiting =
                    Waiting { player_id, nickname: nickname.to_owned(), since_ms: now_ms };
                self.waiting[game_index(game)].push_back(waiting);
                self.entries.insert(player_id, Entry::Queued { game });
            }
        }
        Ok(self.status(player_id, now_ms))
    }

    /// Leaves the queue (or forgets a match not taken); true if the player
    /// was in either.
    pub fn dequeue(&mut self, player_id: u64) -> bool {
        match self.entries.remove(&player_id) {
            Some(Entry::Queued { game }) => {
                self.waiting[game_index(game)].retain(|w| w.player_id != player_id);
                true
            }
            Some(Entry::Matched(_)) => true,
            None => false,
        }
    }

    pub fn status(&self, player_id: u64, now_ms: u64) -> QueueStatus {
        match self.entries.get(&player_id) {
            None => QueueStatus::Idle,
            Some(Entry::Matched(seat)) => QueueStatus::Matched(*seat),
            Some(Entry::Queued { game }) => {
                let queue = &self.waiting[game_index(*game)];
                let (index, waiting) = queue
                    .iter()
                    .enumerate()
                    .find(|(_, w)| w.player_id == player_id)
                    .expect("a queued entry is in its game's queue");
                QueueStatus::Queued {
                    game: *game,
                    waited_ms: now_ms.saturating_sub(waiting.since_ms),
                    position: (index + 1) as u32,
                }
            }
        }
    }

    /// The next match that can form now, taken out of the queue. The
    /// caller creates its room and records each seat with [`seated`].
    ///
    /// [`seated`]: QuickMatch::seated
    pub fn poll_match(&mut self, now_ms: u64) -> Option<FormedMatch> {
        for game in [GameKind::Tetris, GameKind::Arena] {
            let queue = &mut self.waiting[game_index(game)];
            let full = match_size(game);
            let ready = queue.len() >= full
                || (game == GameKind::Arena
                    && queue.len() >= 2
                    && queue.front().is_some_and(|w| now_ms >= w.since_ms + ARENA_FILL_WAIT_MS));
            if !ready {
                continue;
            }
            let take = queue.len().min(full);
            let players: ArrayVec<(u64, String), MAX_PLAYERS> =
                queue.drain(..take).map(|w| (w.player_id, w.nickname)).collect();
            for (player_id, _) in &players {
                self.entries.remove(player_id);
            }
            return Some(FormedMatch { game, players });
        }
        None
    }

    /// Records where a matched player sits, for the status call.
    pub fn seated(&mut self, player_id: u64, seat: MatchSeat) {
        debug_assert!(
            self.matched.back().is_none_or(|(at, _, _)| *at <= seat.expires_at_ms),
            "seats are recorded in expiry order"
        );
        self.entries.insert(player_id, Entry::Matched(seat));
        self.matched.push_back((seat.expires_at_ms, player_id, seat.room_id));
    }

    /// Forgets waits past [`QUEUE_WAIT_MAX_MS`] and matches past their
    /// seats' expiry.
    pub fn expire(&mut self, now_ms: u64) {
        for queue in &mut self.waiting {
            while let Some(front) = queue.front() {
                if now_ms < front.since_ms + QUEUE_WAIT_MAX_MS {
                    break;
                }
                self.entries.remove(&front.player_id);
                queue.pop_front();
            }
        }
        while let Some(&(expires_at_ms, player_id, room_id)) = self.matched.front() {
            if now_ms < expires_at_ms {
                break;
            }
            self.matched.pop_front();
            // Only the seat this record is about: the player may have queued
            // or been matched again since.
            let current = matches!(
                self.entries.get(&player_id),
                Some(Entry::Matched(seat)) if seat.room_id == room_id
            );
            if current {
                self.entries.remove(&player_id);
            }
        }
    }

    /// When [`poll_match`] or [`expire`] next has something to do.
    ///
    /// [`poll_match`]: QuickMatch::poll_match
    /// [`expire`]: QuickMatch::expire
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let arena = &self.waiting[game_index(GameKind::Arena)];
        let fill = (arena.len() >= 2)
            .then(|| arena.front().map(|w| w.since_ms + ARENA_FILL_WAIT_MS))
            .flatten();
        let waits =
            self.waiting.iter().filter_map(|q| q.front().map(|w| w.since_ms + QUEUE_WAIT_MAX_MS));
        let matches = self.matched.front().map(|(expires_at_ms, _, _)| *expires_at_ms);
        fill.into_iter().chain(waits).chain(matches).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(room_id: u64) -> MatchSeat {
        MatchSeat { game: GameKind::Tetris, room_id, token: 7, expires_at_ms: 40_000 }
    }

    #[test]
    fn two_tetris_players_make_a_duel_in_queue_order() {
        let mut queue = QuickMatch::new();
        queue.enqueue(1, "ann", GameKind::Tetris, 0).unwrap();
        assert_eq!(queue.poll_match(0), None);
        let status = queue.enqueue(2, "bob", GameKind::Tetris, 10).unwrap();
        assert_eq!(
            status,
            QueueStatus::Queued { game: GameKind::Tetris, waited_ms: 0, position: 2 }
        );
        queue.enqueue(3, "cat", GameKind::Tetris, 20).unwrap();
        let formed = queue.poll_match(20).unwrap();
        assert_eq!(formed.game, GameKind::Tetris);
        assert_eq!(formed.players.as_slice(), &[(1, "ann".to_owned()), (2, "bob".to_owned())]);
        assert_eq!(queue.poll_match(20), None);
        assert_eq!(queue.status(1, 20), QueueStatus::Idle, "matched but not yet seated");
        queue.seated(1, seat(99));
        assert_eq!(queue.status(1, 30), QueueStatus::Matched(seat(99)));
        assert_eq!(
            queue.status(3, 30),
            QueueStatus::Queued { game: GameKind::Tetris, waited_ms: 10, position: 1 }
        );
    }

    #[test]
    fn queuing_again_keeps_the_place_and_another_game_moves_it() {
        let mut queue = QuickMatch::new();
        queue.enqueue(1, "ann", GameKind::Arena, 0).unwrap();
        queue.enqueue(2, "bob", GameKind::Arena, 5).unwrap();
        let again = queue.enqueue(1, "ann", GameKind::Arena, 100).unwrap();
        assert_eq!(
            again,
            QueueStatus::Queued { game: GameKind::Arena, waited_ms: 100, position: 1 }
        );
        queue.enqueue(1, "ann", GameKind::Tetris, 200).unwrap();
        assert_eq!(queue.queued(), 2);
        assert!(matches!(queue.status(2, 200), QueueStatus::Queued { position: 1, .. }));
        assert!(queue.dequeue(1));
        assert!(!queue.dequeue(1));
        assert_eq!(queue.status(1, 200), QueueStatus::Idle);
        assert_eq!(queue.queued(), 1);
    }

    #[test]
    fn an_arena_match_fills_to_eight_or_starts_after_the_fill_wait() {
        let mut queue = QuickMatch::new();
        for player in 1..=9 {
            queue.enqueue(player, "p", GameKind::Arena, player).unwrap();
        }
        let formed = queue.poll_match(10).unwrap();
        assert_eq!(formed.players.len(), MAX_PLAYERS);
        assert_eq!(queue.poll_match(10), None, "one left waits alone");
        queue.enqueue(20, "q", GameKind::Arena, 1_000).unwrap();
        assert_eq!(queue.next_deadline_ms(), Some(9 + ARENA_FILL_WAIT_MS));
        assert_eq!(queue.poll_match(9 + ARENA_FILL_WAIT_MS - 1), None);
        let formed = queue.poll_match(9 + ARENA_FILL_WAIT_MS).unwrap();
        let ids: Vec<u64> = formed.players.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [9, 20]);
    }

    #[test]
    fn waits_and_matches_expire() {
        let mut queue = QuickMatch::new();
        queue.enqueue(1, "ann", GameKind::Tetris, 0).unwrap();
        queue.seated(2, seat(5));
        assert_eq!(queue.next_deadline_ms(), Some(40_000));
        queue.expire(40_000);
        assert_eq!(queue.status(2, 40_000), QueueStatus::Idle);
        assert!(matches!(queue.status(1, 40_000), QueueStatus::Queued { .. }));
        queue.expire(QUEUE_WAIT_MAX_MS);
        assert_eq!(queue.status(1, QUEUE_WAIT_MAX_MS), QueueStatus::Idle);
        assert_eq!(queue.queued(), 0);
        assert_eq!(queue.next_deadline_ms(), None);
    }

    #[test]
    fn an_old_seat_expiring_leaves_a_newer_match_alone() {
        let mut queue = QuickMatch::new();
        let first = MatchSeat { game: GameKind::Tetris, room_id: 1, token: 1, expires_at_ms: 100 };
        let second = MatchSeat { room_id: 2, expires_at_ms: 200, ..first };
        queue.seated(7, first);
        // Queues again and is matched again (as the host does it).
        queue.enqueue(7, "ann", GameKind::Tetris, 50).unwrap();
        queue.enqueue(8, "bob", GameKind::Tetris, 60).unwrap();
        assert!(queue.poll_match(60).is_some());
        queue.seated(7, second);
        assert_eq!(queue.next_deadline_ms(), Some(100));
        queue.expire(100);
        assert_eq!(queue.status(7, 100), QueueStatus::Matched(second));
        assert_eq!(queue.next_deadline_ms(), Some(200));
        queue.expire(200);
        assert_eq!(queue.status(7, 200), QueueStatus::Idle);
        assert_eq!(queue.next_deadline_ms(), None);
    }

    #[test]
    fn a_matched_player_who_queues_again_gives_the_seat_up() {
        let mut queue = QuickMatch::new();
        queue.seated(1, seat(5));
        let status = queue.enqueue(1, "ann", GameKind::Tetris, 10).unwrap();
        assert!(matches!(status, QueueStatus::Queued { position: 1, .. }));
    }
}
