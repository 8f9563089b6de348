// The replay model: stored events to per-tick state, seeking, moments,
// and loading the API's pages.
// node --test web/game/

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  Replay,
  ReplayError,
  boardFromHex,
  describeError,
  filledCells,
  formatTime,
  lastAtOrBefore,
  loadReplay,
  mergePages,
  momentLabel,
  pieceOf,
} from './replay.js';
import { Board, PACKED_BYTES, dropPosition, lockPiece, spawnPiece } from './tetris.js';

const A = '281474976710657';
const B = '77';
const STORED_ROTATION = { 0: 'spawn', R: 'right', 2: 'reverse', L: 'left' };

const hexOf = (board) => Array.from(board.pack(), (b) => b.toString(16).padStart(2, '0')).join('');
const placement = (p) => ({ piece: p.kind, rotation: STORED_ROTATION[p.rotation], x: p.x, y: p.y });

/** Events as the API serves them, seq numbered from 100. */
class Recorder {
  constructor() {
    this.events = [];
    this.seq = 100;
  }

  add(tick, type, playerId, data) {
    this.events.push({ seq: this.seq++, tick, type, player_id: playerId, data });
  }

  spawn(tick, playerId, kind, { next = ['I', 'O', 'T', 'S', 'Z'], hold = null } = {}) {
    this.add(tick, 'piece_spawn', playerId, { placement: placement(spawnPiece(kind)), next, hold });
  }

  lock(tick, playerId, board, piece, { lines = 0, score = 0, pending = 0 } = {}) {
    this.add(tick, 'piece_lock', playerId, {
      placement: placement(piece), spin: 'none', lines, ren: -1, b2b_bonus: false, b2b_chain: 0,
      perfect_clear: false, attack: 0, cancelled: 0, sent: 0, target_slot: null,
      stack_height: board.stackHeight(), pending, score, board: hexOf(board),
    });
  }
}

const MATCH = {
  id: '1782580162232352768',
  room_id: '281474976710700',
  game: 'tetris',
  mode: 'versus',
  seed: '42',
  started_at_ms: 1_700_000_000_000,
  ended_at_ms: 1_700_000_001_500,
  players: [
    { seat: 0, user_id: null, nickname: 'guest', placement: 1, outcome: 'win', score: 130, stats: { player_id: A, lines: 1, pieces: 3 } },
    { seat: 1, user_id: B, nickname: 'guest', placement: 2, outcome: 'loss', score: 20, stats: { player_id: B, lines: 0, pieces: 1 } },
  ],
};

/** A short duel: A locks three pieces (one clear, one attack), B holds,
 * locks once and is topped out at tick 90. */
function duel() {
  const r = new Recorder();
  const boards = {};
  r.add(0, 'game_start', null, { game: 'tetris', players: 2, player_ids: [A, B], seed: '42' });
  r.spawn(0, A, 'T', { next: ['O', 'I', 'L', 'J', 'S'] });
  r.spawn(0, B, 'I', { next: ['J', 'Z', 'S', 'O', 'T'] });
  // A: T hard-dropped at tick 30; O comes next.
  const t = dropPosition(new Board(), spawnPiece('T'));
  boards.a1 = lockPiece(new Board(), t).board;
  r.lock(30, A, boards.a1, t, { score: 10 });
  r.spawn(30, A, 'O', { next: ['I', 'L', 'J', 'S', 'Z'] });
  // B holds its I at tick 40: J comes out of the queue.
  r.spawn(40, B, 'J', { next: ['Z', 'S', 'O', 'T', 'L'], hold: 'I' });
  // A's O at tick 60 clears a line (the board is made up) and sends 2.
  const o = { kind: 'O', rotation: '0', x: 0, y: 0 };
  boards.a2 = Board.fromRows(['OO........', 'X.XXXXXXXX']);
  r.lock(60, A, boards.a2, o, { lines: 1, score: 110 });
  r.add(60, 'line_clear', A, { rows: [0] });
  r.add(60, 'garbage_sent', A, { target_slot: 1, lines: 2 });
  r.spawn(60, A, 'I', { next: ['L', 'J', 'S', 'Z', 'T'] });
  // B's J at tick 70: no clear, the 2 lines rise (in the board), 1 more waits.
  const j = dropPosition(new Board(), spawnPiece('J'));
  boards.b1 = lockPiece(new Board(), j).board;
  boards.b1.insertGarbage(2, 3);
  r.add(65, 'garbage_sent', A, { target_slot: 1, lines: 1 });
  r.lock(70, B, boards.b1, j, { score: 20, pending: 1 });
  r.add(70, 'garbage_received', B, { from_slot: 0, lines: 2, hole_column: 3 });
  r.spawn(70, B, 'Z', { next: ['S', 'O', 'T', 'L', 'I'], hold: 'I' });
  r.add(75, 'garbage_sent', A, { target_slot: 1, lines: 4 });
  r.add(80, 'input', A, { seq: 9, bits: 8 });
  const i = dropPosition(boards.a2, spawnPiece('I'));
  boards.a3 = lockPiece(boards.a2, i).board;
  r.lock(85, A, boards.a3, i, { score: 120 });
  r.spawn(85, A, 'L', { next: ['J', 'S', 'Z', 'T', 'O'] });
  r.add(90, 'elimination', B, { cause: 'top_out', killer_slot: 0, placement: 2 });
  r.add(90, 'game_end', null, {
    game: 'tetris',
    player_ids: [A, B],
    results: [
      { slot: 0, player_id: A, placement: 1, score: 130, lines: 1, garbage_sent: 7, garbage_received: 0, pieces: 3, survived_ticks: 90 },
      { slot: 1, player_id: B, placement: 2, score: 20, lines: 0, garbage_sent: 0, garbage_received: 2, pieces: 1, survived_ticks: 90 },
    ],
  });
  const moments = [
    { seq: 500, tick: 85, type: 'garbage_surge', player_id: A, data: { streak_sent: 7, streak_len: 3 } },
    { seq: 300, tick: 60, type: 'perfect_clear', player_id: A, data: { lines: 1 } },
    { seq: 600, tick: 90, type: 'elimination', player_id: B, data: { cause: 'top_out', killer_slot: 0, placement: 2 } },
  ];
  return { events: r.events, moments, boards, pieces: { t, o, j, i } };
}

/** A state as comparable plain JSON (boards as hex). */
function plain(state) {
  return JSON.stringify({ ...state, players: state.players.map((p) => ({ ...p, board: hexOf(p.board) })) });
}

test('boards are the stored 400 hex digits: 200 packed bytes, row 0 first, low nibble the even column', () => {
  const board = Board.fromRows(['I........X']);
  const hex = hexOf(board);
  assert.equal(hex.length, PACKED_BYTES * 2);
  assert.equal(hex.slice(0, 10), '0100000080');
  assert.deepEqual(boardFromHex(hex).cells, board.cells);
  assert.deepEqual(boardFromHex(hex.toUpperCase()).cells, board.cells);
  assert.throws(() => boardFromHex('00'), RangeError);
  assert.throws(() => boardFromHex('zz'.repeat(PACKED_BYTES)), RangeError);
  assert.deepEqual(pieceOf({ piece: 'T', rotation: 'reverse', x: 4, y: 1 }), { kind: 'T', rotation: '2', x: 4, y: 1 });
  assert.equal(pieceOf({ piece: 'Q', rotation: 'spawn', x: 4, y: 1 }), null);
});

test('the state at a tick: the latest lock\'s board, the spawn after it, sums of the locks', () => {
  const { events, moments, boards, pieces } = duel();
  const replay = new Replay({ match: MATCH, events, moments });
  assert.equal(replay.startTick, 0);
  assert.equal(replay.endTick, 90);
  assert.deepEqual(replay.players.map((p) => [p.slot, p.playerId, p.name]), [[0, A, 'guest 1'], [1, B, 'guest 2']]);

  const s0 = replay.stateAt(0);
  assert.equal(filledCells(s0.players[0].board), 0);
  assert.deepEqual(s0.players[0].piece, spawnPiece('T'));
  assert.deepEqual(s0.players[0].landing, pieces.t, 'the T lands where it locked');
  assert.deepEqual(s0.players[0].next, ['O', 'I', 'L', 'J', 'S']);
  assert.deepEqual(s0.players[1].piece, spawnPiece('I'));
  assert.equal(s0.players[1].landing, null, 'the I was held, not locked');

  // Tick 29: still the first piece; tick 30: its lock and the next spawn.
  assert.deepEqual(replay.stateAt(29).players[0].piece, spawnPiece('T'));
  const s30 = replay.stateAt(30).players[0];
  assert.deepEqual(s30.board.cells, boards.a1.cells);
  assert.deepEqual(s30.piece, spawnPiece('O'));
  assert.deepEqual(s30.landing, pieces.o);
  assert.deepEqual([s30.score, s30.lines, s30.pieces, s30.stackHeight], [10, 0, 1, 2]);

  // The hold: a spawn with no lock, the held piece in `hold`.
  const b40 = replay.stateAt(40).players[1];
  assert.deepEqual([b40.piece?.kind, b40.hold, b40.pieces, filledCells(b40.board)], ['J', 'I', 0, 0]);
  assert.deepEqual(b40.landing, pieces.j);

  // A clears a line and attacks: B's pending garbage grows until B locks.
  const s60 = replay.stateAt(60);
  assert.deepEqual([s60.players[0].lines, s60.players[0].score, s60.players[0].pieces], [1, 110, 2]);
  assert.deepEqual(s60.players[0].board.cells, boards.a2.cells);
  assert.equal(s60.players[1].pending, 2);
  assert.equal(replay.stateAt(65).players[1].pending, 3);
  const s70 = replay.stateAt(70).players[1];
  assert.deepEqual(s70.board.cells, boards.b1.cells, 'the garbage is in the lock\'s board');
  assert.deepEqual([s70.pending, s70.piece.kind, s70.hold], [1, 'Z', 'I']);
  assert.equal(replay.stateAt(75).players[1].pending, 5);

  // B is topped out at 90; the match is over: results' scores and placements.
  const s89 = replay.stateAt(89);
  assert.equal(s89.over, false);
  assert.deepEqual([s89.players[1].alive, s89.players[1].placement], [true, null]);
  const end = replay.stateAt(90);
  assert.equal(end.over, true);
  assert.deepEqual(end.players.map((p) => [p.alive, p.placement, p.score, p.lines, p.pieces]), [[true, 1, 130, 1, 3], [false, 2, 20, 0, 1]]);
  assert.equal(end.players[1].piece, null);
  assert.equal(end.players[1].pending, 0);
  assert.deepEqual(end.players[0].board.cells, boards.a3.cells);

  // Ticks outside the match are clamped to it.
  assert.equal(replay.stateAt(-50).tick, 0);
  assert.equal(replay.stateAt(1e9).tick, 90);
  assert.equal(replay.stateAt(45.7).tick, 45);
});

/** Deterministic pseudo-random numbers (mulberry32). */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A long random match of `players` players: spawns, holds, locks with
 * random boards, attacks, eliminations, several events per tick. */
function randomMatch(seed, players = 3) {
  const random = rng(seed);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const ids = Array.from({ length: players }, (_, i) => String(1000 + i));
  const r = new Recorder();
  r.add(0, 'game_start', null, { game: 'tetris', players, player_ids: ids, seed: '1' });
  const alive = new Set(ids.map((_, i) => i));
  const kinds = ['I', 'O', 'T', 'S', 'Z', 'J', 'L'];
  for (const id of ids) r.spawn(0, id, pick(kinds));
  let tick = 0;
  let score = 0;
  while (tick < 2000 && alive.size > 1) {
    tick += random() < 0.3 ? 0 : Math.floor(random() * 12);
    const slot = pick([...alive]);
    const id = ids[slot];
    const roll = random();
    if (roll < 0.5) {
      const board = new Board();
      for (let c = 0; c < 40; c++) board.cells[Math.floor(random() * 200)] = 1 + Math.floor(random() * 8);
      score += 10;
      r.lock(tick, id, board, { kind: pick(kinds), rotation: pick(['0', 'R', '2', 'L']), x: 4, y: Math.floor(random() * 10) }, { lines: Math.floor(random() * 3), score, pending: Math.floor(random() * 4) });
      if (random() < 0.3) r.add(tick, 'garbage_sent', id, { target_slot: pick([...alive].filter((s) => s !== slot)), lines: 1 + Math.floor(random() * 4) });
      r.spawn(tick, id, pick(kinds), { next: [pick(kinds), pick(kinds), pick(kinds), pick(kinds), pick(kinds)] });
    } else if (roll < 0.6) {
      r.spawn(tick, id, pick(kinds), { hold: pick(kinds) });
    } else if (roll < 0.9) {
      r.add(tick, 'input', id, { seq: 1, bits: 1 });
    } else if (roll < 0.92) {
      r.add(tick, 'elimination', id, { cause: 'top_out', killer_slot: null, placement: alive.size });
      alive.delete(slot);
    } else {
      r.add(tick, 'garbage_sent', id, { target_slot: pick(ids.map((_, i) => i)), lines: 2 });
    }
  }
  r.add(tick, 'game_end', null, { game: 'tetris', player_ids: ids, results: ids.map((id, slot) => ({ slot, player_id: id, placement: alive.has(slot) ? 1 : 2, score: 0, lines: 0, pieces: 0 })) });
  return { events: r.events, ids };
}

/** The state at `tick` the slow way: every event up to it, in order. */
function folded(events, ids, tick) {
  const players = ids.map(() => ({ board: new Board(), piece: null, spawnSeen: false, hold: null, next: [], score: 0, lines: 0, pieces: 0, pending: 0, alive: true }));
  const slotOf = new Map(ids.map((id, i) => [id, i]));
  for (const e of events) {
    if (e.tick > tick) break;
    const p = players[slotOf.get(e.player_id)] ?? null;
    if (e.type === 'piece_lock') {
      p.board = boardFromHex(e.data.board);
      p.piece = null;
      p.score = e.data.score;
      p.lines += e.data.lines;
      p.pieces += 1;
      p.pending = e.data.pending;
    } else if (e.type === 'piece_spawn') {
      p.piece = pieceOf(e.data.placement);
      p.hold = e.data.hold;
      p.next = e.data.next;
    } else if (e.type === 'garbage_sent') {
      players[e.data.target_slot].pending += e.data.lines;
    } else if (e.type === 'elimination') {
      p.alive = false;
    }
  }
  return players.map((p) => ({
    board: hexOf(p.board),
    piece: p.alive ? p.piece : null,
    hold: p.hold,
    next: p.next,
    score: p.score,
    lines: p.lines,
    pieces: p.pieces,
    pending: p.alive ? p.pending : 0,
    alive: p.alive,
  }));
}

function comparable(state) {
  return state.players.map((p) => ({ board: hexOf(p.board), piece: p.piece, hold: p.hold, next: p.next, score: p.score, lines: p.lines, pieces: p.pieces, pending: p.pending, alive: p.alive }));
}

test('every tick\'s state equals folding the events up to it', () => {
  for (const seed of [1, 2, 3]) {
    const { events, ids } = randomMatch(seed);
    const replay = new Replay({ events });
    assert.ok(replay.endTick > 100, `seed ${seed}: a long match`);
    for (let tick = replay.startTick; tick < replay.endTick; tick++) {
      // Scores at the very end come from the results; compare before it.
      assert.deepEqual(comparable(replay.stateAt(tick)), folded(events, ids, tick), `seed ${seed}, tick ${tick}`);
    }
  }
});

test('seeking backwards and forwards gives the same state as a fresh computation', () => {
  const { events } = randomMatch(7, 4);
  const moments = [{ seq: 1, tick: 10, type: 'tetris', player_id: '1000', data: {} }];
  const seeker = new Replay({ events, moments });
  const random = rng(99);
  const ticks = [seeker.endTick, seeker.startTick, Math.floor(seeker.endTick / 2), 1, seeker.endTick - 1];
  for (let i = 0; i < 300; i++) ticks.push(Math.floor(random() * (seeker.endTick + 20)) - 10);
  for (const tick of ticks) {
    const fresh = new Replay({ events, moments });
    assert.equal(plain(seeker.stateAt(tick)), plain(fresh.stateAt(tick)), `tick ${tick}`);
  }
});

test('key moments: sorted by tick, named, with timeline positions and stepping', () => {
  const { events, moments } = duel();
  const replay = new Replay({ match: MATCH, events, moments: [...moments, moments[0]] });
  assert.equal(replay.moments.length, 3, 'a moment on two pages counts once');
  assert.deepEqual(replay.moments.map((m) => [m.tick, m.type, m.slot, m.name, m.label]), [
    [60, 'perfect_clear', 0, 'guest 1', 'Perfect clear (1 lines)'],
    [85, 'garbage_surge', 0, 'guest 1', 'Garbage surge (7 lines)'],
    [90, 'elimination', 1, 'guest 2', 'Elimination (#2)'],
  ]);
  assert.deepEqual(replay.moments.map((m) => m.fraction), [60 / 90, 85 / 90, 1]);
  assert.equal(replay.nextMoment(0).tick, 60);
  assert.equal(replay.nextMoment(60).tick, 85);
  assert.equal(replay.nextMoment(90), null);
  assert.equal(replay.previousMoment(90).tick, 85);
  assert.equal(replay.previousMoment(60), null);
  assert.equal(replay.previousMoment(61).tick, 60);
  assert.equal(replay.currentMoment(59), null);
  assert.equal(replay.currentMoment(70).tick, 60);
  assert.deepEqual(replay.recentMoments(0, 70).map((m) => m.type), ['perfect_clear']);
  assert.deepEqual(replay.recentMoments(0, 200).map((m) => m.type), []);
  assert.deepEqual(replay.recentMoments(1, 90).map((m) => m.type), ['elimination']);
  assert.equal(momentLabel('back_to_back', { chain: 3 }), 'Back-to-back ×3');
  assert.equal(momentLabel('t_spin_double', {}), 'T-spin double');
  assert.equal(momentLabel('something_new', null), 'something new');
});

test('time and search helpers', () => {
  assert.equal(formatTime(0), '0:00.0');
  assert.equal(formatTime(90), '0:01.5');
  assert.equal(formatTime(60 * 75 + 6), '1:15.1');
  assert.equal(lastAtOrBefore([], 3), -1);
  assert.equal(lastAtOrBefore([1, 2, 2, 5], 2), 2);
  assert.equal(lastAtOrBefore([1, 2, 2, 5], 0), -1);
  assert.equal(lastAtOrBefore([1, 2, 2, 5], 9), 3);
});

/** A fake fetch serving `pages` by `after`, recording the URLs asked. */
function fakeFetch(handler) {
  const urls = [];
  const fetch = async (url) => {
    urls.push(url);
    const { status = 200, body } = handler(url);
    return {
      ok: status >= 200 && status < 300,
      status,
      statusText: '',
      json: async () => {
        if (body === undefined) throw new SyntaxError('no JSON');
        return body;
      },
    };
  };
  return { fetch, urls };
}

test('loading follows next_after across pages and merges them', async () => {
  const { events, moments } = duel();
  const cut = [0, 7, 14, events.length];
  const pages = cut.slice(1).map((end, i) => {
    const slice = events.slice(cut[i], end);
    const last = slice[slice.length - 1].seq;
    const ticks = [slice[0].tick, slice[slice.length - 1].tick];
    return {
      match: MATCH,
      events: slice,
      moments: moments.filter((m) => m.tick >= ticks[0] && m.tick <= ticks[1] && (i === 2 || m.tick < ticks[1])),
      next_after: end < events.length ? last : null,
    };
  });
  const { fetch, urls } = fakeFetch((url) => {
    const after = new URL(url, 'http://x').searchParams.get('after');
    const index = after === null ? 0 : pages.findIndex((p, i) => i > 0 && pages[i - 1].next_after === Number(after));
    return { body: pages[index] };
  });
  const seen = [];
  const loaded = await loadReplay(MATCH.id, { fetch, onPage: (p) => seen.push(p), limit: 7 });
  assert.deepEqual(urls, [
    `/api/matches/${MATCH.id}/replay?limit=7`,
    `/api/matches/${MATCH.id}/replay?after=${pages[0].next_after}&limit=7`,
    `/api/matches/${MATCH.id}/replay?after=${pages[1].next_after}&limit=7`,
  ]);
  assert.equal(loaded.pages, 3);
  assert.deepEqual(seen.map((p) => p.events), [7, 14, events.length]);
  assert.deepEqual(loaded.events, events);
  assert.deepEqual(loaded.moments.map((m) => m.seq), [300, 500, 600]);
  assert.equal(loaded.match.id, MATCH.id);
  const merged = mergePages([{ match: MATCH, events: events.slice(0, 3), moments: [] }, { match: MATCH, events: events.slice(1, 4), moments: [] }]);
  assert.deepEqual(merged.events, events.slice(0, 4));
});

test('load errors say what went wrong', async () => {
  const notFound = fakeFetch(() => ({ status: 404, body: { error: { code: 'match_not_found', message: 'no such match' } } }));
  await assert.rejects(loadReplay('5', { fetch: notFound.fetch }), (e) => e instanceof ReplayError && e.status === 404 && e.code === 'match_not_found');
  const noReplay = fakeFetch(() => ({ status: 404, body: { error: { code: 'replay_not_found', message: 'none' } } }));
  const error = await loadReplay('5', { fetch: noReplay.fetch }).catch((e) => e);
  assert.equal(error.code, 'replay_not_found');
  assert.match(describeError(error, '5'), /Match 5 has no stored replay/);
  const down = await loadReplay('5', { fetch: async () => { throw new TypeError('Failed to fetch'); } }).catch((e) => e);
  assert.deepEqual([down.status, down.code], [0, 'network']);
  assert.match(describeError(down), /Could not reach the server: Failed to fetch/);
  const html = fakeFetch(() => ({ status: 502, body: undefined }));
  const bad = await loadReplay('5', { fetch: html.fetch }).catch((e) => e);
  assert.deepEqual([bad.status, bad.code], [502, 'http_502']);
  assert.match(describeError(bad), /HTTP 502/);
  const stuck = fakeFetch(() => ({ body: { match: MATCH, events: [], moments: [], next_after: 3 } }));
  const loop = await loadReplay('5', { fetch: stuck.fetch }).catch((e) => e);
  assert.equal(loop.code, 'bad_response');
  assert.equal(stuck.urls.length, 2);
  for (const id of ['', 'abc', '-1', '1e5', null]) {
    const invalid = await loadReplay(id, { fetch: stuck.fetch }).catch((e) => e);
    assert.equal(invalid.code, 'invalid_match_id', String(id));
  }
  assert.match(describeError(new ReplayError(0, 'match_not_found', 'x'), '9'), /no match 9/);
});
