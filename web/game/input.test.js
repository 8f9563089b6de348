// Input numbering and redundancy, DAS/ARR, key settings.
// node --test web/game/

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { decodeFrame, encodeFrame } from '../proto/codec.js';
import {
  DEFAULT_KEYS,
  Handling,
  InputWindow,
  MAX_REDUNDANCY,
  entriesOf,
  keyMap,
  loadSettings,
  normalizeSettings,
  saveSettings,
} from './input.js';

test('inputs are numbered from 1, newest first, repeating the unacknowledged ones', () => {
  const window = new InputWindow();
  assert.equal(window.push(1), 1);
  assert.equal(window.push(16), 2);
  assert.equal(window.push(8), 3);
  assert.deepEqual(window.message(3, 77), { seq: 3, client_frame: 77, inputs: [8, 16, 1] });
  window.ack(2);
  assert.deepEqual(window.message(3).inputs, [8], 'acknowledged entries are not repeated');
  window.ack(3);
  assert.deepEqual(window.message(3).inputs, [8], 'at least one entry');
  assert.equal(window.resendMessage(), null, 'nothing to resend once acknowledged');
});

test('the window holds at most 8 entries: inputs[i] has seq - i', () => {
  const window = new InputWindow();
  for (let i = 1; i <= 20; i++) window.push(i);
  const message = window.message(20, 5);
  assert.equal(message.inputs.length, MAX_REDUNDANCY);
  assert.deepEqual(message.inputs, [20, 19, 18, 17, 16, 15, 14, 13]);
  assert.deepEqual(entriesOf(message).map((e) => e.seq), [13, 14, 15, 16, 17, 18, 19, 20]);
  assert.deepEqual(entriesOf(message, 18), [{ seq: 19, bits: 19 }, { seq: 20, bits: 20 }]);
  // Through the real codec.
  const decoded = decodeFrame(encodeFrame('Input', message));
  assert.deepEqual(decoded.fields, message);
});

test('a burst of more than 8 unsent entries goes out in several messages, none lost', () => {
  const window = new InputWindow();
  for (let i = 1; i <= 11; i++) window.push(i);
  const messages = window.takeMessages(9);
  assert.deepEqual(messages.map((m) => m.seq), [8, 11]);
  const applied = [];
  let last = 0;
  for (const m of messages) {
    for (const e of entriesOf(m, last)) {
      applied.push(e.seq);
      last = e.seq;
    }
  }
  assert.deepEqual(applied, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  assert.equal(window.unsent, 0);
  assert.deepEqual(window.takeMessages(), []);
  assert.equal(window.resendMessage().seq, 11);
});

test('a lost message is covered by the next one', () => {
  const window = new InputWindow();
  window.push(1);
  const first = window.takeMessages()[0]; // lost
  window.push(2);
  const second = window.takeMessages()[0];
  assert.deepEqual(first.inputs, [1]);
  assert.deepEqual(entriesOf(second, 0), [{ seq: 1, bits: 1 }, { seq: 2, bits: 2 }]);
});

test('bits must be a u16', () => {
  const window = new InputWindow();
  assert.throws(() => window.push(-1), RangeError);
  assert.throws(() => window.push(0x10000), RangeError);
  assert.throws(() => window.push(1.5), RangeError);
  assert.throws(() => new InputWindow({ redundancy: 9 }), RangeError);
});

test('DAS then ARR repeats; the last pressed direction wins', () => {
  const h = new Handling({ das: 100, arr: 20 });
  assert.equal(h.press(-1, 0), 1);
  assert.equal(h.press(-1, 10), 0, 'OS key repeat is not a press');
  assert.equal(h.update(50), 0);
  assert.equal(h.update(100), 1, 'first repeat when DAS has charged');
  assert.equal(h.update(119), 0);
  assert.equal(h.update(120), 1);
  assert.equal(h.update(185), 3);
  assert.equal(h.press(1, 200), 1);
  assert.equal(h.direction, 1);
  assert.equal(h.update(250), 0, 'DAS starts again for the new direction');
  assert.equal(h.update(300), 1);
  h.release(1, 310);
  assert.equal(h.direction, -1, 'back to the key still held');
  assert.equal(h.update(320), 0);
  assert.equal(h.update(410), 1);
  h.release(-1, 420);
  assert.equal(h.direction, 0);
  assert.equal(h.update(1000), 0);
});

test('ARR 0 shifts to the wall once DAS has charged', () => {
  const h = new Handling({ das: 100, arr: 0 });
  h.press(1, 0);
  assert.equal(h.update(99), 0);
  assert.equal(h.update(100), Infinity);
});

test('settings: defaults, clamping, storage round trip, key map', () => {
  const defaults = normalizeSettings(null);
  assert.deepEqual(defaults.keys, DEFAULT_KEYS);
  assert.equal(defaults.das, 167);
  const odd = normalizeSettings({ das: -5, arr: 'x', sdf: 99, keys: { hardDrop: ['KeyW'], hold: 'nope' } });
  assert.equal(odd.das, 0);
  assert.equal(odd.arr, 33);
  assert.equal(odd.sdf, 40);
  assert.deepEqual(odd.keys.hardDrop, ['KeyW']);
  assert.deepEqual(odd.keys.hold, DEFAULT_KEYS.hold);

  const store = new Map();
  const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v) };
  saveSettings(storage, { ...defaults, das: 120 });
  assert.equal(loadSettings(storage).das, 120);
  store.set('ludus.settings.v1', '{not json');
  assert.equal(loadSettings(storage).das, 167);

  const map = keyMap(defaults);
  assert.equal(map.get('Space'), 'hardDrop');
  assert.equal(map.get('ArrowUp'), 'rotateCW');
  assert.equal(map.get('KeyX'), 'rotateCW');
  assert.equal(map.get('ControlLeft'), 'rotateCCW');
  assert.equal(map.get('ShiftLeft'), 'hold');
});

test('rebaseTo continues the numbering after what the server applied', () => {
  const window = new InputWindow();
  window.push(1);
  window.rebaseTo(40);
  assert.equal(window.seq, 40);
  assert.equal(window.acked, 40);
  assert.equal(window.push(2), 41);
  assert.deepEqual(window.takeMessages()[0], { seq: 41, client_frame: 0, inputs: [2] });
  window.rebaseTo(10);
  assert.equal(window.seq, 41, 'an older report changes nothing');
});
