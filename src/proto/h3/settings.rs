//! The SETTINGS frame (RFC 9114 §7.2.4) and the settings WebTransport needs.
//!
//! WebTransport's own setting changed identifier with the drafts; a peer may
//! send any of them, so all four are decoded (draft ranges checked against
//! the tagged revisions of draft-ietf-webtrans-http3):
//!
//! | identifier   | name                         | drafts   |
//! |--------------|------------------------------|----------|
//! | `0x2b603742` | SETTINGS_ENABLE_WEBTRANSPORT | 02-07    |
//! | `0xc671706a` | SETTINGS_WEBTRANSPORT_MAX_SESSIONS | 08-12 (what Chromium sends) |
//! | `0x14e9cd29` | SETTINGS_WT_MAX_SESSIONS     | 13-14    |
//! | `0x2c7cf000` | SETTINGS_WT_ENABLED          | 15-16, with `:protocol webtransport-h3` |
//!
//! Our server advertises exactly what Chromium was seen to accept (see
//! [`Settings::server`]): the first two, not the draft-13+ ones, whose
//! per-session flow control we do not implement.

use arrayvec::ArrayVec;
use bytes::BufMut;
use thiserror::Error;

use super::error::{into_h3_error, ErrorCode};
use super::frame;
use super::varint::{encode_varint, read_varint, varint_len};

/// RFC 9204 §5: the most the peer may let its dynamic table grow.
pub const QPACK_MAX_TABLE_CAPACITY: u64 = 0x01;
/// RFC 9114 §7.2.4.1: the largest field section the sender will accept.
pub const MAX_FIELD_SECTION_SIZE: u64 = 0x06;
/// RFC 9204 §5: how many streams the sender lets block on its dynamic table.
pub const QPACK_BLOCKED_STREAMS: u64 = 0x07;
/// RFC 9220: the sender accepts extended CONNECT (`:protocol`).
pub const ENABLE_CONNECT_PROTOCOL: u64 = 0x08;
/// RFC 9297 §2.1.1: the sender accepts HTTP/3 datagrams.
pub const H3_DATAGRAM: u64 = 0x33;
/// draft-ietf-webtrans-http3-02..07.
pub const ENABLE_WEBTRANSPORT: u64 = 0x2b60_3742;
/// draft-ietf-webtrans-http3-08..12.
pub const WEBTRANSPORT_MAX_SESSIONS: u64 = 0xc671_706a;
/// draft-ietf-webtrans-http3-13..14.
pub const WT_MAX_SESSIONS: u64 = 0x14e9_cd29;
/// draft-ietf-webtrans-http3-15..16.
pub const WT_ENABLED: u64 = 0x2c7c_f000;

/// HTTP/2 setting identifiers with no HTTP/3 meaning; receiving one is
/// H3_SETTINGS_ERROR (RFC 9114 §7.2.4.1). 0x00, also listed as reserved in
/// the registry but not as an HTTP/2 setting, is treated as unknown.
pub const RESERVED_HTTP2: [u64; 4] = [0x02, 0x03, 0x04, 0x05];

/// Most setting pairs one SETTINGS frame may carry. Browsers send under ten;
/// the bound makes duplicate detection allocation-free.
pub const MAX_SETTINGS_COUNT: usize = 64;

/// The settings one endpoint sent. `None` means "not sent", which RFC 9114
/// §7.2.4.1 gives the setting's default (0 for all of these, unlimited for
/// MAX_FIELD_SECTION_SIZE). Unknown identifiers are ignored on decode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    pub qpack_max_table_capacity: Option<u64>,
    pub max_field_section_size: Option<u64>,
    pub qpack_blocked_streams: Option<u64>,
    pub enable_connect_protocol: Option<u64>,
    pub h3_datagram: Option<u64>,
    pub enable_webtransport: Option<u64>,
    pub webtransport_max_sessions: Option<u64>,
    pub wt_max_sessions: Option<u64>,
    pub wt_enabled: Option<u64>,
}

/// Why a SETTINGS payload was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SettingsError {
    /// The payload ends in the middle of an identifier/value pair:
    /// H3_FRAME_ERROR (RFC 9114 §7.1).
    #[error("SETTINGS payload ends inside a setting")]
    Truncated,
    /// The same identifier twice: H3_SETTINGS_ERROR.
    #[error("setting {0:#x} appears twice")]
    Duplicate(u64),
    /// An HTTP/2-only identifier: H3_SETTINGS_ERROR.
    #[error("HTTP/2 setting {0:#x} is reserved in HTTP/3")]
    ReservedHttp2(u64),
    /// A value the setting does not allow (a boolean other than 0 or 1):
    /// H3_SETTINGS_ERROR.
    #[error("setting {id:#x} has invalid value {value}")]
    InvalidValue { id: u64, value: u64 },
    /// More pairs than [`MAX_SETTINGS_COUNT`]: H3_EXCESSIVE_LOAD.
    #[error("more than {max} settings")]
    TooMany { max: usize },
}

impl SettingsError {
    pub fn code(&self) -> ErrorCode {
        match self {
            SettingsError::Truncated => ErrorCode::FRAME_ERROR,
            SettingsError::TooMany { .. } => ErrorCode::EXCESSIVE_LOAD,
            _ => ErrorCode::SETTINGS_ERROR,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            SettingsError::Truncated => "truncated SETTINGS",
            SettingsError::Duplicate(_) => "duplicate setting",
            SettingsError::ReservedHttp2(_) => "HTTP/2 setting in SETTINGS",
            SettingsError::InvalidValue { .. } => "invalid setting value",
            SettingsError::TooMany { .. } => "too many settings",
        }
    }
}

into_h3_error!(SettingsError);

impl Settings {
    /// What our server sends: no dynamic table, no blocked streams, extended
    /// CONNECT, HTTP/3 datagrams, and WebTransport under both the older
    /// (draft-02) and the current-in-Chromium (draft-08) identifiers, one
    /// session per connection. Exactly the set Chromium 156 accepted.
    pub const fn server() -> Settings {
        Settings {
            qpack_max_table_capacity: Some(0),
            max_field_section_size: None,
            qpack_blocked_streams: Some(0),
            enable_connect_protocol: Some(1),
            h3_datagram: Some(1),
            enable_webtransport: Some(1),
            webtransport_max_sessions: Some(1),
            wt_max_sessions: None,
            wt_enabled: None,
        }
    }

    /// Decodes a SETTINGS frame payload.
    pub fn decode(payload: &[u8]) -> Result<Settings, SettingsError> {
        let mut settings = Settings::default();
        let mut seen = ArrayVec::<u64, MAX_SETTINGS_COUNT>::new();
        let mut input = payload;
        while !input.is_empty() {
            let id = read_varint(&mut input).ok_or(SettingsError::Truncated)?;
            let value = read_varint(&mut input).ok_or(SettingsError::Truncated)?;
            if seen.contains(&id) {
                return Err(SettingsError::Duplicate(id));
            }
            seen.try_push(id).map_err(|_| SettingsError::TooMany { max: MAX_SETTINGS_COUNT })?;
            settings.apply(id, value)?;
        }
        Ok(settings)
    }

    fn apply(&mut self, id: u64, value: u64) -> Result<(), SettingsError> {
        let boolean = |value: u64| {
            if value <= 1 {
                Ok(Some(value))
            } else {
                Err(SettingsError::InvalidValue { id, value })
            }
        };
        match id {
            QPACK_MAX_TABLE_CAPACITY => self.qpack_max_table_capacity = Some(value),
            MAX_FIELD_SECTION_SIZE => self.max_field_section_size = Some(value),
            QPACK_BLOCKED_STREAMS => self.qpack_blocked_streams = Some(value),
            ENABLE_CONNECT_PROTOCOL => self.enable_connect_protocol = boolean(value)?,
            H3_DATAGRAM => self.h3_datagram = boolean(value)?,
            ENABLE_WEBTRANSPORT => self.enable_webtransport = Some(value),
            WEBTRANSPORT_MAX_SESSIONS => self.webtransport_max_sessions = Some(value),
            WT_MAX_SESSIONS => self.wt_max_sessions = Some(value),
            WT_ENABLED => self.wt_enabled = Some(value),
            id if RESERVED_HTTP2.contains(&id) => return Err(SettingsError::ReservedHttp2(id)),
            _ => {}
        }
        Ok(())
    }

    /// The settings that were sent, as (identifier, value) pairs in a fixed
    /// order (ascending identifier within the RFC 9114/9204/9220/9297 group,
    /// then the WebTransport drafts oldest first).
    pub fn pairs(&self) -> impl Iterator<Item = (u64, u64)> {
        [
            (QPACK_MAX_TABLE_CAPACITY, self.qpack_max_table_capacity),
            (MAX_FIELD_SECTION_SIZE, self.max_field_section_size),
            (QPACK_BLOCKED_STREAMS, self.qpack_blocked_streams),
            (ENABLE_CONNECT_PROTOCOL, self.enable_connect_protocol),
            (H3_DATAGRAM, self.h3_datagram),
            (ENABLE_WEBTRANSPORT, self.enable_webtransport),
            (WEBTRANSPORT_MAX_SESSIONS, self.webtransport_max_sessions),
            (WT_MAX_SESSIONS, self.wt_max_sessions),
            (WT_ENABLED, self.wt_enabled),
        ]
        .into_iter()
        .filter_map(|(id, value)| value.map(|value| (id, value)))
    }

    /// Length of the encoded payload in bytes.
    pub fn payload_len(&self) -> usize {
        self.pairs().map(|(id, value)| varint_len(id) + varint_len(value)).sum()
    }

    /// Appends the SETTINGS payload (pairs only).
    pub fn encode_payload(&self, out: &mut impl BufMut) {
        for (id, value) in self.pairs() {
            encode_varint(id, out);
            encode_varint(value, out);
        }
    }

    /// Appends a whole SETTINGS frame: type, length, payload.
    pub fn encode_frame(&self, out: &mut impl BufMut) {
        frame::encode_frame_header(frame::SETTINGS, self.payload_len() as u64, out);
        self.encode_payload(out);
    }

    /// Whether the peer can take part in WebTransport: it sent any of the
    /// WebTransport settings with a value that enables it. aioquic sends only
    /// the draft-02 one, Chromium the draft-08 one, newer stacks later ones.
    pub fn supports_webtransport(&self) -> bool {
        self.enable_webtransport == Some(1)
            || self.webtransport_max_sessions.is_some_and(|sessions| sessions > 0)
            || self.wt_max_sessions.is_some_and(|sessions| sessions > 0)
            || self.wt_enabled.is_some_and(|enabled| enabled > 0)
    }

    /// Whether the peer accepts HTTP/3 datagrams (RFC 9297: value 1).
    pub fn supports_datagrams(&self) -> bool {
        self.h3_datagram == Some(1)
    }

    /// Whether the peer (a server) accepts extended CONNECT (RFC 9220).
    pub fn supports_extended_connect(&self) -> bool {
        self.enable_connect_protocol == Some(1)
    }

    /// The peer's QPACK dynamic table capacity, defaulting to 0.
    pub fn qpack_capacity(&self) -> u64 {
        self.qpack_max_table_capacity.unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;

    fn payload(pairs: &[(u64, u64)]) -> Vec<u8> {
        let mut out = Vec::new();
        for &(id, value) in pairs {
            encode_varint(id, &mut out);
            encode_varint(value, &mut out);
        }
        out
    }

    #[test]
    fn server_settings_are_what_chromium_accepted() {
        let pairs: Vec<_> = Settings::server().pairs().collect();
        assert_eq!(
            pairs,
            [(0x01, 0), (0x07, 0), (0x08, 1), (0x33, 1), (0x2b60_3742, 1), (0xc671_706a, 1)]
        );
        let mut frame = BytesMut::new();
        Settings::server().encode_frame(&mut frame);
        assert_eq!(
            hex::encode(&frame),
            "0416\
             0100 0700 0801 3301 ab603742 01 c0000000c671706a 01"
                .replace(' ', "")
        );
    }

    #[test]
    fn settings_round_trip() {
        let settings = Settings {
            max_field_section_size: Some(16_384),
            wt_max_sessions: Some(4),
            wt_enabled: Some(1),
            ..Settings::server()
        };
        let mut out = BytesMut::new();
        settings.encode_payload(&mut out);
        assert_eq!(out.len(), settings.payload_len());
        assert_eq!(Settings::decode(&out), Ok(settings));
    }

    #[test]
    fn duplicates_are_settings_errors() {
        let bytes = payload(&[(0x01, 0), (0x33, 1), (0x01, 0)]);
        let error = Settings::decode(&bytes).unwrap_err();
        assert_eq!(error, SettingsError::Duplicate(0x01));
        assert_eq!(error.code(), ErrorCode::SETTINGS_ERROR);
        // Unknown identifiers may not repeat either.
        let bytes = payload(&[(0x1234, 0), (0x1234, 1)]);
        assert_eq!(Settings::decode(&bytes), Err(SettingsError::Duplicate(0x1234)));
    }

    #[test]
    fn http2_identifiers_are_settings_errors() {
        for id in RESERVED_HTTP2 {
            let error = Settings::decode(&payload(&[(id, 1)])).unwrap_err();
            assert_eq!(error, SettingsError::ReservedHttp2(id));
            assert_eq!(error.code(), ErrorCode::SETTINGS_ERROR);
        }
    }

    #[test]
    fn unknown_and_grease_identifiers_are_ignored() {
        let bytes = payload(&[(0x21, 7), (0x00, 3), (0xdead_beef, 9), (0x33, 1)]);
        let settings = Settings::decode(&bytes).unwrap();
        assert_eq!(settings, Settings { h3_datagram: Some(1), ..Settings::default() });
    }

    #[test]
    fn booleans_other_than_zero_or_one_are_settings_errors() {
        for id in [ENABLE_CONNECT_PROTOCOL, H3_DATAGRAM] {
            let error = Settings::decode(&payload(&[(id, 2)])).unwrap_err();
            assert_eq!(error, SettingsError::InvalidValue { id, value: 2 });
            assert_eq!(error.code(), ErrorCode::SETTINGS_ERROR);
        }
    }

    #[test]
    fn truncated_pairs_are_frame_errors() {
        let bytes = payload(&[(0x33, 1), (0x2b60_3742, 1)]);
        for cut in 1..bytes.len() {
            if cut == 2 {
                continue; // exactly the first pair
            }
            let error = Settings::decode(&bytes[..cut]).unwrap_err();
            assert_eq!(error, SettingsError::Truncated, "cut at {cut}");
            assert_eq!(error.code(), ErrorCode::FRAME_ERROR);
        }
    }

    #[test]
    fn too_many_settings_is_excessive_load() {
        let pairs: Vec<_> = (0..=MAX_SETTINGS_COUNT as u64).map(|i| (0x1000 + i, 0)).collect();
        let error = Settings::decode(&payload(&pairs)).unwrap_err();
        assert_eq!(error.code(), ErrorCode::EXCESSIVE_LOAD);
        assert!(Settings::decode(&payload(&pairs[..MAX_SETTINGS_COUNT])).is_ok());
    }

    #[test]
    fn webtransport_support_accepts_any_draft_setting() {
        assert!(!Settings::default().supports_webtransport());
        let old = Settings { enable_webtransport: Some(1), ..Settings::default() };
        let chromium = Settings { webtransport_max_sessions: Some(1), ..Settings::default() };
        let draft13 = Settings { wt_max_sessions: Some(2), ..Settings::default() };
        let draft15 = Settings { wt_enabled: Some(1), ..Settings::default() };
        for settings in [old, chromium, draft13, draft15] {
            assert!(settings.supports_webtransport(), "{settings:?}");
        }
        let disabled = Settings {
            enable_webtransport: Some(0),
            webtransport_max_sessions: Some(0),
            ..Settings::default()
        };
        assert!(!disabled.supports_webtransport());
    }
}
