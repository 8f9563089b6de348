//! The REST lobby calls across two game hosts, sans IO: host messages are
//! carried by hand between them, so every cross-shard path (a room on the
//! other shard, the matchmaker on shard 0, a lost message) is exercised
//! deterministically.

use std::sync::{Arc, Mutex};

use super::outbox::{HostMessage, HostOutput};
use super::resume::ResumeKeys;
use super::{GameHost, LOBBY_ANSWER_TIMEOUT_MS};
use crate::proto::session::Now;
use crate::proto::wire::GameKind;
use crate::reactor::host::Host;
use crate::reactor::shard::ShardStats;
use crate::reactor::web::ServerFacts;
use crate::services::api::lobby::{LobbyRefusal, QueueView, RESERVATION_TTL_MS};
use crate::services::api::{Account, Lobby, LobbyAnswer, LobbyCall, LobbyReply, RoomSettings};

const SHARDS: usize = 2;

fn now(ms: u64) -> Now {
    Now { monotonic_ms: ms, unix_us: 1_700_000_000_000_000 + ms * 1_000 }
}

fn hosts() -> Vec<GameHost> {
    let stats = Arc::new((0..SHARDS).map(|_| Arc::new(ShardStats::default())).collect());
    let resume = ResumeKeys::generate();
    (0..SHARDS as u16)
        .map(|shard| {
            let facts = ServerFacts {
                cert_sha256_hex: None,
                version: "test",
                stats: Arc::clone(&stats),
                storage: None,
                events: None,
            };
            GameHost::new(shard, facts, resume.clone(), now(0))
        })
        .collect()
}

fn account(player_id: u64) -> Account {
    Account { player_id, nickname: format!("p{player_id}") }
}

/// Answers given later land here.
#[derive(Default, Clone)]
struct Inbox(Arc<Mutex<Vec<LobbyAnswer>>>);

impl Inbox {
    fn reply(&self) -> LobbyReply {
        let answers = Arc::clone(&self.0);
        Box::new(move |answer| answers.lock().unwrap().push(answer))
    }

    fn take(&self) -> Vec<LobbyAnswer> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Carries host messages between the hosts until none is left (frames
/// for sessions are dropped: no session is connected here).
fn pump(hosts: &mut [GameHost], at: Now) {
    loop {
        let mut carried: Vec<(usize, HostMessage)> = Vec::new();
        for (index, host) in hosts.iter_mut().enumerate() {
            while let Some(output) = host.poll_output() {
                match output {
                    HostOutput::Deliver(_) => {}
                    HostOutput::Send { shard, message } => {
                        carried.push((usize::from(shard), message))
                    }
                    HostOutput::Broadcast(message) => {
                        for other in (0..SHARDS).filter(|other| *other != index) {
                            carried.push((other, message.clone()));
                        }
                    }
                }
            }
        }
        if carried.is_empty() {
            return;
        }
        for (shard, message) in carried {
            hosts[shard].handle_message(message, at);
        }
    }
}

/// One call on `host`, pumped to its end: the answer, now or later.
fn call(hosts: &mut [GameHost], host: usize, player: u64, call: LobbyCall, at: u64) -> LobbyAnswer {
    let inbox = Inbox::default();
    let answer = hosts[host].call(&account(player), call, inbox.reply(), now(at));
    pump(hosts, now(at));
    let later = inbox.take();
    match answer {
        Some(answer) => {
            assert!(later.is_empty(), "answered twice: {answer:?} and {later:?}");
            answer
        }
        None => {
            assert_eq!(later.len(), 1, "exactly one later answer");
            later.into_iter().next().unwrap()
        }
    }
}

fn tetris_duel() -> LobbyCall {
    LobbyCall::CreateRoom(RoomSettings {
        game: GameKind::Tetris,
        capacity: 2,
        private: false,
        name: "duel".into(),
    })
}

#[test]
fn rooms_are_created_joined_and_left_across_shards() {
    let mut hosts = hosts();
    let LobbyAnswer::Seat { room, token, expires_in_ms, created: true } =
        call(&mut hosts, 1, 11, tetris_duel(), 0)
    else {
        panic!("a created room with a held seat")
    };
    assert_eq!(super::owner_shard(room.room_id), 1, "created where the request arrived");
    assert_eq!((room.capacity, room.members, expires_in_ms), (2, 0, RESERVATION_TTL_MS));
    assert_ne!(token, 0);
    assert_eq!(hosts[0].room(room.room_id).map(|view| view.name), Some("duel".to_owned()));

    // Joined from the other shard: the owner answers through host messages.
    let joined = call(&mut hosts, 0, 22, LobbyCall::JoinRoom(room.room_id), 10);
    let LobbyAnswer::Seat { token: second, created: false, .. } = joined else {
        panic!("a held seat: {joined:?}")
    };
    assert_ne!(second, token);
    let full = call(&mut hosts, 0, 33, LobbyCall::JoinRoom(room.room_id), 20);
    assert_eq!(full, LobbyAnswer::Refused(LobbyRefusal::RoomFull));
    // Joining again renews the seat with a new token (idempotent for a
    // client that lost the answer).
    let again = call(&mut hosts, 0, 22, LobbyCall::JoinRoom(room.room_id), 25);
    assert!(matches!(again, LobbyAnswer::Seat { token, .. } if token != second));

    let left = call(&mut hosts, 0, 22, LobbyCall::LeaveRoom(room.room_id), 30);
    assert_eq!(left, LobbyAnswer::Left { room_id: room.room_id });
    let not_in = call(&mut hosts, 0, 22, LobbyCall::LeaveRoom(room.room_id), 40);
    assert_eq!(not_in, LobbyAnswer::Refused(LobbyRefusal::NotInRoom));
    let freed = call(&mut hosts, 0, 33, LobbyCall::JoinRoom(room.room_id), 50);
    assert!(matches!(freed, LobbyAnswer::Seat { .. }), "the seat given back is free: {freed:?}");

    let missing = call(&mut hosts, 0, 33, LobbyCall::JoinRoom(1 << 48 | 999), 60);
    assert_eq!(missing, LobbyAnswer::Refused(LobbyRefusal::RoomNotFound));
    let missing_here = call(&mut hosts, 0, 33, LobbyCall::LeaveRoom(999), 60);
    assert_eq!(missing_here, LobbyAnswer::Refused(LobbyRefusal::RoomNotFound));
}

#[test]
fn held_seats_expire_and_an_unclaimed_room_closes() {
    let mut hosts = hosts();
    let LobbyAnswer::Seat { room, .. } = call(&mut hosts, 0, 11, tetris_duel(), 0) else {
        panic!("a created room")
    };
    assert_eq!(hosts[0].room_count(), 1);
    let deadline = hosts[0].timeout_ms(now(0)).expect("the seat's expiry is armed");
    assert!(deadline <= RESERVATION_TTL_MS, "{deadline}");
    hosts[0].handle_timeout(now(RESERVATION_TTL_MS));
    pump(&mut hosts, now(RESERVATION_TTL_MS));
    assert_eq!(hosts[0].room_count(), 0, "nobody came: the room closed");
    assert_eq!(hosts[1].room(room.room_id), None, "and left every directory");
}

#[test]
fn quick_match_pairs_players_from_any_shard_into_one_room() {
    let mut hosts = hosts();
    let first = call(&mut hosts, 1, 11, LobbyCall::QueueJoin(GameKind::Tetris), 0);
    assert_eq!(
        first,
        LobbyAnswer::Queue(QueueView::Queued { game: GameKind::Tetris, waited_ms: 0, position: 1 })
    );
    let status = call(&mut hosts, 1, 11, LobbyCall::QueueStatus, 500);
    assert!(matches!(status, LobbyAnswer::Queue(QueueView::Queued { waited_ms: 500, .. })));

    let second = call(&mut hosts, 0, 22, LobbyCall::QueueJoin(GameKind::Tetris), 1_000);
    let LobbyAnswer::Queue(QueueView::Matched { room_id, token: token_b, .. }) = second else {
        panic!("the second player completes the duel: {second:?}")
    };
    let status = call(&mut hosts, 1, 11, LobbyCall::QueueStatus, 1_100);
    let LobbyAnswer::Queue(QueueView::Matched { room_id: same, token: token_a, game, .. }) = status
    else {
        panic!("matched: {status:?}")
    };
    assert_eq!((same, game), (room_id, GameKind::Tetris));
    assert_ne!(token_a, token_b);
    let owner = usize::from(super::owner_shard(room_id));
    assert_eq!(hosts[owner].room_count(), 1, "the match's room exists on its shard");
    assert_eq!(hosts[1 - owner].room_count(), 0);
    assert!(hosts[1 - owner].room(room_id).is_none(), "a match room is private");

    // Both seats are held: nobody else gets in.
    let third = call(&mut hosts, 1, 33, LobbyCall::JoinRoom(room_id), 1_200);
    assert_eq!(third, LobbyAnswer::Refused(LobbyRefusal::RoomFull));

    let left = call(&mut hosts, 0, 22, LobbyCall::QueueLeave, 1_300);
    assert_eq!(left, LobbyAnswer::Queue(QueueView::Idle));
}

#[test]
fn a_call_whose_answer_is_lost_is_answered_unavailable() {
    let mut hosts = hosts();
    let inbox = Inbox::default();
    let room_on_shard_1 = 1 << 48 | 1;
    let answer =
        hosts[0].call(&account(5), LobbyCall::JoinRoom(room_on_shard_1), inbox.reply(), now(0));
    assert!(answer.is_none());
    while hosts[0].poll_output().is_some() {} // the message is lost
    hosts[0].handle_timeout(now(LOBBY_ANSWER_TIMEOUT_MS - 1));
    assert!(inbox.take().is_empty());
    assert_eq!(hosts[0].timeout_ms(now(0)), Some(LOBBY_ANSWER_TIMEOUT_MS));
    hosts[0].handle_timeout(now(LOBBY_ANSWER_TIMEOUT_MS));
    assert_eq!(inbox.take(), [LobbyAnswer::Refused(LobbyRefusal::Unavailable)]);
    // A late answer for it is dropped, not delivered twice.
    let message = HostMessage::LobbyAnswer { ticket: 1, answer: LobbyAnswer::Left { room_id: 1 } };
    hosts[0].handle_message(message, now(LOBBY_ANSWER_TIMEOUT_MS + 1));
    assert!(inbox.take().is_empty());
}
