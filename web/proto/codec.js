// The Ludus binary protocol (version 1) for browsers and Node, without
// dependencies or a build step.
//
// The codec knows no message by heart: it interprets SCHEMA, which is
// generated from the Rust declarations in src/proto/wire/, so both sides
// follow the same catalog. At module load every message, struct and field
// type is compiled once into small encoder and decoder closures; encoding
// and decoding then never look at the JSON schema again.
//
// Wire form (mirrors src/proto/wire/codec.rs and frame.rs):
//   frame    = varint body length (1..=MAX_FRAME_LEN), then the body
//   body     = varint type code, then the fields in declaration order
//   varint   = minimal LEB128, at most 10 bytes
//   u8..i64  = fixed width, little-endian
//   bool     = one byte, 0 or 1
//   option   = tag byte 0 (absent) or 1 (present, then the value)
//   text     = varint byte length (<= max), then UTF-8
//   bytes    = varint length (<= max), then the bytes
//   list     = varint count (<= max), then the items
//   enum     = its integer representation (fixed width)
//   struct   = its fields in order
//
// JavaScript values:
//   u8, u16, u32, i8, i16, i32  number
//   u64, i64                    bigint when decoded; encode accepts a bigint,
//                               a safe-integer number or a decimal string
//   bool                        boolean
//   option                      null when absent, else the value
//   text                        string
//   bytes                       Uint8Array (a copy, never a view of the input)
//   list                        Array
//   enum                        the variant's name (string)
//   struct, message fields      plain object; every field must be present
//                               (options too, as null); extra keys are ignored
//
// Decoding throws only DecodeError (its `kind` is the same as the Rust
// DecodeError::kind for the same bytes). Encoding a value that breaks a
// limit throws LimitError (a RangeError); a value of the wrong type, a
// missing field or an unknown enum name throws TypeError. Either names the
// field, e.g. "TetrisSnapshot.boards[2].cells".

import { SCHEMA } from './schema.js';

export { SCHEMA };

// ---------------------------------------------------------------------------
// Constants

function requireNumber(object, key, where) {
  const value = object?.[key];
  if (typeof value !== 'number') {
    throw new Error(`codec.js: SCHEMA.${where}.${key} is missing; regenerate web/proto/schema.js`);
  }
  return value;
}

/** Every named limit of the protocol (SCHEMA.limits). */
export const LIMITS = Object.freeze({ ...SCHEMA.limits });
/** Capability bits by name (SCHEMA.capabilities). */
export const CAPABILITIES = Object.freeze({ ...SCHEMA.capabilities });
/** Protocol error codes, name -> code (the u16 in Error and Bye). */
export const ErrorCodes = Object.freeze(
  Object.fromEntries(SCHEMA.error_codes.map((entry) => [entry.name, entry.code])),
);
export const PROTOCOL_VERSION = SCHEMA.protocol_version;
export const MIN_PROTOCOL_VERSION = SCHEMA.min_protocol_version;
/** Largest frame body (type code and fields) in bytes. */
export const MAX_FRAME_LEN = requireNumber(SCHEMA.limits, 'MAX_FRAME_LEN', 'limits');
/** Largest datagram payload (whole frames, prefixes included) in bytes. */
export const MAX_DATAGRAM_LEN = requireNumber(SCHEMA.limits, 'MAX_DATAGRAM_LEN', 'limits');
/** Type codes up to here are core; a receiver closes on an unknown one.
 * Codes above are optional extensions a receiver may skip when unknown. */
export const MAX_CORE_TYPE_CODE = requireNumber(SCHEMA.limits, 'MAX_CORE_TYPE_CODE', 'limits');

/** The longest LEB128 encoding of a u64. */
const VARINT_MAX_LEN = 10;

/** The number of bytes of the minimal varint encoding of `value` (< 2^53). */
function varintLen(value) {
  let len = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    len += 1;
  }
  return len;
}

/** The longest frame length prefix: 3 bytes for 65 536. */
const MAX_FRAME_PREFIX_LEN = varintLen(MAX_FRAME_LEN);

// ---------------------------------------------------------------------------
// Errors

/** Every DecodeError kind, as the Rust DecodeError::kind spells it. */
export const DECODE_ERROR_KINDS = Object.freeze([
  'truncated',
  'overlong_varint',
  'too_long',
  'too_many_items',
  'invalid_utf8',
  'invalid_tag',
  'invalid_enum',
  'unknown_type',
  'trailing_bytes',
  'empty_frame',
  'frame_too_large',
  'datagram_too_large',
]);

function describe(kind, details) {
  switch (kind) {
    case 'truncated':
      return `truncated: needed ${details.needed} more bytes`;
    case 'overlong_varint':
      return 'overlong or non-minimal varint';
    case 'too_long':
      return `length ${details.len} exceeds limit ${details.max}`;
    case 'too_many_items':
      return `list of ${details.count} items exceeds limit ${details.max}`;
    case 'invalid_utf8':
      return 'invalid UTF-8 in a string field';
    case 'invalid_tag':
      return `invalid tag ${details.tag} (expected 0 or 1)`;
    case 'invalid_enum':
      return `invalid value ${details.value} for enum ${details.enum}`;
    case 'unknown_type':
      return `unknown message type 0x${details.code.toString(16)}`;
    case 'trailing_bytes':
      return `${details.count} trailing bytes after the message`;
    case 'empty_frame':
      return 'empty frame';
    case 'frame_too_large':
      return `frame of ${details.len} bytes exceeds limit ${details.max}`;
    case 'datagram_too_large':
      return `datagram of ${details.len} bytes exceeds limit ${details.max}`;
    default:
      return kind;
  }
}

/**
 * Bytes that do not decode. `kind` is one of DECODE_ERROR_KINDS; further
 * properties depend on it (needed, len, max, count, tag, enum, value, code).
 * For `unknown_type`, `code` is the type code (a number, or a bigint past
 * 2^53) and the frame was consumed: a receiver may skip extension codes
 * (code > MAX_CORE_TYPE_CODE) and must close on core ones.
 */
export class DecodeError extends Error {
  constructor(kind, details = {}) {
    super(describe(kind, details));
    this.name = 'DecodeError';
    this.kind = kind;
    Object.assign(this, details);
  }

  /** The protocol error code the peer that sent these bytes is told
   * (mirrors DecodeError::code in Rust). */
  get errorCode() {
    switch (this.kind) {
      case 'unknown_type':
        return ErrorCodes.unknown_message;
      case 'frame_too_large':
      case 'datagram_too_large':
        return ErrorCodes.frame_too_large;
      default:
        return ErrorCodes.malformed;
    }
  }
}

/** A value that breaks a wire limit (too long, too many items, out of range).
 * `field` names the field, `detail` says what is wrong. */
export class LimitError extends RangeError {
  constructor(message) {
    super(message);
    this.name = 'LimitError';
  }
}

function fieldError(ErrorClass, field, detail) {
  const error = new ErrorClass(`${field}: ${detail}`);
  error.field = field;
  error.detail = detail;
  return error;
}

const limitError = (field, detail) => fieldError(LimitError, field, detail);
const typeError = (field, detail) => fieldError(TypeError, field, detail);

function show(value) {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return value.constructor?.name ?? 'an object';
  return String(value);
}

// ---------------------------------------------------------------------------
// Reading

class Reader {
  constructor(bytes, pos, end) {
    this.bytes = bytes;
    this.pos = pos;
    this.end = end;
    this.view = null;
  }

  dataView() {
    const bytes = this.bytes;
    return (this.view ??= new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }
}

function truncated(reader, count) {
  return new DecodeError('truncated', { needed: count - (reader.end - reader.pos) });
}

/** Reads a minimal LEB128 varint (parse_varint in codec.rs). The result is
 * exact below 2^53 and approximate above; callers only compare such values
 * with small limits (see exactVarint for reporting them). */
function readVarint(reader) {
  const bytes = reader.bytes;
  const pos = reader.pos;
  const available = reader.end - pos;
  if (available > 0 && bytes[pos] < 0x80) {
    reader.pos = pos + 1;
    return bytes[pos];
  }
  const stop = Math.min(available, VARINT_MAX_LEN);
  let value = 0;
  let scale = 1;
  for (let index = 0; index < stop; index++) {
    const byte = bytes[pos + index];
    const payload = byte & 0x7f;
    // The tenth byte holds only the top bit of a u64.
    if (index === VARINT_MAX_LEN - 1 && payload > 1) throw new DecodeError('overlong_varint');
    value += payload * scale;
    scale *= 0x80;
    if (byte < 0x80) {
      // A zero final byte after the first means a shorter encoding existed.
      if (index > 0 && byte === 0) throw new DecodeError('overlong_varint');
      reader.pos = pos + index + 1;
      return value;
    }
  }
  if (available >= VARINT_MAX_LEN) throw new DecodeError('overlong_varint');
  throw new DecodeError('truncated', { needed: 1 });
}

/** The exact value of the (already validated) varint at `pos`: a number when
 * it is a safe integer, else a bigint. */
function exactVarint(bytes, pos) {
  let value = 0n;
  for (let index = 0; index < VARINT_MAX_LEN; index++) {
    const byte = bytes[pos + index];
    value |= BigInt(byte & 0x7f) << BigInt(7 * index);
    if (byte < 0x80) break;
  }
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeUtf8(bytes, start, end) {
  if (end - start <= 32) {
    let ascii = true;
    for (let index = start; index < end; index++) {
      if (bytes[index] >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return String.fromCharCode.apply(null, bytes.subarray(start, end));
  }
  try {
    return utf8Decoder.decode(bytes.subarray(start, end));
  } catch {
    throw new DecodeError('invalid_utf8');
  }
}

/** A length prefix for at most `max` bytes, checked against the limit and
 * then against the bytes present (Reader::length in codec.rs). */
function readLength(reader, max) {
  const len = readVarint(reader);
  if (len > max) throw new DecodeError('too_long', { len, max });
  if (reader.end - reader.pos < len) throw truncated(reader, len);
  return len;
}

// ---------------------------------------------------------------------------
// Writing

class Writer {
  constructor(capacity) {
    this.buf = new Uint8Array(capacity);
    this.view = new DataView(this.buf.buffer);
    this.pos = 0;
  }

  /** Makes room for `count` more bytes. */
  ensure(count) {
    const needed = this.pos + count;
    if (needed <= this.buf.length) return;
    let capacity = this.buf.length * 2;
    while (capacity < needed) capacity *= 2;
    const buf = new Uint8Array(capacity);
    buf.set(this.buf.subarray(0, this.pos));
    this.buf = buf;
    this.view = new DataView(buf.buffer);
  }
}

/** Writes a minimal varint of `value` (< 2^32) at `pos`; returns the end. */
function putVarint(buf, pos, value) {
  while (value >= 0x80) {
    buf[pos++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  buf[pos++] = value;
  return pos;
}

function writeVarint(writer, value) {
  writer.ensure(VARINT_MAX_LEN);
  writer.pos = putVarint(writer.buf, writer.pos, value);
}

const utf8Encoder = new TextEncoder();

/** False if `text` holds a lone UTF-16 surrogate, which UTF-8 cannot carry
 * (TextEncoder would silently replace it with U+FFFD). */
function isWellFormed(text) {
  if (typeof text.isWellFormed === 'function') return text.isWellFormed();
  for (let index = 0; index < text.length; index++) {
    const unit = text.charCodeAt(index);
    if (unit < 0xd800 || unit > 0xdfff) continue;
    const next = text.charCodeAt(index + 1);
    if (unit > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) return false;
    index += 1;
  }
  return true;
}

function asBytes(value) {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return null;
}

// ---------------------------------------------------------------------------
// Compiling the schema

const INT_WIDTH = { u8: 1, u16: 2, u32: 4, u64: 8, i8: 1, i16: 2, i32: 4, i64: 8 };

const structDefinitions = new Map(SCHEMA.structs.map((definition) => [definition.name, definition]));
const enumDefinitions = new Map(SCHEMA.enums.map((definition) => [definition.name, definition]));

function lookup(map, name, what) {
  const definition = map.get(name);
  if (definition === undefined) throw new Error(`codec.js: SCHEMA has no ${what} named ${name}`);
  return definition;
}

function unsupported(type) {
  return new Error(`codec.js: unsupported schema type ${JSON.stringify(type)}; update codec.js`);
}

/** The fewest bytes an encoding of `type` takes (Field::MIN_LEN in Rust). */
function minLen(type, visiting = new Set()) {
  switch (type.kind) {
    case 'bool':
    case 'option':
    case 'text':
    case 'bytes':
    case 'list':
      return 1;
    case 'enum':
      return intWidth(lookup(enumDefinitions, type.name, 'enum').repr);
    case 'struct': {
      if (visiting.has(type.name)) throw new Error(`codec.js: struct ${type.name} contains itself`);
      visiting.add(type.name);
      const fields = lookup(structDefinitions, type.name, 'struct').fields;
      const total = fields.reduce((sum, field) => sum + minLen(field.type, visiting), 0);
      visiting.delete(type.name);
      return total;
    }
    default:
      return intWidth(type.kind, type);
  }
}

function intWidth(kind, type = { kind }) {
  const width = INT_WIDTH[kind];
  if (width === undefined) throw unsupported(type);
  return width;
}

// ---- Decoders: (reader) -> value

function intDecoder(kind) {
  switch (kind) {
    case 'u8':
      return (r) => {
        if (r.pos >= r.end) throw truncated(r, 1);
        return r.bytes[r.pos++];
      };
    case 'i8':
      return (r) => {
        if (r.pos >= r.end) throw truncated(r, 1);
        return (r.bytes[r.pos++] << 24) >> 24;
      };
    case 'u16':
      return (r) => {
        const p = r.pos;
        if (r.end - p < 2) throw truncated(r, 2);
        const b = r.bytes;
        r.pos = p + 2;
        return b[p] | (b[p + 1] << 8);
      };
    case 'i16':
      return (r) => {
        const p = r.pos;
        if (r.end - p < 2) throw truncated(r, 2);
        const b = r.bytes;
        r.pos = p + 2;
        return ((b[p] | (b[p + 1] << 8)) << 16) >> 16;
      };
    case 'u32':
      return (r) => {
        const p = r.pos;
        if (r.end - p < 4) throw truncated(r, 4);
        const b = r.bytes;
        r.pos = p + 4;
        return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
      };
    case 'i32':
      return (r) => {
        const p = r.pos;
        if (r.end - p < 4) throw truncated(r, 4);
        const b = r.bytes;
        r.pos = p + 4;
        return b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24);
      };
    case 'u64':
      return (r) => {
        const p = r.pos;
        if (r.end - p < 8) throw truncated(r, 8);
        r.pos = p + 8;
        return r.dataView().getBigUint64(p, true);
      };
    case 'i64':
      return (r) => {
        const p = r.pos;
        if (r.end - p < 8) throw truncated(r, 8);
        r.pos = p + 8;
        return r.dataView().getBigInt64(p, true);
      };
    default:
      throw unsupported({ kind });
  }
}

const structDecoders = new Map();

function compileDecoder(type) {
  switch (type.kind) {
    case 'bool':
      return (r) => {
        if (r.pos >= r.end) throw truncated(r, 1);
        const tag = r.bytes[r.pos++];
        if (tag === 0) return false;
        if (tag === 1) return true;
        throw new DecodeError('invalid_tag', { tag });
      };
    case 'option': {
      const item = compileDecoder(type.item);
      return (r) => {
        if (r.pos >= r.end) throw truncated(r, 1);
        const tag = r.bytes[r.pos++];
        if (tag === 0) return null;
        if (tag === 1) return item(r);
        throw new DecodeError('invalid_tag', { tag });
      };
    }
    case 'text': {
      const max = type.max;
      return (r) => {
        const len = readLength(r, max);
        const start = r.pos;
        r.pos = start + len;
        return decodeUtf8(r.bytes, start, start + len);
      };
    }
    case 'bytes': {
      const max = type.max;
      return (r) => {
        const len = readLength(r, max);
        const start = r.pos;
        r.pos = start + len;
        return r.bytes.slice(start, start + len);
      };
    }
    case 'list': {
      const max = type.max;
      const itemMinLen = minLen(type.item);
      const item = compileDecoder(type.item);
      return (r) => {
        const count = readVarint(r);
        if (count > max) throw new DecodeError('too_many_items', { count, max });
        if (r.end - r.pos < count * itemMinLen) throw truncated(r, count * itemMinLen);
        const items = new Array(count);
        for (let index = 0; index < count; index++) items[index] = item(r);
        return items;
      };
    }
    case 'enum': {
      const definition = lookup(enumDefinitions, type.name, 'enum');
      const repr = intDecoder(definition.repr);
      const wide = intWidth(definition.repr) === 8;
      const names = new Map(definition.values.map((v) => [wide ? BigInt(v.value) : v.value, v.name]));
      const enumName = definition.name;
      return (r) => {
        const value = repr(r);
        const name = names.get(value);
        if (name === undefined) throw new DecodeError('invalid_enum', { enum: enumName, value });
        return name;
      };
    }
    case 'struct': {
      let decoder = structDecoders.get(type.name);
      if (decoder === undefined) {
        decoder = structDecoder(lookup(structDefinitions, type.name, 'struct').fields);
        structDecoders.set(type.name, decoder);
      }
      return decoder;
    }
    default:
      return intDecoder(type.kind);
  }
}

function structDecoder(fields) {
  const names = fields.map((field) => field.name);
  const decoders = fields.map((field) => compileDecoder(field.type));
  const count = names.length;
  // Copies of a template with every key already in place share one hidden
  // class, which makes filling them in much cheaper than growing `{}`.
  const template = Object.fromEntries(names.map((name) => [name, null]));
  return (r) => {
    const value = { ...template };
    for (let index = 0; index < count; index++) value[names[index]] = decoders[index](r);
    return value;
  };
}

// ---- Encoders: (writer, value) -> void; `path` names the field in errors.

function intEncoder(kind, path) {
  const check = (value, min, max) => {
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      throw typeError(path, `expected an integer (${kind}) but found ${show(value)}`);
    }
    throw limitError(path, `${value} is out of range for ${kind} (${min} to ${max})`);
  };
  switch (kind) {
    case 'u8':
      return (w, v) => {
        if (typeof v !== 'number' || (v & 0xff) !== v) check(v, 0, 0xff);
        w.ensure(1);
        w.buf[w.pos++] = v;
      };
    case 'i8':
      return (w, v) => {
        if (typeof v !== 'number' || (v << 24) >> 24 !== v) check(v, -0x80, 0x7f);
        w.ensure(1);
        w.buf[w.pos++] = v;
      };
    case 'u16':
      return (w, v) => {
        if (typeof v !== 'number' || (v & 0xffff) !== v) check(v, 0, 0xffff);
        w.ensure(2);
        const b = w.buf;
        const p = w.pos;
        b[p] = v;
        b[p + 1] = v >> 8;
        w.pos = p + 2;
      };
    case 'i16':
      return (w, v) => {
        if (typeof v !== 'number' || (v << 16) >> 16 !== v) check(v, -0x8000, 0x7fff);
        w.ensure(2);
        const b = w.buf;
        const p = w.pos;
        b[p] = v;
        b[p + 1] = v >> 8;
        w.pos = p + 2;
      };
    case 'u32':
    case 'i32': {
      const unsigned = kind === 'u32';
      return (w, v) => {
        if (typeof v !== 'number' || (unsigned ? v >>> 0 !== v : (v | 0) !== v)) {
          check(v, unsigned ? 0 : -0x80000000, unsigned ? 0xffffffff : 0x7fffffff);
        }
        w.ensure(4);
        const b = w.buf;
        const p = w.pos;
        b[p] = v;
        b[p + 1] = v >> 8;
        b[p + 2] = v >> 16;
        b[p + 3] = v >> 24;
        w.pos = p + 4;
      };
    }
    case 'u64':
    case 'i64': {
      const signed = kind === 'i64';
      const min = signed ? -(1n << 63n) : 0n;
      const max = signed ? (1n << 63n) - 1n : (1n << 64n) - 1n;
      return (w, v) => {
        w.ensure(8);
        const p = w.pos;
        if (typeof v === 'number' && Number.isSafeInteger(v) && (signed || v >= 0)) {
          // Two 32-bit halves; the byte stores take them modulo 256.
          const high = Math.floor(v / 0x100000000);
          const low = v - high * 0x100000000;
          const b = w.buf;
          b[p] = low;
          b[p + 1] = low >>> 8;
          b[p + 2] = low >>> 16;
          b[p + 3] = low >>> 24;
          b[p + 4] = high;
          b[p + 5] = high >> 8;
          b[p + 6] = high >> 16;
          b[p + 7] = high >> 24;
          w.pos = p + 8;
          return;
        }
        let big;
        if (typeof v === 'bigint') {
          big = v;
        } else if (typeof v === 'string' && /^-?[0-9]+$/.test(v)) {
          big = BigInt(v);
        } else if (typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v)) {
          throw limitError(path, `${v} is not a safe integer: pass a bigint or a decimal string for ${kind}`);
        } else if (typeof v !== 'number' || !Number.isInteger(v)) {
          throw typeError(path, `expected a bigint, an integer or a decimal string (${kind}) but found ${show(v)}`);
        } else {
          big = BigInt(v);
        }
        if (big < min || big > max) throw limitError(path, `${big} is out of range for ${kind} (${min} to ${max})`);
        if (signed) w.view.setBigInt64(p, big, true);
        else w.view.setBigUint64(p, big, true);
        w.pos = p + 8;
      };
    }
    default:
      throw unsupported({ kind });
  }
}

function textEncoder(max, path) {
  const maxPrefix = varintLen(max);
  return (w, v) => {
    if (typeof v !== 'string') throw typeError(path, `expected a string but found ${show(v)}`);
    const units = v.length;
    // UTF-8 takes at least one byte per UTF-16 code unit.
    if (units > max) {
      throw limitError(path, `text of ${utf8Encoder.encode(v).length} UTF-8 bytes exceeds limit ${max}`);
    }
    w.ensure(maxPrefix + units * 3);
    const buf = w.buf;
    const start = w.pos;
    if (units < 0x80) {
      // Fast path: short ASCII text, one prefix byte.
      let index = 0;
      for (; index < units; index++) {
        const unit = v.charCodeAt(index);
        if (unit >= 0x80) break;
        buf[start + 1 + index] = unit;
      }
      if (index === units) {
        buf[start] = units;
        w.pos = start + 1 + units;
        return;
      }
    }
    if (!isWellFormed(v)) throw typeError(path, 'text contains a lone UTF-16 surrogate (not encodable as UTF-8)');
    // Encode after room for the longest possible prefix, then close the gap.
    const prefixRoom = varintLen(Math.min(units * 3, max));
    const { written } = utf8Encoder.encodeInto(v, buf.subarray(start + prefixRoom));
    if (written > max) throw limitError(path, `text of ${written} UTF-8 bytes exceeds limit ${max}`);
    const prefixLen = varintLen(written);
    if (prefixLen < prefixRoom) {
      buf.copyWithin(start + prefixLen, start + prefixRoom, start + prefixRoom + written);
    }
    putVarint(buf, start, written);
    w.pos = start + prefixLen + written;
  };
}

function bytesEncoder(max, path) {
  return (w, v) => {
    const bytes = asBytes(v);
    if (bytes === null) throw typeError(path, `expected a Uint8Array but found ${show(v)}`);
    if (bytes.length > max) throw limitError(path, `${bytes.length} bytes exceed limit ${max}`);
    writeVarint(w, bytes.length);
    w.ensure(bytes.length);
    w.buf.set(bytes, w.pos);
    w.pos += bytes.length;
  };
}

function listEncoder(type, path) {
  const max = type.max;
  const itemPath = `${path}[]`;
  const item = compileEncoder(type.item, itemPath);
  return (w, v) => {
    if (!Array.isArray(v)) throw typeError(path, `expected an array but found ${show(v)}`);
    const count = v.length;
    if (count > max) throw limitError(path, `list of ${count} items exceeds limit ${max}`);
    writeVarint(w, count);
    let index = 0;
    try {
      for (; index < count; index++) item(w, v[index]);
    } catch (error) {
      // Name the item: "boards[]" becomes "boards[2]".
      if (typeof error?.field === 'string' && error.field.startsWith(itemPath)) {
        error.field = `${path}[${index}]${error.field.slice(itemPath.length)}`;
        error.message = `${error.field}: ${error.detail}`;
      }
      throw error;
    }
  };
}

function enumEncoder(type, path) {
  const definition = lookup(enumDefinitions, type.name, 'enum');
  const repr = intEncoder(definition.repr, path);
  const wide = intWidth(definition.repr) === 8;
  const values = new Map(definition.values.map((v) => [v.name, wide ? BigInt(v.value) : v.value]));
  const names = definition.values.map((v) => v.name).join(', ');
  return (w, v) => {
    const value = values.get(v);
    if (value === undefined) {
      throw typeError(path, `${show(v)} is not a ${definition.name} (expected one of ${names})`);
    }
    repr(w, value);
  };
}

function structEncoder(fields, path) {
  const names = fields.map((field) => field.name);
  const encoders = fields.map((field) => compileEncoder(field.type, `${path}.${field.name}`));
  const count = names.length;
  return (w, v) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      throw typeError(path, `expected an object but found ${show(v)}`);
    }
    for (let index = 0; index < count; index++) {
      const value = v[names[index]];
      if (value === undefined) {
        throw typeError(`${path}.${names[index]}`, 'missing field (an absent option is null)');
      }
      encoders[index](w, value);
    }
  };
}

function compileEncoder(type, path) {
  switch (type.kind) {
    case 'bool':
      return (w, v) => {
        if (typeof v !== 'boolean') throw typeError(path, `expected a boolean but found ${show(v)}`);
        w.ensure(1);
        w.buf[w.pos++] = v ? 1 : 0;
      };
    case 'option': {
      const item = compileEncoder(type.item, path);
      return (w, v) => {
        w.ensure(1);
        if (v === null) {
          w.buf[w.pos++] = 0;
        } else {
          w.buf[w.pos++] = 1;
          item(w, v);
        }
      };
    }
    case 'text':
      return textEncoder(type.max, path);
    case 'bytes':
      return bytesEncoder(type.max, path);
    case 'list':
      return listEncoder(type, path);
    case 'enum':
      return enumEncoder(type, path);
    case 'struct':
      return structEncoder(lookup(structDefinitions, type.name, 'struct').fields, path);
    default:
      return intEncoder(type.kind, path);
  }
}

// ---- Messages

const messagesByName = new Map();
const messagesByCode = new Map();

for (const message of SCHEMA.messages) {
  if (messagesByName.has(message.name) || messagesByCode.has(message.code)) {
    throw new Error(`codec.js: SCHEMA declares message ${message.name} (code ${message.code}) twice`);
  }
  // Catches a struct that contains itself before compiling anything.
  for (const field of message.fields) minLen(field.type);
  const entry = {
    name: message.name,
    code: message.code,
    encodeFields: structEncoder(message.fields, message.name),
    decodeFields: structDecoder(message.fields),
  };
  messagesByName.set(message.name, entry);
  messagesByCode.set(message.code, entry);
}

function messageEntry(name) {
  const entry = messagesByName.get(name);
  if (entry === undefined) throw new TypeError(`unknown message name ${show(name)}`);
  return entry;
}

/** The type code of the message called `name`; TypeError if there is none. */
export function messageCode(name) {
  return messageEntry(name).code;
}

/** The name of the message with type code `code`, or undefined. */
export function messageName(code) {
  return messagesByCode.get(code)?.name;
}

// ---------------------------------------------------------------------------
// Encoding

const sharedWriter = new Writer(2048);
let sharedWriterBusy = false;

/** Runs `fill(writer)` on the shared growable buffer and returns a copy of
 * what it wrote. A fresh writer is used if a getter re-enters the codec. */
function encodeWith(fill) {
  const writer = sharedWriterBusy ? new Writer(256) : sharedWriter;
  const shared = writer === sharedWriter;
  sharedWriterBusy = true;
  try {
    writer.pos = 0;
    fill(writer);
    return writer.buf.slice(0, writer.pos);
  } finally {
    if (shared) sharedWriterBusy = false;
  }
}

function writeBody(writer, name, fields) {
  const entry = messageEntry(name);
  const start = writer.pos;
  writeVarint(writer, entry.code);
  entry.encodeFields(writer, fields);
  const len = writer.pos - start;
  if (len > MAX_FRAME_LEN) throw limitError(name, `body of ${len} bytes exceeds MAX_FRAME_LEN ${MAX_FRAME_LEN}`);
  return len;
}

/** A message body: varint type code, then the fields. */
export function encodeBody(name, fields = {}) {
  return encodeWith((writer) => writeBody(writer, name, fields));
}

/** One frame: varint body length, then the body. */
export function encodeFrame(name, fields = {}) {
  return encodeWith((writer) => {
    // One byte is reserved for the prefix; longer bodies move right (like Rust).
    writer.ensure(1);
    writer.pos = 1;
    const len = writeBody(writer, name, fields);
    const prefixLen = varintLen(len);
    if (prefixLen > 1) {
      writer.ensure(prefixLen - 1);
      writer.buf.copyWithin(prefixLen, 1, writer.pos);
      writer.pos += prefixLen - 1;
    }
    putVarint(writer.buf, 0, len);
  });
}

// ---------------------------------------------------------------------------
// Decoding

function inputBytes(input) {
  const bytes = asBytes(input);
  if (bytes === null) throw new TypeError(`expected a Uint8Array but found ${show(input)}`);
  return bytes;
}

function checkFrameLength(len) {
  if (len === 0) throw new DecodeError('empty_frame');
  if (len > MAX_FRAME_LEN) throw new DecodeError('frame_too_large', { len, max: MAX_FRAME_LEN });
  return len;
}

/** Decodes the body occupying bytes[start, end). */
function decodeBodyAt(bytes, start, end) {
  const reader = new Reader(bytes, start, end);
  const code = readVarint(reader);
  const entry = messagesByCode.get(code);
  if (entry === undefined) throw new DecodeError('unknown_type', { code: exactVarint(bytes, start) });
  const fields = entry.decodeFields(reader);
  if (reader.pos !== end) throw new DecodeError('trailing_bytes', { count: end - reader.pos });
  return { name: entry.name, code: entry.code, fields };
}

/** Reads one frame's prefix from `reader` and skips its body; returns the
 * body's start (the body ends at reader.pos). */
function takeFrame(reader) {
  const len = checkFrameLength(readVarint(reader));
  if (reader.end - reader.pos < len) throw truncated(reader, len);
  const start = reader.pos;
  reader.pos = start + len;
  return start;
}

/** Decodes one message body (type code and fields): {name, code, fields}. */
export function decodeBody(input) {
  const bytes = inputBytes(input);
  return decodeBodyAt(bytes, 0, bytes.length);
}

/** Decodes exactly one whole frame (prefix and body): {name, code, fields}. */
export function decodeFrame(input) {
  const bytes = inputBytes(input);
  const reader = new Reader(bytes, 0, bytes.length);
  const start = takeFrame(reader);
  if (reader.pos !== bytes.length) throw new DecodeError('trailing_bytes', { count: bytes.length - reader.pos });
  return decodeBodyAt(bytes, start, reader.pos);
}

/** The messages of one datagram: one or more whole frames, at most
 * MAX_DATAGRAM_LEN bytes in all. Throws on the first bad frame. */
export function datagramMessages(input) {
  const bytes = inputBytes(input);
  if (bytes.length > MAX_DATAGRAM_LEN) {
    throw new DecodeError('datagram_too_large', { len: bytes.length, max: MAX_DATAGRAM_LEN });
  }
  // A datagram carries at least one frame.
  if (bytes.length === 0) {
    throw new DecodeError('empty_frame', {});
  }
  const reader = new Reader(bytes, 0, bytes.length);
  const messages = [];
  while (reader.pos < reader.end) {
    const start = takeFrame(reader);
    messages.push(decodeBodyAt(bytes, start, reader.pos));
  }
  return messages;
}

/** Packs messages ({name, fields}) as frames into as few datagrams as the
 * greedy in-order packing allows, each at most `maxLen` bytes (the transport
 * may allow less than MAX_DATAGRAM_LEN). A message whose frame alone exceeds
 * `maxLen` throws LimitError. */
export function packDatagrams(messages, maxLen = MAX_DATAGRAM_LEN) {
  if (!Number.isInteger(maxLen) || maxLen < 1 || maxLen > MAX_DATAGRAM_LEN) {
    throw new RangeError(`datagram length ${maxLen} is not within 1..=${MAX_DATAGRAM_LEN}`);
  }
  const groups = [];
  let current = [];
  let currentLen = 0;
  for (const message of messages) {
    const frame = encodeFrame(message.name, message.fields);
    if (frame.length > maxLen) {
      throw limitError(message.name, `frame of ${frame.length} bytes does not fit in a datagram of ${maxLen}`);
    }
    if (currentLen + frame.length > maxLen) {
      groups.push([current, currentLen]);
      current = [];
      currentLen = 0;
    }
    current.push(frame);
    currentLen += frame.length;
  }
  if (current.length > 0) groups.push([current, currentLen]);
  return groups.map(([frames, len]) => {
    if (frames.length === 1) return frames[0];
    const datagram = new Uint8Array(len);
    let pos = 0;
    for (const frame of frames) {
      datagram.set(frame, pos);
      pos += frame.length;
    }
    return datagram;
  });
}

/**
 * Splits a reliable byte stream (WebSocket binary messages, a WebTransport
 * stream) into messages, whatever the chunking.
 *
 * A length prefix over MAX_FRAME_LEN is rejected as soon as it is readable
 * (three bytes suffice), so a peer cannot make the decoder wait for more than
 * one frame's worth of data. A bad prefix (empty_frame, frame_too_large,
 * overlong_varint) breaks the stream: next() throws it again every time. A
 * bad body throws once and its frame is consumed, so the caller may go on
 * (e.g. skip an unknown extension type, code > MAX_CORE_TYPE_CODE).
 */
export class FrameDecoder {
  #buf = new Uint8Array(4096);
  #start = 0;
  #end = 0;
  #error = null;

  /** Appends received bytes (Uint8Array, ArrayBuffer or another view). */
  push(chunk) {
    const bytes = inputBytes(chunk);
    const count = bytes.length;
    if (count === 0) return;
    if (this.#end + count > this.#buf.length) {
      const live = this.#end - this.#start;
      if (live + count <= this.#buf.length) {
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        let capacity = this.#buf.length * 2;
        while (capacity < live + count) capacity *= 2;
        const buf = new Uint8Array(capacity);
        buf.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = buf;
      }
      this.#start = 0;
      this.#end = live;
    }
    this.#buf.set(bytes, this.#end);
    this.#end += count;
  }

  /** Bytes received but not yet returned as messages. */
  get buffered() {
    return this.#end - this.#start;
  }

  /** The next complete message ({name, code, fields}), or null if more bytes
   * are needed. Throws DecodeError (see the class comment). */
  next() {
    if (this.#error !== null) throw this.#error;
    const buf = this.#buf;
    const start = this.#start;
    const available = this.#end - start;
    if (available === 0) return null;
    // The length prefix, from at most MAX_FRAME_PREFIX_LEN bytes.
    const head = Math.min(available, MAX_FRAME_PREFIX_LEN);
    let len = 0;
    let scale = 1;
    let prefixLen = 0;
    for (let index = 0; index < head; index++) {
      const byte = buf[start + index];
      if (index === VARINT_MAX_LEN - 1 && (byte & 0x7f) > 1) return this.#fail(new DecodeError('overlong_varint'));
      len += (byte & 0x7f) * scale;
      scale *= 0x80;
      if (byte < 0x80) {
        if (index > 0 && byte === 0) return this.#fail(new DecodeError('overlong_varint'));
        prefixLen = index + 1;
        break;
      }
    }
    if (prefixLen === 0) {
      if (head < MAX_FRAME_PREFIX_LEN) return null;
      // Prefix bytes that do not end a varint already exceed the limit.
      // Report the least such a prefix can encode.
      const len = 2 ** (7 * MAX_FRAME_PREFIX_LEN);
      return this.#fail(new DecodeError('frame_too_large', { len, max: MAX_FRAME_LEN }));
    }
    try {
      checkFrameLength(len);
    } catch (error) {
      return this.#fail(error);
    }
    if (available < prefixLen + len) return null;
    const bodyStart = start + prefixLen;
    this.#start = bodyStart + len;
    if (this.#start === this.#end) {
      this.#start = 0;
      this.#end = 0;
    }
    // Decoded values never share the buffer, so it may be reused afterwards.
    return decodeBodyAt(buf, bodyStart, bodyStart + len);
  }

  #fail(error) {
    this.#error = error;
    throw error;
  }
}
