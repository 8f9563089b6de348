//! Proves that the Rust codec agrees byte for byte with the shared test
//! vectors (the JavaScript codec is held to the same files by
//! web/proto/codec.test.js), and rejects each invalid vector for its reason.

use bytes::{Bytes, BytesMut};
use ludus::proto::wire::{decode_frame, encode_message_frame, schema, Message, CATALOG};
use serde_json::Value;

fn load(name: &str) -> Vec<Value> {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    serde_json::from_str::<Value>(&text).unwrap().as_array().unwrap().clone()
}

#[test]
fn every_valid_vector_encodes_and_decodes_exactly() {
    let vectors = load("messages.json");
    assert!(!vectors.is_empty());
    for vector in &vectors {
        let id = vector["id"].as_str().unwrap();
        let message = Message::from_json(vector["message"].as_str().unwrap(), &vector["fields"])
            .unwrap_or_else(|error| panic!("{id}: {error}"));
        assert_eq!(u64::from(message.code()), vector["code"].as_u64().unwrap(), "{id}");
        let mut out = BytesMut::new();
        encode_message_frame(&message, &mut out);
        assert_eq!(hex::encode(&out), vector["frame"].as_str().unwrap(), "{id}: encoding");
        let frame = Bytes::from(hex::decode(vector["frame"].as_str().unwrap()).unwrap());
        let decoded = decode_frame(&frame).unwrap_or_else(|error| panic!("{id}: {error}"));
        assert_eq!(decoded, message, "{id}: decoding");
        assert_eq!(decoded.fields_json(), vector["fields"], "{id}: JSON form");
    }
}

#[test]
fn every_message_type_has_vectors() {
    let vectors = load("messages.json");
    for info in CATALOG {
        let count = vectors.iter().filter(|vector| vector["message"] == info.name).count();
        assert!(count >= 2, "{} has {count} vectors", info.name);
    }
}

#[test]
fn every_invalid_vector_is_rejected_for_its_reason() {
    for vector in load("invalid.json") {
        let what = vector["what"].as_str().unwrap();
        let error = schema::decode_invalid(vector["frame"].as_str().unwrap()).expect_err(what);
        assert_eq!(error.kind(), vector["error"].as_str().unwrap(), "{what}: {error}");
    }
}
