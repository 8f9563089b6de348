#!/usr/bin/env node
// Two scripted players fight a real Tetris battle through the browser
// client: line clears, garbage, key moments, prediction at speed.
//
//   node tests/browser/game_bots.mjs --http 127.0.0.1:8080 [--udp 4433]
//        [--transports wt,ws] [--screenshots DIR] [--timeout-ms 240000]
//        [--page-params ...] [--chromium /usr/bin/chromium]
//
// ann and ben join one 2-player Tetris room. Each bot reads its own
// predicted state from window.ludusGame.own, picks a placement with the
// client's own rules module (web/game/tetris.js: every rotation and column,
// scored by height, holes, bumpiness and lines) and types it (rotate, shift,
// hard drop) like a fast player, several pieces a second. ann keeps the
// right column open for multi-line clears (garbage, key moments); ben
// plays flat and blunders (a random placement) one piece in five, so ann
// should win after sending him garbage.
//
// Output: one JSON line on stdout
//   {ok, code, agree, boardsConsistent, snapshotsChecked, winner,
//    winnerExpected, players: {ann, ben: {playerId, transport, placed,
//    result, keyMoments, corrections, snapshotMismatches, input, errors}},
//    linesCleared, garbageSent, screenshots, elapsedMs, error}
// ok: both pages got the same GameResults, every snapshot equalled the
// boards rebuilt from events on both pages, lines were cleared and garbage
// was sent. Exit 0 when ok, 1 otherwise, 2 on bad arguments.

import { parseArgs } from 'node:util';

import { Board, INPUT, applyInput, dropPosition, lockPiece, predictionState } from '../../web/game/tetris.js';
import {
  COMMON_OPTIONS,
  closePlayers,
  createRoom,
  fail,
  gameState,
  joinByCode,
  launch,
  openPlayer,
  ready,
  screenshot,
  sleep,
  tag,
  waitState,
} from './game_common.mjs';

const SCRIPT = 'game_bots';
const { values: opts } = parseArgs({ options: { ...COMMON_OPTIONS, transports: { type: 'string' }, 'timeout-ms': { type: 'string', default: '240000' } } });
if (!opts.http) fail(SCRIPT, '--http HOST:PORT (the server\'s plain HTTP address) is required');
const [transportA, transportB] = (opts.transports ?? (opts.udp ? 'wt,ws' : 'ws,ws')).split(',').map((t) => t.trim());
for (const t of [transportA, transportB]) {
  if (!['auto', 'wt', 'ws'].includes(t)) fail(SCRIPT, `unknown transport ${t}`);
  if (t === 'wt' && !opts.udp) fail(SCRIPT, '--udp PORT is required for wt');
}
const timeoutMs = Number(opts['timeout-ms']);
const stepMs = 30_000;

// ---------------------------------------------------------------------------
// The bot

function boardFrom(cells) {
  const board = new Board();
  for (let i = 0; i < board.cells.length; i++) board.cells[i] = Number.parseInt(cells[i], 16);
  return board;
}

/** A placement's score (higher is better). With `well`, the rightmost
 * column is kept open for multi-line clears (that send garbage). */
function evaluate(board, lines, well) {
  const heights = [];
  let holes = 0;
  for (let x = 0; x < 10; x++) {
    let h = 0;
    for (let y = 39; y >= 0; y--) {
      if (board.get(x, y) !== 0) {
        h = y + 1;
        break;
      }
    }
    heights.push(h);
    for (let y = 0; y < h; y++) if (board.get(x, y) === 0) holes++;
  }
  let bumpiness = 0;
  for (let x = 0; x < 9; x++) bumpiness += Math.abs(heights[x] - heights[x + 1]);
  const aggregate = heights.reduce((a, b) => a + b, 0);
  let score = -0.51 * aggregate + 0.76 * lines - 0.36 * holes - 0.18 * bumpiness;
  if (well) {
    if (lines >= 2) score += 1.5 * lines * lines;
    else score -= 0.8 * heights[9];
  }
  return score;
}

const TURNS = [[], ['cw'], ['cw', 'cw'], ['ccw']];

/** Every reachable placement: the keys that make it and its score. */
function placements(own, well) {
  const board = boardFrom(own.cells);
  const base = predictionState({ board, piece: own.piece, hold: own.hold, holdUsed: own.holdUsed, next: own.next });
  const out = [];
  for (const turns of TURNS) {
    for (let dx = -5; dx <= 5; dx++) {
      let s = base;
      const keys = [];
      let possible = true;
      for (const turn of turns) {
        const before = s.piece;
        s = applyInput(s, turn === 'cw' ? INPUT.ROTATE_CW : INPUT.ROTATE_CCW);
        if (s.piece === null || s.piece.rotation === before.rotation) possible = false;
        keys.push(turn === 'cw' ? 'ArrowUp' : 'z');
      }
      for (let i = 0; possible && i < Math.abs(dx); i++) {
        const x = s.piece.x;
        s = applyInput(s, dx < 0 ? INPUT.MOVE_LEFT : INPUT.MOVE_RIGHT);
        if (s.piece.x === x) possible = false;
        keys.push(dx < 0 ? 'ArrowLeft' : 'ArrowRight');
      }
      if (!possible) continue;
      const landed = dropPosition(s.board, s.piece);
      const { board: after, rows } = lockPiece(s.board, landed);
      keys.push('Space');
      out.push({ keys, score: evaluate(after, rows.length, well) });
    }
  }
  return out;
}

async function bot(player, { blunder, well = false, until, stats }) {
  const { page } = player;
  let lastSerial = null;
  while (!until()) {
    const own = await page.evaluate(() => window.ludusGame.own).catch(() => null);
    if (!own || !own.alive) {
      if (own && !own.alive) return;
      await sleep(30);
      continue;
    }
    if (!own.piece || own.serial === lastSerial) {
      await sleep(15);
      continue;
    }
    const options = placements(own, well);
    if (options.length === 0) {
      await sleep(30);
      continue;
    }
    options.sort((a, b) => b.score - a.score);
    const choice = Math.random() < blunder ? options[Math.floor(Math.random() * options.length)] : options[0];
    lastSerial = own.serial;
    for (const key of choice.keys) {
      if (until()) return;
      await page.keyboard.press(key);
      await sleep(25);
    }
    stats.placed += 1;
    await sleep(120);
  }
}

// ---------------------------------------------------------------------------

const started = Date.now();
const screenshots = [];
const out = { ok: false, code: null, agree: false, boardsConsistent: false, snapshotsChecked: 0, winner: null, winnerExpected: false, players: {}, linesCleared: 0, garbageSent: 0, screenshots, elapsedMs: 0, error: null };
let browser;
const players = {};

try {
  browser = await launch(opts);
  const suffix = tag();
  players.ann = await openPlayer(browser, opts, { nickname: `ann-${suffix}`, transport: transportA, timeoutMs: stepMs });
  players.ben = await openPlayer(browser, opts, { nickname: `ben-${suffix}`, transport: transportB, timeoutMs: stepMs });
  const { ann, ben } = players;
  const room = await createRoom(ann, { game: 'tetris', capacity: 2, name: `bots-${suffix}`, isPrivate: true, timeoutMs: stepMs });
  out.code = room.code;
  await joinByCode(ben, room.code, stepMs);
  await waitState(ann.page, (g) => g.members.length === 2, null, stepMs, 'ann sees ben');
  await ready(ann, stepMs);
  await ready(ben, stepMs);
  await Promise.all([ann, ben].map((p) => waitState(p.page, (g) => g.screen === 'game' && g.own !== null && g.lastSnapshotTick !== null, null, stepMs, `${p.nickname}: game on`)));

  let done = false;
  const until = () => done;
  const stats = { ann: { placed: 0 }, ben: { placed: 0 } };
  const finished = Promise.all([ann, ben].map((p) => waitState(p.page, (g) => g.results !== null, null, timeoutMs, `${p.nickname}: results`)));
  const play = Promise.all([
    bot(ann, { blunder: 0, well: true, until, stats: stats.ann }),
    bot(ben, { blunder: 0.2, until, stats: stats.ben }),
  ]);
  const shots = (async () => {
    for (let i = 1; i <= 3 && !done; i++) {
      await sleep(8000);
      if (done) break;
      await screenshot(ann, opts.screenshots, `bots-ann-${i}`, screenshots);
      await screenshot(ben, opts.screenshots, `bots-ben-${i}`, screenshots);
    }
  })();
  try {
    await finished;
  } finally {
    done = true;
    await play.catch(() => {});
    await shots.catch(() => {});
  }
  await screenshot(ann, opts.screenshots, 'bots-ann-results', screenshots);

  const states = { ann: await gameState(ann.page), ben: await gameState(ben.page) };
  for (const [name, s] of Object.entries(states)) {
    const result = s.results.results.find((r) => r.player_id === s.playerId) ?? null;
    out.players[name] = {
      playerId: s.playerId,
      transport: s.transport,
      placed: stats[name].placed,
      result,
      keyMoments: s.keyMoments,
      corrections: s.tetris?.corrections,
      snapshotsChecked: s.tetris?.snapshotsChecked,
      snapshotMismatches: s.tetris?.snapshotMismatches,
      input: s.input,
      errors: s.errors,
    };
  }
  const key = (s) => JSON.stringify(s.results?.results ?? null);
  out.agree = states.ann.results !== null && key(states.ann) === key(states.ben);
  out.snapshotsChecked = Object.values(states).reduce((n, s) => n + (s.tetris?.snapshotsChecked ?? 0), 0);
  out.boardsConsistent = Object.values(states).every((s) => s.tetris && s.tetris.snapshotMismatches.length === 0);
  const results = states.ann.results.results;
  out.linesCleared = results.reduce((n, r) => n + r.lines, 0);
  out.garbageSent = results.reduce((n, r) => n + r.garbage_sent, 0);
  const winner = results.find((r) => r.placement === 1);
  out.winner = winner?.player_id ?? null;
  out.winnerExpected = out.winner === states.ann.playerId;
  const problems = [];
  if (!out.agree) problems.push('the two pages\' results differ');
  if (!out.boardsConsistent) problems.push('a snapshot disagreed with the board rebuilt from events');
  if (out.linesCleared === 0) problems.push('no line was cleared');
  if (out.garbageSent === 0) problems.push('no garbage was sent');
  out.ok = problems.length === 0;
  out.error = out.ok ? null : problems.join('; ');
} catch (error) {
  out.error = error.message.split('\n')[0];
  for (const [name, player] of Object.entries(players)) {
    await screenshot(player, opts.screenshots, `bots-${name}-failure`, screenshots);
    out.players[name] = { ...(out.players[name] ?? {}), state: await gameState(player.page).catch(() => null) };
  }
}
if (!out.ok) {
  for (const [name, player] of Object.entries(players)) out.players[name] = { ...(out.players[name] ?? {}), console: player.log.slice(-40) };
}
out.elapsedMs = Date.now() - started;
console.log(JSON.stringify(out));
console.error(`${SCRIPT}: ${out.ok ? 'ok' : `FAILED: ${out.error}`}`);
await closePlayers(players);
await browser?.close().catch(() => {});
process.exit(out.ok ? 0 : 1);
