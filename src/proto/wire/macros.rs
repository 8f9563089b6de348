//! Declarative definitions of wire structs, enums and messages.
//!
//! One declaration gives the Rust type, its encoder and decoder, its JSON form
//! (test vectors), its schema (the JavaScript codec and the catalog in
//! docs/PROTOCOL.md) and a random generator (property tests, fuzz corpus), so
//! the codecs and the documentation cannot drift apart. Fields are encoded in
//! declaration order with no tags or padding.

/// A struct whose wire form is its fields in order.
macro_rules! wire_struct {
    (
        $(#[doc = $doc:expr])*
        pub struct $name:ident {
            $( $(#[doc = $field_doc:expr])* $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $( $(#[doc = $field_doc])* pub $field: $ty, )*
        }

        impl $crate::proto::wire::codec::Field for $name {
            const MIN_LEN: usize = 0 $( + <$ty as $crate::proto::wire::codec::Field>::MIN_LEN )*;
            const MAX_LEN: usize = 0 $( + <$ty as $crate::proto::wire::codec::Field>::MAX_LEN )*;

            #[inline]
            #[allow(unused_variables)]
            fn encode(&self, out: &mut bytes::BytesMut) {
                $( $crate::proto::wire::codec::Field::encode(&self.$field, out); )*
            }

            #[inline]
            #[allow(unused_variables)]
            fn decode(
                reader: &mut $crate::proto::wire::codec::Reader<'_>,
            ) -> Result<Self, $crate::proto::wire::error::DecodeError> {
                Ok($name {
                    $( $field: <$ty as $crate::proto::wire::codec::Field>::decode(reader)?, )*
                })
            }

            fn to_json(&self) -> serde_json::Value {
                #[allow(unused_mut)]
                let mut object = serde_json::Map::new();
                $( object.insert(
                    stringify!($field).to_owned(),
                    $crate::proto::wire::codec::Field::to_json(&self.$field),
                ); )*
                serde_json::Value::Object(object)
            }

            fn from_json(value: &serde_json::Value) -> Result<Self, String> {
                $crate::proto::wire::macros::check_object_keys(
                    value, stringify!($name), &[$(stringify!($field)),*],
                )?;
                Ok($name {
                    $( $field: <$ty as $crate::proto::wire::codec::Field>::from_json(&value[stringify!($field)])
                        .map_err(|error| format!("{}.{}: {}", stringify!($name), stringify!($field), error))?, )*
                })
            }

            fn schema() -> serde_json::Value {
                serde_json::json!({ "kind": "struct", "name": stringify!($name) })
            }

            #[allow(unused_variables)]
            fn random(rng: &mut $crate::proto::wire::rng::Rng) -> Self {
                $name {
                    $( $field: <$ty as $crate::proto::wire::codec::Field>::random(rng), )*
                }
            }
        }

        impl $crate::proto::wire::macros::WireStruct for $name {
            const NAME: &'static str = stringify!($name);
            const DOC: &'static str = concat!($($doc, "\n"),*);

            fn fields() -> Vec<$crate::proto::wire::macros::FieldInfo> {
                vec![$( $crate::proto::wire::macros::FieldInfo {
                    name: stringify!($field),
                    doc: concat!($($field_doc, "\n"),*),
                    schema: <$ty as $crate::proto::wire::codec::Field>::schema(),
                } ),*]
            }
        }
    };
}

/// A closed enumeration with a fixed-width integer representation. A value
/// the enum does not define is a decode error.
macro_rules! wire_enum {
    (
        $(#[doc = $doc:expr])*
        pub enum $name:ident : $repr:ty {
            $( $(#[doc = $variant_doc:expr])* $variant:ident = $value:expr => $text:expr ),+ $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr($repr)]
        pub enum $name {
            $( $(#[doc = $variant_doc])* $variant = $value, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn from_repr(value: $repr) -> Option<$name> {
                match value {
                    $( $value => Some($name::$variant), )+
                    _ => None,
                }
            }

            /// The variant's name in JSON and in the documentation.
            pub fn name(self) -> &'static str {
                match self { $( $name::$variant => $text, )+ }
            }

            pub fn from_name(text: &str) -> Option<$name> {
                match text {
                    $( $text => Some($name::$variant), )+
                    _ => None,
                }
            }

            /// The enum's definition in the shared schema.
            pub fn definition() -> serde_json::Value {
                serde_json::json!({
                    "name": stringify!($name),
                    "repr": stringify!($repr),
                    "doc": concat!($($doc, "\n"),*).trim(),
                    "values": [ $( {
                        "name": $text,
                        "value": $value,
                        "doc": concat!($($variant_doc, "\n"),*).trim(),
                    } ),+ ],
                })
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::ALL[0]
            }
        }

        impl $crate::proto::wire::codec::Field for $name {
            const MIN_LEN: usize = std::mem::size_of::<$repr>();
            const MAX_LEN: usize = std::mem::size_of::<$repr>();

            #[inline]
            fn encode(&self, out: &mut bytes::BytesMut) {
                $crate::proto::wire::codec::Field::encode(&(*self as $repr), out);
            }

            #[inline]
            fn decode(
                reader: &mut $crate::proto::wire::codec::Reader<'_>,
            ) -> Result<Self, $crate::proto::wire::error::DecodeError> {
                let value = <$repr as $crate::proto::wire::codec::Field>::decode(reader)?;
                $name::from_repr(value).ok_or($crate::proto::wire::error::DecodeError::InvalidEnum {
                    name: stringify!($name),
                    value: u64::from(value),
                })
            }

            fn to_json(&self) -> serde_json::Value {
                serde_json::json!(self.name())
            }

            fn from_json(value: &serde_json::Value) -> Result<Self, String> {
                value.as_str().and_then($name::from_name)
                    .ok_or_else(|| format!("expected a {} name but found {}", stringify!($name), value))
            }

            fn schema() -> serde_json::Value {
                serde_json::json!({ "kind": "enum", "name": stringify!($name) })
            }

            fn random(rng: &mut $crate::proto::wire::rng::Rng) -> Self {
                $name::ALL[rng.below($name::ALL.len() as u64) as usize]
            }
        }
    };
}

/// The message catalog: each message's type code, direction, fields and
/// documentation. Generates the structs, the [`Message`] enum and `CATALOG`.
macro_rules! messages {
    (
        $(
            $(#[doc = $doc:expr])*
            $code:literal $direction:ident $name:ident {
                $( $(#[doc = $field_doc:expr])* $field:ident : $ty:ty ),* $(,)?
            }
        )*
    ) => {
        $(
            wire_struct! {
                $(#[doc = $doc])*
                pub struct $name { $( $(#[doc = $field_doc])* $field : $ty ),* }
            }

            impl $crate::proto::wire::macros::WireMessage for $name {
                const CODE: u16 = $code;
                const DIRECTION: $crate::proto::wire::macros::Direction =
                    messages!(@direction $direction);
            }

            impl From<$name> for Message {
                fn from(message: $name) -> Message {
                    Message::$name(message)
                }
            }

            // Every message, at its largest, fits in one frame.
            const _: () = assert!(
                $crate::proto::wire::codec::varint_len($code)
                    + <$name as $crate::proto::wire::codec::Field>::MAX_LEN
                    <= $crate::proto::wire::frame::MAX_FRAME_LEN
            );
        )*

        /// Every message of the protocol.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Message {
            $( $(#[doc = $doc])* $name($name), )*
        }

        impl Message {
            /// The message's type code.
            pub fn code(&self) -> u16 {
                match self {
                    $( Message::$name(_) => $code, )*
                }
            }

            /// Who may send the message.
            pub fn direction(&self) -> $crate::proto::wire::macros::Direction {
                match self {
                    $( Message::$name(_) => messages!(@direction $direction), )*
                }
            }

            /// The message's name as the catalog spells it.
            pub fn name(&self) -> &'static str {
                match self {
                    $( Message::$name(_) => stringify!($name), )*
                }
            }

            /// Appends the message body: type code, then fields.
            pub fn encode_body(&self, out: &mut bytes::BytesMut) {
                match self {
                    $( Message::$name(message) =>
                        $crate::proto::wire::frame::encode_body(message, out), )*
                }
            }

            /// Decodes one message body (type code and fields). Every byte of
            /// `body` must belong to the message.
            pub fn decode_body(body: &bytes::Bytes) -> Result<Message, $crate::proto::wire::error::DecodeError> {
                use $crate::proto::wire::codec::Field;
                let mut reader = $crate::proto::wire::codec::Reader::new(body);
                let code = reader.varint()?;
                let message = match code {
                    $( $code => Message::$name($name::decode(&mut reader)?), )*
                    _ => return Err($crate::proto::wire::error::DecodeError::UnknownType { code }),
                };
                match reader.remaining() {
                    0 => Ok(message),
                    count => Err($crate::proto::wire::error::DecodeError::TrailingBytes { count }),
                }
            }

            /// The message's fields as JSON (the test-vector form).
            pub fn fields_json(&self) -> serde_json::Value {
                use $crate::proto::wire::codec::Field;
                match self {
                    $( Message::$name(message) => message.to_json(), )*
                }
            }

            /// A message from its name and its fields as JSON.
            pub fn from_json(name: &str, fields: &serde_json::Value) -> Result<Message, String> {
                use $crate::proto::wire::codec::Field;
                match name {
                    $( stringify!($name) => Ok(Message::$name($name::from_json(fields)?)), )*
                    _ => Err(format!("unknown message name {name}")),
                }
            }

            /// A random message of the given type code, if the code is defined.
            pub fn random(code: u16, rng: &mut $crate::proto::wire::rng::Rng) -> Option<Message> {
                use $crate::proto::wire::codec::Field;
                match code {
                    $( $code => Some(Message::$name($name::random(rng))), )*
                    _ => None,
                }
            }

            /// The message with every field at its default (zero, empty, absent).
            pub fn minimal(code: u16) -> Option<Message> {
                match code {
                    $( $code => Some(Message::$name($name::default())), )*
                    _ => None,
                }
            }
        }

        /// The catalog, in type-code order.
        pub const CATALOG: &[$crate::proto::wire::macros::MessageInfo] = &[
            $( $crate::proto::wire::macros::MessageInfo {
                code: $code,
                name: stringify!($name),
                direction: messages!(@direction $direction),
                doc: concat!($($doc, "\n"),*),
                fields: <$name as $crate::proto::wire::macros::WireStruct>::fields,
                min_len: <$name as $crate::proto::wire::codec::Field>::MIN_LEN,
                max_len: <$name as $crate::proto::wire::codec::Field>::MAX_LEN,
            }, )*
        ];
    };
    (@direction client) => { $crate::proto::wire::macros::Direction::ClientToServer };
    (@direction server) => { $crate::proto::wire::macros::Direction::ServerToClient };
    (@direction both) => { $crate::proto::wire::macros::Direction::Both };
}

use serde_json::Value;

/// Who may send a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ClientToServer,
    ServerToClient,
    Both,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::ClientToServer => "client",
            Direction::ServerToClient => "server",
            Direction::Both => "both",
        }
    }
}

/// One field of a struct or message, for the schema and the documentation.
pub struct FieldInfo {
    pub name: &'static str,
    pub doc: &'static str,
    pub schema: Value,
}

/// A struct encoded as its fields in order.
pub trait WireStruct {
    const NAME: &'static str;
    const DOC: &'static str;
    fn fields() -> Vec<FieldInfo>;
}

/// A message: a struct with a type code and a direction.
pub trait WireMessage: super::codec::Field + WireStruct {
    const CODE: u16;
    const DIRECTION: Direction;
}

/// A catalog entry.
pub struct MessageInfo {
    pub code: u16,
    pub name: &'static str,
    pub direction: Direction,
    pub doc: &'static str,
    pub fields: fn() -> Vec<FieldInfo>,
    /// Smallest and largest encoding of the fields (without the type code).
    pub min_len: usize,
    pub max_len: usize,
}

/// Strict JSON: a struct's object must have exactly its fields.
pub fn check_object_keys(value: &Value, name: &str, fields: &[&str]) -> Result<(), String> {
    let object = value.as_object().ok_or_else(|| format!("{name}: expected an object"))?;
    if let Some(extra) = object.keys().find(|key| !fields.contains(&key.as_str())) {
        return Err(format!("{name}: unknown field {extra}"));
    }
    if let Some(missing) = fields.iter().find(|field| !object.contains_key(**field)) {
        return Err(format!("{name}: missing field {missing}"));
    }
    Ok(())
}

/// The definition of a struct in the shared schema.
pub fn struct_definition<T: WireStruct>() -> Value {
    serde_json::json!({
        "name": T::NAME,
        "doc": T::DOC.trim(),
        "fields": fields_json(&T::fields()),
    })
}

pub fn fields_json(fields: &[FieldInfo]) -> Value {
    Value::Array(
        fields
            .iter()
            .map(|field| {
                serde_json::json!({
                    "name": field.name,
                    "type": field.schema,
                    "doc": field.doc.trim(),
                })
            })
            .collect(),
    )
}
