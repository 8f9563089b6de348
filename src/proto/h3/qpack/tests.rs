//! QPACK decoder and encoder tests against RFC examples, hand-built blocks
//! and the rejection cases a static-only decoder must catch.

use super::*;
use crate::proto::h3::error::ErrorCode;

fn decode(block: &[u8]) -> Result<Vec<(String, String)>, QpackError> {
    decode_with(block, &DecodeLimits::DEFAULT)
}

fn decode_with(block: &[u8], limits: &DecodeLimits) -> Result<Vec<(String, String)>, QpackError> {
    let mut section = FieldSection::new();
    decode_field_section(block, limits, &mut section)?;
    Ok(section
        .iter()
        .map(|(name, value)| {
            (String::from_utf8(name.to_vec()).unwrap(), String::from_utf8(value.to_vec()).unwrap())
        })
        .collect())
}

fn pairs(fields: &[(&str, &str)]) -> Vec<(String, String)> {
    fields.iter().map(|&(name, value)| (name.to_owned(), value.to_owned())).collect()
}

#[test]
fn rfc9204_b1_literal_with_static_name_reference() {
    let block = hex::decode("0000510b2f696e6465782e68746d6c").unwrap();
    assert_eq!(decode(&block), Ok(pairs(&[(":path", "/index.html")])));
}

#[test]
fn chromium_like_extended_connect_round_trips() {
    let fields = [
        (":method", "CONNECT"),
        (":protocol", "webtransport"),
        (":scheme", "https"),
        (":authority", "127.0.0.1:4433"),
        (":path", "/wt"),
        ("origin", "http://localhost:8080"),
        ("sec-webtransport-http3-draft02", "1"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
        ),
        ("accept-language", "en-US,en;q=0.9"),
        ("cookie", ""),
    ];
    let mut block = Vec::new();
    encode_field_section(fields, &mut block);
    // :method CONNECT is static index 15: one byte 0xcf right after the prefix.
    assert_eq!(&block[..3], &[0x00, 0x00, 0xcf]);
    assert_eq!(decode(&block), Ok(pairs(&fields)));
    let mut section = FieldSection::new();
    decode_field_section(&block, &DecodeLimits::DEFAULT, &mut section).unwrap();
    let expected_size: usize =
        fields.iter().map(|(name, value)| name.len() + value.len() + FIELD_OVERHEAD).sum();
    assert_eq!(section.size(), expected_size);
}

#[test]
fn encoder_picks_the_shortest_representation() {
    let mut block = Vec::new();
    encode_field_section([(":status", "200")], &mut block);
    assert_eq!(block, [0x00, 0x00, 0xd9]); // static index 25
    let mut block = Vec::new();
    encode_field_section([(":status", "418")], &mut block);
    // Name reference to index 24 (:status 103), value "418" as a literal:
    // Huffman would take 3 bytes too, so it is not used.
    assert_eq!(block, [0x00, 0x00, 0x5f, 0x09, 0x03, b'4', b'1', b'8']);
    let mut block = Vec::new();
    encode_field_section([("custom-key", "custom-value")], &mut block);
    assert_eq!(hex::encode(&block), "00002f0125a849e95ba97d7f8925a849e95bb8e8b4bf");
}

#[test]
fn hand_built_block_with_huffman_literals() {
    // :method GET (17), :scheme https (23), :path / (1), then :authority
    // (static name 0) with the Huffman-coded value of RFC 7541 C.4.1, then a
    // literal Huffman name and value from C.4.3.
    let block = hex::decode(concat!(
        "0000",
        "d1d7c1",
        "508c",
        "f1e3c2e5f23a6ba0ab90f4ff",
        "2f01",
        "25a849e95ba97d7f",
        "89",
        "25a849e95bb8e8b4bf",
    ))
    .unwrap();
    assert_eq!(
        decode(&block),
        Ok(pairs(&[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/"),
            (":authority", "www.example.com"),
            ("custom-key", "custom-value"),
        ]))
    );
}

#[test]
fn empty_section_is_valid() {
    assert_eq!(decode(&[0x00, 0x00]), Ok(vec![]));
    // A non-zero positive Delta Base is allowed when nothing refers to it.
    assert_eq!(decode(&[0x00, 0x05, 0xd1]), Ok(pairs(&[(":method", "GET")])));
}

#[test]
fn dynamic_references_are_rejected() {
    let cases: &[&[u8]] = &[
        &[0x00, 0x00, 0x80],       // Indexed Field Line, T=0
        &[0x00, 0x00, 0x10],       // Indexed Field Line with Post-Base Index
        &[0x00, 0x00, 0x40, 0x00], // Literal with Name Reference, T=0
        &[0x00, 0x00, 0x00, 0x00], // Literal with Post-Base Name Reference
    ];
    for &block in cases {
        let error = decode(block).unwrap_err();
        assert_eq!(error, QpackError::DynamicReference, "{block:?}");
        assert_eq!(error.code(), ErrorCode::QPACK_DECOMPRESSION_FAILED);
    }
}

#[test]
fn required_insert_count_must_be_zero() {
    // RFC 9204 B.2, stream 4: Required Insert Count = 2, Base = 0.
    let block = hex::decode("03811011").unwrap();
    let error = decode(&block).unwrap_err();
    assert_eq!(error, QpackError::RequiredInsertCount(3));
    assert_eq!(error.code(), ErrorCode::QPACK_DECOMPRESSION_FAILED);
}

#[test]
fn negative_base_is_rejected() {
    assert_eq!(decode(&[0x00, 0x80]), Err(QpackError::NegativeBase));
}

#[test]
fn static_index_past_the_table_is_rejected() {
    // Indexed, T=1, index 63 + 36 = 99.
    assert_eq!(decode(&[0x00, 0x00, 0xff, 0x24]), Err(QpackError::StaticIndex(99)));
    // Name reference to index 15 + 84 = 99.
    assert_eq!(decode(&[0x00, 0x00, 0x5f, 0x54, 0x00]), Err(QpackError::StaticIndex(99)));
}

#[test]
fn bad_huffman_is_rejected() {
    // :path with a Huffman value "a" padded with zeros.
    let error = decode(&[0x00, 0x00, 0x51, 0x81, 0b0001_1000]).unwrap_err();
    assert_eq!(error, QpackError::Huffman(HuffmanError::InvalidPadding));
    assert_eq!(error.code(), ErrorCode::QPACK_DECOMPRESSION_FAILED);
    // Padding of a whole byte.
    let error = decode(&[0x00, 0x00, 0x51, 0x82, 0b0001_1111, 0xff]).unwrap_err();
    assert_eq!(error, QpackError::Huffman(HuffmanError::InvalidPadding));
    // EOS inside the value.
    let error = decode(&[0x00, 0x00, 0x51, 0x84, 0xff, 0xff, 0xff, 0xff]).unwrap_err();
    assert_eq!(error, QpackError::Huffman(HuffmanError::EndOfString));
    assert_eq!(error.code(), ErrorCode::QPACK_DECOMPRESSION_FAILED);
}

#[test]
fn integer_overflow_is_rejected() {
    let mut block = vec![0x00, 0x00, 0x51, 0xff];
    block.extend_from_slice(&[0xff; 9]);
    block.push(0x7f);
    let error = decode(&block).unwrap_err();
    assert_eq!(error, QpackError::IntegerOverflow);
    assert_eq!(error.code(), ErrorCode::QPACK_DECOMPRESSION_FAILED);
    // In the prefix too.
    let mut block = vec![0xff];
    block.extend_from_slice(&[0x80; 12]);
    assert_eq!(decode(&block), Err(QpackError::IntegerOverflow));
}

#[test]
fn truncated_sections_are_rejected() {
    let mut block = Vec::new();
    encode_field_section([(":path", "/index.html"), ("x-custom", "value")], &mut block);
    for cut in 0..block.len() {
        let result = decode(&block[..cut]);
        // Cuts at field line boundaries decode fewer fields.
        if let Err(error) = result {
            assert_eq!(error, QpackError::Truncated, "cut {cut}");
        }
    }
    assert_eq!(decode(&[]), Err(QpackError::Truncated));
    assert_eq!(decode(&[0x00]), Err(QpackError::Truncated));
    // A literal announcing more bytes than the block holds.
    assert_eq!(decode(&[0x00, 0x00, 0x51, 0x7f, 0x00]), Err(QpackError::Truncated));
}

#[test]
fn oversize_strings_and_sections_are_rejected() {
    let limits = DecodeLimits {
        max_field_section_size: 200,
        max_fields: 3,
        max_name_len: 10,
        max_value_len: 50,
    };
    let check = |fields: &[(&str, &str)]| {
        let mut block = Vec::new();
        encode_field_section(fields.iter().copied(), &mut block);
        decode_with(&block, &limits)
    };
    assert!(check(&[("a", "b"), ("c", "d"), ("e", "f")]).is_ok());
    let error = check(&[("a", "b"), ("c", "d"), ("e", "f"), ("g", "h")]).unwrap_err();
    assert_eq!(error, QpackError::TooManyFields { max: 3 });
    assert_eq!(error.code(), ErrorCode::EXCESSIVE_LOAD);
    // Names: literal and Huffman-coded.
    let error = check(&[("abcdefghijk", "")]).unwrap_err();
    assert_eq!(error, QpackError::StringTooLong { max: 10 });
    assert_eq!(error.code(), ErrorCode::QPACK_DECOMPRESSION_FAILED);
    assert!(error.is_too_large());
    assert_eq!(check(&[("aaaaaaaaaaa", "")]), Err(QpackError::StringTooLong { max: 10 }));
    // Values: literal, Huffman-coded, and a static value.
    let value = "~".repeat(51);
    assert_eq!(check(&[("x", &value)]), Err(QpackError::StringTooLong { max: 50 }));
    let value = "a".repeat(51);
    assert_eq!(check(&[("x", &value)]), Err(QpackError::StringTooLong { max: 50 }));
    let narrow = DecodeLimits { max_name_len: 64, max_value_len: 10, ..limits };
    let csp = [0x00, 0x00, 0xff, 0x16]; // static index 85, a 53-byte value
    assert_eq!(decode_with(&csp, &narrow), Err(QpackError::StringTooLong { max: 10 }));
    // The section: three fields of 1 + 40 + 32 bytes exceed 200.
    let value = "~".repeat(40);
    let error = check(&[("a", &value), ("b", &value), ("c", &value)]).unwrap_err();
    assert_eq!(error, QpackError::FieldSectionTooLarge { max: 200 });
    assert_eq!(error.code(), ErrorCode::EXCESSIVE_LOAD);
    let value = "a".repeat(40);
    let error = check(&[("a", &value), ("b", &value), ("c", &value)]).unwrap_err();
    assert_eq!(error, QpackError::FieldSectionTooLarge { max: 200 });
}

#[test]
fn field_section_is_reused_without_growing() {
    let mut block = Vec::new();
    encode_field_section([(":path", "/a/long/enough/path"), ("origin", "https://x")], &mut block);
    let mut section = FieldSection::new();
    decode_field_section(&block, &DecodeLimits::DEFAULT, &mut section).unwrap();
    let capacity = section.bytes_capacity();
    for _ in 0..10 {
        decode_field_section(&block, &DecodeLimits::DEFAULT, &mut section).unwrap();
    }
    assert_eq!(section.bytes_capacity(), capacity);
    assert_eq!(section.len(), 2);
    assert_eq!(section.get(1), Some((&b"origin"[..], &b"https://x"[..])));
    assert_eq!(section.get(2), None);
}

#[test]
fn errors_convert_to_h3_errors() {
    let error: crate::proto::h3::H3Error = QpackError::DynamicReference.into();
    assert_eq!(error.code, ErrorCode::QPACK_DECOMPRESSION_FAILED);
    assert_eq!(error.code.0, 0x200);
}
