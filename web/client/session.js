// A Ludus protocol session in the browser, over WebTransport or WebSocket
// (docs/PROTOCOL.md sections 1 and 2). No dependencies besides the codec.
//
//   const channel = await openWebTransport(url, { certHash });   // or
//   const channel = await openWebSocket('ws://127.0.0.1:8080/ws');
//   const session = new LudusSession(channel);
//   const welcome = await session.hello({ nickname: 'Zoë' });
//   const { rttMs } = await session.ping();                      // control stream
//   const { rttMs } = await session.ping({ datagram: true });    // WT datagram
//   await session.bye();
//
// A channel carries the control stream (a client-opened bidirectional
// WebTransport stream, or WebSocket binary messages) and, on WebTransport,
// datagrams. Both directions carry frames; a datagram holds whole frames.

import {
  CAPABILITIES,
  FrameDecoder,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  datagramMessages,
  encodeFrame,
} from '../proto/codec.js';

export const CLIENT_NAME = 'ludus-web/0.1';
/** WebSocket sub-protocol of the Ludus protocol. */
export const WEBSOCKET_PROTOCOL = 'ludus.v1';

/** Wall clock in microseconds since the Unix epoch, at performance.now()
 * precision (about 5 us on a cross-origin-isolated page). */
export function nowUs() {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/** "0a1b..." (64 hex digits) -> Uint8Array(32). */
export function hexToBytes(hex) {
  const clean = String(hex).trim();
  if (!/^([0-9a-fA-F]{2})+$/.test(clean)) throw new TypeError(`not a hex string: ${clean}`);
  const bytes = new Uint8Array(clean.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

/** The server's development certificate hash (GET /api/cert-hash on `base`),
 * or null when the server uses a configured (CA-signed) certificate. */
export async function fetchCertHash(base = '') {
  const response = await fetch(`${base}/api/cert-hash`, { cache: 'no-store' });
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`GET /api/cert-hash: HTTP ${response.status}`);
  const body = await response.json();
  if (body.algorithm !== 'sha-256') throw new Error(`unexpected hash algorithm ${body.algorithm}`);
  return hexToBytes(body.hash);
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function describe(error) {
  if (error === undefined || error === null) return 'unknown error';
  if (typeof error === 'string') return error;
  const parts = [error.name && error.name !== 'Error' ? `${error.name}: ` : '', error.message ?? String(error)];
  if (error.source) parts.push(` (source ${error.source})`);
  if (error.streamErrorCode !== undefined && error.streamErrorCode !== null) {
    parts.push(` (stream error ${error.streamErrorCode})`);
  }
  return parts.join('');
}

// ---------------------------------------------------------------------------
// Channels

/**
 * Opens a WebTransport session and its control stream.
 * @param {string} url https://127.0.0.1:4433/wt (use 127.0.0.1, not localhost,
 *   unless the server listens on IPv6 too)
 * @param {{certHash?: Uint8Array|null, timeoutMs?: number}} options
 */
export async function openWebTransport(url, { certHash = null, timeoutMs = 10_000 } = {}) {
  if (typeof WebTransport === 'undefined') {
    throw new Error('WebTransport is not available (the page must be a secure context, e.g. http://127.0.0.1)');
  }
  const options = {};
  if (certHash) options.serverCertificateHashes = [{ algorithm: 'sha-256', value: certHash }];
  const started = performance.now();
  const transport = new WebTransport(url, options);
  // Avoid an unhandled rejection if `ready` fails after the timeout.
  transport.closed.catch(() => {});
  try {
    await withTimeout(transport.ready, timeoutMs, `WebTransport to ${url}`);
  } catch (error) {
    try { transport.close(); } catch { /* already failed */ }
    throw new Error(`WebTransport to ${url} failed: ${describe(error)}`);
  }
  const readyMs = performance.now() - started;
  const stream = await transport.createBidirectionalStream();
  return new WebTransportChannel(transport, stream, readyMs);
}

class WebTransportChannel {
  kind = 'wt';
  supportsDatagrams = true;

  constructor(transport, stream, readyMs) {
    this.transport = transport;
    this.readyMs = readyMs;
    this.writer = stream.writable.getWriter();
    this.reader = stream.readable.getReader();
    this.datagramWriter = transport.datagrams.writable.getWriter();
    this.datagramReader = transport.datagrams.readable.getReader();
    this.closedInfo = null;
  }

  /** The largest datagram payload the connection takes now. */
  get maxDatagramSize() {
    return this.transport.datagrams.maxDatagramSize ?? 1200;
  }

  start(handlers) {
    const pump = async (reader, deliver, what) => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          deliver(value);
        }
        if (what === 'control stream') handlers.closed({ reason: 'control stream finished by the server' });
      } catch (error) {
        handlers.closed({ reason: `${what}: ${describe(error)}` });
      }
    };
    pump(this.reader, handlers.control, 'control stream');
    pump(this.datagramReader, handlers.datagram, 'datagrams');
    this.transport.closed.then(
      (info) => handlers.closed({ reason: `session closed (code ${info?.closeCode ?? 0}${info?.reason ? `: ${info.reason}` : ''})` }),
      (error) => handlers.closed({ reason: `session failed: ${describe(error)}` }),
    );
  }

  sendControl(bytes) {
    return this.writer.write(bytes);
  }

  sendDatagram(bytes) {
    return this.datagramWriter.write(bytes);
  }

  async close(code = 0, reason = '') {
    try { await this.writer.close(); } catch { /* already closed */ }
    try { this.transport.close({ closeCode: code, reason }); } catch { /* already closed */ }
  }
}

/**
 * Opens a WebSocket (sub-protocol ludus.v1).
 * @param {string} url ws://127.0.0.1:8080/ws or wss://127.0.0.1:8443/ws
 */
export async function openWebSocket(url, { timeoutMs = 10_000 } = {}) {
  const started = performance.now();
  const socket = new WebSocket(url, WEBSOCKET_PROTOCOL);
  socket.binaryType = 'arraybuffer';
  const channel = new WebSocketChannel(socket);
  const opened = new Promise((resolve, reject) => {
    socket.addEventListener('open', resolve, { once: true });
    socket.addEventListener('close', (event) => {
      reject(new Error(`WebSocket to ${url} closed before opening (code ${event.code})`));
    }, { once: true });
  });
  try {
    await withTimeout(opened, timeoutMs, `WebSocket to ${url}`);
  } catch (error) {
    socket.close();
    throw error;
  }
  if (socket.protocol !== WEBSOCKET_PROTOCOL) {
    socket.close(1002);
    throw new Error(`server selected sub-protocol "${socket.protocol}", not ${WEBSOCKET_PROTOCOL}`);
  }
  channel.readyMs = performance.now() - started;
  return channel;
}

class WebSocketChannel {
  kind = 'ws';
  supportsDatagrams = false;
  maxDatagramSize = 0;

  constructor(socket) {
    this.socket = socket;
    this.early = [];
    this.handlers = null;
    this.closeEvent = null;
    socket.addEventListener('message', (event) => this.#message(event));
    socket.addEventListener('close', (event) => {
      this.closeEvent = { code: event.code, reason: event.reason };
      this.handlers?.closed({ reason: `WebSocket closed (code ${event.code}${event.reason ? `: ${event.reason}` : ''})`, code: event.code });
    });
  }

  #message(event) {
    if (typeof event.data === 'string') {
      this.handlers?.closed({ reason: 'the server sent a text message' });
      return;
    }
    const bytes = new Uint8Array(event.data);
    if (this.handlers) this.handlers.control(bytes);
    else this.early.push(bytes);
  }

  start(handlers) {
    this.handlers = handlers;
    for (const bytes of this.early.splice(0)) handlers.control(bytes);
  }

  sendControl(bytes) {
    this.socket.send(bytes);
    return Promise.resolve();
  }

  sendDatagram() {
    return Promise.reject(new Error('WebSocket has no datagrams'));
  }

  async close(code = 0, reason = '') {
    if (this.socket.readyState > WebSocket.OPEN) return;
    const closed = new Promise((resolve) => this.socket.addEventListener('close', resolve, { once: true }));
    this.socket.close(code === 0 ? 1000 : 4000 + Math.min(code, 999), reason.slice(0, 120));
    await withTimeout(closed, 2_000, 'WebSocket close').catch(() => {});
  }
}

// ---------------------------------------------------------------------------
// The session

/**
 * The client side of a session: Hello/Welcome, Ping/Pong (answering the
 * server's pings too), Bye. Messages it does not handle go to `onMessage`.
 */
export class LudusSession {
  /** Welcome fields once the server accepted us. */
  welcome = null;
  /** Error messages the server sent (fields). */
  errors = [];
  /** The server's Bye (fields), if it sent one. */
  serverBye = null;
  /** Why the channel closed, once it did. */
  closedReason = null;
  /** Called with every message the session does not handle itself. */
  onMessage = null;
  /** Called once when the channel closes. */
  onClose = null;

  #channel;
  #decoder = new FrameDecoder();
  #welcomeWaiter = null;
  #pings = new Map();
  #nextPingId = 1;

  constructor(channel) {
    this.#channel = channel;
    channel.start({
      control: (bytes) => this.#control(bytes),
      datagram: (bytes) => this.#datagram(bytes),
      closed: (info) => this.#closed(info.reason),
    });
  }

  get transport() {
    return this.#channel.kind;
  }

  get channel() {
    return this.#channel;
  }

  /** Capability bits in use (after Welcome). */
  get capabilities() {
    return this.welcome?.capabilities ?? 0;
  }

  get datagramsEnabled() {
    return this.#channel.supportsDatagrams && (this.capabilities & CAPABILITIES.CAP_DATAGRAMS) !== 0;
  }

  /** Sends Hello and resolves with the Welcome's fields. `resumeToken`
   * (an earlier Welcome's) asks to return to the room it was in. */
  async hello({ nickname = null, capabilities = null, resumeToken = null, timeoutMs = 10_000 } = {}) {
    if (this.welcome) throw new Error('hello() twice');
    const caps = capabilities ?? (CAPABILITIES.CAP_CHAT | (this.#channel.supportsDatagrams ? CAPABILITIES.CAP_DATAGRAMS : 0));
    const waiting = new Promise((resolve, reject) => { this.#welcomeWaiter = { resolve, reject }; });
    await this.#send('Hello', {
      min_version: MIN_PROTOCOL_VERSION,
      max_version: PROTOCOL_VERSION,
      capabilities: caps,
      client_name: CLIENT_NAME,
      access_token: null,
      resume_token: resumeToken || null,
      nickname,
    });
    return withTimeout(waiting, timeoutMs, 'Welcome');
  }

  /**
   * One Ping and its Pong. Resolves with {id, rttMs, path, clockOffsetMs}:
   * rttMs = (t3 - t0) - (t2 - t1) (PROTOCOL.md section 2), path = where the
   * Pong came back ('stream' or 'datagram'). Rejects after timeoutMs (a lost
   * datagram).
   */
  ping({ datagram = false, timeoutMs = 5_000 } = {}) {
    if (!this.welcome) return Promise.reject(new Error('ping() before Welcome'));
    if (datagram && !this.datagramsEnabled) return Promise.reject(new Error('datagrams are not in use'));
    const id = this.#nextPingId;
    this.#nextPingId = (this.#nextPingId % 0xffff_fffe) + 1;
    const sentUs = nowUs();
    const started = performance.now();
    const answered = new Promise((resolve, reject) => {
      this.#pings.set(id, { resolve, reject, sentUs, started });
    });
    const frame = encodeFrame('Ping', { id, sent_us: sentUs });
    const sent = datagram ? this.#channel.sendDatagram(frame) : this.#channel.sendControl(frame);
    sent.catch((error) => this.#pings.get(id)?.reject(error));
    return withTimeout(answered, timeoutMs, `Pong ${id}`).finally(() => this.#pings.delete(id));
  }

  /** Sends Bye and closes the transport. */
  async bye(code = 0, reason = '') {
    if (this.closedReason === null) {
      try {
        await this.#send('Bye', { code, reason });
      } catch { /* the channel is already gone */ }
      this.#closed(`client said Bye (code ${code}${reason ? `: ${reason}` : ''})`);
    }
    await this.#channel.close(code, reason);
  }

  /** Sends a message on the control stream (reliable, ordered). */
  send(name, fields = {}) {
    if (this.closedReason !== null) return Promise.reject(new Error(`session closed: ${this.closedReason}`));
    return this.#send(name, fields);
  }

  /**
   * Sends a message that may be lost (Input): in a datagram when datagrams
   * are in use (WebTransport), else on the control stream. Never rejects:
   * a failed unreliable send is a lost one.
   */
  sendUnreliable(name, fields = {}) {
    if (this.closedReason !== null) return Promise.resolve(false);
    const frame = encodeFrame(name, fields);
    const datagram = this.datagramsEnabled && frame.length <= this.#channel.maxDatagramSize;
    const sent = datagram ? this.#channel.sendDatagram(frame) : this.#channel.sendControl(frame);
    return sent.then(() => true, () => false);
  }

  #send(name, fields) {
    return this.#channel.sendControl(encodeFrame(name, fields));
  }

  #control(bytes) {
    this.#decoder.push(bytes);
    for (;;) {
      let message;
      try {
        message = this.#decoder.next();
      } catch (error) {
        this.#protocolError(`control stream: ${describe(error)}`);
        return;
      }
      if (message === null) return;
      this.#handle(message, 'stream');
    }
  }

  #datagram(bytes) {
    let messages;
    try {
      messages = datagramMessages(bytes);
    } catch (error) {
      // A bad datagram is dropped; datagrams are unreliable anyway.
      console.warn(`dropped a bad datagram: ${describe(error)}`);
      return;
    }
    for (const message of messages) this.#handle(message, 'datagram');
  }

  #handle(message, path) {
    const { name, fields } = message;
    switch (name) {
      case 'Welcome':
        this.welcome = fields;
        this.#welcomeWaiter?.resolve(fields);
        this.#welcomeWaiter = null;
        break;
      case 'Pong': {
        const t3Us = nowUs();
        const t3 = performance.now();
        const pending = this.#pings.get(fields.id);
        if (!pending) break; // late or duplicated
        // Server processing time, from its own clock (t2 - t1), in ms.
        const serverMs = Number(fields.sent_us - fields.received_us) / 1000;
        const rttMs = Math.max(0, (t3 - pending.started) - serverMs);
        const clockOffsetMs = (Number(fields.received_us) - pending.sentUs + (Number(fields.sent_us) - t3Us)) / 2000;
        pending.resolve({ id: fields.id, rttMs, path, clockOffsetMs });
        break;
      }
      case 'Ping': {
        const now = nowUs();
        const pong = encodeFrame('Pong', { id: fields.id, ping_sent_us: fields.sent_us, received_us: now, sent_us: now });
        const send = path === 'datagram' ? this.#channel.sendDatagram(pong) : this.#channel.sendControl(pong);
        send.catch(() => {});
        break;
      }
      case 'Error':
        this.errors.push(fields);
        if (this.#welcomeWaiter && fields.in_reply_to === 1) {
          this.#welcomeWaiter.reject(new Error(`server refused Hello: error ${fields.code}: ${fields.text}`));
          this.#welcomeWaiter = null;
        }
        this.onMessage?.(message);
        break;
      case 'Bye':
        this.serverBye = fields;
        this.#closed(`server said Bye (code ${fields.code}${fields.reason ? `: ${fields.reason}` : ''})`);
        break;
      default:
        this.onMessage?.(message);
    }
  }

  #protocolError(reason) {
    this.#closed(reason);
    this.#channel.close(1, reason).catch(() => {});
  }

  #closed(reason) {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    const error = new Error(reason);
    this.#welcomeWaiter?.reject(error);
    this.#welcomeWaiter = null;
    for (const pending of this.#pings.values()) pending.reject(error);
    this.#pings.clear();
    this.onClose?.(reason);
  }
}

// ---------------------------------------------------------------------------
// Measurements

/** {count, min, p50, p90, max, mean} of a list of milliseconds. */
export function summarize(values) {
  if (values.length === 0) return { count: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  const round = (v) => Math.round(v * 1000) / 1000;
  return {
    count: sorted.length,
    min: round(sorted[0]),
    p50: round(at(0.5)),
    p90: round(at(0.9)),
    max: round(sorted[sorted.length - 1]),
    mean: round(sorted.reduce((a, b) => a + b, 0) / sorted.length),
  };
}

/** A message's fields with bigints as decimal strings (for JSON). */
export function plain(value) {
  return JSON.parse(JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? Array.from(v) : v)));
}
