// A stored match replayed: the events of GET /api/matches/{id}/replay
// turned into every player's state at any tick, with seeking in either
// direction at the same cost (binary searches over per-player indexes, no
// re-simulation), and the match's key moments as timeline markers.
// Pure (no DOM, no clock): web/app/replay.js draws what it answers.
//
// The stored events (src/services/events/json.rs) are {tick, type,
// player_id, data} plus the stream's `seq`; player ids are decimal strings
// and game_start's data.player_ids lists them by game slot. What a state
// at tick t is made of, for each player:
//   board    the `data.board` of the latest piece_lock at or before t: the
//            board after the lock resolved (rows cleared, garbage raised),
//            200 packed bytes as 400 hex digits, row 0 (bottom) first, low
//            nibble = even column (Board.unpack's layout); empty before
//            the first lock
//   piece    the latest piece_spawn at or before t when it came after that
//            lock (a lock is followed by the next spawn in the same tick; a
//            hold spawns without a lock), at its spawn position: gravity
//            and moves are not in the stored events; none once eliminated
//   landing  where that piece locks (the next piece_lock, when no other
//            spawn comes before it), drawn as the ghost
//   hold, next   of the latest spawn
//   score    of the latest lock (game_end's results once the match is over:
//            they include drop points scored after the last lock)
//   lines, pieces   summed over the locks so far
//   pending  the lock's `pending` plus the garbage_sent aimed at the
//            player since that lock
//   alive, placement   from elimination (and game_end's results)
// Events of one tick apply in stream order; "at tick t" means after all
// of tick t's events.

import { Board, PACKED_BYTES } from './tetris.js';

export const TICK_HZ = 60;
export const SPEEDS = Object.freeze([0.25, 0.5, 1, 2, 4]);

/** Stored rotation names (json.rs) to the client's. */
const ROTATIONS = { spawn: '0', right: 'R', reverse: '2', left: 'L', 0: '0', R: 'R', 2: '2', L: 'L' };
const KINDS = new Set(['I', 'O', 'T', 'S', 'Z', 'J', 'L']);

/** Key-moment names (src/sim/moments.rs) as the page shows them. */
export const MOMENT_NAMES = Object.freeze({
  tetris: 'Tetris',
  t_spin_single: 'T-spin single',
  t_spin_double: 'T-spin double',
  t_spin_triple: 'T-spin triple',
  back_to_back: 'Back-to-back',
  garbage_surge: 'Garbage surge',
  near_death_survival: 'Near-death survival',
  elimination: 'Elimination',
  comeback: 'Comeback',
  perfect_clear: 'Perfect clear',
});

/** A moment's short text, e.g. "Back-to-back ×3". */
export function momentLabel(type, data = {}) {
  const name = MOMENT_NAMES[type] ?? String(type).replace(/_/g, ' ');
  const d = data ?? {};
  switch (type) {
    case 'back_to_back': return d.chain ? `${name} ×${d.chain}` : name;
    case 'garbage_surge': return d.streak_sent ? `${name} (${d.streak_sent} lines)` : name;
    case 'elimination': return d.placement ? `${name} (#${d.placement})` : name;
    case 'perfect_clear': return d.lines ? `${name} (${d.lines} lines)` : name;
    default: return name;
  }
}

/** "m:ss.t" of a tick count (60 ticks a second). */
export function formatTime(ticks) {
  const tenths = Math.max(0, Math.floor((Number(ticks) || 0) * 10 / TICK_HZ));
  const minutes = Math.floor(tenths / 600);
  const seconds = Math.floor((tenths % 600) / 10);
  return `${minutes}:${String(seconds).padStart(2, '0')}.${tenths % 10}`;
}

/** A Board from piece_lock's `data.board` (400 hex digits). */
export function boardFromHex(hex) {
  if (typeof hex !== 'string' || hex.length !== PACKED_BYTES * 2 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new RangeError(`a stored board is ${PACKED_BYTES * 2} hex digits`);
  }
  const bytes = new Uint8Array(PACKED_BYTES);
  for (let i = 0; i < PACKED_BYTES; i++) bytes[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return Board.unpack(bytes);
}

/** A stored placement {piece, rotation, x, y} as a client piece, or null. */
export function pieceOf(placement) {
  if (!placement || !KINDS.has(placement.piece)) return null;
  const rotation = ROTATIONS[placement.rotation];
  if (!rotation || !Number.isInteger(placement.x) || !Number.isInteger(placement.y)) return null;
  return { kind: placement.piece, rotation, x: placement.x, y: placement.y };
}

/** The largest index i with sorted[i] <= value, or -1. */
export function lastAtOrBefore(sorted, value) {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

// ---------------------------------------------------------------------------
// Loading

/** A failed load: HTTP status (0 when the server was not reached), the
 * API's error code, and its message. */
export class ReplayError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ReplayError';
    this.status = status;
    this.code = code;
  }
}

/** What the page says about a failed load. */
export function describeError(error, matchId = '') {
  const code = error?.code;
  const match = matchId ? `match ${matchId}` : 'this match';
  switch (code) {
    case 'match_not_found': return `There is no ${match}: it was never recorded, or its id is wrong.`;
    case 'replay_not_found': return `${match[0].toUpperCase()}${match.slice(1)} has no stored replay: solo results have none, and events are kept for a limited time.`;
    case 'invalid_match_id': return 'The page needs a match id: replay.html?match=ID (a decimal number).';
    case 'network': return `Could not reach the server: ${error.message}`;
    case 'unsupported_game': return error.message;
    default: {
      const status = error?.status ? `HTTP ${error.status}` : 'error';
      return `Loading the replay failed (${status}${code ? `, ${code}` : ''}): ${error?.message ?? error}`;
    }
  }
}

const MATCH_ID = /^[0-9]{1,20}$/;

/**
 * Loads every page of a match's replay: GET {base}/api/matches/{id}/replay,
 * then ?after=next_after until next_after is null. Resolves with
 * {match, events, moments, pages}; rejects with a ReplayError.
 * `onPage({pages, events})` is called after each page.
 */
export async function loadReplay(matchId, { fetch: fetchFn = globalThis.fetch, base = '', limit = null, onPage = null, maxPages = 10_000 } = {}) {
  const id = String(matchId ?? '').trim();
  if (!MATCH_ID.test(id)) throw new ReplayError(0, 'invalid_match_id', `not a match id: ${JSON.stringify(id)}`);
  const pages = [];
  let after = null;
  let events = 0;
  for (;;) {
    const query = new URLSearchParams();
    if (after !== null) query.set('after', String(after));
    if (limit) query.set('limit', String(limit));
    const text = query.toString();
    const url = `${base}/api/matches/${id}/replay${text ? `?${text}` : ''}`;
    let response;
    try {
      response = await fetchFn(url, { headers: { accept: 'application/json' } });
    } catch (error) {
      throw new ReplayError(0, 'network', error?.message ?? String(error));
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (!response.ok) {
      const apiError = body?.error ?? {};
      throw new ReplayError(response.status, apiError.code ?? `http_${response.status}`, apiError.message ?? (response.statusText || `HTTP ${response.status}`));
    }
    if (!body || typeof body !== 'object' || !Array.isArray(body.events) || !body.match) {
      throw new ReplayError(response.status, 'bad_response', 'the server\'s answer is not a replay page');
    }
    pages.push(body);
    events += body.events.length;
    onPage?.({ pages: pages.length, events });
    const next = body.next_after;
    if (next === null || next === undefined) break;
    if (typeof next !== 'number' || (after !== null && next <= after)) {
      throw new ReplayError(response.status, 'bad_response', `next_after ${JSON.stringify(next)} does not advance`);
    }
    if (pages.length >= maxPages) throw new ReplayError(response.status, 'bad_response', `more than ${maxPages} pages`);
    after = next;
  }
  return { ...mergePages(pages), pages: pages.length };
}

/** One replay from its pages: events and moments in stream order, each
 * once (by seq). */
export function mergePages(pages) {
  const bySeq = (items) => {
    const seen = new Set();
    const out = [];
    for (const item of items) {
      if (item.seq !== undefined && item.seq !== null) {
        if (seen.has(item.seq)) continue;
        seen.add(item.seq);
      }
      out.push(item);
    }
    return out.map((item, i) => [item, i]).sort(([a, i], [b, j]) => (a.seq ?? i) - (b.seq ?? j) || i - j).map(([item]) => item);
  };
  return {
    match: pages[0]?.match ?? null,
    events: bySeq(pages.flatMap((page) => page.events ?? [])),
    moments: bySeq(pages.flatMap((page) => page.moments ?? [])),
  };
}

// ---------------------------------------------------------------------------
// The replay

function track() {
  return { ticks: [], orders: [], items: [] };
}

function push(t, tick, order, item) {
  t.ticks.push(tick);
  t.orders.push(order);
  t.items.push(item);
}

const num = (value, fallback = 0) => (Number.isFinite(value) ? value : fallback);

export class Replay {
  /** `events` and `moments` as loadReplay gives them (stream order). */
  constructor({ match = null, events = [], moments = [] } = {}) {
    this.match = match;
    this.game = match?.game ?? null;
    const start = events.find((e) => e.type === 'game_start');
    const end = events.find((e) => e.type === 'game_end');
    this.startTick = num(start?.tick, num(events[0]?.tick));
    this.endTick = Math.max(this.startTick, num(end?.tick, num(events[events.length - 1]?.tick, this.startTick)));
    this.ended = Boolean(end);

    // Slots and names.
    const seats = Array.isArray(match?.players) ? match.players : [];
    const ids = (start?.data?.player_ids ?? end?.data?.player_ids ?? []).map((id) => (id === null || id === undefined ? null : String(id)));
    const count = Math.max(ids.length, num(start?.data?.players), ...seats.map((s) => num(s.seat, -1) + 1), 0);
    this.slotOf = new Map();
    this.players = [];
    for (let slot = 0; slot < count; slot++) {
      const seat = seats.find((s) => s.seat === slot) ?? null;
      const playerId = ids[slot] ?? seat?.stats?.player_id ?? seat?.user_id ?? null;
      if (playerId !== null) this.slotOf.set(String(playerId), slot);
      this.players.push({ slot, playerId: playerId === null ? null : String(playerId), nickname: seat?.nickname ?? null, seat });
    }
    const nickCount = new Map();
    for (const p of this.players) nickCount.set(p.nickname, (nickCount.get(p.nickname) ?? 0) + 1);
    for (const p of this.players) {
      p.name = p.nickname === null ? `player ${p.slot + 1}` : nickCount.get(p.nickname) > 1 ? `${p.nickname} ${p.slot + 1}` : p.nickname;
    }

    // Per-player indexes, in stream order; ticks made non-decreasing so
    // that binary searches by tick hold.
    this.locks = this.players.map(track);
    this.spawns = this.players.map(track);
    this.incoming = this.players.map(track);
    this.eliminations = this.players.map(() => null);
    this.results = this.players.map(() => null);
    this.boardCache = this.players.map(() => new Map());
    let tick = -Infinity;
    let order = 0;
    const totals = this.players.map(() => ({ lines: 0, pieces: 0, incoming: 0 }));
    for (const event of events) {
      order += 1;
      tick = Math.max(tick, num(event.tick, tick));
      const slot = event.player_id === null || event.player_id === undefined ? -1 : this.slotOf.get(String(event.player_id)) ?? -1;
      const data = event.data ?? {};
      switch (event.type) {
        case 'piece_lock': {
          if (slot < 0) break;
          const total = totals[slot];
          total.lines += num(data.lines);
          total.pieces += 1;
          push(this.locks[slot], tick, order, {
            hex: data.board,
            placement: pieceOf(data.placement),
            score: num(data.score),
            lines: total.lines,
            pieces: total.pieces,
            pending: num(data.pending),
            stackHeight: num(data.stack_height),
            spin: data.spin ?? 'none',
            cleared: num(data.lines),
          });
          break;
        }
        case 'piece_spawn':
          if (slot < 0) break;
          push(this.spawns[slot], tick, order, {
            piece: pieceOf(data.placement),
            next: Array.isArray(data.next) ? data.next.filter((k) => KINDS.has(k)) : [],
            hold: KINDS.has(data.hold) ? data.hold : null,
          });
          break;
        case 'garbage_sent': {
          const target = data.target_slot;
          if (!Number.isInteger(target) || target < 0 || target >= this.players.length) break;
          totals[target].incoming += num(data.lines);
          push(this.incoming[target], tick, order, totals[target].incoming);
          break;
        }
        case 'elimination':
          if (slot >= 0 && this.eliminations[slot] === null) {
            this.eliminations[slot] = { tick, order, placement: data.placement ?? null, cause: data.cause ?? null };
          }
          break;
        case 'game_end':
          for (const result of data.results ?? []) {
            if (Number.isInteger(result.slot) && result.slot >= 0 && result.slot < this.players.length) this.results[result.slot] = result;
          }
          break;
        default:
          break;
      }
    }
    this.eventCount = events.length;

    // Key moments, by tick.
    const span = Math.max(1, this.endTick - this.startTick);
    const seen = new Set();
    this.moments = moments
      .filter((m) => {
        if (m.seq === undefined || m.seq === null) return true;
        if (seen.has(m.seq)) return false;
        seen.add(m.seq);
        return true;
      })
      .map((m, i) => ({ m, i }))
      .sort((a, b) => num(a.m.tick) - num(b.m.tick) || num(a.m.seq, a.i) - num(b.m.seq, b.i) || a.i - b.i)
      .map(({ m }, index) => {
        const playerId = m.player_id === null || m.player_id === undefined ? null : String(m.player_id);
        const slot = playerId === null ? -1 : this.slotOf.get(playerId) ?? -1;
        const t = num(m.tick);
        return {
          index,
          seq: m.seq ?? null,
          tick: t,
          type: m.type,
          playerId,
          slot,
          name: slot >= 0 ? this.players[slot].name : playerId === null ? '' : `player ${playerId}`,
          label: momentLabel(m.type, m.data),
          data: m.data ?? {},
          fraction: Math.min(1, Math.max(0, (t - this.startTick) / span)),
        };
      });
    this.momentTicks = this.moments.map((m) => m.tick);
  }

  get length() {
    return this.endTick - this.startTick;
  }

  /** A tick within the match, whole. */
  clamp(tick) {
    return Math.min(this.endTick, Math.max(this.startTick, Math.floor(num(tick, this.startTick))));
  }

  /** The board after lock `index` of `slot` (decoded once, then shared:
   * do not change it). */
  boardAt(slot, index) {
    const cache = this.boardCache[slot];
    let board = cache.get(index);
    if (!board) {
      const hex = this.locks[slot].items[index].hex;
      try {
        board = boardFromHex(hex);
      } catch {
        // A lock without a board (not expected): the previous one stands.
        board = index > 0 ? this.boardAt(slot, index - 1) : new Board();
      }
      cache.set(index, board);
    }
    return board;
  }

  /** Every player's state after all events of `tick` (clamped to the
   * match). Plain values but `board` (a shared Board). */
  stateAt(tick) {
    const t = this.clamp(tick);
    const over = this.ended && t >= this.endTick;
    const players = this.players.map((p, slot) => {
      const locks = this.locks[slot];
      const spawns = this.spawns[slot];
      const li = lastAtOrBefore(locks.ticks, t);
      const lock = li >= 0 ? locks.items[li] : null;
      const lockOrder = li >= 0 ? locks.orders[li] : 0;
      const si = lastAtOrBefore(spawns.ticks, t);
      const lastSpawn = si >= 0 ? spawns.items[si] : null;
      const elimination = this.eliminations[slot];
      const out = elimination !== null && elimination.tick <= t;
      let piece = null;
      let landing = null;
      if (!out && lastSpawn && spawns.orders[si] > lockOrder) {
        piece = lastSpawn.piece;
        // The next lock is this piece's unless another spawn (a hold) comes first.
        const nextLock = li + 1;
        if (nextLock < locks.items.length && (si + 1 >= spawns.items.length || spawns.orders[si + 1] > locks.orders[nextLock])) {
          landing = locks.items[nextLock].placement;
        }
      }
      const incoming = this.incoming[slot];
      const ii = lastAtOrBefore(incoming.ticks, t);
      const il = lastAtOrBefore(incoming.orders, lockOrder);
      const sinceLock = (ii >= 0 ? incoming.items[ii] : 0) - (il >= 0 && il <= ii ? incoming.items[il] : 0);
      const result = over ? this.results[slot] : null;
      return {
        slot,
        playerId: p.playerId,
        name: p.name,
        board: lock ? this.boardAt(slot, li) : EMPTY,
        piece: piece ? { ...piece } : null,
        landing: landing ? { ...landing } : null,
        hold: lastSpawn?.hold ?? null,
        next: lastSpawn ? [...lastSpawn.next] : [],
        score: result ? num(result.score) : lock?.score ?? 0,
        lines: lock?.lines ?? 0,
        pieces: lock?.pieces ?? 0,
        pending: out ? 0 : Math.max(0, (lock?.pending ?? 0) + sinceLock),
        stackHeight: lock?.stackHeight ?? 0,
        alive: !out,
        placement: out ? elimination.placement : result ? result.placement ?? null : null,
        lastLockTick: li >= 0 ? locks.ticks[li] : null,
      };
    });
    return { tick: t, elapsed: t - this.startTick, over, players };
  }

  /** The first moment after `tick`, or null. */
  nextMoment(tick) {
    const i = lastAtOrBefore(this.momentTicks, Math.floor(tick)) + 1;
    return i < this.moments.length ? this.moments[i] : null;
  }

  /** The last moment before `tick`, or null. */
  previousMoment(tick) {
    const i = lastAtOrBefore(this.momentTicks, Math.ceil(tick) - 1);
    return i >= 0 ? this.moments[i] : null;
  }

  /** The latest moment at or before `tick` (the one being watched), or null. */
  currentMoment(tick) {
    const i = lastAtOrBefore(this.momentTicks, Math.floor(tick));
    return i >= 0 ? this.moments[i] : null;
  }

  /** Moments of `slot` in (tick - window, tick]: labels to show. */
  recentMoments(slot, tick, window = TICK_HZ * 1.5) {
    const out = [];
    for (let i = lastAtOrBefore(this.momentTicks, Math.floor(tick)); i >= 0; i--) {
      const m = this.moments[i];
      if (m.tick <= tick - window) break;
      if (m.slot === slot) out.push(m);
    }
    return out;
  }
}

const EMPTY = new Board();

/** Filled cells of a board (tests and the automation view). */
export function filledCells(board) {
  let n = 0;
  for (const c of board.cells) if (c !== 0) n++;
  return n;
}
