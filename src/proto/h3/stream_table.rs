//! The streams of one HTTP/3 connection, by stream id.

/// A map from stream id to per-stream state, kept as a vector and searched
/// from the front.
///
/// Why not a hash table: an idle WebTransport session holds four of our
/// streams for its whole life and every lookup on its hot path (is the
/// control stream writable, how much room has it, a readable stream's
/// state) hashes a stream id with SipHash. A scan of a few ids is cheaper
/// than one hash, and the vector holds no empty buckets. A plain HTTP/3
/// connection is bounded by `H3Config::max_streams` (plus our control
/// stream), where a scan stays in the range of a hash and a probe.
#[derive(Debug)]
pub(super) struct StreamTable<V> {
    entries: Vec<(u64, V)>,
}

impl<V> Default for StreamTable<V> {
    fn default() -> Self {
        StreamTable { entries: Vec::new() }
    }
}

impl<V> StreamTable<V> {
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    fn position(&self, stream_id: u64) -> Option<usize> {
        self.entries.iter().position(|(id, _)| *id == stream_id)
    }

    pub(super) fn get(&self, stream_id: &u64) -> Option<&V> {
        self.entries.iter().find(|(id, _)| id == stream_id).map(|(_, value)| value)
    }

    pub(super) fn get_mut(&mut self, stream_id: &u64) -> Option<&mut V> {
        self.entries.iter_mut().find(|(id, _)| id == stream_id).map(|(_, value)| value)
    }

    /// Adds a stream the table does not hold.
    pub(super) fn insert(&mut self, stream_id: u64, value: V) {
        debug_assert!(self.position(stream_id).is_none(), "stream {stream_id} inserted twice");
        self.entries.push((stream_id, value));
    }

    /// Takes a stream out; the order of the others may change.
    pub(super) fn remove(&mut self, stream_id: &u64) -> Option<V> {
        let index = self.position(*stream_id)?;
        Some(self.entries.swap_remove(index).1)
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, value)| value)
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (&u64, &mut V)> {
        self.entries.iter_mut().map(|(id, value)| (&*id, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_map() {
        let mut table = StreamTable::default();
        for id in [3u64, 0, 2, 6, 10, 4] {
            table.insert(id, id * 10);
        }
        assert_eq!(table.len(), 6);
        assert_eq!(table.get(&6), Some(&60));
        assert_eq!(table.get(&7), None);
        *table.get_mut(&0).unwrap() += 1;
        assert_eq!(table.remove(&0), Some(1));
        assert_eq!(table.remove(&0), None);
        assert_eq!(table.get(&4), Some(&40), "still found after a swap");
        for (_, value) in table.iter_mut() {
            *value += 1;
        }
        let mut values: Vec<u64> = table.values().copied().collect();
        values.sort_unstable();
        assert_eq!(values, [21, 31, 41, 61, 101]);
    }
}
