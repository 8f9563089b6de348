//! The protocol described as data: the schema the JavaScript codec
//! interprets (web/proto/schema.js), the message catalog of
//! docs/PROTOCOL.md, and the test vectors in tests/vectors/. All generated
//! from the declarations in `messages`, and checked to be current by
//! tests/wire_generated.rs.

use bytes::{Bytes, BytesMut};
use serde_json::{json, Value};

use super::error::ErrorCode;
use super::frame::{
    encode_message_frame, MAX_CORE_TYPE_CODE, MAX_DATAGRAM_LEN, MAX_FRAME_LEN, MAX_TYPE_CODE,
};
use super::limits::*;
use super::macros::fields_json;
use super::messages::{enum_definitions, struct_definitions, Message, CATALOG};
use super::rng::Rng;
use super::{decode_frame, DecodeError};

/// Named limits, as the schema and the documentation list them.
pub fn limits() -> Vec<(&'static str, usize, &'static str)> {
    vec![
        ("MAX_FRAME_LEN", MAX_FRAME_LEN, "frame body (type code and fields), bytes"),
        ("MAX_DATAGRAM_LEN", MAX_DATAGRAM_LEN, "datagram payload, bytes"),
        ("MAX_TYPE_CODE", usize::from(MAX_TYPE_CODE), "last type code a sender may use"),
        ("MAX_CORE_TYPE_CODE", usize::from(MAX_CORE_TYPE_CODE), "last core type code"),
        ("MAX_NAME_LEN", MAX_NAME_LEN, "nicknames"),
        ("MAX_TOKEN_LEN", MAX_TOKEN_LEN, "access, resume, reservation tokens"),
        ("MAX_CLIENT_NAME_LEN", MAX_CLIENT_NAME_LEN, "client software name"),
        ("MAX_REASON_LEN", MAX_REASON_LEN, "Bye and Error text"),
        ("MAX_ROOM_CODE_LEN", MAX_ROOM_CODE_LEN, "room codes"),
        ("MAX_ROOM_NAME_LEN", MAX_ROOM_NAME_LEN, "room names"),
        ("MAX_ADDRESS_LEN", MAX_ADDRESS_LEN, "server URLs"),
        ("MAX_CHAT_LEN", MAX_CHAT_LEN, "chat text"),
        ("MAX_ACTIVITY_LEN", MAX_ACTIVITY_LEN, "presence activity"),
        ("MAX_NOTIFICATION_TITLE_LEN", MAX_NOTIFICATION_TITLE_LEN, "notification title"),
        ("MAX_NOTIFICATION_BODY_LEN", MAX_NOTIFICATION_BODY_LEN, "notification body"),
        ("MAX_NOTIFICATION_DATA_LEN", MAX_NOTIFICATION_DATA_LEN, "notification data"),
        ("MAX_SDP_LEN", MAX_SDP_LEN, "SDP offers and answers"),
        ("MAX_ICE_CANDIDATE_LEN", MAX_ICE_CANDIDATE_LEN, "ICE candidates"),
        ("MAX_SDP_MID_LEN", MAX_SDP_MID_LEN, "ICE media ids"),
        ("MAX_HISTORY_JSON_LEN", MAX_HISTORY_JSON_LEN, "history, match and replay JSON text"),
        ("MAX_HISTORY_PAGE", MAX_HISTORY_PAGE, "matches per HistoryRequest"),
        ("MAX_ROOM_PLAYERS", MAX_ROOM_PLAYERS, "players per room"),
        ("MAX_ROOM_LIST", MAX_ROOM_LIST, "rooms per RoomList"),
        ("MAX_INPUT_REDUNDANCY", MAX_INPUT_REDUNDANCY, "inputs per Input message"),
        ("TETRIS_NEXT_QUEUE_LEN", TETRIS_NEXT_QUEUE_LEN, "next-queue pieces"),
        ("TETRIS_BOARD_BYTES", TETRIS_BOARD_BYTES, "packed board bytes"),
        ("MAX_CLEARED_ROWS", MAX_CLEARED_ROWS, "rows per clear"),
    ]
}

/// Capability bits, by name.
pub fn capabilities() -> Vec<(&'static str, u32)> {
    vec![
        ("CAP_DATAGRAMS", CAP_DATAGRAMS),
        ("CAP_DELTAS", CAP_DELTAS),
        ("CAP_SPECTATE", CAP_SPECTATE),
        ("CAP_VOICE", CAP_VOICE),
        ("CAP_CHAT", CAP_CHAT),
    ]
}

/// Joins a doc comment's lines into one paragraph.
pub fn clean_doc(doc: &str) -> String {
    doc.lines().map(str::trim).filter(|line| !line.is_empty()).collect::<Vec<_>>().join(" ")
}

/// The whole protocol as one JSON document.
pub fn schema() -> Value {
    let messages: Vec<Value> = CATALOG
        .iter()
        .map(|info| {
            json!({
                "code": info.code,
                "name": info.name,
                "direction": info.direction.name(),
                "doc": clean_doc(info.doc),
                "fields": fields_json(&(info.fields)()),
            })
        })
        .collect();
    let error_codes: Vec<Value> = ErrorCode::ALL
        .iter()
        .map(|code| json!({ "code": *code as u16, "name": code.name(), "doc": clean_doc(code.description()) }))
        .collect();
    let limits: serde_json::Map<String, Value> =
        limits().into_iter().map(|(name, value, _)| (name.to_owned(), json!(value))).collect();
    let capabilities: serde_json::Map<String, Value> =
        capabilities().into_iter().map(|(name, bit)| (name.to_owned(), json!(bit))).collect();
    json!({
        "protocol_version": PROTOCOL_VERSION,
        "min_protocol_version": MIN_PROTOCOL_VERSION,
        "limits": limits,
        "capabilities": capabilities,
        "error_codes": error_codes,
        "enums": clean_docs(enum_definitions()),
        "structs": clean_docs(struct_definitions()),
        "messages": messages,
    })
}

/// Cleans the "doc" strings of definitions and their fields or values.
fn clean_docs(mut definitions: Vec<Value>) -> Vec<Value> {
    for definition in &mut definitions {
        clean_doc_in_place(definition);
        for key in ["fields", "values"] {
            if let Some(items) = definition.get_mut(key).and_then(Value::as_array_mut) {
                items.iter_mut().for_each(clean_doc_in_place);
            }
        }
    }
    definitions
}

fn clean_doc_in_place(value: &mut Value) {
    if let Some(doc) = value.get("doc").and_then(Value::as_str) {
        let cleaned = clean_doc(doc);
        value["doc"] = json!(cleaned);
    }
}

/// web/proto/schema.js: the schema as an ES module.
pub fn schema_js() -> String {
    let body = serde_json::to_string_pretty(&schema()).expect("schema serializes");
    format!(
        "// Generated from src/proto/wire by `make generated`; do not edit.\n\
         // The Ludus protocol schema that codec.js interprets.\n\
         export const SCHEMA = {body};\n"
    )
}

/// The encoded frame of a message, as hex.
fn frame_hex(message: &Message) -> String {
    let mut out = BytesMut::new();
    encode_message_frame(message, &mut out);
    hex::encode(&out)
}

fn vector(id: String, message: &Message) -> Value {
    json!({
        "id": id,
        "message": message.name(),
        "code": message.code(),
        "fields": message.fields_json(),
        "frame": frame_hex(message),
    })
}

/// Valid vectors: for every message its minimal form (all defaults) and
/// three random forms from fixed seeds, plus hand-written worked examples.
pub fn valid_vectors() -> Value {
    let mut vectors = worked_examples();
    for info in CATALOG {
        let minimal = Message::minimal(info.code).expect("catalog code");
        vectors.push(vector(format!("{}/minimal", info.name), &minimal));
        for seed in 1..=3u64 {
            let mut rng = Rng::new(u64::from(info.code) << 8 | seed);
            let message = Message::random(info.code, &mut rng).expect("catalog code");
            vectors.push(vector(format!("{}/random-{seed}", info.name), &message));
        }
    }
    Value::Array(vectors)
}

/// The examples docs/PROTOCOL.md walks through byte by byte.
pub fn worked_examples() -> Vec<Value> {
    use super::messages::*;
    use super::Text;
    let hello = Message::Hello(Hello {
        min_version: 1,
        max_version: 1,
        capabilities: CAP_DATAGRAMS | CAP_CHAT,
        client_name: Text::from_static("ludus-web/0.1"),
        access_token: None,
        resume_token: None,
        nickname: Some(Text::from_static("Zoë")),
    });
    let input = Message::Input(Input {
        seq: 300,
        client_frame: 1_000,
        inputs: [0b0001, 0b0001, 0].into_iter().collect(),
    });
    let arena = Message::ArenaState(ArenaState {
        tick: 90,
        players: [
            ArenaPlayer { slot: 0, x: 500_000, y: 500_000, last_input_seq: 300 },
            ArenaPlayer { slot: 1, x: 0, y: 1_000_000, last_input_seq: 7 },
        ]
        .into_iter()
        .collect(),
    });
    let chat = Message::ChatSend(ChatSend {
        channel: ChatChannel::Room,
        to_player: 0,
        client_message_id: 1,
        text: Text::from_static("gg"),
    });
    vec![
        vector("example/hello".to_owned(), &hello),
        vector("example/input".to_owned(), &input),
        vector("example/arena-state".to_owned(), &arena),
        vector("example/chat-send".to_owned(), &chat),
    ]
}

/// Invalid vectors: bytes that both codecs must reject, with the reason
/// (`DecodeError::kind`). Each is one complete frame as a stream would carry it.
pub fn invalid_vectors() -> Value {
    let cases: Vec<(&str, &str, &str)> = vec![
        ("empty frame", "00", "empty_frame"),
        ("frame longer than MAX_FRAME_LEN", "81800401", "frame_too_large"),
        ("frame prefix not minimal", "830003", "overlong_varint"),
        ("body shorter than its prefix says", "0503", "truncated"),
        ("type code not minimal", "028000", "overlong_varint"),
        ("unknown core type", "0108", "unknown_type"),
        ("unknown extension type", "028002", "unknown_type"),
        ("Ping with a field cut short", "0403010000", "truncated"),
        ("Ping with a trailing byte", "0e 03 01000000 0200000000000000 ff", "trailing_bytes"),
        ("RoomReady bool of 2", "022202", "invalid_tag"),
        ("RoomListRequest option tag of 2", "021402", "invalid_tag"),
        ("QuickJoin unknown game 9", "021809", "invalid_enum"),
        ("RoomJoinByCode invalid UTF-8", "04 17 02c328", "invalid_utf8"),
        ("RoomJoinByCode longer than MAX_ROOM_CODE_LEN", "02 17 11", "too_long"),
        ("Input with 9 inputs", "0a 30 01000000 02000000 09", "too_many_items"),
        ("Input list count past the bytes present", "0a 30 01000000 02000000 08", "truncated"),
        ("Bye code truncated", "020501", "truncated"),
    ];
    Value::Array(
        cases
            .into_iter()
            .map(|(what, hex_text, error)| {
                json!({ "what": what, "frame": hex_text.replace(' ', ""), "error": error })
            })
            .collect(),
    )
}

/// Decodes an invalid vector's frame, for the checks in tests.
pub fn decode_invalid(frame_hex: &str) -> Result<Message, DecodeError> {
    let bytes = hex::decode(frame_hex).expect("vector hex");
    decode_frame(&Bytes::from(bytes))
}

/// The generated part of docs/PROTOCOL.md: limits, capabilities, error
/// codes, enums, structs and messages.
pub fn catalog_markdown() -> String {
    let mut out = String::new();
    push_limits(&mut out);
    push_error_codes(&mut out);
    push_enums(&mut out);
    push_structs(&mut out);
    push_messages(&mut out);
    out
}

fn push_limits(out: &mut String) {
    out.push_str("### Limits\n\n| name | value | applies to |\n|---|---:|---|\n");
    for (name, value, what) in limits() {
        out.push_str(&format!("| `{name}` | {value} | {what} |\n"));
    }
    out.push_str("\n### Capability bits\n\n| name | bit value |\n|---|---:|\n");
    for (name, bit) in capabilities() {
        out.push_str(&format!("| `{name}` | {bit:#x} |\n"));
    }
    out.push('\n');
}

fn push_error_codes(out: &mut String) {
    out.push_str("### Error codes\n\n| code | name | meaning |\n|---:|---|---|\n");
    for code in ErrorCode::ALL {
        let meaning = clean_doc(code.description());
        out.push_str(&format!("| {} | `{}` | {meaning} |\n", *code as u16, code.name()));
    }
    out.push('\n');
}

fn push_enums(out: &mut String) {
    out.push_str("### Enums\n\nAn enum is its integer representation; any other value is `invalid_enum`.\n\n");
    for definition in clean_docs(enum_definitions()) {
        let name = definition["name"].as_str().unwrap_or_default();
        let repr = definition["repr"].as_str().unwrap_or_default();
        out.push_str(&format!(
            "#### {name} ({repr})\n\n{}\n\n",
            definition["doc"].as_str().unwrap_or("")
        ));
        out.push_str("| value | name | meaning |\n|---:|---|---|\n");
        for value in definition["values"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "| {} | `{}` | {} |\n",
                value["value"],
                value["name"].as_str().unwrap_or_default(),
                value["doc"].as_str().unwrap_or_default()
            ));
        }
        out.push('\n');
    }
}

fn push_structs(out: &mut String) {
    out.push_str("### Structs\n\nA struct is its fields in order, nothing between them.\n\n");
    for definition in clean_docs(struct_definitions()) {
        let name = definition["name"].as_str().unwrap_or_default();
        out.push_str(&format!("#### {name}\n\n{}\n\n", definition["doc"].as_str().unwrap_or("")));
        push_field_table(out, &definition["fields"]);
    }
}

fn push_messages(out: &mut String) {
    out.push_str("### Messages\n\n");
    for info in CATALOG {
        let direction = match info.direction.name() {
            "client" => "client → server",
            "server" => "server → client",
            _ => "either way",
        };
        out.push_str(&format!(
            "#### `{:#04x}` {} ({direction})\n\n{}\n\n",
            info.code,
            info.name,
            clean_doc(info.doc)
        ));
        let fields = fields_json(&(info.fields)());
        if fields.as_array().is_some_and(Vec::is_empty) {
            out.push_str("No fields.\n\n");
        } else {
            push_field_table(out, &fields);
        }
    }
}

fn push_field_table(out: &mut String, fields: &Value) {
    out.push_str("| field | type | meaning |\n|---|---|---|\n");
    for field in fields.as_array().into_iter().flatten() {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            field["name"].as_str().unwrap_or_default(),
            type_name(&field["type"]),
            clean_doc(field["doc"].as_str().unwrap_or_default())
        ));
    }
    out.push('\n');
}

/// A field type as the documentation writes it.
pub fn type_name(schema: &Value) -> String {
    let max = schema["max"].as_u64().unwrap_or(0);
    match schema["kind"].as_str().unwrap_or_default() {
        "text" => format!("text ≤ {max}"),
        "bytes" => format!("bytes ≤ {max}"),
        "list" => format!("list ≤ {max} of {}", type_name(&schema["item"])),
        "option" => format!("option of {}", type_name(&schema["item"])),
        "struct" | "enum" => schema["name"].as_str().unwrap_or_default().to_owned(),
        other => other.to_owned(),
    }
}
