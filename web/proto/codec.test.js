// Tests of the JavaScript protocol codec against the vectors generated from
// the Rust declarations. Run with `node --test web/proto/` (or `npm test` in web/).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import {
  CAPABILITIES,
  DECODE_ERROR_KINDS,
  DecodeError,
  ErrorCodes,
  FrameDecoder,
  LIMITS,
  LimitError,
  MAX_CORE_TYPE_CODE,
  MAX_DATAGRAM_LEN,
  MAX_FRAME_LEN,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  SCHEMA,
  datagramMessages,
  decodeBody,
  decodeFrame,
  encodeBody,
  encodeFrame,
  messageCode,
  messageName,
  packDatagrams,
} from './codec.js';

const readJson = (path) => JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8'));
const validVectors = readJson('../../tests/vectors/messages.json');
const invalidVectors = readJson('../../tests/vectors/invalid.json');

// ---------------------------------------------------------------------------
// Helpers: hex, and the vectors' JSON form <-> the codec's JS values. They
// walk the schema themselves rather than trusting the codec.

function fromHex(hex) {
  assert.match(hex, /^([0-9a-f]{2})*$/);
  const bytes = new Uint8Array(hex.length / 2);
  for (let index = 0; index < bytes.length; index++) bytes[index] = parseInt(hex.slice(index * 2, index * 2 + 2), 16);
  return bytes;
}

function toHex(bytes) {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

function concat(chunks) {
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let pos = 0;
  for (const chunk of chunks) {
    out.set(chunk, pos);
    pos += chunk.length;
  }
  return out;
}

const structs = new Map(SCHEMA.structs.map((definition) => [definition.name, definition]));
const messageFields = new Map(SCHEMA.messages.map((message) => [message.name, message.fields]));

/** Converts between the vector JSON form and JS values; `direction` is
 * 'js' (JSON -> JS) or 'json' (JS -> JSON). */
function convert(type, value, direction) {
  switch (type.kind) {
    case 'u64':
    case 'i64':
      if (direction === 'js') {
        assert.equal(typeof value, 'string');
        return BigInt(value);
      }
      assert.equal(typeof value, 'bigint');
      return value.toString();
    case 'bytes':
      if (direction === 'js') return fromHex(value);
      assert.ok(value instanceof Uint8Array);
      return toHex(value);
    case 'option':
      return value === null ? null : convert(type.item, value, direction);
    case 'list':
      assert.ok(Array.isArray(value));
      return value.map((item) => convert(type.item, item, direction));
    case 'struct':
      return convertFields(structs.get(type.name).fields, value, direction);
    default:
      return value;
  }
}

function convertFields(fields, value, direction) {
  assert.equal(typeof value, 'object');
  assert.deepEqual(Object.keys(value).sort(), fields.map((field) => field.name).sort());
  return Object.fromEntries(fields.map((field) => [field.name, convert(field.type, value[field.name], direction)]));
}

const toJs = (name, fields) => convertFields(messageFields.get(name), fields, 'js');
const toJson = (name, fields) => convertFields(messageFields.get(name), fields, 'json');

/** Asserts that `action` throws a DecodeError of `kind`. */
function assertDecodeError(action, kind, what = '') {
  assert.throws(action, (error) => {
    assert.ok(error instanceof DecodeError, `${what}: expected a DecodeError, got ${error?.stack ?? error}`);
    assert.equal(error.kind, kind, `${what}: ${error.message}`);
    return true;
  });
}

/** Asserts that a decode attempt either succeeds or throws a DecodeError. */
function decodesOrRejects(action, what) {
  try {
    return action();
  } catch (error) {
    if (!(error instanceof DecodeError) || !DECODE_ERROR_KINDS.includes(error.kind)) {
      assert.fail(`${what}: threw something other than a DecodeError: ${error?.stack ?? error}`);
    }
    return undefined;
  }
}

const ping = (id) => ({ name: 'Ping', fields: { id, sent_us: 42n } });

// ---------------------------------------------------------------------------

describe('valid vectors', () => {
  it('are present', () => {
    assert.ok(validVectors.length > 0);
  });

  for (const vector of validVectors) {
    it(`${vector.id} encodes and decodes exactly`, () => {
      const frame = fromHex(vector.frame);
      const fields = toJs(vector.message, vector.fields);
      assert.equal(messageCode(vector.message), vector.code);
      assert.equal(messageName(vector.code), vector.message);

      assert.equal(toHex(encodeFrame(vector.message, fields)), vector.frame);

      const decoded = decodeFrame(frame);
      assert.equal(decoded.name, vector.message);
      assert.equal(decoded.code, vector.code);
      assert.deepEqual(toJson(decoded.name, decoded.fields), vector.fields);

      // The body alone, without its length prefix.
      const body = encodeBody(vector.message, fields);
      assert.equal(toHex(body), toHex(frame.subarray(frame.length - body.length)));
      assert.deepEqual(toJson(vector.message, decodeBody(body).fields), vector.fields);

      // The decoded values encode back to the same bytes.
      assert.equal(toHex(encodeFrame(decoded.name, decoded.fields)), vector.frame);
    });
  }

  it('cover every message of the schema', () => {
    const covered = new Set(validVectors.map((vector) => vector.message));
    const missing = SCHEMA.messages.filter((message) => !covered.has(message.name)).map((message) => message.name);
    assert.deepEqual(missing, []);
  });

  it('name only messages of the schema, with their codes', () => {
    for (const vector of validVectors) {
      const message = SCHEMA.messages.find((candidate) => candidate.name === vector.message);
      assert.ok(message, vector.id);
      assert.equal(message.code, vector.code, vector.id);
    }
  });
});

describe('invalid vectors', () => {
  it('are present', () => {
    assert.ok(invalidVectors.length > 0);
  });

  for (const vector of invalidVectors) {
    it(`${vector.what}: ${vector.error}`, () => {
      assert.ok(DECODE_ERROR_KINDS.includes(vector.error), vector.error);
      const frame = fromHex(vector.frame);
      assertDecodeError(() => decodeFrame(frame), vector.error, 'decodeFrame');
      // A datagram holding the same bytes fails the same way.
      assertDecodeError(() => datagramMessages(frame), vector.error, 'datagramMessages');
      // So does a stream, unless the stream can wait for the missing bytes.
      const decoder = new FrameDecoder();
      decoder.push(frame);
      if (vector.error === 'truncated') {
        try {
          assert.equal(decoder.next(), null);
        } catch (error) {
          assert.ok(error instanceof DecodeError && error.kind === 'truncated', String(error));
        }
      } else {
        assertDecodeError(() => decoder.next(), vector.error, 'FrameDecoder');
      }
    });
  }

  it('report the unknown type code', () => {
    assert.throws(() => decodeFrame(fromHex('0108')), (error) => error.code === 8);
    assert.throws(() => decodeFrame(fromHex('028002')), (error) => error.code === 0x100 && error.code > MAX_CORE_TYPE_CODE);
    // A type code past 2^53 is reported exactly, as a bigint.
    assert.throws(
      () => decodeBody(fromHex('ffffffffffffffffff01')),
      (error) => error.kind === 'unknown_type' && error.code === 0xffffffffffffffffn,
    );
  });
});

describe('varints', () => {
  it('reject non-minimal, overlong and oversized encodings', () => {
    assertDecodeError(() => decodeBody(fromHex('8000')), 'overlong_varint');
    assertDecodeError(() => decodeBody(fromHex('ff8000')), 'overlong_varint');
    assertDecodeError(() => decodeBody(fromHex('ff'.repeat(11))), 'overlong_varint');
    assertDecodeError(() => decodeBody(fromHex(`${'ff'.repeat(9)}02`)), 'overlong_varint');
    assertDecodeError(() => decodeBody(fromHex(`${'ff'.repeat(9)}00`)), 'overlong_varint');
    assertDecodeError(() => decodeBody(fromHex('80')), 'truncated');
    assertDecodeError(() => decodeBody(new Uint8Array(0)), 'truncated');
  });

  it('check a length against its limit before the bytes present', () => {
    // RoomJoinByCode announcing 2^40 bytes of code (max 16): too_long, not truncated.
    assertDecodeError(() => decodeBody(fromHex('178080808020')), 'too_long');
    // Within the limit but more than is present.
    assertDecodeError(() => decodeBody(fromHex('170561')), 'truncated');
  });

  it('check a list count against the bytes present before decoding items', () => {
    // GameStart.players: 8 u64 announced, 3 bytes present.
    const head = toHex(encodeBody('GameStart', {
      room_id: 1n, game: 'arena', seed: 2n, tick_hz: 30, start_tick: 0, players: [],
    })).slice(0, -2);
    assertDecodeError(() => decodeBody(fromHex(`${head}08010203`)), 'truncated');
    assert.throws(() => decodeBody(fromHex(`${head}08010203`)), (error) => error.needed === 61);
    assertDecodeError(() => decodeBody(fromHex(`${head}09`)), 'too_many_items');
  });
});

describe('value conventions', () => {
  it('accept a bigint, a safe number or a decimal string for 64-bit fields', () => {
    const expected = toHex(encodeFrame('Ping', { id: 1, sent_us: 1234567890123n }));
    assert.equal(toHex(encodeFrame('Ping', { id: 1, sent_us: 1234567890123 })), expected);
    assert.equal(toHex(encodeFrame('Ping', { id: 1, sent_us: '1234567890123' })), expected);
    const max = encodeFrame('Ping', { id: 1, sent_us: '18446744073709551615' });
    assert.equal(decodeFrame(max).fields.sent_us, 0xffffffffffffffffn);
    const decoded = decodeFrame(fromHex(expected)).fields.sent_us;
    assert.equal(typeof decoded, 'bigint');
    assert.equal(decoded, 1234567890123n);
    const signed = encodeFrame('PresenceUpdate', { player_id: 1n, status: 'online', activity: '', room_id: 5n });
    assert.equal(decodeFrame(signed).fields.room_id, 5n);
  });

  it('keep text exactly, byte order mark and all', () => {
    for (const text of ['', 'gg', '\uFEFFbom', 'Zoë 🎮', 'x'.repeat(300), 'é'.repeat(200)]) {
      const fields = { channel: 'room', to_player: 0n, client_message_id: 1, text };
      const frame = encodeFrame('ChatSend', fields);
      assert.equal(decodeFrame(frame).fields.text, text);
    }
  });

  it('give a longer prefix to a frame with a long body', () => {
    const frame = encodeFrame('ChatSend', { channel: 'room', to_player: 0n, client_message_id: 0, text: 'x'.repeat(300) });
    // type 1 + channel 1 + to_player 8 + client_message_id 4 + text 2 + 300 = 316.
    assert.equal(toHex(frame.subarray(0, 2)), 'bc02');
    assert.equal(frame.length, 2 + 316);
    assert.equal(decodeFrame(frame).fields.text.length, 300);
  });

  it('return copies of bytes fields, not views of the input', () => {
    const vector = validVectors.find((candidate) => candidate.message === 'TetrisSnapshot' && candidate.fields.boards.length > 0);
    const frame = fromHex(vector.frame);
    const cells = decodeFrame(frame).fields.boards[0].cells;
    frame.fill(0);
    assert.equal(toHex(cells), vector.fields.boards[0].cells);
  });

  it('export the schema constants', () => {
    assert.equal(MAX_FRAME_LEN, 65536);
    assert.equal(MAX_DATAGRAM_LEN, 1200);
    assert.equal(MAX_CORE_TYPE_CODE, 0xff);
    assert.equal(PROTOCOL_VERSION, SCHEMA.protocol_version);
    assert.equal(MIN_PROTOCOL_VERSION, SCHEMA.min_protocol_version);
    assert.deepEqual({ ...LIMITS }, SCHEMA.limits);
    assert.deepEqual({ ...CAPABILITIES }, SCHEMA.capabilities);
    for (const entry of SCHEMA.error_codes) assert.equal(ErrorCodes[entry.name], entry.code);
    assert.equal(new DecodeError('unknown_type', { code: 9 }).errorCode, ErrorCodes.unknown_message);
    assert.equal(new DecodeError('datagram_too_large', { len: 2000, max: 1200 }).errorCode, ErrorCodes.frame_too_large);
    assert.equal(new DecodeError('truncated', { needed: 1 }).errorCode, ErrorCodes.malformed);
    assert.throws(() => messageCode('NoSuchMessage'), TypeError);
    assert.equal(messageName(0x3fff), undefined);
  });
});

describe('encoding refuses values past their limits', () => {
  const hello = {
    min_version: 1, max_version: 1, capabilities: 0, client_name: 'test',
    access_token: null, resume_token: null, nickname: null,
  };
  const throwsNaming = (action, ErrorClass, field) =>
    assert.throws(action, (error) => {
      assert.ok(error instanceof ErrorClass, `${error?.name}: ${error?.message}`);
      assert.ok(error.message.includes(field), error.message);
      return true;
    });

  it('text one UTF-8 byte too long', () => {
    const max = LIMITS.MAX_NAME_LEN;
    // 16 two-byte characters fill the limit exactly: 17 characters, 33 bytes, is one too many.
    assert.ok(encodeFrame('Hello', { ...hello, nickname: 'é'.repeat(max / 2) }));
    throwsNaming(() => encodeFrame('Hello', { ...hello, nickname: `${'é'.repeat(max / 2)}a` }), LimitError, 'Hello.nickname');
    throwsNaming(() => encodeFrame('Hello', { ...hello, nickname: '🎮'.repeat(max / 4 + 1) }), LimitError, 'Hello.nickname');
    throwsNaming(() => encodeFrame('Hello', { ...hello, client_name: 'x'.repeat(LIMITS.MAX_CLIENT_NAME_LEN + 1) }), LimitError, 'Hello.client_name');
    assert.ok(encodeFrame('Hello', { ...hello, client_name: 'x'.repeat(LIMITS.MAX_CLIENT_NAME_LEN) }));
    throwsNaming(() => encodeFrame('Hello', { ...hello, nickname: 'a\uD800b' }), TypeError, 'Hello.nickname');
  });

  it('a list of max + 1 items', () => {
    const inputs = new Array(LIMITS.MAX_INPUT_REDUNDANCY).fill(1);
    assert.ok(encodeFrame('Input', { seq: 1, client_frame: 1, inputs }));
    throwsNaming(() => encodeFrame('Input', { seq: 1, client_frame: 1, inputs: [...inputs, 1] }), LimitError, 'Input.inputs');
  });

  it('bytes past their limit, naming the list item', () => {
    const board = {
      slot: 0, alive: true, cells: new Uint8Array(LIMITS.TETRIS_BOARD_BYTES), piece: null, hold: null,
      hold_used: false, next: [], pending_garbage: 0, score: 0, lines: 0, level: 1, combo: 0,
      back_to_back: 0, pieces: 0, last_input_seq: 0,
    };
    const big = { ...board, cells: new Uint8Array(LIMITS.TETRIS_BOARD_BYTES + 1) };
    assert.ok(encodeFrame('TetrisSnapshot', { tick: 0, state_hash: 0n, boards: [board, board] }));
    throwsNaming(() => encodeFrame('TetrisSnapshot', { tick: 0, state_hash: 0n, boards: [board, big] }), LimitError, 'TetrisSnapshot.boards[1].cells');
    throwsNaming(
      () => encodeFrame('TetrisSnapshot', { tick: 0, state_hash: 0n, boards: [{ ...board, next: ['I', 'Q'] }] }),
      TypeError,
      'TetrisSnapshot.boards[0].next[1]',
    );
  });

  it('numbers out of range for their type', () => {
    const ready = (slot) => ({ tick: 1, slot, placement: 1, by_slot: null });
    assert.ok(encodeFrame('PlayerEliminated', ready(255)));
    throwsNaming(() => encodeFrame('PlayerEliminated', ready(256)), LimitError, 'PlayerEliminated.slot');
    throwsNaming(() => encodeFrame('PlayerEliminated', ready(-1)), LimitError, 'PlayerEliminated.slot');
    throwsNaming(() => encodeFrame('PlayerEliminated', ready(1.5)), TypeError, 'PlayerEliminated.slot');
    throwsNaming(() => encodeFrame('PlayerEliminated', ready('1')), TypeError, 'PlayerEliminated.slot');
    throwsNaming(() => encodeFrame('PlayerEliminated', ready(1n)), TypeError, 'PlayerEliminated.slot');
    throwsNaming(() => encodeFrame('PlayerEliminated', { ...ready(0), by_slot: 300 }), LimitError, 'PlayerEliminated.by_slot');
    throwsNaming(() => encodeFrame('Ping', { id: 2 ** 32, sent_us: 0n }), LimitError, 'Ping.id');
    throwsNaming(() => encodeFrame('Ping', { id: 1, sent_us: -1n }), LimitError, 'Ping.sent_us');
    throwsNaming(() => encodeFrame('Ping', { id: 1, sent_us: '18446744073709551616' }), LimitError, 'Ping.sent_us');
    throwsNaming(() => encodeFrame('Ping', { id: 1, sent_us: 2 ** 53 }), LimitError, 'Ping.sent_us');
    throwsNaming(() => encodeFrame('Ping', { id: 1, sent_us: '12abc' }), TypeError, 'Ping.sent_us');
    const piece = (x) => ({ tick: 1, slot: 0, piece: { kind: 'T', rotation: '0', x, y: 0 }, t_spin: 'none' });
    assert.equal(decodeFrame(encodeFrame('PieceLocked', piece(-128))).fields.piece.x, -128);
    throwsNaming(() => encodeFrame('PieceLocked', piece(128)), LimitError, 'PieceLocked.piece.x');
  });

  it('an unknown enum name, a missing field, a wrong type', () => {
    throwsNaming(() => encodeFrame('QuickJoin', { game: 'chess' }), TypeError, 'QuickJoin.game');
    throwsNaming(() => encodeFrame('QuickJoin', {}), TypeError, 'QuickJoin.game');
    const { nickname, ...withoutNickname } = hello;
    assert.equal(nickname, null);
    throwsNaming(() => encodeFrame('Hello', withoutNickname), TypeError, 'Hello.nickname');
    throwsNaming(() => encodeFrame('RoomReady', { ready: 1 }), TypeError, 'RoomReady.ready');
    throwsNaming(() => encodeFrame('RoomReady', null), TypeError, 'RoomReady');
    throwsNaming(() => encodeFrame('TetrisSnapshot', { tick: 0, state_hash: 0n, boards: 'none' }), TypeError, 'TetrisSnapshot.boards');
    assert.throws(() => encodeFrame('NoSuchMessage', {}), TypeError);
    assert.equal(toHex(encodeFrame('QueueLeave')), '0111');
  });
});

describe('FrameDecoder', () => {
  const frames = validVectors.map((vector) => fromHex(vector.frame));
  const stream = concat(frames);

  for (const chunkSize of [1, 7, 1000]) {
    it(`yields every message in order from chunks of ${chunkSize} bytes`, () => {
      const decoder = new FrameDecoder();
      const received = [];
      for (let pos = 0; pos < stream.length; pos += chunkSize) {
        decoder.push(stream.subarray(pos, pos + chunkSize));
        for (let message = decoder.next(); message !== null; message = decoder.next()) received.push(message);
      }
      assert.equal(received.length, validVectors.length);
      received.forEach((message, index) => {
        const vector = validVectors[index];
        assert.equal(message.name, vector.message, vector.id);
        assert.equal(message.code, vector.code, vector.id);
        assert.deepEqual(toJson(message.name, message.fields), vector.fields, vector.id);
      });
      assert.equal(decoder.buffered, 0);
      assert.equal(decoder.next(), null);
    });
  }

  it('accepts ArrayBuffer chunks', () => {
    const decoder = new FrameDecoder();
    decoder.push(stream.slice(0, frames[0].length).buffer);
    assert.equal(decoder.next().name, validVectors[0].message);
  });

  it('rejects an oversized length prefix as soon as it is readable', () => {
    const decoder = new FrameDecoder();
    decoder.push(Uint8Array.of(0x81, 0x80));
    assert.equal(decoder.next(), null);
    decoder.push(Uint8Array.of(0x04)); // 65 537, no body sent
    assertDecodeError(() => decoder.next(), 'frame_too_large');
    // The stream stays broken.
    decoder.push(encodeFrame('Ping', ping(1).fields));
    assertDecodeError(() => decoder.next(), 'frame_too_large');

    const unterminated = new FrameDecoder();
    unterminated.push(Uint8Array.of(0xff, 0xff));
    assert.equal(unterminated.next(), null);
    unterminated.push(Uint8Array.of(0xff));
    assertDecodeError(() => unterminated.next(), 'frame_too_large');

    const empty = new FrameDecoder();
    empty.push(Uint8Array.of(0x00));
    assertDecodeError(() => empty.next(), 'empty_frame');

    const nonMinimal = new FrameDecoder();
    nonMinimal.push(Uint8Array.of(0x83, 0x00));
    assertDecodeError(() => nonMinimal.next(), 'overlong_varint');

    // The largest frame's prefix is accepted: the decoder waits for the body.
    const largest = new FrameDecoder();
    largest.push(Uint8Array.of(0x80, 0x80, 0x04));
    assert.equal(largest.next(), null);
  });

  it('goes on after a bad body, whose frame is consumed', () => {
    const decoder = new FrameDecoder();
    decoder.push(concat([fromHex('028002'), encodeFrame('Ping', ping(7).fields)]));
    assert.throws(() => decoder.next(), (error) => error.kind === 'unknown_type' && error.code === 0x100);
    assert.equal(decoder.next().fields.id, 7);
    assert.equal(decoder.next(), null);
  });

  it('decodes a frame of the largest size', () => {
    const sdp = 'v'.repeat(LIMITS.MAX_SDP_LEN);
    const frame = encodeFrame('RtcOffer', { peer: 1n, call_id: 2, sdp });
    const decoder = new FrameDecoder();
    for (let pos = 0; pos < frame.length; pos += 4096) {
      decoder.push(frame.subarray(pos, pos + 4096));
      if (pos + 4096 < frame.length) assert.equal(decoder.next(), null);
    }
    assert.equal(decoder.next().fields.sdp, sdp);
  });
});

describe('datagrams', () => {
  it('pack and unpack in order, each within the limit', () => {
    const messages = Array.from({ length: 20 }, (_, id) => ping(id));
    const datagrams = packDatagrams(messages, 64);
    assert.ok(datagrams.length > 1);
    const ids = [];
    for (const datagram of datagrams) {
      assert.ok(datagram.length <= 64);
      for (const message of datagramMessages(datagram)) ids.push(message.fields.id);
    }
    assert.deepEqual(ids, messages.map((message) => message.fields.id));
  });

  it('carry every vector that fits, within 1200 bytes each', () => {
    const messages = validVectors
      .filter((vector) => vector.frame.length / 2 <= MAX_DATAGRAM_LEN)
      .map((vector) => ({ name: vector.message, fields: toJs(vector.message, vector.fields) }));
    const datagrams = packDatagrams(messages);
    const received = [];
    for (const datagram of datagrams) {
      assert.ok(datagram.length <= MAX_DATAGRAM_LEN);
      received.push(...datagramMessages(datagram));
    }
    assert.equal(received.length, messages.length);
    received.forEach((message, index) => {
      assert.equal(message.name, messages[index].name);
      assert.deepEqual(toJson(message.name, message.fields), toJson(message.name, messages[index].fields));
    });
  });

  it('refuse a message that does not fit and a limit past 1200', () => {
    const chat = { name: 'ChatSend', fields: { channel: 'room', to_player: 0n, client_message_id: 0, text: 'y'.repeat(64) } };
    assert.throws(() => packDatagrams([chat], 32), LimitError);
    assert.throws(() => packDatagrams([ping(1)], MAX_DATAGRAM_LEN + 1), RangeError);
    assert.deepEqual(packDatagrams([]), []);
  });

  it('reject a datagram over 1200 bytes, and bad frames inside one', () => {
    // Exactly 1200 bytes of frames is fine.
    const frame = encodeFrame('Ping', ping(1).fields); // 14 bytes
    // RtcOffer: prefix 2 + type 1 + peer 8 + call_id 4 + sdp prefix 2 = 17 bytes besides the sdp.
    const filler = encodeFrame('RtcOffer', { peer: 1n, call_id: 2, sdp: 'z'.repeat(MAX_DATAGRAM_LEN - frame.length - 17) });
    const full = concat([frame, filler]);
    assert.equal(full.length, MAX_DATAGRAM_LEN);
    assert.equal(datagramMessages(full).length, 2);
    assertDecodeError(() => datagramMessages(concat([full, Uint8Array.of(0)])), 'datagram_too_large');
    assertDecodeError(() => datagramMessages(new Uint8Array(MAX_DATAGRAM_LEN + 1).fill(1)), 'datagram_too_large');
    assertDecodeError(() => datagramMessages(concat([frame, Uint8Array.of(0x05, 0x03)])), 'truncated');
    assertDecodeError(() => datagramMessages(concat([frame, Uint8Array.of(0x00)])), 'empty_frame');
    assertDecodeError(() => datagramMessages(new Uint8Array(0)), 'empty_frame');
    // A whole frame's trailing bytes are trailing_bytes, for decodeFrame.
    assertDecodeError(() => decodeFrame(concat([frame, Uint8Array.of(0)])), 'trailing_bytes');
  });
});

describe('fuzz', () => {
  // mulberry32: a small seeded PRNG, so every run tries the same inputs.
  function prng(seed) {
    let state = seed >>> 0;
    return () => {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 0x100000000;
    };
  }
  const codes = SCHEMA.messages.map((message) => message.code);

  /** Every decoder either decodes `bytes` or throws a DecodeError; whatever
   * decodes encodes back to the same bytes (the encoding is canonical). */
  function tryEverything(bytes) {
    const message = decodesOrRejects(() => decodeFrame(bytes), 'decodeFrame');
    if (message !== undefined) assert.equal(toHex(encodeFrame(message.name, message.fields)), toHex(bytes));
    const body = decodesOrRejects(() => decodeBody(bytes), 'decodeBody');
    if (body !== undefined) assert.equal(toHex(encodeBody(body.name, body.fields)), toHex(bytes));
    decodesOrRejects(() => datagramMessages(bytes), 'datagramMessages');
    const decoder = new FrameDecoder();
    decoder.push(bytes);
    for (let count = 0; count < 1000; count++) {
      let next;
      try {
        next = decoder.next();
      } catch (error) {
        if (!(error instanceof DecodeError)) assert.fail(`FrameDecoder threw ${error?.stack ?? error}`);
        if (['empty_frame', 'frame_too_large', 'overlong_varint'].includes(error.kind)) break;
        continue;
      }
      if (next === null) break;
    }
  }

  it('20 000 random byte strings only ever give DecodeError', () => {
    const random = prng(0x1d05);
    const byte = () => Math.floor(random() * 256);
    for (let round = 0; round < 20000; round++) {
      const len = Math.floor(random() * (random() < 0.9 ? 48 : 400));
      const bytes = new Uint8Array(len);
      for (let index = 0; index < len; index++) bytes[index] = byte();
      if (round % 3 > 0 && len > 2) {
        // A valid prefix and a known type code, so the fields get decoded too.
        const body = bytes.subarray(1);
        bytes[0] = Math.min(body.length, 0x7f);
        body[0] = codes[Math.floor(random() * codes.length)] & 0x7f;
        tryEverything(bytes.subarray(0, 1 + bytes[0]));
      } else {
        tryEverything(bytes);
      }
    }
  });

  it('20 000 single-byte mutations of valid frames only ever give DecodeError', () => {
    const random = prng(0xbeef);
    const frames = validVectors.map((vector) => fromHex(vector.frame));
    for (let round = 0; round < 20000; round++) {
      const bytes = frames[Math.floor(random() * frames.length)].slice();
      const index = Math.floor(random() * bytes.length);
      bytes[index] = (bytes[index] + 1 + Math.floor(random() * 255)) & 0xff; // always a different value
      tryEverything(bytes);
    }
  });
});
