//! A shard's mailbox: a bounded lock-free queue plus the shard's `mio::Waker`.
//!
//! Other shards and service threads post messages here; the shard drains the
//! queue when its poll wakes. Senders ring the doorbell only when the shard
//! may be asleep (the first message since the last drain), so a burst of
//! posts costs one `eventfd` write, not one per message.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;

/// The queue is full: the receiving shard is overloaded. The caller decides
/// whether to drop (a stale state), retry later, or answer Busy.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("mailbox full")]
pub struct MailboxFull<T>(pub T);

/// What wakes the receiving shard; `mio::Waker` in production.
pub trait Doorbell: Send + Sync {
    fn ring(&self);
}

impl Doorbell for mio::Waker {
    fn ring(&self) {
        // A failed eventfd write means the fd is gone, i.e. the shard is
        // shutting down; there is nobody left to wake.
        let _ = self.wake();
    }
}

struct Shared<T> {
    queue: ArrayQueue<T>,
    /// True while a wake-up is pending: set by the sender that rings, cleared
    /// by the shard before it drains.
    pending_wake: AtomicBool,
    doorbell: Box<dyn Doorbell>,
}

/// The sending side; cheap to clone, one per sender.
pub struct MailboxSender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for MailboxSender<T> {
    fn clone(&self) -> Self {
        MailboxSender { shared: Arc::clone(&self.shared) }
    }
}

/// The receiving side, owned by the shard.
pub struct Mailbox<T> {
    shared: Arc<Shared<T>>,
}

/// A mailbox of `capacity` messages that rings `doorbell` on new mail.
pub fn mailbox<T>(capacity: usize, doorbell: Box<dyn Doorbell>) -> (MailboxSender<T>, Mailbox<T>) {
    assert!(capacity > 0, "a mailbox needs room for one message");
    let shared = Arc::new(Shared {
        queue: ArrayQueue::new(capacity),
        pending_wake: AtomicBool::new(false),
        doorbell,
    });
    (MailboxSender { shared: Arc::clone(&shared) }, Mailbox { shared })
}

impl<T> MailboxSender<T> {
    /// Posts `message`, waking the shard if it may be asleep.
    pub fn send(&self, message: T) -> Result<(), MailboxFull<T>> {
        self.shared.queue.push(message).map_err(MailboxFull)?;
        if !self.shared.pending_wake.swap(true, Ordering::AcqRel) {
            self.shared.doorbell.ring();
        }
        Ok(())
    }
}

impl<T> Mailbox<T> {
    /// Takes up to `max` messages, oldest first. Call after the doorbell
    /// rang; the bound keeps one busy sender from starving the shard's
    /// sockets (whatever is left rings again).
    pub fn drain(&self, max: usize, mut handle: impl FnMut(T)) -> usize {
        // Clear first: a message posted after this point rings again.
        self.shared.pending_wake.store(false, Ordering::Release);
        let mut taken = 0;
        while taken < max {
            let Some(message) = self.shared.queue.pop() else {
                break;
            };
            handle(message);
            taken += 1;
        }
        if !self.shared.queue.is_empty() && !self.shared.pending_wake.swap(true, Ordering::AcqRel) {
            self.shared.doorbell.ring();
        }
        taken
    }

    pub fn len(&self) -> usize {
        self.shared.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shared.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[derive(Default)]
    struct CountingBell(AtomicUsize);

    impl Doorbell for Arc<CountingBell> {
        fn ring(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counted(capacity: usize) -> (MailboxSender<u32>, Mailbox<u32>, Arc<CountingBell>) {
        let bell = Arc::new(CountingBell::default());
        let (sender, mailbox) = mailbox(capacity, Box::new(Arc::clone(&bell)));
        (sender, mailbox, bell)
    }

    #[test]
    fn a_burst_rings_once_and_arrives_in_order() {
        let (sender, mailbox, bell) = counted(16);
        for value in 0..10 {
            sender.send(value).unwrap();
        }
        assert_eq!(bell.0.load(Ordering::SeqCst), 1);
        let mut received = Vec::new();
        assert_eq!(mailbox.drain(100, |value| received.push(value)), 10);
        assert_eq!(received, (0..10).collect::<Vec<_>>());
        sender.send(99).unwrap();
        assert_eq!(bell.0.load(Ordering::SeqCst), 2, "first mail after a drain rings again");
    }

    #[test]
    fn a_full_mailbox_returns_the_message() {
        let (sender, _mailbox, _bell) = counted(2);
        sender.send(1).unwrap();
        sender.send(2).unwrap();
        assert_eq!(sender.send(3), Err(MailboxFull(3)));
    }

    #[test]
    fn a_bounded_drain_leaves_the_rest_and_rings_for_it() {
        let (sender, mailbox, bell) = counted(16);
        for value in 0..5 {
            sender.send(value).unwrap();
        }
        assert_eq!(mailbox.drain(2, |_| {}), 2);
        assert_eq!(mailbox.len(), 3);
        assert_eq!(bell.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn messages_from_many_threads_all_arrive() {
        let (sender, mailbox, _bell) = counted(1024);
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let sender = sender.clone();
                std::thread::spawn(move || {
                    for index in 0..200 {
                        while sender.send(thread * 1000 + index).is_err() {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let mut received = Vec::new();
        while received.len() < 800 {
            mailbox.drain(64, |value| received.push(value));
        }
        threads.into_iter().for_each(|thread| thread.join().unwrap());
        received.sort();
        let mut expected: Vec<u32> =
            (0..4).flat_map(|t| (0..200).map(move |i| t * 1000 + i)).collect();
        expected.sort();
        assert_eq!(received, expected);
    }
}
