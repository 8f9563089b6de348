#!/usr/bin/env node
// Two browsers in one arena room, one on WebTransport and one on WebSocket:
// each moves, and each must see the other's dot move.
//
//   node tests/browser/game_arena.mjs --http 127.0.0.1:8080 --udp 4433
//        [--screenshots DIR] [--timeout-ms 60000]
//        [--chromium /usr/bin/chromium] [--chromium-log FILE]
//
// wendy (forced onto WebTransport: ?transport=wt) creates a 2-player arena
// room, sam (forced onto WebSocket: ?transport=ws) joins it by code, both
// get ready. Then wendy holds Right while sam holds Up for a second.
//
// Output: one JSON line on stdout
//   {ok, code, transports: {wendy, sam}, slots: {wendy, sam},
//    wendySeesSam: {before, after, dx, dy}, samSeesWendy: {...},
//    wendySeesSelf: {...}, samSeesSelf: {...}, acked: {wendy, sam},
//    screenshots, elapsedMs, error}
// Positions are in world units (1000 x 1000 world, y up). ok when the
// transports are wt and ws, wendy's dot moved right by > 50 units and
// sam's moved up by > 50 units in both pages' views, and each page's inputs
// were acknowledged. Exit 0 when ok, 1 otherwise, 2 on bad arguments.

import { parseArgs } from 'node:util';

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

const SCRIPT = 'game_arena';
const { values: opts } = parseArgs({ options: { ...COMMON_OPTIONS, 'timeout-ms': { type: 'string', default: '60000' } } });
if (!opts.http) fail(SCRIPT, '--http HOST:PORT (the server\'s plain HTTP address) is required');
if (!opts.udp) fail(SCRIPT, '--udp PORT (the server\'s WebTransport port) is required');
const timeoutMs = Number(opts['timeout-ms']);
const MIN_MOVE_UNITS = 50;

const started = Date.now();
const screenshots = [];
const out = { ok: false, code: null, transports: {}, slots: {}, wendySeesSam: null, samSeesWendy: null, wendySeesSelf: null, samSeesSelf: null, acked: {}, screenshots, elapsedMs: 0, error: null };
let browser;
const players = {};

function position(state, slot) {
  const p = state.arena?.players.find((q) => q.slot === slot);
  return p ? { x: p.x / 1000, y: p.y / 1000, tick: state.arena.tick } : null;
}

function movement(before, after) {
  if (!before || !after) return { before, after, dx: null, dy: null };
  return { before, after, dx: after.x - before.x, dy: after.y - before.y };
}

try {
  browser = await launch(opts);
  const suffix = tag();
  players.wendy = await openPlayer(browser, opts, { nickname: `wendy-${suffix}`, transport: 'wt', timeoutMs });
  players.sam = await openPlayer(browser, opts, { nickname: `sam-${suffix}`, transport: 'ws', timeoutMs });
  const { wendy, sam } = players;
  out.transports = { wendy: (await gameState(wendy.page)).transport, sam: (await gameState(sam.page)).transport };

  const room = await createRoom(wendy, { game: 'arena', capacity: 2, name: `arena-${suffix}`, timeoutMs });
  out.code = room.code;
  await joinByCode(sam, room.code, timeoutMs);
  await waitState(wendy.page, (g) => g.members.length === 2, null, timeoutMs, 'wendy sees sam');
  await ready(wendy, timeoutMs);
  await ready(sam, timeoutMs);
  const bothVisible = (g) => g.screen === 'game' && g.slot !== null && g.slot >= 0 && g.arena && g.arena.players.length >= 2;
  await Promise.all([wendy, sam].map((p) => waitState(p.page, bothVisible, null, timeoutMs, `${p.nickname}: arena with both players`)));

  const w0 = await gameState(wendy.page);
  const s0 = await gameState(sam.page);
  out.slots = { wendy: w0.slot, sam: s0.slot };
  await screenshot(wendy, opts.screenshots, 'arena-wendy-before', screenshots);

  await Promise.all([wendy.page.keyboard.down('ArrowRight'), sam.page.keyboard.down('ArrowUp')]);
  await sleep(1000);
  await Promise.all([wendy.page.keyboard.up('ArrowRight'), sam.page.keyboard.up('ArrowUp')]);
  await sleep(400);

  const w1 = await gameState(wendy.page);
  const s1 = await gameState(sam.page);
  await screenshot(wendy, opts.screenshots, 'arena-wendy-after', screenshots);
  await screenshot(sam, opts.screenshots, 'arena-sam-after', screenshots);

  out.wendySeesSam = movement(position(w0, out.slots.sam), position(w1, out.slots.sam));
  out.samSeesWendy = movement(position(s0, out.slots.wendy), position(s1, out.slots.wendy));
  out.wendySeesSelf = movement(position(w0, out.slots.wendy), position(w1, out.slots.wendy));
  out.samSeesSelf = movement(position(s0, out.slots.sam), position(s1, out.slots.sam));
  out.acked = { wendy: w1.input, sam: s1.input };

  const problems = [];
  if (out.transports.wendy !== 'wt') problems.push(`wendy is on ${out.transports.wendy}, not wt`);
  if (out.transports.sam !== 'ws') problems.push(`sam is on ${out.transports.sam}, not ws`);
  if (!(out.wendySeesSam.dy > MIN_MOVE_UNITS)) problems.push(`wendy did not see sam move up (dy ${out.wendySeesSam.dy})`);
  if (!(out.samSeesWendy.dx > MIN_MOVE_UNITS)) problems.push(`sam did not see wendy move right (dx ${out.samSeesWendy.dx})`);
  if (!(out.wendySeesSelf.dx > MIN_MOVE_UNITS)) problems.push(`wendy did not move right (dx ${out.wendySeesSelf.dx})`);
  if (!(out.samSeesSelf.dy > MIN_MOVE_UNITS)) problems.push(`sam did not move up (dy ${out.samSeesSelf.dy})`);
  for (const [name, input] of Object.entries(out.acked)) {
    if (!input || input.acked === 0) problems.push(`${name}'s inputs were never acknowledged`);
  }
  out.ok = problems.length === 0;
  out.error = out.ok ? null : problems.join('; ');

  await wendy.page.click('#leave-game').catch(() => {});
  await sam.page.click('#leave-game').catch(() => {});
} catch (error) {
  out.error = error.message.split('\n')[0];
  for (const [name, player] of Object.entries(players)) await screenshot(player, opts.screenshots, `arena-${name}-failure`, screenshots);
}
if (!out.ok) {
  out.console = Object.fromEntries(Object.entries(players).map(([name, p]) => [name, p.log.slice(-40)]));
}
out.elapsedMs = Date.now() - started;
console.log(JSON.stringify(out));
console.error(`${SCRIPT}: ${out.ok ? 'ok' : `FAILED: ${out.error}`}`);
await closePlayers(players);
await browser?.close().catch(() => {});
process.exit(out.ok ? 0 : 1);
