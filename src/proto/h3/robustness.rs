//! Proves every decoder of this module total on hostile input: a seeded
//! loop feeds random bytes, and mutations of valid encodings, to each one
//! (split at random points where the decoder is incremental) and checks
//! that it neither panics, nor loops, nor holds more than its limits.

use super::capsule::{self, CapsuleReader};
use super::frame::{self, Event, FrameLimits, FrameReader, StreamRole};
use super::headers::{RequestHead, ResponseHead};
use super::qpack::{self, huffman, DecodeLimits, FieldSection};
use super::settings::Settings;
use super::stream::UniStreamHeaderReader;
use super::varint::{decode_varint, PartialVarint};

const CASES: usize = 50_000;

/// The project's deterministic generator, with usize ranges and the byte
/// mutations these tests need.
struct Rng(crate::proto::wire::Rng);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn below(&mut self, bound: usize) -> usize {
        self.0.below(bound as u64) as usize
    }

    fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = self.below(max_len + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// A valid sample with a few random edits: flipped, inserted, removed
    /// bytes and a random cut. Half of the cases are pure random bytes.
    fn input(&mut self, samples: &[Vec<u8>], max_len: usize) -> Vec<u8> {
        if samples.is_empty() || self.below(2) == 0 {
            return self.bytes(max_len);
        }
        let mut bytes = samples[self.below(samples.len())].clone();
        for _ in 0..=self.below(4) {
            if bytes.is_empty() {
                break;
            }
            let at = self.below(bytes.len());
            match self.below(4) {
                0 => bytes[at] ^= 1 << self.below(8),
                1 => bytes[at] = self.next() as u8,
                2 => bytes.insert(at, self.next() as u8),
                _ => {
                    bytes.remove(at);
                }
            }
        }
        if self.below(4) == 0 {
            bytes.truncate(self.below(bytes.len() + 1));
        }
        bytes
    }

    /// `bytes` split into 1 to 4 pieces at random points.
    fn pieces<'a>(&mut self, bytes: &'a [u8]) -> Vec<&'a [u8]> {
        let mut cuts: Vec<usize> =
            (0..self.below(4)).map(|_| self.below(bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut start = 0;
        for cut in cuts {
            pieces.push(&bytes[start..cut]);
            start = cut;
        }
        pieces.push(&bytes[start..]);
        pieces
    }
}

fn frame_samples() -> Vec<Vec<u8>> {
    let mut control = Vec::new();
    Settings::server().encode_frame(&mut control);
    frame::encode_goaway(4, &mut control);
    control.extend_from_slice(&[0x21, 0x01, 0x00, 0x0d, 0x01, 0x02]);
    let mut request = Vec::new();
    let mut block = Vec::new();
    qpack::encode_field_section([(":method", "GET"), (":path", "/")], &mut block);
    frame::encode_headers_frame(&block, &mut request);
    frame::encode_data_frame(b"some body bytes", &mut request);
    let mut webtransport = Vec::new();
    frame::encode_webtransport_stream_signal(0, &mut webtransport);
    webtransport.extend_from_slice(b"raw");
    vec![control, request, webtransport]
}

fn block_samples() -> Vec<Vec<u8>> {
    let mut connect = Vec::new();
    qpack::encode_field_section(
        [
            (":method", "CONNECT"),
            (":protocol", "webtransport"),
            (":scheme", "https"),
            (":authority", "127.0.0.1:4433"),
            (":path", "/wt"),
            ("origin", "http://localhost:8080"),
        ],
        &mut connect,
    );
    let mut response = Vec::new();
    super::headers::encode_response_head(200, &[("server", "ludus")], &mut response);
    let huffman_block = hex::decode(
        "0000d1d7c1508cf1e3c2e5f23a6ba0ab90f4ff2f0125a849e95ba97d7f8925a849e95bb8e8b4bf",
    )
    .unwrap();
    vec![connect, response, huffman_block]
}

/// A field section of random fields, encoded, and one time in two with one
/// byte changed. Names mix static-table names and made-up ones; values mix
/// static values, Huffman-friendly text and arbitrary bytes.
fn random_fields_block(rng: &mut Rng) -> Vec<u8> {
    const NAMES: [&str; 6] =
        [":method", ":path", "origin", "content-type", "x-id", "sec-webtransport-http3-draft02"];
    const VALUES: [&str; 5] = ["GET", "/", "text/css", "https://example.com", ""];
    let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for _ in 0..rng.below(6) {
        let name = NAMES[rng.below(NAMES.len())].as_bytes().to_vec();
        let value = match rng.below(3) {
            0 => VALUES[rng.below(VALUES.len())].as_bytes().to_vec(),
            1 => (0..rng.below(24)).map(|_| b'a' + rng.below(26) as u8).collect(),
            _ => rng.bytes(24),
        };
        fields.push((name, value));
    }
    let mut block = Vec::new();
    qpack::encode_field_section(fields.iter().map(|(name, value)| (name, value)), &mut block);
    if rng.below(2) == 0 {
        let mut check = FieldSection::new();
        qpack::decode_field_section(&block, &DecodeLimits::DEFAULT, &mut check).unwrap();
        assert!(check.iter().eq(fields.iter().map(|(name, value)| (&name[..], &value[..]))));
        let at = rng.below(block.len());
        block[at] = rng.next() as u8;
    }
    block
}

fn capsule_samples() -> Vec<Vec<u8>> {
    let mut stream = Vec::new();
    capsule::encode_capsule_header(0x190b_4d3d, 2, &mut stream);
    stream.extend_from_slice(&[0x40, 0x10]);
    capsule::encode_drain_session(&mut stream);
    capsule::encode_close_session(3, "gone é", &mut stream);
    vec![stream]
}

/// Feeds `bytes` to a frame reader in random pieces; returns how many
/// events it produced.
fn drive_frame_reader(rng: &mut Rng, role: StreamRole, bytes: &[u8]) -> usize {
    let mut events = 0;
    let limits = FrameLimits { max_headers_len: 64, max_settings_len: 32 };
    let mut reader = FrameReader::with_limits(role, limits);
    for piece in rng.pieces(bytes) {
        let mut input = piece;
        let mut steps = 0;
        loop {
            steps += 1;
            assert!(steps <= piece.len() + 2, "no progress");
            let result = reader.next(&mut input);
            if let Ok(Some(_)) = result {
                events += 1;
            }
            match result {
                Ok(Some(Event::Headers(block))) => {
                    assert!(block.len() <= limits.max_headers_len);
                    let _ = RequestHead::decode(block, &DecodeLimits::DEFAULT);
                }
                Ok(Some(Event::WebTransportStream { .. })) if rng.below(2) == 0 => {
                    reader.enter_tunnel(); // no effect after the signal
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    assert!(input.is_empty());
                    break;
                }
                Err(error) => {
                    assert_eq!(reader.next(&mut input), Err(error));
                    let _ = error.code();
                    return events;
                }
            }
        }
    }
    let _ = reader.finish();
    events
}

/// Feeds `bytes` to a capsule reader in random pieces; returns how many
/// capsules it produced.
fn drive_capsule_reader(rng: &mut Rng, bytes: &[u8]) -> usize {
    let mut capsules = 0;
    let mut reader = CapsuleReader::with_limit(512);
    for piece in rng.pieces(bytes) {
        let mut input = piece;
        let mut steps = 0;
        loop {
            steps += 1;
            assert!(steps <= piece.len() + 2, "no progress");
            match reader.next(&mut input) {
                Ok(Some(capsule::Capsule::CloseSession { reason, .. })) => {
                    assert!(reason.len() <= capsule::MAX_CLOSE_REASON_LEN);
                    capsules += 1;
                }
                Ok(Some(_)) => capsules += 1,
                Ok(None) => {
                    assert!(input.is_empty());
                    break;
                }
                Err(_) => return capsules,
            }
        }
    }
    let _ = reader.finish();
    capsules
}

#[test]
fn frame_reader_survives_hostile_bytes() {
    let mut rng = Rng(crate::proto::wire::Rng::new(0x6c75_6475_7301));
    let samples = frame_samples();
    let roles = [StreamRole::Control, StreamRole::Request, StreamRole::Request];
    let mut events = 0;
    for case in 0..CASES {
        // Mostly a sample mutated and read in its own role, sometimes any
        // bytes in any role.
        let pick = rng.below(samples.len());
        let (bytes, role) = if case % 4 == 0 {
            let role = [StreamRole::Control, StreamRole::Request, StreamRole::Tunnel][rng.below(3)];
            (rng.input(&samples, 96), role)
        } else {
            (rng.input(&samples[pick..=pick], 96), roles[pick])
        };
        events += drive_frame_reader(&mut rng, role, &bytes);
    }
    // The mutated samples reach past the first frame often.
    assert!(events > CASES / 4, "{events} events");
}

#[test]
fn qpack_and_heads_survive_hostile_bytes() {
    let mut rng = Rng(crate::proto::wire::Rng::new(0x6c75_6475_7302));
    let samples = block_samples();
    let small = DecodeLimits {
        max_field_section_size: 160,
        max_fields: 4,
        max_name_len: 16,
        max_value_len: 40,
    };
    let mut section = FieldSection::new();
    let mut decoded = 0;
    for case in 0..CASES {
        let block =
            if case % 3 == 0 { random_fields_block(&mut rng) } else { rng.input(&samples, 96) };
        let limits = if case % 2 == 0 { small } else { DecodeLimits::DEFAULT };
        let result = qpack::decode_field_section(&block, &limits, &mut section);
        assert!(section.bytes_capacity() <= DecodeLimits::DEFAULT.max_field_section_size);
        if result.is_ok() {
            decoded += 1;
            assert!(section.size() <= limits.max_field_section_size);
            assert!(section.len() <= limits.max_fields);
            for (name, value) in section.iter() {
                assert!(name.len() <= limits.max_name_len);
                assert!(value.len() <= limits.max_value_len);
            }
            // Re-encoding what was decoded decodes to the same fields (our
            // encoder takes only lowercase names, by contract).
            if section.iter().any(|(name, _)| name.iter().any(u8::is_ascii_uppercase)) {
                continue;
            }
            let mut again = Vec::new();
            qpack::encode_field_section(section.iter(), &mut again);
            let mut second = FieldSection::new();
            qpack::decode_field_section(&again, &DecodeLimits::DEFAULT, &mut second).unwrap();
            assert!(section.iter().eq(second.iter()));
        }
        let _ = RequestHead::decode(&block, &limits);
        let _ = ResponseHead::decode(&block, &limits);
    }
    assert!(decoded > CASES / 10, "{decoded} sections decoded");
}

#[test]
fn huffman_survives_hostile_bytes() {
    let mut rng = Rng(crate::proto::wire::Rng::new(0x6c75_6475_7303));
    let samples: Vec<Vec<u8>> = ["www.example.com", "no-cache", "custom-value", "Mon, 21 Oct"]
        .iter()
        .map(|text| {
            let mut out = Vec::new();
            huffman::encode(text.as_bytes(), &mut out);
            out
        })
        .collect();
    let mut out = Vec::new();
    let mut decoded = 0;
    for _ in 0..CASES {
        let coded = rng.input(&samples, 48);
        out.clear();
        if huffman::decode(&coded, 32, &mut out).is_ok() {
            decoded += 1;
            assert!(out.len() <= 32);
            let mut again = Vec::new();
            huffman::encode(&out, &mut again);
            let mut decoded = Vec::new();
            huffman::decode(&again, usize::MAX, &mut decoded).unwrap();
            assert_eq!(decoded, out);
        }
        assert!(out.len() <= 32);
    }
    assert!(decoded > CASES / 20, "{decoded} strings decoded");
}

#[test]
fn small_decoders_survive_hostile_bytes() {
    let mut rng = Rng(crate::proto::wire::Rng::new(0x6c75_6475_7304));
    let mut settings_samples = vec![Vec::new()];
    Settings::server().encode_payload(&mut settings_samples[0]);
    for _ in 0..CASES {
        let bytes = rng.input(&settings_samples, 40);
        if let Some((value, len)) = decode_varint(&bytes) {
            assert!(len <= 8 && len <= bytes.len() && value < 1 << 62);
        }
        let mut partial = PartialVarint::default();
        for piece in rng.pieces(&bytes) {
            let mut input = piece;
            while partial.read(&mut input).is_some() {}
            assert!(input.is_empty());
        }
        let _ = Settings::decode(&bytes);
        let mut header = UniStreamHeaderReader::new();
        for piece in rng.pieces(&bytes) {
            let mut input = piece;
            if header.read(&mut input).is_err() {
                break;
            }
        }
        if let Ok((session_id, payload)) = capsule::parse_datagram(&bytes) {
            assert_eq!(session_id % 4, 0);
            assert!(payload.len() < bytes.len());
        }
        let _ = qpack::EncoderStreamReader::new().read(&bytes);
        let mut decoder_stream = qpack::DecoderStreamReader::new();
        for piece in rng.pieces(&bytes) {
            if decoder_stream.read(piece).is_err() {
                break;
            }
        }
    }
}

#[test]
fn capsule_reader_survives_hostile_bytes() {
    let mut rng = Rng(crate::proto::wire::Rng::new(0x6c75_6475_7305));
    let samples = capsule_samples();
    let mut capsules = 0;
    for _ in 0..CASES {
        let bytes = rng.input(&samples, 64);
        capsules += drive_capsule_reader(&mut rng, &bytes);
    }
    assert!(capsules > CASES / 10, "{capsules} capsules");
}
