//! The Key Moment Detector as a consumer: runs [`MomentDetector`] over
//! `game.*.events` and publishes each moment to `game.{room}.moments`
//! (never reading `.moments` back). A moment's message id is derived from
//! the event that completed it, so moments detected again after a
//! redelivery are duplicates the stream drops.

use serde_json::Value;

use super::consumers::{HandleError, Handler};
use super::log::StoredEvent;
use super::moments::{moments_subject, MomentDetector, MomentOut};
use super::parse::event_head;
use super::projector::subject_room;
use super::stream::{EventSink, Outgoing};

pub struct MomentPublisher {
    detector: MomentDetector,
    sink: Box<dyn EventSink>,
    found: Vec<MomentOut>,
    /// Moments of the event `pending_seq` not published yet (the stream
    /// was unavailable): a retry publishes these instead of feeding the
    /// event to the detector twice.
    pending: Vec<Outgoing>,
    pending_seq: Option<u64>,
}

impl MomentPublisher {
    pub fn new(detector: MomentDetector, sink: Box<dyn EventSink>) -> MomentPublisher {
        MomentPublisher {
            detector,
            sink,
            found: Vec::new(),
            pending: Vec::new(),
            pending_seq: None,
        }
    }

    pub fn detector(&self) -> &MomentDetector {
        &self.detector
    }
}

/// The room's own event count in a `room-seq` message id.
fn room_seq(msg_id: &str) -> Option<u64> {
    msg_id.rsplit_once('-').and_then(|(_, seq)| seq.parse().ok())
}

impl Handler for MomentPublisher {
    fn handle(&mut self, event: &StoredEvent) -> Result<(), HandleError> {
        if self.pending_seq != Some(event.seq) {
            self.pending.clear();
            self.pending_seq = None;
            let room = subject_room(&event.subject)
                .ok_or_else(|| HandleError::Skip("not a game subject".into()))?;
            if event_head(&event.payload).is_some_and(|head| self.detector.skips(room, &head)) {
                return Ok(()); // Not a followed Tetris match: no JSON tree built.
            }
            let seq = room_seq(&event.msg_id).unwrap_or(event.seq);
            let value: Value = serde_json::from_slice(&event.payload)
                .map_err(|error| HandleError::Skip(format!("not JSON: {error}")))?;
            self.found.clear();
            self.detector
                .on_event(room, seq, &value, &mut self.found)
                .map_err(|error| HandleError::Skip(error.to_string()))?;
            for moment in self.found.drain(..) {
                self.pending.push(Outgoing {
                    subject: moments_subject(moment.room_id),
                    msg_id: moment.message_id,
                    payload: moment.moment.to_string().into_bytes(),
                    time_ms: event.time_ms,
                });
            }
            self.pending_seq = Some(event.seq);
        }
        if !self.pending.is_empty() {
            self.sink.publish(&self.pending).map_err(|error| {
                if error.is_retryable() {
                    HandleError::Retry(error.to_string())
                } else {
                    HandleError::Skip(error.to_string())
                }
            })?;
        }
        self.pending.clear();
        self.pending_seq = None;
        Ok(())
    }
}
