//! `ludus replay ROOM`: the determinism audit of a room's recorded matches
//! (services::events::replay) over the event stream: JetStream when
//! NATS_URL is set, else the embedded event log of the configured data
//! dir, read without locking, so it runs next to a live server. Prints one line per match; exit status 1 when a match's replay
//! differs from its record (the differing event is printed) or the log
//! cannot be read, 2 for a bad room id.

use std::process::ExitCode;
use std::time::Duration;

use super::{fail, GlobalArgs, EXIT_RUNTIME_FAILURE, EXIT_USAGE};
use crate::services::events::jetstream::Nats;
use crate::services::events::json::events_subject;
use crate::services::events::log::LogReader;
use crate::services::events::replay::{audit_match, split_matches, AuditError};
use crate::services::events::stream::{read_all, EventReader};
use crate::services::events::subject::SubjectFilter;

const NATS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub fn run(global: &GlobalArgs, room: &str) -> ExitCode {
    let Ok(room_id) = room.trim().parse::<u64>() else {
        eprintln!("ludus replay: {room:?} is not a room id (a decimal number)");
        return ExitCode::from(EXIT_USAGE);
    };
    let config = match global.load_config() {
        Ok(config) => config,
        Err(error) => return fail(error, EXIT_USAGE),
    };
    // With NATS_URL the stream is JetStream's; else the data dir's log.
    let (mut reader, place): (Box<dyn EventReader>, String) = match &config.services.nats_url {
        Some(url) => match Nats::connect(url.expose(), "ludus-replay", NATS_CONNECT_TIMEOUT) {
            Ok(nats) => (Box::new(nats.reader()), "JetStream".to_owned()),
            Err(error) => return fail(error, EXIT_RUNTIME_FAILURE),
        },
        None => {
            let dir = config.data_dir.join("events");
            if !dir.is_dir() {
                eprintln!("ludus replay: no event log at {}", dir.display());
                return ExitCode::from(EXIT_RUNTIME_FAILURE);
            }
            match LogReader::open(&dir) {
                Ok(reader) => (Box::new(reader), dir.display().to_string()),
                Err(error) => return fail(error, EXIT_RUNTIME_FAILURE),
            }
        }
    };
    let filter = SubjectFilter::new(&events_subject(room_id)).expect("a room's subject is valid");
    let stored = match read_all(reader.as_mut(), &filter, usize::MAX) {
        Ok(stored) => stored,
        Err(error) => return fail(error, EXIT_RUNTIME_FAILURE),
    };
    let mut events = Vec::with_capacity(stored.len());
    for event in &stored {
        match serde_json::from_slice(&event.payload) {
            Ok(value) => events.push(value),
            Err(error) => {
                eprintln!("ludus replay: event {} is not JSON: {error}", event.seq);
                return ExitCode::from(EXIT_RUNTIME_FAILURE);
            }
        }
    }
    let matches = split_matches(events);
    if matches.is_empty() {
        eprintln!("ludus replay: room {room_id} has no recorded match in {place}");
        return ExitCode::from(EXIT_RUNTIME_FAILURE);
    }
    let mut failed = false;
    for (number, recorded) in matches.iter().enumerate() {
        let number = number + 1;
        match audit_match(room_id, recorded) {
            Ok(audit) => println!(
                "match {number}: identical ({} events, {} ticks, players {:?}, state hash {:016x}{})",
                audit.events,
                audit.ticks,
                audit.players,
                audit.state_hash,
                if audit.finished { "" } else { "; the record stops before the end" }
            ),
            Err(AuditError::Unsupported(game)) => {
                println!("match {number}: skipped ({game} is not audited yet)")
            }
            Err(error) => {
                failed = true;
                println!("match {number}: DIFFERS: {error}");
            }
        }
    }
    if failed {
        ExitCode::from(EXIT_RUNTIME_FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}
