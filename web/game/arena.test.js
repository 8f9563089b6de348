// The arena view (interpolation, stale states, acknowledgements), arena
// input bits, and the page's endpoint choice. node --test web/game/

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { endpointsFrom } from '../app/net.js';
import { ARENA_INPUT, ArenaView, arenaBits } from './arena.js';

const state = (tick, players) => ({ tick, players: players.map(([slot, x, y, seq = 0]) => ({ slot, x, y, last_input_seq: seq })) });

test('arena bits: opposite directions cancel (the server refuses them)', () => {
  assert.equal(arenaBits({}), 0);
  assert.equal(arenaBits({ left: true }), ARENA_INPUT.LEFT);
  assert.equal(arenaBits({ left: true, right: true }), 0);
  assert.equal(arenaBits({ right: true, up: true }), ARENA_INPUT.RIGHT | ARENA_INPUT.UP);
  assert.equal(arenaBits({ left: true, right: true, down: true, up: false }), ARENA_INPUT.DOWN);
});

test('positions move from the previous state to the latest over one tick', () => {
  const view = new ArenaView({ mySlot: 1, tickHz: 30 });
  assert.ok(view.handle(state(10, [[0, 0, 0], [1, 500_000, 500_000, 7]]), 1000));
  assert.ok(view.handle(state(11, [[0, 30_000, 0], [1, 500_000, 506_667, 8]]), 1033));
  assert.equal(view.ackSeq, 8);
  const [p0] = view.positionsAt(1033 + 1000 / 60);
  assert.ok(Math.abs(p0.x - 15_000) < 1, `halfway: ${p0.x}`);
  const later = view.positionsAt(5000);
  assert.equal(later[0].x, 30_000, 'never beyond the latest state');
  assert.deepEqual(view.snapshot(), { tick: 11, players: [{ slot: 0, x: 30_000, y: 0, lastInputSeq: 0 }, { slot: 1, x: 500_000, y: 506_667, lastInputSeq: 8 }] });
});

test('stale and repeated states are dropped (datagrams reorder)', () => {
  const view = new ArenaView({ mySlot: 0 });
  view.handle(state(5, [[0, 10, 10, 3]]), 0);
  assert.equal(view.handle(state(4, [[0, 99, 99, 2]]), 1), false);
  assert.equal(view.handle(state(5, [[0, 99, 99, 2]]), 2), false);
  assert.equal(view.dropped, 2);
  assert.equal(view.snapshot().players[0].x, 10);
  assert.equal(view.ackSeq, 3);
});

test('endpoints: WebTransport on the UDP port of the page\'s host, WebSocket on the page\'s origin', () => {
  const page = { hostname: 'localhost', host: 'localhost:8080', protocol: 'http:' };
  assert.deepEqual(endpointsFrom(new URLSearchParams(''), page), { wt: 'https://127.0.0.1:4433/wt', ws: 'ws://localhost:8080/ws' });
  assert.deepEqual(endpointsFrom(new URLSearchParams('udp=14433'), { hostname: 'game.example', host: 'game.example', protocol: 'https:' }),
    { wt: 'https://game.example:14433/wt', ws: 'wss://game.example/ws' });
  assert.deepEqual(endpointsFrom(new URLSearchParams('wt=https://x:1/wt&ws=ws://y/ws'), page), { wt: 'https://x:1/wt', ws: 'ws://y/ws' });
  assert.equal(endpointsFrom(new URLSearchParams(''), { hostname: '::1', host: '[::1]:8080', protocol: 'http:' }).wt, 'https://[::1]:4433/wt');
});
