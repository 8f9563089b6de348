#!/usr/bin/env node
// A Tetris battle in the browser client, end to end: two players and a
// spectator in Debian's headless Chromium against a running `ludus serve`.
//
//   node tests/browser/game_battle.mjs --http 127.0.0.1:8080 [--udp 4433]
//        [--screenshots DIR] [--timeout-ms 120000] [--transports wt,ws]
//        [--chromium /usr/bin/chromium] [--chromium-log FILE]
//
// alice creates a public 2-player Tetris room, bob joins it by its code,
// carol finds it in the room list and watches it. Both players get ready;
// during the game alice hard-drops as fast as she can (she tops out within
// seconds) while bob places pieces left, right and centre at a human pace,
// with a hold and a soft drop now and then, so bob should win. The script
// waits for GameResults on all three pages.
//
// --transports gives alice's and bob's transport (auto, wt or ws); the
// default is "wt,ws" with --udp, else "ws,ws". carol uses ws.
// --drop-connection: early in the game bob's transport is closed without a
// Bye (window.ludusDebug.dropConnection()); his page must reconnect with
// its resume token, rejoin the room and play on (out.reconnect says how).
//
// Output: one JSON line on stdout
//   {ok, code, roomId, agree, spectatorAgrees, winner, winnerExpected,
//    boardsConsistent, snapshotsChecked, players: {alice, bob, carol:
//    {playerId, transport, results, keyMoments, lastSnapshotTick, tetris,
//    input, errors}}, reconnect (with --drop-connection: {ms, resumed,
//    samePlayer, inputBefore, inputAfter}), screenshots, elapsedMs, error}
// `agree`: alice's and bob's GameResults are identical (placements,
// scores, lines, pieces, garbage); `spectatorAgrees`: carol's too;
// `boardsConsistent`: on every page, each periodic TetrisSnapshot equalled
// the boards the page had rebuilt from the events since the previous one.
// Exit status 0 when ok (all of these, and bob won), 1 otherwise, 2 on bad
// arguments. --page-params adds query parameters to every page URL.

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

const SCRIPT = 'game_battle';
const { values: opts } = parseArgs({ options: { ...COMMON_OPTIONS, transports: { type: 'string' }, 'drop-connection': { type: 'boolean', default: false } } });
if (!opts.http) fail(SCRIPT, '--http HOST:PORT (the server\'s plain HTTP address) is required');
const [transportA, transportB] = (opts.transports ?? (opts.udp ? 'wt,ws' : 'ws,ws')).split(',').map((t) => t.trim());
for (const t of [transportA, transportB]) {
  if (!['auto', 'wt', 'ws'].includes(t)) fail(SCRIPT, `unknown transport ${t}`);
  if (t === 'wt' && !opts.udp) fail(SCRIPT, '--udp PORT is required for wt');
}
const timeoutMs = Number(opts['timeout-ms']);
const stepMs = Math.min(30_000, timeoutMs);

const started = Date.now();
const screenshots = [];
const out = { ok: false, code: null, roomId: null, agree: false, spectatorAgrees: false, winner: null, winnerExpected: false, boardsConsistent: false, snapshotsChecked: 0, players: {}, screenshots, elapsedMs: 0, error: null };
let browser;
const players = {};

/** The parts of a GameResults that every viewer must see the same. */
function resultKey(results) {
  if (!results) return null;
  return JSON.stringify(results.results.map((r) => [r.player_id, r.slot, r.placement, r.score, r.lines, r.pieces, r.garbage_sent, r.garbage_received, r.survived_ticks]));
}

async function alicePlays(alice, until) {
  // Hard drops as fast as a (very bad) player: the stack grows in the middle.
  while (!until()) {
    await alice.page.keyboard.press('Space');
    await sleep(400);
  }
}

async function bobPlays(bob, until) {
  // Spreads pieces over the board at a human pace.
  const plans = [
    ['ArrowLeft', 'ArrowLeft', 'ArrowLeft', 'ArrowLeft', 'Space'],
    ['ArrowRight', 'ArrowRight', 'ArrowRight', 'ArrowRight', 'Space'],
    ['ArrowUp', 'ArrowLeft', 'Space'],
    ['ArrowUp', 'ArrowRight', 'ArrowRight', 'Space'],
    ['c'],
    ['ArrowLeft', 'ArrowLeft', 'Space'],
    ['x', 'ArrowRight', 'Space'],
    ['z', 'Space'],
  ];
  let i = 0;
  while (!until()) {
    const plan = plans[i % plans.length];
    i++;
    if (i % 5 === 0) {
      // A soft drop held for a moment (bit 2 as a state).
      await bob.page.keyboard.down('ArrowDown');
      await sleep(150);
      await bob.page.keyboard.up('ArrowDown');
    }
    for (const key of plan) {
      if (until()) return;
      await bob.page.keyboard.press(key);
      await sleep(60);
    }
    await sleep(500);
  }
}

try {
  browser = await launch(opts);
  const suffix = tag();
  players.alice = await openPlayer(browser, opts, { nickname: `alice-${suffix}`, transport: transportA, timeoutMs: stepMs });
  players.bob = await openPlayer(browser, opts, { nickname: `bob-${suffix}`, transport: transportB, timeoutMs: stepMs });
  players.carol = await openPlayer(browser, opts, { nickname: `carol-${suffix}`, transport: 'ws', timeoutMs: stepMs });
  const { alice, bob, carol } = players;
  await screenshot(alice, opts.screenshots, 'battle-alice-lobby', screenshots);

  const room = await createRoom(alice, { game: 'tetris', capacity: 2, name: `battle-${suffix}`, timeoutMs: stepMs });
  out.code = room.code;
  out.roomId = room.roomId;
  await joinByCode(bob, room.code, stepMs);
  await waitState(alice.page, (g) => g.members.length === 2, null, stepMs, 'alice sees bob in the room');

  // carol watches: the room is public, so it is in the room list.
  await carol.page.click('#refresh-rooms');
  const row = `#room-list tr[data-code="${room.code}"] button[data-action="spectate"]`;
  await carol.page.waitForSelector(row, { timeout: stepMs });
  await carol.page.click(row);
  await waitState(carol.page, (g) => g.screen === 'spectate' && g.spectating, null, stepMs, 'carol spectating');
  await screenshot(alice, opts.screenshots, 'battle-alice-room', screenshots);

  await ready(alice, stepMs);
  await ready(bob, stepMs);
  await Promise.all([alice, bob].map((p) => waitState(p.page, (g) => g.screen === 'game' && g.slot !== null && g.slot >= 0 && g.lastSnapshotTick !== null, null, stepMs, `${p.nickname}: game on`)));

  let done = false;
  const until = () => done;
  const finished = Promise.all([alice, bob].map((p) => waitState(p.page, (g) => g.results !== null, null, timeoutMs, `${p.nickname}: results`)));
  const play = Promise.all([alicePlays(alice, until), bobPlays(bob, until)]);
  if (opts['drop-connection']) {
    await sleep(700);
    const before = await gameState(bob.page);
    await bob.page.evaluate(() => window.ludusDebug.dropConnection());
    const dropped = Date.now();
    await waitState(bob.page, (g, b) => g.welcomes > b.welcomes && g.connected && g.screen === 'game' && g.roomId !== null, { welcomes: before.welcomes }, stepMs, 'bob back in the game');
    const after = await gameState(bob.page);
    out.reconnect = { ms: Date.now() - dropped, resumed: after.resumed, samePlayer: after.playerId === before.playerId, inputBefore: before.input, inputAfter: after.input };
  }
  await sleep(1200);
  await screenshot(alice, opts.screenshots, 'battle-alice-game', screenshots);
  await screenshot(bob, opts.screenshots, 'battle-bob-game', screenshots);
  await screenshot(carol, opts.screenshots, 'battle-carol-spectating', screenshots);
  try {
    await finished;
  } finally {
    done = true;
    await play.catch(() => {});
  }
  await screenshot(alice, opts.screenshots, 'battle-alice-results', screenshots);
  await screenshot(bob, opts.screenshots, 'battle-bob-results', screenshots);

  // The spectator sees the game late (delay_ticks) but must see the same end.
  let spectatorError = null;
  try {
    await waitState(carol.page, (g) => g.results !== null, null, stepMs, 'carol: results');
  } catch (error) {
    spectatorError = error.message;
  }
  await screenshot(carol, opts.screenshots, 'battle-carol-results', screenshots);

  for (const [name, player] of Object.entries(players)) {
    const s = await gameState(player.page);
    out.players[name] = {
      playerId: s.playerId,
      transport: s.transport,
      fallbackReason: s.fallbackReason,
      slot: s.slot,
      results: s.results,
      keyMoments: s.keyMoments,
      lastSnapshotTick: s.lastSnapshotTick,
      tetris: s.tetris,
      input: s.input,
      errors: s.errors,
    };
  }
  const a = resultKey(out.players.alice.results);
  const b = resultKey(out.players.bob.results);
  const c = resultKey(out.players.carol.results);
  out.agree = a !== null && a === b;
  out.spectatorAgrees = c !== null && c === a;
  const winner = out.players.alice.results?.results.find((r) => r.placement === 1);
  out.winner = winner ? winner.player_id : null;
  out.winnerExpected = winner !== undefined && winner.player_id === out.players.bob.playerId;
  // Every snapshot matched the boards each page rebuilt from the events.
  out.snapshotsChecked = Object.values(out.players).reduce((n, p) => n + (p.tetris?.snapshotsChecked ?? 0), 0);
  out.boardsConsistent = Object.values(out.players).every((p) => p.tetris && p.tetris.snapshotMismatches.length === 0);
  const reconnected = !opts['drop-connection'] || (out.reconnect?.resumed === true && out.reconnect.samePlayer);
  out.ok = out.agree && out.spectatorAgrees && out.winnerExpected && out.boardsConsistent && reconnected;
  if (!out.ok) {
    out.error = spectatorError ?? (!out.agree ? 'the players\' results differ' : !out.spectatorAgrees ? 'the spectator\'s results differ'
      : !out.winnerExpected ? 'bob did not win' : !reconnected ? 'bob did not resume his session'
        : 'a snapshot disagreed with the board rebuilt from events');
  }
} catch (error) {
  out.error = error.message.split('\n')[0];
  for (const [name, player] of Object.entries(players)) {
    await screenshot(player, opts.screenshots, `battle-${name}-failure`, screenshots);
    out.players[name] = { ...(out.players[name] ?? {}), state: await gameState(player.page).catch(() => null) };
  }
}
if (!out.ok) {
  for (const [name, player] of Object.entries(players)) {
    out.players[name] = { ...(out.players[name] ?? {}), console: player.log.slice(-40) };
  }
}
out.elapsedMs = Date.now() - started;
console.log(JSON.stringify(out));
console.error(`${SCRIPT}: ${out.ok ? 'ok' : `FAILED: ${out.error}`}`);
await closePlayers(players);
await browser?.close().catch(() => {});
process.exit(out.ok ? 0 : 1);
