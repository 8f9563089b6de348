// Inputs as the protocol carries them (docs/PROTOCOL.md §5), and the
// client-side key handling that produces them. Pure: time comes in as
// milliseconds, nothing here touches the DOM or the network.
//
// InputWindow numbers input entries 1, 2, 3, ... and builds Input messages
// whose `inputs` list is newest first (inputs[i] has seq - i) and repeats
// the entries the server has not acknowledged yet, at most 8, so a few lost
// datagrams lose nothing.
//
// Handling turns held direction keys into DAS/ARR repeats.

/** Most entries in one Input (MAX_INPUT_REDUNDANCY). */
export const MAX_REDUNDANCY = 8;
/** Entries kept for repeats; older ones are forgotten. */
const HISTORY = 256;

export class InputWindow {
  /** Sequence number of the newest entry (0 before the first). */
  seq = 0;
  /** The newest seq the server reported as applied. */
  acked = 0;
  /** The newest seq that went out in a message. */
  sentSeq = 0;

  #bits = new Map();

  constructor({ redundancy = MAX_REDUNDANCY, startSeq = 0 } = {}) {
    if (!(redundancy >= 1 && redundancy <= MAX_REDUNDANCY)) throw new RangeError(`redundancy ${redundancy} is not 1..${MAX_REDUNDANCY}`);
    this.redundancy = redundancy;
    this.seq = startSeq;
    this.acked = startSeq;
    this.sentSeq = startSeq;
  }

  /** Records a new entry; returns its sequence number. */
  push(bits) {
    if (!Number.isInteger(bits) || bits < 0 || bits > 0xffff) throw new RangeError(`input bits ${bits} are not a u16`);
    this.seq += 1;
    this.#bits.set(this.seq, bits);
    this.#bits.delete(this.seq - HISTORY);
    return this.seq;
  }

  bitsOf(seq) {
    return this.#bits.get(seq);
  }

  /** The server applied everything up to `seq` (last_input_seq). */
  ack(seq) {
    if (seq > this.acked) this.acked = Math.min(seq, this.seq);
  }

  /**
   * The server says it applied up to `seq` (a snapshot or state after a
   * reconnect). When that is beyond our own numbering (a new page resuming
   * an old session) numbering continues after it, or the server would
   * ignore every new input as already applied.
   */
  rebaseTo(seq) {
    if (seq > this.seq) {
      this.seq = seq;
      this.sentSeq = seq;
    }
    this.ack(seq);
  }

  /** Entries recorded but never sent. */
  get unsent() {
    return this.seq - this.sentSeq;
  }

  /** Entries sent but not acknowledged. */
  get unacked() {
    return this.seq - this.acked;
  }

  /**
   * The Input message for entries up to `newest`: inputs newest first,
   * repeating unacknowledged older entries, at most `redundancy` in all
   * and always at least one.
   */
  message(newest = this.seq, clientFrame = 0) {
    if (newest < 1 || newest > this.seq) throw new RangeError(`no input ${newest}`);
    const inputs = [];
    for (let s = newest; s > 0 && inputs.length < this.redundancy; s--) {
      if (s <= this.acked && inputs.length > 0) break;
      const bits = this.#bits.get(s);
      if (bits === undefined) break;
      inputs.push(bits);
    }
    return { seq: newest, client_frame: clientFrame >>> 0, inputs };
  }

  /**
   * Messages that carry every unsent entry (usually one; more when more
   * than `redundancy` entries piled up since the last send). Marks them
   * sent.
   */
  takeMessages(clientFrame = 0) {
    const messages = [];
    let from = this.sentSeq + 1;
    while (from <= this.seq) {
      const newest = Math.min(this.seq, from + this.redundancy - 1);
      messages.push(this.message(newest, clientFrame));
      from = newest + 1;
    }
    this.sentSeq = this.seq;
    return messages;
  }

  /** The newest message again, for loss: null when everything is acknowledged. */
  resendMessage(clientFrame = 0) {
    if (this.seq === 0 || this.acked >= this.seq) return null;
    return this.message(this.seq, clientFrame);
  }
}

/** Decodes an Input's entries to [{seq, bits}] oldest first (what a server
 * applies), skipping those at or below `applied`. */
export function entriesOf(message, applied = 0) {
  const out = [];
  for (let i = message.inputs.length - 1; i >= 0; i--) {
    const seq = message.seq - i;
    if (seq > applied) out.push({ seq, bits: message.inputs[i] });
  }
  return out;
}

// ---------------------------------------------------------------------------
// DAS / ARR

/**
 * Auto-shift of held direction keys. The last pressed direction wins while
 * both are held; releasing it hands back to the other one (with a fresh
 * DAS). `das` and `arr` in ms; `arr` 0 means "to the wall at once" once
 * DAS has charged (the caller gets Infinity and clamps to the room left).
 */
export class Handling {
  #held = []; // directions, most recent last: -1 left, +1 right
  #chargedAt = 0;
  #lastRepeat = 0;
  #repeating = false;

  constructor({ das = 167, arr = 33 } = {}) {
    this.das = das;
    this.arr = arr;
  }

  /** The direction that shifts now: -1, +1 or 0. */
  get direction() {
    return this.#held.length ? this.#held[this.#held.length - 1] : 0;
  }

  /** A direction key went down at `now`: one shift at once. */
  press(direction, now) {
    if (this.#held.includes(direction)) return 0; // key repeat of the OS
    this.#held.push(direction);
    this.#restart(now);
    return 1;
  }

  release(direction, now) {
    const was = this.direction;
    this.#held = this.#held.filter((d) => d !== direction);
    if (this.direction !== was && this.direction !== 0) this.#restart(now);
  }

  releaseAll() {
    this.#held = [];
    this.#repeating = false;
  }

  #restart(now) {
    this.#chargedAt = now + this.das;
    this.#lastRepeat = now;
    this.#repeating = false;
  }

  /** Shifts due since the last call (Infinity: to the wall). */
  update(now) {
    if (this.direction === 0 || now < this.#chargedAt) return 0;
    if (!this.#repeating) {
      this.#repeating = true;
      this.#lastRepeat = this.#chargedAt;
      if (this.arr <= 0) return Infinity;
      // The first repeat comes when DAS has charged, then one per ARR.
      const extra = Math.floor((now - this.#chargedAt) / this.arr);
      this.#lastRepeat = this.#chargedAt + extra * this.arr;
      return 1 + extra;
    }
    if (this.arr <= 0) return Infinity;
    const due = Math.floor((now - this.#lastRepeat) / this.arr);
    this.#lastRepeat += due * this.arr;
    return due;
  }
}

// ---------------------------------------------------------------------------
// Settings (kept in localStorage by the page)

/** Actions a key can be bound to, with their default keys (KeyboardEvent.code). */
export const DEFAULT_KEYS = Object.freeze({
  moveLeft: ['ArrowLeft'],
  moveRight: ['ArrowRight'],
  softDrop: ['ArrowDown'],
  hardDrop: ['Space'],
  rotateCW: ['ArrowUp', 'KeyX'],
  rotateCCW: ['KeyZ', 'ControlLeft', 'ControlRight'],
  rotate180: ['KeyA'],
  hold: ['KeyC', 'ShiftLeft', 'ShiftRight'],
});

export const ACTION_LABELS = Object.freeze({
  moveLeft: 'Move left',
  moveRight: 'Move right',
  softDrop: 'Soft drop',
  hardDrop: 'Hard drop',
  rotateCW: 'Rotate clockwise',
  rotateCCW: 'Rotate counter-clockwise',
  rotate180: 'Rotate 180° (SRS+ rooms)',
  hold: 'Hold',
});

/** DAS 167 ms / ARR 33 ms are TETR.IO's room defaults (10 and 2 frames). */
export const DEFAULT_SETTINGS = Object.freeze({
  keys: DEFAULT_KEYS,
  das: 167,
  arr: 33,
  sdf: 20,
});

export const SETTINGS_KEY = 'ludus.settings.v1';

/** Settings merged over the defaults, values clamped to sane ranges. */
export function normalizeSettings(raw) {
  const settings = { keys: {}, das: DEFAULT_SETTINGS.das, arr: DEFAULT_SETTINGS.arr, sdf: DEFAULT_SETTINGS.sdf };
  const clamp = (value, lo, hi, fallback) => {
    const n = Number(value);
    return Number.isFinite(n) ? Math.min(hi, Math.max(lo, Math.round(n))) : fallback;
  };
  settings.das = clamp(raw?.das, 0, 1000, DEFAULT_SETTINGS.das);
  settings.arr = clamp(raw?.arr, 0, 500, DEFAULT_SETTINGS.arr);
  settings.sdf = clamp(raw?.sdf, 1, 40, DEFAULT_SETTINGS.sdf);
  for (const [action, keys] of Object.entries(DEFAULT_KEYS)) {
    const chosen = raw?.keys?.[action];
    settings.keys[action] = Array.isArray(chosen) && chosen.every((k) => typeof k === 'string' && k.length > 0 && k.length < 40)
      ? [...chosen]
      : [...keys];
  }
  return settings;
}

export function loadSettings(storage) {
  try {
    return normalizeSettings(JSON.parse(storage?.getItem(SETTINGS_KEY) ?? 'null'));
  } catch {
    return normalizeSettings(null);
  }
}

export function saveSettings(storage, settings) {
  const clean = normalizeSettings(settings);
  try {
    storage?.setItem(SETTINGS_KEY, JSON.stringify(clean));
  } catch { /* private mode: keep them for this page only */ }
  return clean;
}

/** KeyboardEvent.code -> action, from settings.keys (first binding wins). */
export function keyMap(settings) {
  const map = new Map();
  for (const [action, keys] of Object.entries(settings.keys)) {
    for (const key of keys) if (!map.has(key)) map.set(key, action);
  }
  return map;
}
