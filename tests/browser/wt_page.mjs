#!/usr/bin/env node
// Opens the Ludus test page (web/index.html, served by `ludus serve`) in
// Debian's headless Chromium for each requested transport, waits for
// window.ludusResult, prints it as one JSON line per transport, and exits
// non-zero if any run failed.
//
//   node tests/browser/wt_page.mjs --http 127.0.0.1:8080 --udp 4433 \
//        --https 8443 --spki BASE64 [--transports wt,ws,wss] [--pings 10]
//        [--timeout-ms 30000] [--chromium-log FILE]
//
// --spki is the certificate's SPKI SHA-256 in base64 (printed by `ludus
// serve`): Chromium then accepts the self-signed certificate on the TLS port
// (wss://). WebTransport needs no flag: the page pins the certificate with
// serverCertificateHashes.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const { values: opts } = parseArgs({
  options: {
    http: { type: 'string' },
    udp: { type: 'string' },
    https: { type: 'string' },
    spki: { type: 'string' },
    transports: { type: 'string', default: 'wt,ws,wss' },
    pings: { type: 'string', default: '10' },
    'timeout-ms': { type: 'string', default: '30000' },
    'chromium-log': { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
  },
});

function fail(message) {
  console.error(`wt_page: ${message}`);
  process.exit(2);
}

if (!opts.http) fail('--http HOST:PORT (the server\'s plain HTTP address) is required');
const transports = opts.transports.split(',').map((t) => t.trim()).filter(Boolean);
for (const transport of transports) {
  if (!['wt', 'ws', 'wss'].includes(transport)) fail(`unknown transport ${transport}`);
  if (transport === 'wt' && !opts.udp) fail('--udp PORT is required for wt');
  if (transport === 'wss' && !(opts.https && opts.spki)) fail('--https PORT and --spki BASE64 are required for wss');
}
const timeoutMs = Number(opts['timeout-ms']);

// As webtransport-notes.md says: headless as root works with these; no
// --disable-quic; the profile comes from launchPersistentContext.
const args = [
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
if (opts.spki) args.push(`--ignore-certificate-errors-spki-list=${opts.spki}`);
if (opts['chromium-log']) args.push('--enable-logging', '--v=1', `--log-file=${opts['chromium-log']}`);

const profile = mkdtempSync(join(tmpdir(), 'ludus-chromium-'));
let context;
let failed = 0;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: opts.chromium,
    headless: true,
    args,
    timeout: timeoutMs,
  });
  for (const transport of transports) {
    const params = new URLSearchParams({ transport, pings: opts.pings });
    if (opts.udp) params.set('udp', opts.udp);
    if (opts.https) params.set('https', opts.https);
    const url = `http://${opts.http}/diag.html?${params}`;
    const page = await context.newPage();
    const console_ = [];
    page.on('console', (message) => console_.push(`${message.type()}: ${message.text()}`));
    page.on('pageerror', (error) => console_.push(`pageerror: ${error.message}`));
    let result;
    const started = Date.now();
    try {
      const response = await page.goto(url, { timeout: timeoutMs });
      if (!response || !response.ok()) throw new Error(`GET ${url}: HTTP ${response?.status()}`);
      await page.waitForFunction(() => window.ludusResult !== undefined, null, { timeout: timeoutMs, polling: 50 });
      result = await page.evaluate(() => window.ludusResult);
    } catch (error) {
      result = { transport, ok: false, rtts_ms: [], datagram_rtts_ms: [], error: `page: ${error.message.split('\n')[0]}` };
    }
    result.page_url = url;
    result.elapsed_ms = Date.now() - started;
    const ok = result.ok === true && result.error === null && result.rtts_ms.length > 0
      && (transport !== 'wt' || result.datagram_rtts_ms.length > 0);
    if (!ok) {
      failed++;
      result.console = console_;
    }
    console.log(JSON.stringify(result));
    console.error(`wt_page: ${transport}: ${ok ? 'ok' : `FAILED: ${result.error}`}`);
    await page.close();
  }
} catch (error) {
  console.error(`wt_page: ${error.stack ?? error}`);
  failed++;
} finally {
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed === 0 ? 0 : 1);
