// The arena as a client shows it: the latest ArenaState, interpolated
// between the last two so dots move smoothly at any frame rate. Pure (time
// comes in as milliseconds).
//
// Coordinates are thousandths of a unit of a 1000 x 1000 world, y upward.

export const WORLD_MILLI = 1_000_000;

/** Arena input bits. */
export const ARENA_INPUT = Object.freeze({ LEFT: 1, RIGHT: 2, DOWN: 4, UP: 8 });

/** Input bits from held directions; opposite directions cancel (the
 * server refuses an input with both). */
export function arenaBits({ left = false, right = false, down = false, up = false }) {
  let bits = 0;
  if (left !== right) bits |= left ? ARENA_INPUT.LEFT : ARENA_INPUT.RIGHT;
  if (down !== up) bits |= down ? ARENA_INPUT.DOWN : ARENA_INPUT.UP;
  return bits;
}

export class ArenaView {
  tick = -1;
  /** Own input acknowledged by the server (last_input_seq). */
  ackSeq = 0;
  states = 0;
  dropped = 0;

  constructor({ mySlot = -1, tickHz = 30 } = {}) {
    this.mySlot = mySlot;
    this.tickMs = 1000 / tickHz;
    this.latest = new Map();
    this.previous = new Map();
    this.receivedAt = 0;
  }

  /** An ArenaState arrived at `now`; older or repeated ticks are dropped. */
  handle(state, now) {
    if (state.tick <= this.tick) {
      this.dropped += 1;
      return false;
    }
    this.previous = this.latest;
    this.latest = new Map(state.players.map((p) => [p.slot, { slot: p.slot, x: p.x, y: p.y, lastInputSeq: p.last_input_seq }]));
    this.tick = state.tick;
    this.receivedAt = now;
    this.states += 1;
    const me = this.latest.get(this.mySlot);
    if (me && me.lastInputSeq > this.ackSeq) this.ackSeq = me.lastInputSeq;
    return true;
  }

  /** Positions to draw at `now`: from the previous state towards the latest
   * over one tick (one tick behind, never extrapolated). */
  positionsAt(now) {
    const t = Math.min(1, Math.max(0, (now - this.receivedAt) / this.tickMs));
    const out = [];
    for (const p of this.latest.values()) {
      const from = this.previous.get(p.slot) ?? p;
      out.push({ slot: p.slot, x: from.x + (p.x - from.x) * t, y: from.y + (p.y - from.y) * t });
    }
    return out;
  }

  /** Latest server positions (for automation). */
  snapshot() {
    return { tick: this.tick, players: [...this.latest.values()].map((p) => ({ slot: p.slot, x: p.x, y: p.y, lastInputSeq: p.lastInputSeq })) };
  }
}
