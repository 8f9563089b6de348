// LudusSession against a scripted fake channel (node --test web/client/).
// The real transports are exercised by tests/browser/ in Chromium.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { FrameDecoder, datagramMessages, encodeFrame } from '../proto/codec.js';
import { LudusSession, hexToBytes, summarize } from './session.js';

/** A channel whose server side is a function of each frame the client sends. */
class FakeChannel {
  kind = 'wt';
  supportsDatagrams = true;
  maxDatagramSize = 1200;
  readyMs = 1;
  sent = [];
  datagrams = [];
  closed = null;

  constructor(server) {
    this.server = server;
    this.decoder = new FrameDecoder();
  }

  start(handlers) {
    this.handlers = handlers;
  }

  sendControl(bytes) {
    this.decoder.push(bytes);
    for (let message = this.decoder.next(); message !== null; message = this.decoder.next()) {
      this.sent.push(message);
      const reply = this.server(message, 'stream');
      if (reply) queueMicrotask(() => this.handlers.control(reply));
    }
    return Promise.resolve();
  }

  sendDatagram(bytes) {
    for (const message of datagramMessages(bytes)) {
      this.datagrams.push(message);
      const reply = this.server(message, 'datagram');
      if (reply) queueMicrotask(() => this.handlers.datagram(reply));
    }
    return Promise.resolve();
  }

  async close(code, reason) {
    this.closed = { code, reason };
  }
}

const WELCOME = {
  version: 1,
  capabilities: 0x11,
  session_id: 7n,
  player_id: 42n,
  nickname: 'Zoë',
  resumed: false,
  resume_token: '',
  server_time_us: 1n,
  heartbeat_ms: 5000,
  idle_timeout_ms: 30000,
  limits: { max_frame_len: 65536, max_datagram_len: 1200, max_chat_len: 512, max_inputs_per_second: 120 },
};

function echoServer(message) {
  if (message.name === 'Hello') return encodeFrame('Welcome', WELCOME);
  if (message.name === 'Ping') {
    return encodeFrame('Pong', { id: message.fields.id, ping_sent_us: message.fields.sent_us, received_us: 100n, sent_us: 100n });
  }
  return null;
}

test('hello, pings on both paths, bye', async () => {
  const channel = new FakeChannel(echoServer);
  const session = new LudusSession(channel);
  const welcome = await session.hello({ nickname: 'Zoë' });
  assert.equal(welcome.player_id, 42n);
  assert.equal(channel.sent[0].name, 'Hello');
  assert.equal(channel.sent[0].fields.capabilities, 0x11, 'asks for datagrams and chat on WebTransport');
  assert.ok(session.datagramsEnabled);

  const stream = await session.ping();
  assert.equal(stream.path, 'stream');
  assert.ok(stream.rttMs >= 0 && stream.rttMs < 1000);
  const datagram = await session.ping({ datagram: true });
  assert.equal(datagram.path, 'datagram');
  assert.equal(channel.datagrams.length, 1);

  await session.bye(0, 'done');
  assert.equal(channel.sent.at(-1).name, 'Bye');
  assert.deepEqual(channel.closed, { code: 0, reason: 'done' });
});

test('the server\'s processing time is taken out of the RTT', async () => {
  const channel = new FakeChannel((message) => {
    if (message.name === 'Hello') return encodeFrame('Welcome', WELCOME);
    // The server claims it held the Ping for 10 s: the RTT cannot be negative.
    return encodeFrame('Pong', { id: message.fields.id, ping_sent_us: message.fields.sent_us, received_us: 0n, sent_us: 10_000_000n });
  });
  const session = new LudusSession(channel);
  await session.hello();
  const { rttMs } = await session.ping();
  assert.equal(rttMs, 0);
});

test('a refused Hello rejects with the server\'s reason; Bye closes the session', async () => {
  const channel = new FakeChannel((message) => {
    if (message.name !== 'Hello') return null;
    const error = encodeFrame('Error', { code: 100, in_reply_to: 1, text: 'no accounts' });
    const bye = encodeFrame('Bye', { code: 100, reason: 'no accounts' });
    const both = new Uint8Array(error.length + bye.length);
    both.set(error);
    both.set(bye, error.length);
    return both;
  });
  const session = new LudusSession(channel);
  await assert.rejects(session.hello(), /error 100: no accounts/);
  assert.equal(session.serverBye.code, 100);
  assert.match(session.closedReason, /Bye \(code 100/);
  await assert.rejects(session.ping(), /closed|before Welcome/);
});

test('the client answers the server\'s Ping on the path it came by', async () => {
  const channel = new FakeChannel(echoServer);
  const session = new LudusSession(channel);
  await session.hello();
  const sent = [];
  channel.sendDatagram = (bytes) => {
    sent.push(...datagramMessages(bytes));
    return Promise.resolve();
  };
  channel.handlers.datagram(encodeFrame('Ping', { id: 5, sent_us: 77n }));
  assert.equal(sent.length, 1);
  assert.equal(sent[0].name, 'Pong');
  assert.equal(sent[0].fields.id, 5);
  assert.equal(sent[0].fields.ping_sent_us, 77n);
});

test('a lost datagram Pong times out', async () => {
  const channel = new FakeChannel((message) => (message.name === 'Hello' ? encodeFrame('Welcome', WELCOME) : null));
  const session = new LudusSession(channel);
  await session.hello();
  await assert.rejects(session.ping({ datagram: true, timeoutMs: 20 }), /no answer within 20 ms/);
});

test('a resume token goes into Hello; send() uses the stream, sendUnreliable() a datagram when it can', async () => {
  const channel = new FakeChannel(echoServer);
  const session = new LudusSession(channel);
  await session.hello({ nickname: 'Zoë', resumeToken: 'tok-1' });
  assert.equal(channel.sent[0].fields.resume_token, 'tok-1');
  await session.send('QuickJoin', { game: 'tetris' });
  assert.equal(channel.sent.at(-1).name, 'QuickJoin');
  assert.equal(await session.sendUnreliable('Input', { seq: 1, client_frame: 0, inputs: [1] }), true);
  assert.equal(channel.datagrams.at(-1).name, 'Input');

  // WebSocket: no datagrams, the stream carries it.
  const ws = new FakeChannel(echoServer);
  ws.kind = 'ws';
  ws.supportsDatagrams = false;
  const wsSession = new LudusSession(ws);
  await wsSession.hello();
  assert.equal(ws.sent[0].fields.resume_token, null);
  assert.equal(await wsSession.sendUnreliable('Input', { seq: 1, client_frame: 0, inputs: [1] }), true);
  assert.equal(ws.sent.at(-1).name, 'Input');
  assert.equal(ws.datagrams.length, 0);

  await wsSession.bye();
  assert.equal(await wsSession.sendUnreliable('Input', { seq: 2, client_frame: 0, inputs: [1] }), false);
  await assert.rejects(wsSession.send('RoomLeave', {}), /session closed/);
});

test('helpers', () => {
  assert.deepEqual(Array.from(hexToBytes('00ff10')), [0, 255, 16]);
  assert.throws(() => hexToBytes('abc'), TypeError);
  assert.deepEqual(summarize([3, 1, 2]), { count: 3, min: 1, p50: 2, p90: 3, max: 3, mean: 2 });
  assert.deepEqual(summarize([]), { count: 0 });
});
