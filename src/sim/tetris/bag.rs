//! Randomness (reference §3.2): the Park–Miller MINSTD generator, the
//! 7-bag piece queue, and the per-player garbage-hole and targeting streams.
//! Integer arithmetic only, so every platform deals the same pieces.

use crate::sim::event::{Piece, NEXT_QUEUE_LEN};
use crate::sim::hash::StateHasher;

/// MINSTD modulus, 2^31 − 1.
pub const MINSTD_MODULUS: u64 = 2_147_483_647;
/// MINSTD multiplier.
pub const MINSTD_MULTIPLIER: u64 = 16_807;
/// Outputs lie in `1..=MINSTD_SPAN`; `(v − 1) · n / MINSTD_SPAN` maps them
/// uniformly onto `0..n` (the reference's integer form of `nextFloat`).
pub const MINSTD_SPAN: u64 = 2_147_483_646;

/// Stream constants of §3.2 (arbitrary primes; only determinism matters).
const HOLE_STREAM_PRIME: u64 = 7_919;
const TARGET_STREAM_PRIME: u64 = 104_729;

/// The bag's starting order before the shuffle: Z L O S I J T.
const BAG_BASE_ORDER: [Piece; 7] =
    [Piece::Z, Piece::L, Piece::O, Piece::S, Piece::I, Piece::J, Piece::T];

/// The queue refills (one bag) whenever fewer pieces than this are ahead.
pub const QUEUE_AHEAD_MIN: usize = 14;
/// Ring capacity: at most `QUEUE_AHEAD_MIN − 1 + 7` pieces are ever queued.
const QUEUE_CAPACITY: usize = 32;
const _: () = assert!(QUEUE_AHEAD_MIN - 1 + 7 <= QUEUE_CAPACITY);
const _: () = assert!(NEXT_QUEUE_LEN <= QUEUE_AHEAD_MIN);

/// Columns of a board (hole columns are drawn among them).
const COLUMNS: u64 = 10;
/// Percent scale of the hole-change draw.
const PERCENT: u64 = 100;

/// Maps a room's u64 seed onto the MINSTD seed range `[1, 2^31 − 2]`.
pub fn match_seed(room_seed: u64) -> u32 {
    // The result is at most 2^31 − 2, so the cast cannot truncate.
    ((room_seed % MINSTD_SPAN) + 1) as u32
}

/// Park–Miller "minimal standard" generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Minstd {
    state: u32,
}

impl Minstd {
    /// §3.2 seeding: `s = seed mod M`, and 0 becomes `M − 1`.
    pub fn new(seed: u64) -> Minstd {
        let mut state = seed % MINSTD_MODULUS;
        if state == 0 {
            state += MINSTD_SPAN;
        }
        Minstd { state: state as u32 }
    }

    /// Next output, in `1..=MINSTD_SPAN`.
    pub fn next_value(&mut self) -> u32 {
        let next = u64::from(self.state) * MINSTD_MULTIPLIER % MINSTD_MODULUS;
        debug_assert!(next != 0, "MINSTD never reaches 0 from a non-zero state");
        self.state = next as u32;
        self.state
    }

    /// A uniform index in `0..bound` (integer form of `floor(nextFloat · bound)`).
    pub fn below(&mut self, bound: u32) -> u32 {
        let value = u64::from(self.next_value());
        ((value - 1) * u64::from(bound) / MINSTD_SPAN) as u32
    }

    pub fn state(&self) -> u32 {
        self.state
    }
}

/// Seed of a player's garbage-hole stream (§3.2).
pub fn hole_stream_seed(match_seed: u32, player_index: usize) -> u64 {
    stream_seed(match_seed, player_index, HOLE_STREAM_PRIME)
}

/// Seed of a player's targeting stream (§3.2).
pub fn target_stream_seed(match_seed: u32, player_index: usize) -> u64 {
    stream_seed(match_seed, player_index, TARGET_STREAM_PRIME)
}

fn stream_seed(match_seed: u32, player_index: usize, prime: u64) -> u64 {
    (u64::from(match_seed) + prime * (player_index as u64 + 1)) % MINSTD_SPAN + 1
}

/// One shuffled bag (§3.2): integer Fisher–Yates from the end.
pub fn shuffled_bag(rng: &mut Minstd) -> [Piece; 7] {
    let mut bag = BAG_BASE_ORDER;
    for i in (1..bag.len()).rev() {
        let j = rng.below(i as u32 + 1) as usize;
        bag.swap(i, j);
    }
    bag
}

/// The pieces a player will get: a fixed ring refilled one bag at a time.
#[derive(Debug, Clone)]
pub struct PieceQueue {
    rng: Minstd,
    ring: [Piece; QUEUE_CAPACITY],
    head: u8,
    len: u8,
}

impl PieceQueue {
    pub fn new(match_seed: u32) -> PieceQueue {
        let mut queue = PieceQueue {
            rng: Minstd::new(u64::from(match_seed)),
            ring: [Piece::I; QUEUE_CAPACITY],
            head: 0,
            len: 0,
        };
        queue.refill();
        queue
    }

    fn refill(&mut self) {
        while usize::from(self.len) < QUEUE_AHEAD_MIN {
            for piece in shuffled_bag(&mut self.rng) {
                let tail = (usize::from(self.head) + usize::from(self.len)) % QUEUE_CAPACITY;
                self.ring[tail] = piece;
                self.len += 1;
            }
        }
    }

    /// Takes the next piece; the queue stays at least `QUEUE_AHEAD_MIN` long.
    pub fn pop(&mut self) -> Piece {
        debug_assert!(usize::from(self.len) >= QUEUE_AHEAD_MIN);
        let piece = self.ring[usize::from(self.head)];
        self.head = ((usize::from(self.head) + 1) % QUEUE_CAPACITY) as u8;
        self.len -= 1;
        self.refill();
        piece
    }

    /// The `index`-th upcoming piece (0 = next).
    pub fn peek(&self, index: usize) -> Piece {
        debug_assert!(index < usize::from(self.len));
        self.ring[(usize::from(self.head) + index) % QUEUE_CAPACITY]
    }

    /// The preview shown to players.
    pub fn next_pieces(&self) -> [Piece; NEXT_QUEUE_LEN] {
        core::array::from_fn(|index| self.peek(index))
    }

    pub fn hash_into(&self, hasher: &mut StateHasher) {
        hasher.u32(self.rng.state());
        hasher.u8(self.len);
        for index in 0..usize::from(self.len) {
            hasher.u8(self.peek(index) as u8);
        }
    }
}

/// A player's garbage-hole stream (§7.4): draws the hole column of each
/// packet created for that player.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoleStream {
    rng: Minstd,
    /// Column of the last packet created for this player, if any.
    previous: Option<u8>,
}

impl HoleStream {
    pub fn new(seed: u64) -> HoleStream {
        HoleStream { rng: Minstd::new(seed), previous: None }
    }

    /// The hole column of a new packet.
    pub fn next_column(&mut self, change_percent: u8) -> u8 {
        let column = match self.previous {
            None => self.rng.below(COLUMNS as u32) as u8,
            Some(previous) => {
                let roll = u64::from(self.rng.next_value()) - 1;
                if roll % PERCENT < u64::from(change_percent) {
                    // Index into the ascending list of the 9 other columns.
                    let index = self.rng.below(COLUMNS as u32 - 1) as u8;
                    if index >= previous {
                        index + 1
                    } else {
                        index
                    }
                } else {
                    previous
                }
            }
        };
        debug_assert!(u64::from(column) < COLUMNS);
        self.previous = Some(column);
        column
    }

    pub fn hash_into(&self, hasher: &mut StateHasher) {
        hasher.u32(self.rng.state());
        hasher.u8(self.previous.map_or(u8::MAX, |column| column));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bags(seed: u64, count: usize) -> Vec<String> {
        let mut rng = Minstd::new(seed);
        (0..count).map(|_| shuffled_bag(&mut rng).iter().map(|p| p.letter()).collect()).collect()
    }

    /// TV8: the first outputs of seed 12345 and the first three bags of
    /// seeds 12345, 1 and 42.
    #[test]
    fn tv8_outputs_and_bags() {
        let mut rng = Minstd::new(12_345);
        let outputs: Vec<u32> = (0..6).map(|_| rng.next_value()).collect();
        assert_eq!(outputs, [207482415, 1790989824, 2035175616, 77048696, 24794531, 109854999]);
        assert_eq!(bags(12_345, 3), ["LOSTIJZ", "LOZTISJ", "OSTZJIL"]);
        assert_eq!(bags(1, 3), ["OJILSTZ", "TOLJSIZ", "LISOTZJ"]);
        assert_eq!(bags(42, 3), ["OTILJSZ", "IJZLOST", "IJSZLOT"]);
    }

    #[test]
    fn seeding_maps_the_edges_into_range() {
        assert_eq!(match_seed(0), 1);
        assert_eq!(match_seed(MINSTD_SPAN - 1), MINSTD_SPAN as u32);
        assert_eq!(match_seed(MINSTD_SPAN), 1);
        assert_eq!(match_seed(u64::MAX), (u64::MAX % MINSTD_SPAN + 1) as u32);
        // A state of 0 would stick at 0; the seeding rule avoids it.
        assert_eq!(Minstd::new(MINSTD_MODULUS).state(), MINSTD_SPAN as u32);
        assert_eq!(hole_stream_seed(1, 0), 1 + 7_919 + 1);
        assert_eq!(target_stream_seed(MINSTD_SPAN as u32, 1), (2 * 104_729) % MINSTD_SPAN + 1);
    }

    /// The queue deals bag after bag and keeps 14 pieces ahead.
    #[test]
    fn queue_deals_the_bags_in_order() {
        let mut queue = PieceQueue::new(12_345);
        let dealt: String = (0..21).map(|_| queue.pop().letter()).collect();
        assert_eq!(dealt, "LOSTIJZLOZTISJOSTZJIL");
        assert!(usize::from(queue.len) >= QUEUE_AHEAD_MIN);
    }

    /// Every bag is a permutation of the seven pieces, over many seeds.
    #[test]
    fn every_bag_is_a_permutation() {
        for seed in 1..500u64 {
            let mut rng = Minstd::new(seed * 7_777);
            for _ in 0..4 {
                let mut bag = shuffled_bag(&mut rng);
                bag.sort();
                assert_eq!(bag, Piece::ALL);
            }
        }
    }

    #[test]
    fn hole_columns_change_every_packet_by_default_and_never_when_disabled() {
        let mut always = HoleStream::new(99);
        let mut previous = always.next_column(100);
        for _ in 0..1_000 {
            let column = always.next_column(100);
            assert!(column < 10);
            assert_ne!(column, previous);
            previous = column;
        }
        let mut never = HoleStream::new(99);
        let first = never.next_column(0);
        for _ in 0..100 {
            assert_eq!(never.next_column(0), first);
        }
    }

    /// The first column is `((v − 1) · 10) div (2^31 − 2)` of the stream's
    /// first output (§7.4).
    #[test]
    fn first_hole_column_follows_the_formula() {
        let seed = hole_stream_seed(12_345, 0);
        let v = u64::from(Minstd::new(seed).next_value());
        let mut stream = HoleStream::new(seed);
        assert_eq!(u64::from(stream.next_column(100)), (v - 1) * 10 / MINSTD_SPAN);
    }
}
