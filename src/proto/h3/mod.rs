//! The HTTP/3 subset WebTransport needs, as sans-IO codecs.
//!
//! quiche carries QUIC; its own `h3` module cannot carry WebTransport, so
//! this module speaks the HTTP/3 layer itself on top of raw QUIC streams and
//! datagrams.
//!
//! # Contract
//!
//! What it owns: the byte formats of RFC 9114 (frames, stream headers,
//! SETTINGS), RFC 9204 QPACK restricted to the static table, RFC 9220
//! extended CONNECT request validation, RFC 9297 capsules and datagram
//! prefixes, and the WebTransport stream signals, capsules and settings of
//! draft-ietf-webtrans-http3.
//!
//! What it never does: touch a socket, read a clock, spawn a thread, or keep
//! connection state. Which stream is which, the SETTINGS exchange and
//! WebTransport sessions belong to the connection state machine that drives
//! these codecs; the pieces here are built to be composed by it:
//!
//! - a peer's unidirectional stream starts with [`stream::UniStreamHeaderReader`];
//!   a control stream then goes to a [`frame::FrameReader`] in
//!   [`frame::StreamRole::Control`], the QPACK streams to
//!   [`qpack::EncoderStreamReader`] / [`qpack::DecoderStreamReader`];
//! - a client's bidirectional stream goes to a [`frame::FrameReader`] in
//!   [`frame::StreamRole::Request`], which either yields a HEADERS block (for
//!   [`headers::RequestHead::decode`]) or the WebTransport stream signal;
//! - DATA on an accepted CONNECT stream goes to a [`capsule::CapsuleReader`];
//! - QUIC datagrams go to [`capsule::parse_datagram`].
//!
//! Every decoder is total: it returns a typed error instead of panicking,
//! never allocates more than the bytes in front of it or a named limit, and
//! every error converts into an [`H3Error`] carrying the HTTP/3 error code a
//! driver closes the connection or stream with. Encoders write into
//! [`bytes::BufMut`] and panic only on a caller's programming error (a value
//! that no peer could ever send, such as a varint above 2^62-1).
//!
//! Runs on whichever shard owns the connection; holds no shared state.

pub mod capsule;
pub mod connection;
pub mod error;
pub mod frame;
pub mod headers;
pub mod qpack;
pub mod settings;
pub mod stream;
mod stream_table;
pub mod varint;

#[cfg(test)]
mod robustness;

pub use capsule::{Capsule, CapsuleError, CapsuleReader, DatagramError};
pub use error::{ErrorCode, H3Error};
pub use frame::{Event, FrameError, FrameLimits, FrameReader, StreamRole};
pub use headers::{HeadersError, MessageError, RequestHead, ResponseHead};
pub use qpack::{DecodeLimits, FieldSection, QpackError};
pub use settings::{Settings, SettingsError};
pub use stream::{StreamError, UniStreamHeaderReader, UniStreamKind};
pub use varint::{decode_varint, encode_varint, varint_len, VARINT_MAX};

/// Whether `value` is one of the reserved "grease" codepoints `0x1f * N +
/// 0x21` that RFC 9114 sets aside for frame types, setting identifiers,
/// stream types and error codes, so that peers learn to ignore unknown ones.
pub const fn is_grease(value: u64) -> bool {
    value >= 0x21 && (value - 0x21).is_multiple_of(0x1f)
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;

    /// Collects a stream's events, data pieces joined, for the flow test.
    fn frames(role: StreamRole, bytes: &[u8]) -> (FrameReader, Vec<String>) {
        let mut reader = FrameReader::new(role);
        let mut events = Vec::new();
        let mut input = bytes;
        while let Some(event) = reader.next(&mut input).unwrap() {
            events.push(match event {
                Event::Headers(block) => format!("headers {}", hex::encode(block)),
                Event::Data(data) => format!("data {}", hex::encode(data)),
                Event::Settings(settings) => {
                    format!("settings wt={}", settings.supports_webtransport())
                }
                Event::WebTransportStream { session_id } => format!("wt stream {session_id}"),
                Event::WebTransportData(data) => {
                    format!("wt data {}", String::from_utf8_lossy(data))
                }
                other => format!("{other:?}"),
            });
        }
        (reader, events)
    }

    /// Walks the bytes of one WebTransport session through every codec, the
    /// way a connection state machine composes them.
    #[test]
    fn webtransport_session_bytes_through_every_codec() {
        // The client's control stream, with aioquic's SETTINGS.
        let client_settings = Settings {
            qpack_max_table_capacity: Some(0),
            h3_datagram: Some(1),
            enable_webtransport: Some(1),
            ..Settings::default()
        };
        let mut control = Vec::new();
        stream::encode_control_stream_preamble(&client_settings, &mut control);
        let mut input = &control[..];
        let kind = UniStreamHeaderReader::new().read(&mut input).unwrap();
        assert_eq!(kind, Some(UniStreamKind::Control));
        let mut reader = FrameReader::new(StreamRole::Control);
        let Some(Event::Settings(settings)) = reader.next(&mut input).unwrap() else {
            panic!("SETTINGS first");
        };
        assert!(settings.supports_webtransport() && settings.supports_datagrams());

        // The extended CONNECT on stream 0, accepted with a bare 200.
        let mut request = Vec::new();
        let mut block = Vec::new();
        qpack::encode_field_section(
            [
                (":method", "CONNECT"),
                (":protocol", "webtransport"),
                (":scheme", "https"),
                (":authority", "127.0.0.1:4433"),
                (":path", "/wt"),
                ("origin", "http://localhost:8080"),
            ],
            &mut block,
        );
        frame::encode_headers_frame(&block, &mut request);
        let mut reader = FrameReader::new(StreamRole::Request);
        let mut input = &request[..];
        let Some(Event::Headers(block)) = reader.next(&mut input).unwrap() else {
            panic!("HEADERS");
        };
        let head = RequestHead::decode(block, &DecodeLimits::DEFAULT).unwrap();
        assert!(head.is_webtransport());
        assert_eq!(
            (head.path.as_str(), head.origin.as_deref()),
            ("/wt", Some("http://localhost:8080"))
        );
        reader.enter_tunnel();
        let mut response = BytesMut::new();
        headers::encode_response_headers_frame(200, &[], &mut response);
        let (_, events) = frames(StreamRole::Request, &response);
        assert_eq!(events, ["headers 0000d9"]);

        // Capsules in DATA on the CONNECT stream.
        let mut connect_data = BytesMut::new();
        capsule::encode_drain_session_frame(&mut connect_data);
        capsule::encode_close_session_frame(42, "game over", &mut connect_data);
        let mut capsules = CapsuleReader::new();
        let mut seen = Vec::new();
        let mut input = &connect_data[..];
        while let Some(event) = reader.next(&mut input).unwrap() {
            let Event::Data(mut data) = event else {
                panic!("only DATA in the tunnel");
            };
            while let Some(capsule) = capsules.next(&mut data).unwrap() {
                seen.push(format!("{capsule:?}"));
            }
        }
        assert_eq!(
            seen,
            ["DrainSession", "CloseSession { error_code: 42, reason: \"game over\" }"]
        );
        assert_eq!(capsules.finish(), Ok(()));

        // A bidirectional and a unidirectional WebTransport stream.
        let mut bidi = Vec::new();
        frame::encode_webtransport_stream_signal(0, &mut bidi);
        bidi.extend_from_slice(b"hello");
        let (_, events) = frames(StreamRole::Request, &bidi);
        assert_eq!(events, ["wt stream 0", "wt data hello"]);
        let mut uni = Vec::new();
        stream::encode_webtransport_uni_header(0, &mut uni);
        uni.extend_from_slice(b"inputs");
        let mut input = &uni[..];
        let kind = UniStreamHeaderReader::new().read(&mut input).unwrap();
        assert_eq!(kind, Some(UniStreamKind::WebTransport { session_id: 0 }));
        assert_eq!(input, b"inputs");

        // A datagram.
        let mut datagram = Vec::new();
        capsule::encode_datagram_prefix(0, &mut datagram);
        datagram.extend_from_slice(b"snapshot");
        assert_eq!(capsule::parse_datagram(&datagram), Ok((0, &b"snapshot"[..])));
    }

    #[test]
    fn grease_codepoints_follow_the_formula() {
        for value in [0x21, 0x40, 0x5f, 0x1f * 1000 + 0x21, 0x3fff_ffff_ffff_fffe] {
            assert!(is_grease(value), "{value:#x}");
        }
        for value in [0x00, 0x20, 0x22, 0x41, 0x54] {
            assert!(!is_grease(value), "{value:#x}");
        }
    }
}
