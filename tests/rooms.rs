//! Rooms on a real `ludus serve` with two shards: players whose sessions
//! sit on different shards (the player id names the shard) meet in one
//! room, ready up, play an arena match over WebTransport and WebSocket at
//! once, watch as a spectator, leave; and the lobby's refusals. Every
//! message is the real protocol through the library's client.

mod support;

use std::time::{Duration, Instant};

use arrayvec::ArrayVec;
use ludus::client::blocking::{connect_wt, Client};
use ludus::client::{self, WsOptions};
use ludus::proto::wire::{self, ErrorCode, GameKind, Message, RoomPhase, Text};
use support::{start_server, Server};

const WAIT: Duration = Duration::from_secs(15);
/// Connections tried to find a session on a wanted shard (the kernel's
/// SO_REUSEPORT hash picks; each try is a coin flip with two shards).
const SHARD_TRIES: usize = 40;

fn shard_of(player_id: u64) -> u16 {
    (player_id >> 48) as u16
}

fn ws(server: &Server, nickname: &str) -> (Client, u64) {
    let url = format!("ws://{}/ws", server.http);
    let mut client = client::blocking::connect_ws(&url, &WsOptions::default()).unwrap();
    let welcome = client.hello(nickname).expect("Welcome");
    (client, welcome.player_id)
}

fn wt(server: &Server, nickname: &str) -> (Client, u64) {
    let mut client = connect_wt(server.udp, server.cert_sha256).unwrap();
    let welcome = client.hello(nickname).expect("Welcome");
    (client, welcome.player_id)
}

/// A session whose player lives on `shard` (or on any other than `not`).
fn on_shard(
    connect: impl Fn(&str) -> (Client, u64),
    nickname: &str,
    wanted: impl Fn(u16) -> bool,
) -> (Client, u64) {
    for _ in 0..SHARD_TRIES {
        let (client, player_id) = connect(nickname);
        if wanted(shard_of(player_id)) {
            return (client, player_id);
        }
        let _ = client.close();
    }
    panic!("no session landed on the wanted shard in {SHARD_TRIES} tries");
}

/// Receives until `pick` returns something, skipping other messages.
fn expect<T>(client: &mut Client, what: &str, mut pick: impl FnMut(&Message) -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        match client.recv(Duration::from_millis(200)) {
            Ok(message) => {
                if let Some(found) = pick(&message) {
                    return found;
                }
            }
            Err(ludus::client::ClientError::Timeout(_)) => {}
            Err(error) => panic!("waiting for {what}: {error}"),
        }
    }
    panic!("no {what} within {WAIT:?}");
}

fn joined(client: &mut Client) -> wire::RoomJoined {
    expect(client, "RoomJoined", |m| match m {
        Message::RoomJoined(joined) => Some(joined.clone()),
        Message::Error(error) => panic!("refused: {} {}", error.code, error.text.as_str()),
        _ => None,
    })
}

fn error_code(client: &mut Client) -> u16 {
    expect(client, "Error", |m| match m {
        Message::Error(error) => Some(error.code),
        _ => None,
    })
}

fn input(seq: u32, bits: u16) -> wire::Input {
    let mut inputs = ArrayVec::new();
    inputs.push(bits);
    wire::Input { seq, client_frame: 0, inputs }
}

/// This player's arena position in a state, if present.
fn position(state: &wire::ArenaState, slot: u8) -> Option<(u32, u32, u32)> {
    state.players.iter().find(|p| p.slot == slot).map(|p| (p.x, p.y, p.last_input_seq))
}

#[test]
fn players_on_two_shards_play_an_arena_match_over_webtransport_and_websocket() {
    let server = start_server(2);
    let (mut ann, ann_id) = on_shard(|name| wt(&server, name), "ann", |_| true);
    let ann_shard = shard_of(ann_id);
    let (mut bob, bob_id) = on_shard(|name| ws(&server, name), "bob", |s| s != ann_shard);
    println!(
        "ann (WebTransport) on shard {ann_shard}, bob (WebSocket) on shard {}",
        shard_of(bob_id)
    );

    ann.send(&wire::QuickJoin { game: GameKind::Arena }).unwrap();
    let room = joined(&mut ann);
    assert_eq!(
        (room.game, room.phase, room.capacity, room.tick_hz),
        (GameKind::Arena, RoomPhase::Waiting, 8, 30)
    );
    assert_eq!(room.members.len(), 1);
    assert_eq!(shard_of(room.room_id), ann_shard, "the room lives where it was created");

    // Bob joins by code through his own shard's directory copy.
    let code = Text::new(&room.code.as_str().to_lowercase()).unwrap();
    bob.send(&wire::RoomJoinByCode { code }).unwrap();
    let bob_room = joined(&mut bob);
    assert_eq!(bob_room.room_id, room.room_id);
    assert_eq!(bob_room.members.len(), 2);
    let seen = expect(&mut ann, "MemberJoined", |m| match m {
        Message::MemberJoined(joined) => Some(joined.member.clone()),
        _ => None,
    });
    assert_eq!((seen.player_id, seen.nickname.as_str()), (bob_id, "bob"));

    for client in [&mut ann, &mut bob] {
        client.send(&wire::RoomReady { ready: true }).unwrap();
    }
    let countdown = expect(&mut bob, "Countdown", |m| match m {
        Message::Countdown(countdown) if countdown.remaining_ms > 0 => Some(countdown.remaining_ms),
        _ => None,
    });
    assert_eq!(countdown, 3_000);
    let start = expect(&mut bob, "GameStart", |m| match m {
        Message::GameStart(start) => Some(start.clone()),
        _ => None,
    });
    assert_eq!(start.players.as_slice(), [ann_id, bob_id]);
    let bob_slot = 1;

    // Bob walks right; both see it, with his input acknowledged.
    let before = expect(&mut bob, "ArenaState", |m| match m {
        Message::ArenaState(state) => position(state, bob_slot),
        _ => None,
    });
    bob.send(&input(1, 0b0010)).unwrap();
    let moved = |state: &wire::ArenaState| {
        position(state, bob_slot).filter(|(x, _, seq)| *seq == 1 && *x > before.0)
    };
    let on_bob = expect(&mut bob, "Bob's own move", |m| match m {
        Message::ArenaState(state) => moved(state),
        _ => None,
    });
    let on_ann = expect(&mut ann, "Bob's move on Ann's screen", |m| match m {
        Message::ArenaState(state) => moved(state),
        _ => None,
    });
    assert_eq!(on_bob.1, before.1, "moving right keeps y");
    assert_eq!(on_ann.2, 1);

    // A spectator on either shard sees the match.
    let (mut cat, _) = ws(&server, "cat");
    cat.send(&wire::SpectateStart { room_id: room.room_id }).unwrap();
    let watching = expect(&mut cat, "SpectateJoined", |m| match m {
        Message::SpectateJoined(joined) => Some(joined.clone()),
        _ => None,
    });
    assert_eq!(watching.members.len(), 2);
    expect(&mut cat, "ArenaState for the spectator", |m| match m {
        Message::ArenaState(state) => position(state, bob_slot),
        _ => None,
    });
    expect(&mut ann, "SpectatorCount", |m| match m {
        Message::SpectatorCount(count) if count.count == 1 => Some(()),
        _ => None,
    });

    // Ann leaves mid-game: Bob hears it.
    ann.send(&wire::RoomLeave {}).unwrap();
    let left = expect(&mut bob, "MemberLeft", |m| match m {
        Message::MemberLeft(left) => Some(left.player_id),
        _ => None,
    });
    assert_eq!(left, ann_id);
}

#[test]
fn the_lobby_refuses_clearly() {
    let server = start_server(2);
    let (mut ann, _) = ws(&server, "ann");
    ann.send(&wire::RoomJoinByCode { code: Text::new("NOPE42").unwrap() }).unwrap();
    assert_eq!(error_code(&mut ann), ErrorCode::RoomNotFound as u16);
    ann.send(&wire::RoomReady { ready: true }).unwrap();
    assert_eq!(error_code(&mut ann), ErrorCode::NotInRoom as u16);
    let bad = wire::RoomCreate {
        game: GameKind::Arena,
        capacity: 9,
        private: false,
        name: Text::default(),
    };
    ann.send(&bad).unwrap();
    assert_eq!(error_code(&mut ann), ErrorCode::InvalidRoomSettings as u16);
    ann.send(&wire::RoomJoin { room_id: 12_345, reservation_token: None }).unwrap();
    assert_eq!(error_code(&mut ann), ErrorCode::RoomNotFound as u16);

    // A full private room: joinable by code only, and only while seats last.
    let duel = wire::RoomCreate {
        game: GameKind::Arena,
        capacity: 1,
        private: true,
        name: Text::new("solo").unwrap(),
    };
    ann.send(&duel).unwrap();
    let room = joined(&mut ann);
    let (mut bob, _) = ws(&server, "bob");
    bob.send(&wire::RoomListRequest { game: None }).unwrap();
    let listed = expect(&mut bob, "RoomList", |m| match m {
        Message::RoomList(list) => Some(list.rooms.iter().any(|r| r.room_id == room.room_id)),
        _ => None,
    });
    assert!(!listed, "private rooms are not listed");
    bob.send(&wire::RoomJoin { room_id: room.room_id, reservation_token: None }).unwrap();
    assert_eq!(error_code(&mut bob), ErrorCode::RoomFull as u16);
}

#[test]
fn quick_join_fills_a_waiting_room_before_making_another() {
    let server = start_server(2);
    let (mut ann, _) = ws(&server, "ann");
    ann.send(&wire::QuickJoin { game: GameKind::Arena }).unwrap();
    let first = joined(&mut ann);
    let (mut bob, _) = ws(&server, "bob");
    // The directory copy on Bob's shard may lag a moment behind.
    let deadline = Instant::now() + WAIT;
    loop {
        bob.send(&wire::QuickJoin { game: GameKind::Arena }).unwrap();
        let room = joined(&mut bob);
        if room.room_id == first.room_id {
            assert_eq!(room.members.len(), 2);
            break;
        }
        assert!(Instant::now() < deadline, "Bob never reached Ann's waiting room");
        bob.send(&wire::RoomLeave {}).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_tetris_duel_across_shards_ends_with_results_both_players_agree_on() {
    let server = start_server(2);
    let (mut ann, ann_id) = on_shard(|name| wt(&server, name), "ann", |_| true);
    let (mut bob, bob_id) = on_shard(|name| ws(&server, name), "bob", |s| s != shard_of(ann_id));
    let create = wire::RoomCreate {
        game: GameKind::Tetris,
        capacity: 2,
        private: true,
        name: Text::default(),
    };
    ann.send(&create).unwrap();
    let room = joined(&mut ann);
    assert_eq!((room.game, room.tick_hz), (GameKind::Tetris, 60));
    bob.send(&wire::RoomJoinByCode { code: room.code.clone() }).unwrap();
    joined(&mut bob);
    for client in [&mut ann, &mut bob] {
        client.send(&wire::RoomReady { ready: true }).unwrap();
    }
    let start = expect(&mut ann, "GameStart", |m| match m {
        Message::GameStart(start) => Some(start.clone()),
        _ => None,
    });
    assert_eq!(start.seed, 0, "the Tetris seed stays on the server");
    let snapshot = expect(&mut ann, "TetrisSnapshot", |m| match m {
        Message::TetrisSnapshot(snapshot) => Some(snapshot.clone()),
        _ => None,
    });
    assert_eq!(snapshot.boards.len(), 2);
    assert!(snapshot.boards.iter().all(|b| b.alive && b.piece.is_some()));

    // Bob hard-drops every piece: his stack reaches the top and he loses.
    const HARD_DROP: u16 = 1 << 3;
    let bob_slot = start.players.iter().position(|id| *id == bob_id).unwrap() as u8;
    let mut seq = 0;
    let eliminated = loop {
        seq += 1;
        assert!(seq < 200, "Bob never topped out");
        bob.send(&input(seq, HARD_DROP)).unwrap();
        let found = expect(&mut bob, "Bob's lock or elimination", |m| match m {
            Message::PlayerEliminated(out) if out.slot == bob_slot => Some(Some(out.clone())),
            Message::PieceLocked(lock) if lock.slot == bob_slot => Some(None),
            _ => None,
        });
        if let Some(out) = found {
            break out;
        }
    };
    assert_eq!(eliminated.placement, 2);
    let results = |client: &mut Client| {
        expect(client, "GameResults", |m| match m {
            Message::GameResults(results) => Some(results.clone()),
            _ => None,
        })
    };
    let (on_ann, on_bob) = (results(&mut ann), results(&mut bob));
    assert_eq!(on_ann, on_bob, "both players see the same results");
    let order: Vec<(u64, u8)> = on_ann.results.iter().map(|r| (r.player_id, r.placement)).collect();
    assert_eq!(order, [(ann_id, 1), (bob_id, 2)]);
    assert!(on_ann.results[1].pieces >= 5, "Bob placed pieces: {:?}", on_ann.results[1]);
}

#[test]
fn a_resumed_session_takes_the_seat_and_the_old_sessions_close_is_ignored() {
    let server = start_server(2);
    let (mut ann, ann_id) = ws(&server, "ann");
    let (mut bob, _) = ws(&server, "bob");
    let token = ann.session().welcome().unwrap().resume_token.as_str().to_owned();
    ann.send(&wire::RoomCreate {
        game: GameKind::Arena,
        capacity: 2,
        private: true,
        name: Text::new("resume").unwrap(),
    })
    .unwrap();
    let room = joined(&mut ann);
    bob.send(&wire::RoomJoinByCode { code: room.code.clone() }).unwrap();
    joined(&mut bob);
    for client in [&mut ann, &mut bob] {
        client.send(&wire::RoomReady { ready: true }).unwrap();
    }
    expect(&mut ann, "GameStart", |m| matches!(m, Message::GameStart(_)).then_some(()));
    ann.send(&input(1, 0b0010)).unwrap();
    expect(&mut ann, "input 1 acknowledged", |m| match m {
        Message::ArenaState(state) => position(state, 0).filter(|p| p.2 == 1),
        _ => None,
    });

    // Ann's network "fails" without the server noticing: her old session
    // stays open while a new one (any shard) resumes with her token.
    let url = format!("ws://{}/ws", server.http);
    let mut again = client::blocking::connect_ws(&url, &WsOptions::default()).unwrap();
    let credentials = client::Credentials { resume_token: Some(token), ..Default::default() };
    let welcome = again.hello_with(&credentials, WAIT).expect("Welcome");
    assert!(welcome.resumed);
    assert_eq!(welcome.player_id, ann_id);
    again.send(&wire::RoomJoin { room_id: room.room_id, reservation_token: None }).unwrap();
    let back = joined(&mut again);
    assert_eq!((back.phase, back.your_slot), (RoomPhase::Playing, 0));
    expect(&mut again, "GameStart again", |m| matches!(m, Message::GameStart(_)).then_some(()));

    // Now the old session closes: the seat stays with the new one.
    let _ = ann.close();
    again.send(&input(2, 0b0010)).unwrap();
    let seq = expect(&mut bob, "input 2 from the resumed session", |m| match m {
        Message::MemberLeft(left) => panic!("bob saw ann leave: {left:?}"),
        Message::ArenaState(state) => position(state, 0).map(|p| p.2).filter(|seq| *seq == 2),
        _ => None,
    });
    assert_eq!(seq, 2, "the sequence carries on from the server's last_input_seq");
    // Still playing a second later: no disconnect reached the room.
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        if let Ok(Message::MemberLeft(left)) = bob.recv(Duration::from_millis(100)) {
            panic!("bob saw ann leave after the stale close: {left:?}");
        }
    }
    expect(&mut again, "states keep coming", |m| matches!(m, Message::ArenaState(_)).then_some(()));
}
