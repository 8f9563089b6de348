#!/usr/bin/env node
// The match replay viewer (web/replay.html) in Debian's headless Chromium
// against a running `ludus serve` that has recorded a Tetris match.
//
//   node tests/browser/replay_viewer.mjs --http 127.0.0.1:8080 --match ID
//        [--screenshots DIR] [--timeout-ms 120000] [--chromium /usr/bin/chromium]
//
// First reads GET /api/matches/ID/replay itself (every page), then opens
// /replay.html?match=ID and checks, through the controls a person uses:
//   - one board per seat, one list entry and one timeline marker per key
//     moment of the API;
//   - seeking (the slider) to the end changes the tick display and shows
//     filled boards (the model's cells and the canvas pixels), whose lines
//     and pieces equal the match's stats;
//   - Home on the slider goes back to the first tick; Play advances the
//     tick, Space pauses (once: the focused button does not click again);
//     4x plays faster than 1x;
//   - the page follows next_after (it asks for pages of a third of the
//     events) and merges the pages;
//   - a moment in the list and a marker seek to its tick; → and the
//     previous-moment button step between moments; with the same events
//     served under a made-up id with four made-up moments (page.route),
//     the list is in tick order and named, and the buttons, ← →, the
//     markers, Shift+← and . step as documented;
//   - an unknown match and a malformed id show their errors.
// Output: one JSON line on stdout
//   {ok, matchId, api: {pages, events, moments, startTick, endTick,
//    players}, checks: {name: bool}, failed: [names], page (the final
//    window.ludusReplay), rates, errors: {unknown, invalid}, screenshots,
//    elapsedMs, error}
// Exit status 0 when every check holds, 1 otherwise, 2 on bad arguments.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { COMMON_OPTIONS, fail, launch, sleep } from './game_common.mjs';

const SCRIPT = 'replay_viewer';
const { values: opts } = parseArgs({ options: { ...COMMON_OPTIONS, match: { type: 'string' } } });
if (!opts.http) fail(SCRIPT, '--http HOST:PORT (the server\'s plain HTTP address) is required');
if (!opts.match || !/^[0-9]+$/.test(opts.match)) fail(SCRIPT, '--match ID (a decimal match id) is required');
const timeoutMs = Number(opts['timeout-ms']);
const stepMs = Math.min(30_000, timeoutMs);
const base = `http://${opts.http}`;

const started = Date.now();
const screenshots = [];
const checks = {};
const out = { ok: false, matchId: opts.match, api: null, checks, failed: [], page: null, rates: null, errors: {}, screenshots, elapsedMs: 0, error: null };
let browser;
let page;
const log = [];

function check(name, value) {
  checks[name] = Boolean(value);
  return Boolean(value);
}

async function shot(name) {
  if (!opts.screenshots || !page) return;
  mkdirSync(opts.screenshots, { recursive: true });
  const path = join(opts.screenshots, `${name}.png`);
  try {
    await page.screenshot({ path, fullPage: true });
    screenshots.push(path);
  } catch (error) {
    console.error(`screenshot ${path}: ${error.message}`);
  }
}

/** Every page of the replay, read here without the page's code. */
async function readApi(id) {
  const events = [];
  const moments = new Map();
  let after = null;
  let match = null;
  let pages = 0;
  for (;;) {
    const url = `${base}/api/matches/${id}/replay${after === null ? '' : `?after=${after}`}`;
    const response = await fetch(url);
    const text = await response.text();
    if (response.status !== 200) throw new Error(`GET ${url}: HTTP ${response.status} ${text.slice(0, 300)}`);
    const body = JSON.parse(text);
    pages += 1;
    match = body.match;
    events.push(...body.events);
    for (const m of body.moments) moments.set(m.seq, m);
    if (body.next_after === null) break;
    after = body.next_after;
    if (pages > 1000) throw new Error('more than 1000 pages');
  }
  const start = events.find((e) => e.type === 'game_start');
  const end = events.find((e) => e.type === 'game_end');
  return { match, events, moments: [...moments.values()], pages, startTick: start?.tick ?? null, endTick: end?.tick ?? null };
}

const replayState = () => page.evaluate(() => JSON.parse(JSON.stringify(window.ludusReplay)));

async function waitReplay(predicate, arg, what, timeout = stepMs) {
  try {
    await page.waitForFunction(
      ([source, a]) => {
        const r = window.ludusReplay;
        // eslint-disable-next-line no-new-func
        return r && new Function('r', 'arg', `return (${source})(r, arg);`)(r, a);
      },
      [predicate.toString(), arg],
      { timeout, polling: 20 },
    );
    return true;
  } catch {
    const state = await replayState().catch(() => null);
    throw new Error(`timed out waiting for ${what} (status ${state?.status}, tick ${state?.tick}, error ${JSON.stringify(state?.error)})`);
  }
}

/** Pixels of the boards' canvases with colour (pieces), summed. */
function colouredPixels() {
  return page.evaluate(() => {
    let n = 0;
    for (const canvas of document.querySelectorAll('#boards canvas')) {
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      for (let i = 0; i < data.length; i += 4) {
        const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
        if (a > 200 && Math.max(r, g, b) - Math.min(r, g, b) > 60) n++;
      }
    }
    return n;
  });
}

const text = (selector) => page.textContent(selector).then((t) => (t ?? '').trim());

/** Ticks played per second of wall time at the current speed, from the start. */
async function playRate(ms) {
  await page.focus('#seek');
  await page.keyboard.press('Home');
  await waitReplay((r) => r.tick === r.startTick && !r.playing, null, 'back at the start');
  const from = (await replayState()).tick;
  await page.click('#play-toggle');
  const t0 = Date.now();
  await sleep(ms);
  const to = (await replayState()).tick;
  const elapsed = Date.now() - t0;
  await page.click('#play-toggle');
  await waitReplay((r) => !r.playing, null, 'paused');
  return { ticks: to - from, ms: elapsed, perSecond: ((to - from) * 1000) / elapsed };
}

try {
  const api = await readApi(opts.match);
  out.api = { pages: api.pages, events: api.events.length, moments: api.moments.length, startTick: api.startTick, endTick: api.endTick, players: api.match.players.length, game: api.match.game };
  if (api.startTick === null || api.endTick === null) throw new Error('the API\'s replay has no game_start or no game_end');

  browser = await launch(opts);
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  page = await context.newPage();
  page.on('console', (message) => {
    log.push(`${message.type()}: ${message.text()}`);
    if (log.length > 200) log.shift();
  });
  page.on('pageerror', (error) => log.push(`pageerror: ${error.message}`));

  // Several pages: the page must follow next_after and merge them.
  const limit = Math.max(1, Math.ceil(api.events.length / 3));
  const url = `${base}/replay.html?match=${opts.match}&limit=${limit}`;
  const response = await page.goto(url, { timeout: stepMs });
  if (!response || !response.ok()) throw new Error(`GET ${url}: HTTP ${response?.status()}`);
  await waitReplay((r) => r.status === 'ready' || r.status === 'error', null, 'the replay loaded');
  let state = await replayState();
  if (state.status === 'error') throw new Error(`the page failed to load the replay: ${state.error.text}`);

  // What is on the page matches the API.
  check('eventsLoaded', state.events === api.events.length);
  check('pagesFollowed', state.pages === Math.ceil(api.events.length / limit) && state.pages >= Math.min(2, api.events.length));
  out.pagesLoaded = { limit, pages: state.pages };
  check('ticksSpanTheMatch', state.startTick === api.startTick && state.endTick === api.endTick);
  check('oneBoardPerSeat', (await page.locator('#boards figure').count()) === api.match.players.length && state.players.length === api.match.players.length);
  check('momentsListed', (await page.locator('#moments li').count()) === api.moments.length);
  check('momentMarkers', (await page.locator('#markers button').count()) === api.moments.length);
  check('momentCountShown', (await text('#moment-count')) === String(api.moments.length));
  check('startsAtTheFirstTick', state.tick === api.startTick && (await text('#tick-display')) === String(api.startTick));
  const pixelsAtStart = await colouredPixels();
  await shot('replay-start');

  // Seek to the end with the slider.
  const tickTextBefore = await text('#tick-display');
  await page.fill('#seek', String(api.endTick));
  await waitReplay((r, end) => r.tick === end, api.endTick, 'the end after seeking');
  state = await replayState();
  const tickTextAfter = await text('#tick-display');
  const timeAtEnd = await text('#time-display');
  check('tickDisplayChangesOnSeek', tickTextAfter === String(api.endTick) && tickTextAfter !== tickTextBefore);
  check('boardsFilledAtTheEnd', state.players.some((p) => p.filledCells > 0));
  const pixelsAtEnd = await colouredPixels();
  check('canvasDrawn', pixelsAtEnd > 0 && pixelsAtEnd !== pixelsAtStart);
  // The locks summed by the viewer agree with the stored results.
  const seats = new Map(api.match.players.map((p) => [p.seat, p]));
  const agree = state.players.map((p) => {
    const seat = seats.get(p.slot);
    return { slot: p.slot, lines: [p.lines, seat?.stats?.lines], pieces: [p.pieces, seat?.stats?.pieces], score: [p.score, seat?.score], placement: [p.placement, seat?.placement] };
  });
  out.agree = agree;
  check('endStatsMatchTheResults', agree.every((a) => a.lines[0] === a.lines[1] && a.pieces[0] === a.pieces[1] && a.score[0] === a.score[1] && a.placement[0] === a.placement[1]));
  const captions = await page.locator('#boards figcaption .score').allTextContents();
  check('captionsShowScores', captions.length === state.players.length && captions.every((c, i) => c === String(state.players[i].score)));
  out.timeAtEnd = timeAtEnd;
  await shot('replay-end');

  // Home on the focused slider: back to the start.
  await page.focus('#seek');
  await page.keyboard.press('Home');
  await waitReplay((r) => r.tick === r.startTick, null, 'the start after Home');
  check('homeSeeksToTheStart', (await text('#tick-display')) === String(api.startTick));

  // Play advances the tick; Space on the focused Play button pauses once.
  await page.click('#play-toggle');
  await waitReplay((r) => r.playing, null, 'playing');
  check('playButtonPressed', (await page.getAttribute('#play-toggle', 'aria-pressed')) === 'true');
  await waitReplay((r) => r.tick >= r.startTick + 20 || !r.playing, null, 'the tick advancing');
  state = await replayState();
  check('playAdvancesTheTick', state.tick > api.startTick);
  await page.keyboard.press('Space');
  await waitReplay((r) => !r.playing, null, 'paused by Space');
  await sleep(300);
  state = await replayState();
  check('spacePausesOnce', !state.playing);
  const pausedAt = state.tick;
  await sleep(300);
  check('pausedStaysPut', (await replayState()).tick === pausedAt);
  await page.keyboard.press('Space');
  await waitReplay((r) => r.playing || r.tick === r.endTick, null, 'playing again by Space');
  await page.keyboard.press('Space');
  await waitReplay((r) => !r.playing, null, 'paused again');

  // Speed: 4x plays about four times as fast as 1x.
  const length = api.endTick - api.startTick;
  const slow = await playRate(500);
  await page.selectOption('#speed', '4');
  await waitReplay((r) => r.speed === 4, null, 'speed 4x');
  const fast = await playRate(Math.min(500, Math.floor((length / 240) * 1000 * 0.8)));
  out.rates = { slow, fast };
  check('fourTimesFaster', fast.ticks > 0 && fast.perSecond > slow.perSecond * 2);
  await page.selectOption('#speed', '1');

  // Key moments: the list, the markers, stepping.
  const ticks = [...new Set(api.moments.map((m) => m.tick))].sort((a, b) => a - b);
  if (ticks.length > 0) {
    const first = page.locator('#moments li button').first();
    const firstTick = Number(await page.locator('#moments li').first().getAttribute('data-tick'));
    await first.click();
    await waitReplay((r, t) => r.tick === t, firstTick, 'the first moment\'s tick');
    check('listSeeksToItsMoment', firstTick === ticks[0] && (await text('#tick-display')) === String(firstTick));
    check('currentMomentMarked', (await page.getAttribute('#moments li >> nth=0', 'aria-current')) === 'true');
    if (ticks.length > 1) {
      await page.keyboard.press('ArrowRight');
      await waitReplay((r, t) => r.tick === t, ticks[1], 'the next moment by →');
      await page.click('#moment-prev');
      await waitReplay((r, t) => r.tick === t, ticks[0], 'the previous moment by the button');
      check('stepsBetweenMoments', true);
    } else {
      check('stepsBetweenMoments', await page.isDisabled('#moment-next'));
    }
    const marker = page.locator('#markers button').last();
    const markerTick = Number(await marker.getAttribute('data-tick'));
    await page.fill('#seek', String(api.startTick));
    await waitReplay((r) => r.tick === r.startTick, null, 'back at the start');
    await marker.click();
    await waitReplay((r, t) => r.tick === t, markerTick, 'the marker\'s tick');
    check('markerSeeksToItsMoment', markerTick === ticks[ticks.length - 1]);
    await shot('replay-moment');
  } else {
    check('noMomentsSaid', await page.isVisible('#moments-empty'));
  }
  out.page = await replayState();

  // Stepping through several moments: the same events served (by the
  // test, under another id) with made-up moments of both players.
  const starts = api.events.find((e) => e.type === 'game_start');
  const ids = starts.data.player_ids;
  const fake = ['tetris', 't_spin_double', 'back_to_back', 'garbage_surge'].map((type, i) => ({
    seq: 1_000_000 + i,
    tick: api.startTick + Math.floor(((i + 1) * length) / 5),
    type,
    player_id: ids[i % ids.length],
    data: type === 'back_to_back' ? { chain: 2 } : type === 'garbage_surge' ? { streak_sent: 9, streak_len: 3 } : {},
  }));
  const fakeId = '4242';
  await page.route(`**/api/matches/${fakeId}/replay*`, (route) => route.fulfill({
    status: 200,
    contentType: 'application/json',
    body: JSON.stringify({ match: { ...api.match, id: fakeId }, events: api.events, moments: [...fake].reverse(), next_after: null }),
  }));
  await page.goto(`${base}/replay.html?match=${fakeId}`, { timeout: stepMs });
  await waitReplay((r) => r.status === 'ready' || r.status === 'error', null, 'the made-up replay loaded');
  const fakeTicks = fake.map((m) => m.tick);
  const listed = await page.locator('#moments li').evaluateAll((items) => items.map((li) => Number(li.dataset.tick)));
  check('momentsInTickOrder', JSON.stringify(listed) === JSON.stringify(fakeTicks));
  const labels = await page.locator('#moments li .what').allTextContents();
  check('momentsNamed', JSON.stringify(labels) === JSON.stringify(['Tetris', 'T-spin double', 'Back-to-back ×2', 'Garbage surge (9 lines)']));
  await page.click('#moment-next');
  await waitReplay((r, t) => r.tick === t, fakeTicks[0], 'moment 1 by the next button');
  await page.keyboard.press('ArrowRight');
  await waitReplay((r, t) => r.tick === t, fakeTicks[1], 'moment 2 by →');
  await page.keyboard.press('ArrowRight');
  await waitReplay((r, t) => r.tick === t, fakeTicks[2], 'moment 3 by →');
  await page.keyboard.press('ArrowLeft');
  await waitReplay((r, t) => r.tick === t, fakeTicks[1], 'moment 2 by ←');
  check('currentMomentFollows', (await page.getAttribute('#moments li >> nth=1', 'aria-current')) === 'true'
    && (await page.getAttribute('#markers button >> nth=1', 'aria-current')) === 'true');
  await page.locator('#markers button').nth(3).click();
  await waitReplay((r, t) => r.tick === t, fakeTicks[3], 'moment 4 by its marker');
  check('nextDisabledAfterTheLast', await page.isDisabled('#moment-next'));
  await page.keyboard.press('Shift+ArrowLeft');
  await waitReplay((r, t) => r.tick === t, fakeTicks[3] - 60, 'one second back by Shift+←');
  await page.keyboard.press('.');
  await waitReplay((r, t) => r.tick === t, fakeTicks[3] - 59, 'one tick on by .');
  check('stepsThroughSeveralMoments', true);
  await page.locator('#moments li button').nth(0).click();
  await waitReplay((r, t) => r.tick === t, fakeTicks[0], 'moment 1 from the list');
  await shot('replay-moments');
  await page.unroute(`**/api/matches/${fakeId}/replay*`);

  // Errors are shown, not swallowed.
  for (const [name, id, code] of [['unknown', '1', 'match_not_found'], ['invalid', 'abc', 'invalid_match_id']]) {
    await page.goto(`${base}/replay.html?match=${id}`, { timeout: stepMs });
    await waitReplay((r) => r.status === 'error', null, `the ${name} match's error`);
    const s = await replayState();
    const banner = await page.isVisible('#replay-error');
    const said = await text('#replay-error');
    out.errors[name] = { code: s.error.code, status: s.error.status, text: said };
    check(`${name}MatchErrorShown`, s.error.code === code && banner && said.length > 0 && (await page.getAttribute('#replay-error', 'role')) === 'alert');
    if (name === 'unknown') await shot('replay-error');
  }

  out.failed = Object.entries(checks).filter(([, v]) => !v).map(([k]) => k);
  out.ok = out.failed.length === 0;
  if (!out.ok) out.error = `checks failed: ${out.failed.join(', ')}`;
} catch (error) {
  out.error = error.message.split('\n')[0];
  out.failed = Object.entries(checks).filter(([, v]) => !v).map(([k]) => k);
  await shot('replay-failure');
  out.page = page ? await replayState().catch(() => null) : null;
}
if (!out.ok) out.console = log.slice(-40);
out.elapsedMs = Date.now() - started;
console.log(JSON.stringify(out));
console.error(`${SCRIPT}: ${out.ok ? 'ok' : `FAILED: ${out.error}`}`);
await browser?.close().catch(() => {});
process.exit(out.ok ? 0 : 1);
