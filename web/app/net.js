// Connecting the game client: WebTransport first, WebSocket when
// WebTransport is missing or fails, then Hello (with the resume token of an
// earlier session, if any) and Welcome.

import {
  LudusSession,
  fetchCertHash,
  openWebSocket,
  openWebTransport,
} from '../client/session.js';

/** How long WebTransport may take before the fallback is tried. */
const WT_TIMEOUT_MS = 4_000;

/**
 * The server addresses the page should use, from its own location and the
 * query string: `wt=URL`, `ws=URL`, `udp=PORT` (WebTransport port, default
 * 4433), `host=HOST` (default the page's host; "localhost" becomes
 * 127.0.0.1 because Chromium tries ::1 first for QUIC).
 */
export function endpointsFrom(params, location) {
  let host = params.get('host') || location.hostname || '127.0.0.1';
  if (host === 'localhost') host = '127.0.0.1';
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const udp = params.get('udp') || '4433';
  const wt = params.get('wt') || `https://${hostPart}:${udp}/wt`;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = params.get('ws') || `${scheme}://${location.host}/ws`;
  return { wt, ws };
}

/**
 * Opens a channel and says Hello. `preference`: 'auto' (WebTransport, then
 * WebSocket), 'wt' or 'ws' (only that one). Resolves with
 * {session, welcome, transport: 'wt'|'ws', fallbackReason}.
 */
export async function connect({ preference = 'auto', endpoints, nickname, resumeToken = null, log = () => {} }) {
  let fallbackReason = null;
  const attempt = async (kind) => {
    let channel;
    if (kind === 'wt') {
      const certHash = await fetchCertHash();
      log(certHash ? 'WebTransport: pinning the development certificate' : 'WebTransport: trusted certificate');
      channel = await openWebTransport(endpoints.wt, { certHash, timeoutMs: WT_TIMEOUT_MS });
    } else {
      channel = await openWebSocket(endpoints.ws);
    }
    const session = new LudusSession(channel);
    try {
      const welcome = await session.hello({ nickname, resumeToken });
      return { session, welcome, transport: kind };
    } catch (error) {
      session.bye(0, 'hello failed').catch(() => {});
      throw error;
    }
  };

  if (preference === 'wt' || preference === 'auto') {
    if (typeof WebTransport === 'undefined') {
      fallbackReason = 'this browser has no WebTransport';
      if (preference === 'wt') throw new Error(fallbackReason);
    } else {
      try {
        log(`connecting to ${endpoints.wt}`);
        return { ...(await attempt('wt')), fallbackReason: null };
      } catch (error) {
        fallbackReason = error?.message ?? String(error);
        log(`WebTransport failed: ${fallbackReason}`);
        if (preference === 'wt') throw error;
      }
    }
  }
  log(`connecting to ${endpoints.ws}`);
  return { ...(await attempt('ws')), fallbackReason };
}
