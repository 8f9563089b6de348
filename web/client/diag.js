// The transport diagnostic page (web/diag.html): connects, says Hello, measures ping RTTs,
// says Bye, shows the results and exposes them as `window.ludusResult`.
//
// Query parameters (all optional; with `transport` the run starts at once):
//   transport=wt|ws|wss   WebTransport, WebSocket (ws://), secure WebSocket
//   udp=PORT              WebTransport port (the server's --udp); default 4433
//   https=PORT            wss port (the server's --https); default 8443
//   host=HOST             server host for wt and wss; default 127.0.0.1
//                         (ws uses the page's own origin)
//   url=URL               full WebTransport/WebSocket URL, overriding the above
//   pings=N               pings per path (default 10, at most 1000)
//   warmup=N              uncounted pings per path first (default 3): the
//                         first round trips of a fresh page and connection
//                         are slow for reasons unrelated to the server
//   nickname=NAME         guest nickname
//
// window.ludusResult, once set:
//   { transport, url, ok, welcome, ready_ms, rtts_ms: [...],
//     datagram_rtts_ms: [...], datagram_lost, datagram_pong_paths,
//     summary: {stream, datagram}, errors, error }
// where `error` is null on success, else a message.

import {
  LudusSession,
  fetchCertHash,
  openWebSocket,
  openWebTransport,
  plain,
  summarize,
} from './session.js';

const MAX_PINGS = 1000;
const DATAGRAM_PING_TIMEOUT_MS = 1_000;

const $ = (id) => document.getElementById(id);

function log(text) {
  const line = `${(performance.now() / 1000).toFixed(3)}s ${text}`;
  console.log(line);
  const area = $('log');
  if (area) area.textContent += `${line}\n`;
}

function setStatus(text, kind = '') {
  const status = $('status');
  if (!status) return;
  status.textContent = text;
  status.className = kind;
}

/** The run's settings from the query string (or the form). */
export function settingsFrom(params, location = window.location) {
  const transport = (params.get('transport') || 'wt').toLowerCase();
  if (!['wt', 'ws', 'wss'].includes(transport)) throw new Error(`unknown transport "${transport}" (wt, ws or wss)`);
  const host = params.get('host') || '127.0.0.1';
  const pings = Math.min(MAX_PINGS, Math.max(1, Number.parseInt(params.get('pings') || '10', 10) || 10));
  let url = params.get('url');
  if (!url) {
    if (transport === 'wt') url = `https://${host}:${params.get('udp') || '4433'}/wt`;
    else if (transport === 'wss') url = `wss://${host}:${params.get('https') || '8443'}/ws`;
    else url = `ws://${location.host}/ws`;
  }
  const warmup = Math.min(100, Math.max(0, Number.parseInt(params.get('warmup') ?? '3', 10) || 0));
  return { transport, url, pings, warmup, nickname: params.get('nickname') || null };
}

/** One full run; always resolves with a result (errors inside it). */
export async function run(settings) {
  const result = {
    transport: settings.transport,
    url: settings.url,
    ok: false,
    pings: settings.pings,
    warmup: settings.warmup,
    welcome: null,
    ready_ms: null,
    rtts_ms: [],
    datagram_rtts_ms: [],
    datagram_lost: 0,
    datagram_pong_paths: { datagram: 0, stream: 0 },
    summary: {},
    cross_origin_isolated: self.crossOriginIsolated === true,
    errors: [],
    error: null,
  };
  let session = null;
  try {
    log(`connecting to ${settings.url}`);
    let channel;
    if (settings.transport === 'wt') {
      const certHash = await fetchCertHash();
      log(certHash ? 'pinning the development certificate from /api/cert-hash' : 'no development certificate: using the browser\'s trust store');
      channel = await openWebTransport(settings.url, { certHash });
    } else {
      channel = await openWebSocket(settings.url);
    }
    result.ready_ms = round(channel.readyMs);
    log(`${settings.transport} ready in ${result.ready_ms} ms`);
    session = new LudusSession(channel);
    session.onClose = (reason) => log(`closed: ${reason}`);
    session.onMessage = (message) => log(`${message.name}: ${JSON.stringify(plain(message.fields))}`);

    const welcome = await session.hello({ nickname: settings.nickname });
    result.welcome = plain(welcome);
    log(`Welcome: version ${welcome.version}, player ${welcome.player_id}, "${welcome.nickname}", capabilities 0x${welcome.capabilities.toString(16)}`);

    for (let i = 0; i < settings.warmup; i++) await session.ping();
    for (let i = 0; i < settings.pings; i++) {
      const { rttMs } = await session.ping();
      result.rtts_ms.push(round(rttMs));
    }
    result.summary.stream = summarize(result.rtts_ms);
    log(`control stream RTT: ${JSON.stringify(result.summary.stream)}`);

    if (session.datagramsEnabled) {
      // Datagrams may be lost: a ping unanswered within a second counts as
      // lost and is retried, up to three attempts per wanted sample.
      for (let i = 0; i < settings.warmup; i++) {
        await session.ping({ datagram: true, timeoutMs: DATAGRAM_PING_TIMEOUT_MS }).catch((error) => {
          if (session.closedReason !== null) throw error;
        });
      }
      let attempts = 0;
      while (result.datagram_rtts_ms.length < settings.pings && attempts < settings.pings * 3) {
        attempts++;
        try {
          const { rttMs, path } = await session.ping({ datagram: true, timeoutMs: DATAGRAM_PING_TIMEOUT_MS });
          result.datagram_rtts_ms.push(round(rttMs));
          result.datagram_pong_paths[path]++;
        } catch (error) {
          if (session.closedReason !== null) throw error;
          result.datagram_lost++;
        }
      }
      result.summary.datagram = summarize(result.datagram_rtts_ms);
      log(`datagram RTT: ${JSON.stringify(result.summary.datagram)}, lost ${result.datagram_lost}, pongs by ${JSON.stringify(result.datagram_pong_paths)}`);
      if (result.datagram_rtts_ms.length === 0) throw new Error('no datagram ping was answered');
    } else if (settings.transport === 'wt') {
      throw new Error('the server did not grant CAP_DATAGRAMS on WebTransport');
    }
    await session.bye(0, 'done');
    result.ok = true;
    log('Bye sent, done');
  } catch (error) {
    result.error = error?.message ?? String(error);
    log(`FAILED: ${result.error}`);
    if (session) {
      try { await session.bye(0, 'client failed'); } catch { /* best effort */ }
    }
  }
  if (session) result.errors = session.errors.map(plain);
  return result;
}

function round(ms) {
  return Math.round(ms * 1000) / 1000;
}

function show(result) {
  const rows = [
    ['transport', `${result.transport} (${result.url})`],
    ['ready', result.ready_ms === null ? '-' : `${result.ready_ms} ms`],
    ['welcome', result.welcome ? `v${result.welcome.version}, player ${result.welcome.player_id} "${result.welcome.nickname}"` : '-'],
    ['stream RTT', formatSummary(result.summary.stream)],
    ['datagram RTT', result.summary.datagram ? `${formatSummary(result.summary.datagram)}, lost ${result.datagram_lost}` : '-'],
    ['cross-origin isolated', String(result.cross_origin_isolated)],
  ];
  const table = $('results');
  table.replaceChildren(...rows.map(([name, value]) => {
    const row = document.createElement('tr');
    const head = document.createElement('th');
    head.textContent = name;
    const cell = document.createElement('td');
    cell.textContent = value;
    row.append(head, cell);
    return row;
  }));
  setStatus(result.ok ? 'ok' : `failed: ${result.error}`, result.ok ? 'ok' : 'failed');
}

function formatSummary(summary) {
  if (!summary || summary.count === 0) return '-';
  return `p50 ${summary.p50} ms, min ${summary.min}, p90 ${summary.p90}, max ${summary.max} (${summary.count} pings)`;
}

async function start(settings) {
  window.ludusResult = undefined;
  $('connect').disabled = true;
  setStatus('running...');
  let result;
  try {
    result = await run(settings);
  } catch (error) {
    result = { transport: settings.transport, url: settings.url, ok: false, rtts_ms: [], datagram_rtts_ms: [], summary: {}, error: `page: ${error?.message ?? error}` };
  }
  try {
    show(result);
  } catch (error) {
    console.error(error);
  }
  $('connect').disabled = false;
  window.ludusResult = result;
  document.dispatchEvent(new CustomEvent('ludus-result', { detail: result }));
}

function init() {
  const params = new URLSearchParams(window.location.search);
  const form = $('form');
  for (const name of ['transport', 'udp', 'https', 'host', 'pings', 'nickname']) {
    if (params.has(name) && form.elements[name]) form.elements[name].value = params.get(name);
  }
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    for (const element of form.elements) {
      if (element.name && element.value) chosen.set(element.name, element.value);
    }
    try {
      start(settingsFrom(chosen));
    } catch (error) {
      setStatus(error.message, 'failed');
    }
  });
  if (params.has('transport')) {
    let settings;
    try {
      settings = settingsFrom(params);
    } catch (error) {
      window.ludusResult = { transport: params.get('transport'), ok: false, rtts_ms: [], datagram_rtts_ms: [], error: error.message };
      setStatus(error.message, 'failed');
      return;
    }
    start(settings);
  }
}

init();
