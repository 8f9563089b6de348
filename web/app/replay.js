// The match replay viewer (web/replay.html?match=ID[&limit=N]): loads
// every page of GET /api/matches/{id}/replay (N events a page when given),
// then plays the match back with a seek slider, speeds, and the key
// moments as timeline markers and a list.
// The state at each tick comes from web/game/replay.js; this file only
// wires the page and draws (with render.js's drawPanel).
//
// Automation contract. `window.ludusReplay` is a live view (plain JSON):
//   status       'loading' | 'ready' | 'error' | 'idle' (no match id given)
//   error        {status, code, message, text} or null
//   matchId, game, pages (pages loaded), events (events loaded)
//   startTick, endTick, tick (shown), playing, speed
//   players      [{slot, playerId, name, score, lines, pieces, pending,
//                alive, placement, filledCells, piece}] at the shown tick
//   moments      [{tick, type, playerId, slot, label}]
// The page dispatches 'ludus-replay-update' on document after each change.
// Element ids: #boards figure[data-slot] > canvas + figcaption (.name,
// .score, .lines, .status), #play-toggle[aria-pressed], #moment-prev,
// #moment-next, #speed, #seek (range over the ticks), #tick-display,
// #time-display, #markers button[data-tick], #moments li[data-tick] button,
// #replay-error[data-code], #replay-status.

import { Replay, ReplayError, SPEEDS, TICK_HZ, describeError, filledCells, formatTime, loadReplay } from '../game/replay.js';
import { drawPanel, panelSize } from './render.js';
import { el } from './dom.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(window.location.search);
const matchId = (params.get('match') ?? '').trim();
/** ?limit=N: events per API page (default: the server's). */
const pageLimit = Math.max(0, Math.floor(Number(params.get('limit')) || 0)) || null;

const view = {
  status: 'loading',
  error: null,
  replay: null,
  pages: 0,
  events: 0,
  /** Playback position in ticks (fractional while playing). */
  position: 0,
  shown: null,
  state: null,
  playing: false,
  speed: 1,
  lastFrame: null,
};

window.ludusReplay = {
  get status() { return view.status; },
  get error() { return view.error ? { ...view.error } : null; },
  get matchId() { return matchId || null; },
  get game() { return view.replay?.game ?? null; },
  get pages() { return view.pages; },
  get events() { return view.events; },
  get startTick() { return view.replay?.startTick ?? null; },
  get endTick() { return view.replay?.endTick ?? null; },
  get tick() { return view.shown; },
  get playing() { return view.playing; },
  get speed() { return view.speed; },
  get players() {
    return (view.state?.players ?? []).map((p) => ({
      slot: p.slot,
      playerId: p.playerId,
      name: p.name,
      score: p.score,
      lines: p.lines,
      pieces: p.pieces,
      pending: p.pending,
      alive: p.alive,
      placement: p.placement,
      filledCells: filledCells(p.board),
      piece: p.piece ? { ...p.piece } : null,
    }));
  },
  get moments() {
    return (view.replay?.moments ?? []).map((m) => ({ tick: m.tick, type: m.type, playerId: m.playerId, slot: m.slot, label: m.label }));
  },
};

function changed() {
  document.dispatchEvent(new CustomEvent('ludus-replay-update'));
}

function setStatus(status) {
  view.status = status;
  document.body.dataset.status = status;
  changed();
}

function showError(error) {
  const e = error instanceof ReplayError ? error : new ReplayError(0, 'client', error?.message ?? String(error));
  const text = describeError(e, matchId);
  view.error = { status: e.status, code: e.code, message: e.message, text };
  const banner = $('replay-error');
  banner.textContent = text;
  banner.dataset.code = e.code;
  banner.hidden = false;
  $('replay-status').textContent = '';
  $('replay-view').hidden = true;
  pause();
  setStatus('error');
}

// ---------------------------------------------------------------------------
// Loading

async function start() {
  if (!matchId) {
    $('replay-summary').hidden = true;
    $('replay-pick').hidden = false;
    setStatus('idle');
    return;
  }
  document.title = `Replay of match ${matchId} · Ludus`;
  $('match-title').textContent = `Match ${matchId}`;
  $('pick-match').value = matchId;
  try {
    const loaded = await loadReplay(matchId, {
      limit: pageLimit,
      onPage: ({ pages, events }) => {
        view.pages = pages;
        view.events = events;
        $('replay-status').textContent = `Loading… ${events} events`;
        changed();
      },
    });
    if (loaded.match?.game && loaded.match.game !== 'tetris') {
      throw new ReplayError(200, 'unsupported_game', `Match ${matchId} is a game of ${loaded.match.game}: only Tetris matches can be replayed here.`);
    }
    if (!loaded.events.some((e) => e.type === 'game_start')) {
      throw new ReplayError(200, 'bad_response', 'the replay has no game_start event');
    }
    view.pages = loaded.pages;
    view.events = loaded.events.length;
    ready(new Replay(loaded));
  } catch (error) {
    // Nothing to show of a match that is not there: offer to open another.
    const pick = error instanceof ReplayError && ['invalid_match_id', 'match_not_found'].includes(error.code);
    $('replay-pick').hidden = !pick;
    $('replay-summary').hidden = pick;
    showError(error);
  }
}

function describeMatch(replay) {
  const m = replay.match ?? {};
  const parts = [];
  if (m.game) parts.push(`${m.game}${m.mode ? ` ${m.mode}` : ''}`);
  if (Number.isFinite(m.started_at_ms)) parts.push(new Date(m.started_at_ms).toLocaleString());
  parts.push(`${formatTime(replay.length)} long`);
  const seats = [...(m.players ?? [])].sort((a, b) => (a.placement ?? 99) - (b.placement ?? 99));
  if (seats.length) {
    parts.push(seats.map((s) => `#${s.placement} ${replay.players[s.seat]?.name ?? s.nickname} (${s.score})`).join(', '));
  }
  return parts.join(' · ');
}

function ready(replay) {
  view.replay = replay;
  $('match-meta').textContent = describeMatch(replay);
  $('replay-status').textContent = `${view.events} events · ${replay.moments.length} key moments`;
  buildBoards(replay);
  buildTimeline(replay);
  buildMomentList(replay);
  $('replay-view').hidden = false;
  view.position = replay.startTick;
  render(true);
  setStatus('ready');
  requestAnimationFrame(frame);
}

// ---------------------------------------------------------------------------
// Building the page

function cellSize(players) {
  if (players <= 2) return 22;
  if (players <= 4) return 16;
  return 12;
}

function buildBoards(replay) {
  const cell = cellSize(replay.players.length);
  const size = panelSize(cell, { side: true, name: true });
  $('boards').replaceChildren(...replay.players.map((p) => {
    const canvas = el('canvas', { width: String(size.width + 4), height: String(size.height + 4), role: 'img', 'aria-label': `${p.name}'s board` });
    const caption = el('figcaption', {},
      el('span', { class: 'name', text: p.name }), ' · score ', el('span', { class: 'score', text: '0' }),
      ' · lines ', el('span', { class: 'lines', text: '0' }), ' · ', el('span', { class: 'status', text: 'playing' }));
    return el('figure', { dataset: { slot: String(p.slot), playerId: p.playerId ?? '' } }, canvas, caption);
  }));
}

function momentTitle(m) {
  return `${formatTime(m.tick - view.replay.startTick)} · ${m.label}${m.name ? ` · ${m.name}` : ''}`;
}

function buildTimeline(replay) {
  const seek = $('seek');
  seek.min = String(replay.startTick);
  seek.max = String(replay.endTick);
  seek.value = String(replay.startTick);
  $('tick-end').textContent = String(replay.endTick);
  $('markers').replaceChildren(...replay.moments.map((m) => el('button', {
    type: 'button',
    style: `left: ${(m.fraction * 100).toFixed(3)}%`,
    title: momentTitle(m),
    'aria-label': `Go to ${momentTitle(m)}`,
    dataset: { tick: String(m.tick), type: m.type, index: String(m.index) },
    onclick: () => seekTo(m.tick, { stop: true }),
  })));
}

function buildMomentList(replay) {
  $('moment-count').textContent = String(replay.moments.length);
  $('moments-empty').hidden = replay.moments.length > 0;
  $('moments').replaceChildren(...replay.moments.map((m) => el('li', { dataset: { tick: String(m.tick), type: m.type, slot: String(m.slot), index: String(m.index) } },
    el('button', { type: 'button', onclick: () => seekTo(m.tick, { stop: true }) },
      el('span', { class: 'when', text: formatTime(m.tick - replay.startTick) }),
      el('span', { class: 'what', text: m.label }),
      el('span', { class: 'who', text: m.name ? `· ${m.name}` : '' })))));
}

// ---------------------------------------------------------------------------
// Playback

function seekTo(tick, { stop = false } = {}) {
  const replay = view.replay;
  if (!replay) return;
  if (stop) pause();
  view.position = replay.clamp(tick);
  render();
}

function play() {
  const replay = view.replay;
  if (!replay || view.playing) return;
  if (view.position >= replay.endTick) view.position = replay.startTick;
  view.playing = true;
  view.lastFrame = null;
  updateControls();
  changed();
}

function pause() {
  if (!view.playing) return;
  view.playing = false;
  view.position = Math.floor(view.position);
  updateControls();
  changed();
}

function togglePlay() {
  if (view.playing) pause();
  else play();
}

function setSpeed(speed) {
  if (!SPEEDS.includes(speed)) return;
  view.speed = speed;
  $('speed').value = String(speed);
  changed();
}

function stepSpeed(direction) {
  const i = SPEEDS.indexOf(view.speed);
  setSpeed(SPEEDS[Math.min(SPEEDS.length - 1, Math.max(0, i + direction))]);
}

function stepMoment(direction) {
  const replay = view.replay;
  if (!replay) return;
  const tick = Math.floor(view.position);
  const m = direction > 0 ? replay.nextMoment(tick) : replay.previousMoment(tick);
  if (m) seekTo(m.tick, { stop: true });
}

function frame(now) {
  requestAnimationFrame(frame);
  const replay = view.replay;
  if (!replay) return;
  if (view.playing) {
    if (view.lastFrame !== null) {
      // At most a quarter second per frame: a hidden tab does not jump.
      const dt = Math.min(250, now - view.lastFrame);
      view.position += (dt / 1000) * TICK_HZ * view.speed;
    }
    view.lastFrame = now;
    if (view.position >= replay.endTick) {
      view.position = replay.endTick;
      pause();
    }
  }
  if (Math.floor(view.position) !== view.shown) render();
}

function updateControls() {
  const button = $('play-toggle');
  button.setAttribute('aria-pressed', String(view.playing));
  button.setAttribute('aria-label', view.playing ? 'Pause' : 'Play');
  button.textContent = view.playing ? '❚❚ Pause' : '▶ Play';
  const replay = view.replay;
  if (!replay) return;
  const tick = Math.floor(view.position);
  $('moment-prev').disabled = replay.previousMoment(tick) === null;
  $('moment-next').disabled = replay.nextMoment(tick) === null;
}

function statsOf(p) {
  return [`Score ${p.score}`, `Lines ${p.lines}`, `Pieces ${p.pieces}`, p.pending ? `Incoming ${p.pending}` : ''].filter(Boolean);
}

function statusOf(p, over) {
  if (!p.alive) return p.placement ? `K.O. · #${p.placement}` : 'K.O.';
  if (over && p.placement) return p.placement === 1 ? 'winner' : `#${p.placement}`;
  return 'playing';
}

function render(force = false) {
  const replay = view.replay;
  if (!replay) return;
  const tick = replay.clamp(view.position);
  if (!force && tick === view.shown) return;
  const state = replay.stateAt(tick);
  view.state = state;
  view.shown = tick;
  const cell = cellSize(replay.players.length);
  for (const figure of $('boards').children) {
    const slot = Number(figure.dataset.slot);
    const p = state.players[slot];
    const canvas = figure.querySelector('canvas');
    const ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    // The latest moment's label over the field (K.O. says eliminations).
    const recent = replay.recentMoments(slot, tick).find((m) => m.type !== 'elimination');
    drawPanel(ctx, {
      x: 2,
      y: 2,
      cell,
      side: true,
      name: p.name,
      board: p.board,
      piece: p.piece,
      ghost: p.landing,
      hold: p.hold,
      holdUsed: false,
      next: p.next,
      pendingGarbage: p.pending,
      stats: statsOf(p),
      alive: p.alive,
      placement: p.placement,
      effects: recent ? { label: recent.label.toUpperCase(), labelUntil: recent.tick + TICK_HZ * 1.5, flashUntil: recent.tick + 20, flashColor: '#ffd866' } : null,
      now: tick,
    });
    figure.dataset.alive = String(p.alive);
    figure.dataset.placement = String(p.placement ?? '');
    figure.querySelector('.score').textContent = String(p.score);
    figure.querySelector('.lines').textContent = String(p.lines);
    figure.querySelector('.status').textContent = statusOf(p, state.over);
  }
  const seek = $('seek');
  if (Number(seek.value) !== tick) seek.value = String(tick);
  const time = `${formatTime(tick - replay.startTick)} / ${formatTime(replay.length)}`;
  seek.setAttribute('aria-valuetext', `${formatTime(tick - replay.startTick)}, tick ${tick}`);
  $('tick-display').textContent = String(tick);
  $('time-display').textContent = time;
  const current = replay.currentMoment(tick);
  for (const node of [...$('markers').children, ...$('moments').children]) {
    const on = current !== null && Number(node.dataset.index) === current.index;
    if (on) node.setAttribute('aria-current', 'true');
    else node.removeAttribute('aria-current');
  }
  if (current && view.playing) {
    const li = $('moments').children[current.index];
    const list = $('moments');
    if (li && (li.offsetTop < list.scrollTop || li.offsetTop > list.scrollTop + list.clientHeight - li.offsetHeight)) {
      list.scrollTop = li.offsetTop - list.clientHeight / 2;
    }
  }
  updateControls();
  changed();
}

// ---------------------------------------------------------------------------
// Wiring

function typing(target) {
  return (target instanceof HTMLInputElement && target.type !== 'range') || target instanceof HTMLTextAreaElement;
}

function onKeyDown(event) {
  if (!view.replay || view.status !== 'ready') return;
  if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
  const onSlider = event.target === $('seek');
  const onSelect = event.target instanceof HTMLSelectElement;
  const tick = Math.floor(view.position);
  switch (event.key) {
    case ' ':
    case 'k':
      if (onSelect) return;
      event.preventDefault();
      togglePlay();
      break;
    case 'ArrowLeft':
    case 'ArrowRight': {
      // The focused slider or select keeps its own arrows.
      if (onSelect || (onSlider && !event.shiftKey)) return;
      event.preventDefault();
      const direction = event.key === 'ArrowRight' ? 1 : -1;
      if (event.shiftKey) seekTo(tick + direction * TICK_HZ);
      else stepMoment(direction);
      break;
    }
    case ',':
    case '.':
      event.preventDefault();
      seekTo(tick + (event.key === '.' ? 1 : -1), { stop: true });
      break;
    case 'Home':
    case 'End':
      if (onSlider || onSelect) return;
      event.preventDefault();
      seekTo(event.key === 'Home' ? view.replay.startTick : view.replay.endTick);
      break;
    case '[':
    case ']':
      event.preventDefault();
      stepSpeed(event.key === ']' ? 1 : -1);
      break;
    default:
      break;
  }
}

function onKeyUp(event) {
  // Space released on a focused button would click it too.
  if (event.key === ' ' && event.target instanceof HTMLButtonElement && view.status === 'ready') event.preventDefault();
}

function init() {
  $('play-toggle').addEventListener('click', togglePlay);
  $('moment-prev').addEventListener('click', () => stepMoment(-1));
  $('moment-next').addEventListener('click', () => stepMoment(1));
  $('speed').addEventListener('change', () => setSpeed(Number($('speed').value)));
  $('seek').addEventListener('input', () => seekTo(Number($('seek').value)));
  window.addEventListener('keydown', onKeyDown);
  window.addEventListener('keyup', onKeyUp);
  updateControls();
  start();
}

init();
