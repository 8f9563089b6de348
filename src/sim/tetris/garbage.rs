//! A player's incoming garbage queue (reference §7.3): packets in the order
//! they were sent, cancelled from the front, inserted from the front.
//!
//! The queue is a fixed ring of [`GARBAGE_QUEUE_CAPACITY`] packets. When it is
//! full, new garbage is merged into the newest packet (its lines are added,
//! its sender and hole column are kept, and its ready tick becomes the later
//! of the two, so no line arrives before its travel delay). No line is ever
//! dropped, which keeps the conservation law
//! `sent = inserted + cancelled + pending + discarded` exact. A player with
//! 32 packets pending is buried anyway; the merge only blurs KO credit.

use arrayvec::ArrayVec;

use super::config::MAX_GARBAGE_CAP;
use crate::sim::hash::StateHasher;
use crate::sim::Slot;

/// Packets one player can have pending before new garbage is merged.
pub const GARBAGE_QUEUE_CAPACITY: usize = 32;

/// Garbage on its way into one board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Packet {
    pub lines: u32,
    pub sender: Slot,
    /// Every row of a packet shares this hole (§7.4).
    pub hole_column: u8,
    /// First tick at which the packet may enter the board.
    pub ready_tick: u32,
}

/// Rows of one packet moved into the board at a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inserted {
    pub sender: Slot,
    pub lines: u8,
    pub hole_column: u8,
}

/// The rows inserted at one lock, oldest packet first.
pub type Insertions = ArrayVec<Inserted, { MAX_GARBAGE_CAP as usize }>;

#[derive(Debug, Clone)]
pub struct GarbageQueue {
    ring: [Packet; GARBAGE_QUEUE_CAPACITY],
    head: u8,
    len: u8,
    /// Sum of `lines` over the queued packets.
    pending_lines: u32,
}

impl Default for GarbageQueue {
    fn default() -> Self {
        GarbageQueue {
            ring: [Packet::default(); GARBAGE_QUEUE_CAPACITY],
            head: 0,
            len: 0,
            pending_lines: 0,
        }
    }
}

impl GarbageQueue {
    fn slot_of(&self, index: usize) -> usize {
        (usize::from(self.head) + index) % GARBAGE_QUEUE_CAPACITY
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_full(&self) -> bool {
        self.len() == GARBAGE_QUEUE_CAPACITY
    }

    pub fn pending_lines(&self) -> u32 {
        self.pending_lines
    }

    pub fn packet(&self, index: usize) -> Option<&Packet> {
        (index < self.len()).then(|| &self.ring[self.slot_of(index)])
    }

    /// Appends a new packet. The queue must not be full.
    pub fn push(&mut self, packet: Packet) {
        debug_assert!(!self.is_full() && packet.lines > 0);
        let tail = self.slot_of(self.len());
        self.ring[tail] = packet;
        self.len += 1;
        self.pending_lines += packet.lines;
    }

    /// Adds lines to the newest packet (the rule when the queue is full).
    pub fn merge_into_newest(&mut self, lines: u32, ready_tick: u32) {
        debug_assert!(!self.is_empty());
        let newest = self.slot_of(self.len() - 1);
        let packet = &mut self.ring[newest];
        packet.lines += lines;
        packet.ready_tick = packet.ready_tick.max(ready_tick);
        self.pending_lines += lines;
    }

    fn pop_front(&mut self) {
        debug_assert!(!self.is_empty() && self.ring[usize::from(self.head)].lines == 0);
        self.head = self.slot_of(1) as u8;
        self.len -= 1;
    }

    /// Cancels up to `attack` lines from the oldest packets, ready or not.
    /// Returns the lines cancelled.
    pub fn cancel(&mut self, attack: u32) -> u32 {
        let mut left = attack;
        while left > 0 && !self.is_empty() {
            let front = &mut self.ring[usize::from(self.head)];
            let taken = left.min(front.lines);
            front.lines -= taken;
            left -= taken;
            self.pending_lines -= taken;
            if front.lines == 0 {
                self.pop_front();
            }
        }
        attack - left
    }

    /// Takes up to `cap` rows from the packets ready at `now`, oldest first.
    /// A packet taken in part keeps its remaining lines at the front.
    pub fn take_ready(&mut self, now: u32, cap: u8) -> Insertions {
        let mut taken = Insertions::new();
        let mut room = u32::from(cap.min(MAX_GARBAGE_CAP));
        while room > 0 && !self.is_empty() {
            let front = &mut self.ring[usize::from(self.head)];
            if front.ready_tick > now {
                break;
            }
            let lines = room.min(front.lines);
            front.lines -= lines;
            room -= lines;
            self.pending_lines -= lines;
            taken.push(Inserted {
                sender: front.sender,
                lines: lines as u8,
                hole_column: front.hole_column,
            });
            if front.lines == 0 {
                self.pop_front();
            }
        }
        taken
    }

    /// Empties the queue (the player was eliminated); returns the lines.
    pub fn discard(&mut self) -> u32 {
        let lines = self.pending_lines;
        *self = GarbageQueue::default();
        lines
    }

    pub fn hash_into(&self, hasher: &mut StateHasher) {
        hasher.u8(self.len);
        for index in 0..self.len() {
            let packet = &self.ring[self.slot_of(index)];
            hasher.u32(packet.lines);
            hasher.u8(packet.sender);
            hasher.u8(packet.hole_column);
            hasher.u32(packet.ready_tick);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(lines: u32, sender: Slot, hole_column: u8, ready_tick: u32) -> Packet {
        Packet { lines, sender, hole_column, ready_tick }
    }

    /// §7.3: cancelling eats the oldest packets first, ready or not.
    #[test]
    fn cancelling_takes_oldest_packets_even_before_they_are_ready() {
        let mut queue = GarbageQueue::default();
        queue.push(packet(3, 1, 4, 100));
        queue.push(packet(2, 2, 7, 200));
        assert_eq!(queue.cancel(4), 4);
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.packet(0), Some(&packet(1, 2, 7, 200)));
        assert_eq!(queue.cancel(5), 1);
        assert!(queue.is_empty());
        assert_eq!(queue.pending_lines(), 0);
    }

    /// §7.3: at most `cap` rows enter at one lock; a packet entered in part
    /// keeps its remaining lines and its hole at the head of the queue.
    #[test]
    fn insertion_respects_the_cap_and_keeps_partial_packets() {
        let mut queue = GarbageQueue::default();
        queue.push(packet(5, 1, 2, 10));
        queue.push(packet(6, 2, 9, 10));
        queue.push(packet(1, 1, 0, 50));
        let taken = queue.take_ready(10, 8);
        assert_eq!(
            taken.as_slice(),
            &[
                Inserted { sender: 1, lines: 5, hole_column: 2 },
                Inserted { sender: 2, lines: 3, hole_column: 9 }
            ]
        );
        assert_eq!(queue.packet(0), Some(&packet(3, 2, 9, 10)));
        assert_eq!(queue.pending_lines(), 4);
        // The remaining 3 lines are ready; the last packet is not yet.
        let taken = queue.take_ready(49, 8);
        assert_eq!(taken.as_slice(), &[Inserted { sender: 2, lines: 3, hole_column: 9 }]);
        assert_eq!(queue.pending_lines(), 1);
        assert!(queue.take_ready(49, 8).is_empty());
        assert_eq!(queue.take_ready(50, 8).len(), 1);
    }

    #[test]
    fn a_full_queue_merges_into_the_newest_packet() {
        let mut queue = GarbageQueue::default();
        for index in 0..GARBAGE_QUEUE_CAPACITY as u32 {
            queue.push(packet(1, 0, 0, index));
        }
        assert!(queue.is_full());
        queue.merge_into_newest(4, 1_000);
        let newest = queue.packet(GARBAGE_QUEUE_CAPACITY - 1).copied();
        assert_eq!(newest, Some(packet(5, 0, 0, 1_000)));
        assert_eq!(queue.pending_lines(), GARBAGE_QUEUE_CAPACITY as u32 + 4);
        assert_eq!(queue.discard(), GARBAGE_QUEUE_CAPACITY as u32 + 4);
        assert!(queue.is_empty());
    }
}
