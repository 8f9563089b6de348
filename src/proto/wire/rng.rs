//! A small deterministic generator (SplitMix64) for random messages: used by
//! the property tests, the fuzz corpus and the test-vector generator. Not for
//! anything that needs unpredictability.

/// SplitMix64: tiny, fast, and the same sequence on every platform.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

/// Characters random text draws from: ASCII, two-, three- and four-byte
/// UTF-8, so that byte limits are exercised at character boundaries.
const TEXT_ALPHABET: &[char] = &['a', 'Z', '0', ' ', '_', 'é', 'ß', 'Ж', '€', '字', '🎮', '🧱'];

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut mixed = self.state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        mixed ^ (mixed >> 31)
    }

    /// A value in `0..bound`; 0 when `bound` is 0 (an empty range to pick
    /// from, e.g. an index into empty bytes, which callers then skip).
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        self.next_u64() % bound
    }

    /// A length in `0..=max`, at the edges (0 and max) one time in four.
    pub fn length(&mut self, max: usize) -> usize {
        match self.below(8) {
            0 => 0,
            1 => max,
            _ => self.below(max.min(24) as u64 + 1) as usize,
        }
    }

    /// Text of at most `max_bytes` UTF-8 bytes, sometimes filled to the limit.
    pub fn text(&mut self, max_bytes: usize) -> String {
        let target = self.length(max_bytes);
        let mut text = String::new();
        while text.len() < target {
            let index = self.below(TEXT_ALPHABET.len() as u64) as usize;
            let next = TEXT_ALPHABET[index];
            if text.len() + next.len_utf8() > target {
                // Fill the rest with one-byte characters to hit the target exactly.
                text.push('x');
                continue;
            }
            text.push(next);
        }
        debug_assert!(text.len() <= max_bytes);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_same_sequence() {
        let mut first = Rng::new(7);
        let mut second = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(first.next_u64(), second.next_u64());
        }
    }

    #[test]
    fn text_stays_within_its_byte_limit() {
        let mut rng = Rng::new(1);
        for max in 0..40 {
            for _ in 0..50 {
                assert!(rng.text(max).len() <= max);
            }
        }
    }
}
