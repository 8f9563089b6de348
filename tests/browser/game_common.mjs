// Shared helpers of the game_*.mjs browser scripts: launching Debian's
// Chromium through playwright-core, opening the game client
// (web/index.html served by `ludus serve`) as a guest, and reading its
// automation view `window.ludusGame` (documented at the top of
// web/app/main.js).

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

/** Options every game script takes. */
export const COMMON_OPTIONS = {
  http: { type: 'string' },
  udp: { type: 'string' },
  screenshots: { type: 'string' },
  'timeout-ms': { type: 'string', default: '120000' },
  chromium: { type: 'string', default: '/usr/bin/chromium' },
  'chromium-log': { type: 'string' },
  // Extra query parameters for every page, e.g. "debug=1" or
  // "ws=ws://127.0.0.1:8080/ws" (web/app/main.js lists them).
  'page-params': { type: 'string' },
};

export function fail(script, message) {
  console.error(`${script}: ${message}`);
  process.exit(2);
}

/** Headless Chromium as tests/browser/wt_page.mjs launches it. */
export async function launch(opts) {
  const args = [
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    // Pages of one test must not slow each other down when not focused.
    '--disable-background-timer-throttling',
    '--disable-renderer-backgrounding',
    '--disable-backgrounding-occluded-windows',
  ];
  if (opts['chromium-log']) args.push('--enable-logging', '--v=1', `--log-file=${opts['chromium-log']}`);
  return chromium.launch({ executablePath: opts.chromium, headless: true, args, timeout: 30_000 });
}

/**
 * A player page in its own browser context (own storage), logged in as a
 * guest: resolves when the lobby shows. `transport`: 'auto', 'wt' or 'ws'.
 */
export async function openPlayer(browser, opts, { nickname, transport = 'auto', timeoutMs = 30_000 }) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const log = [];
  page.on('console', (message) => {
    log.push(`${message.type()}: ${message.text()}`);
    if (log.length > 400) log.shift();
  });
  page.on('pageerror', (error) => log.push(`pageerror: ${error.message}`));
  const params = new URLSearchParams({ transport, nickname });
  if (opts.udp) params.set('udp', opts.udp);
  for (const [key, value] of new URLSearchParams(opts['page-params'] ?? '')) params.set(key, value);
  const url = `http://${opts.http}/index.html?${params}`;
  const response = await page.goto(url, { timeout: timeoutMs });
  if (!response || !response.ok()) throw new Error(`GET ${url}: HTTP ${response?.status()}`);
  await page.click('#play-guest');
  await waitState(page, (g) => g.screen === 'lobby', null, timeoutMs, `${nickname}: lobby`);
  return { page, context, log, nickname, url };
}

/** The page's window.ludusGame as plain JSON. */
export function gameState(page) {
  return page.evaluate(() => JSON.parse(JSON.stringify(window.ludusGame)));
}

/**
 * Waits until `predicate(window.ludusGame, arg)` is true in the page.
 * `predicate` runs in the page: it must not use variables of this script.
 */
export async function waitState(page, predicate, arg, timeoutMs, what) {
  try {
    await page.waitForFunction(
      ([source, a]) => {
        const g = window.ludusGame;
        // eslint-disable-next-line no-new-func
        return g && new Function('g', 'arg', `return (${source})(g, arg);`)(g, a);
      },
      [predicate.toString(), arg],
      { timeout: timeoutMs, polling: 50 },
    );
  } catch (error) {
    const state = await gameState(page).catch(() => null);
    const detail = state ? ` (screen ${state.screen}, phase ${state.phase}, errors ${JSON.stringify(state.errors)})` : '';
    throw new Error(`timed out waiting for ${what}${detail}`);
  }
}

/** Creates a room from the lobby form; resolves with {code, roomId}. */
export async function createRoom(player, { game, capacity, name, isPrivate = false, timeoutMs }) {
  const { page } = player;
  await page.selectOption('#create-game', game);
  await page.fill('#create-capacity', String(capacity));
  await page.fill('#create-name', name);
  await page.setChecked('#create-private', isPrivate);
  await page.click('#create-room');
  await waitState(page, (g) => g.screen === 'room' && g.code, null, timeoutMs, `${player.nickname}: room created`);
  const state = await gameState(page);
  return { code: state.code, roomId: state.roomId };
}

export async function joinByCode(player, code, timeoutMs) {
  const { page } = player;
  await page.fill('#join-code', code);
  await page.click('#join-code-btn');
  await waitState(page, (g, c) => g.screen === 'room' && g.code === c, code, timeoutMs, `${player.nickname}: joined ${code}`);
}

/** Clicks Ready and waits until the server confirms it. */
export async function ready(player, timeoutMs) {
  await player.page.click('#ready-toggle');
  await waitState(player.page, (g) => g.ready === true || g.phase === 'countdown' || g.phase === 'playing', null, timeoutMs, `${player.nickname}: ready`);
}

export async function screenshot(player, dir, name, saved) {
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.png`);
  try {
    await player.page.screenshot({ path });
    saved.push(path);
  } catch (error) {
    console.error(`screenshot ${path}: ${error.message}`);
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A short random suffix for room names, so runs do not collide. */
export function tag() {
  return Math.random().toString(36).slice(2, 8);
}

/**
 * Closes every player's page (the client says Bye on pagehide and closes
 * its transport), then waits a moment so the closes reach the server
 * before the browser itself goes away.
 */
export async function closePlayers(players) {
  await Promise.all(Object.values(players).map((p) => p.page.close().catch(() => {})));
  await sleep(300);
}
