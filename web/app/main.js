// The Ludus browser client (web/index.html): guest login, lobby, rooms,
// the Tetris battle and the arena, spectating and results.
//
// Query parameters (all optional):
//   transport=auto|wt|ws  transport choice (default auto: WebTransport, then
//                         WebSocket when WebTransport is missing or fails)
//   udp=PORT              the server's WebTransport (UDP) port, default 4433
//   host=HOST             server host for WebTransport (default: the page's)
//   wt=URL, ws=URL        full endpoint URLs, overriding the above
//   nickname=NAME         prefills the nickname
//   autoconnect=1         connects at once (with `nickname`); a page reloaded
//                         while in a room reconnects by itself (resume token
//                         and room kept in sessionStorage)
//   rs=srs|srs+           rotation system the client predicts with (rooms are
//                         Guideline SRS today; srs+ also enables the 180 key)
//   debug=1|2             logs server messages to the console (2: with deltas)
//
// Automation contract. `window.ludusGame` is a live view (getters; values
// are plain JSON: ids are decimal strings):
//   screen          'welcome' | 'connecting' | 'lobby' | 'room' | 'game' |
//                   'spectate' | 'results'
//   connected       true while a session is open
//   transport       'wt' | 'ws' | null;  fallbackReason: why not wt, or null
//   playerId, nickname, resumed (the last Welcome's), welcomes (Welcomes
//                   received: 2 and more after reconnects)
//   roomId, code, roomName, game ('tetris'|'arena'), phase ('waiting'|
//                   'countdown'|'playing'|'finished'), capacity, roomSlot
//                   (RoomJoined.your_slot), members [{playerId, slot,
//                   nickname, ready, connected}], ready (own, as the server
//                   says), rematchQueued (Ready clicked while the results
//                   are up: sent when the room reopens), spectators, countdownMs
//   slot            own game slot (index in GameStart.players) during a game,
//                   -1 when spectating, null with no game
//   spectating      true while watching; spectateRoomId
//   gameStarts      GameStart messages seen on this page
//   results         the last GameResults (plain) or null; resultsCount
//   keyMoments      [{tick, slot, kind, value, text}] of the current game
//   lastSnapshotTick, tick (newest server tick seen)
//   input           {seq, acked} own input numbering
//   tetris          per-player summary {tick, players: [{slot, alive, score,
//                   lines, pieces, pendingGarbage, stackHeight, placement}], ...}
//   arena           {tick, players: [{slot, x, y, lastInputSeq}]}
//   own             own Tetris state as predicted: {cells (400 hex digits,
//                   row 0 first, 10 per row), piece, hold, holdUsed, next,
//                   serial (pieces since the start, predicted), alive,
//                   pending (inputs not yet acknowledged)} or null
//   roomList        [{roomId, code, name, game, phase, members, capacity, spectators}]
//   errors          [{code, name, inReplyTo, text}] from the server's Error messages
//                   and client-side failures (code 0)
//   rttMs           last control-stream ping round trip
// The page dispatches a 'ludus-update' event on document after each change.
// window.ludusDebug.dropConnection() simulates a network failure (the page
// reconnects with its resume token and rejoins its room).
//
// Element ids for scripts:
//   welcome   #nickname, #transport-choice, #play-guest (submit of #guest-form)
//   lobby     #quick-tetris, #quick-arena; #create-game, #create-capacity,
//             #create-name, #create-private, #create-room; #join-code,
//             #join-code-btn; #list-game, #refresh-rooms; #room-list rows
//             tr[data-room-id][data-code][data-game][data-phase] with buttons
//             [data-action="join"] and [data-action="spectate"]
//   room      #room-code, #room-name, #room-game, #room-phase, #spectator-count,
//             #room-members li[data-player-id][data-ready][data-connected],
//             #ready-toggle[data-ready], #leave-room, #countdown
//   game      #tetris-canvas (own board), #opponents canvas[data-slot],
//             #arena-canvas, #toasts .toast[data-kind][data-slot],
//             #game-status, #leave-game, #stop-spectate
//   results   #results-body tr[data-player-id][data-placement], #results-back
//   header    #transport[data-transport], #settings-open; dialog
//             #settings-dialog with #key-<action>, #setting-das,
//             #setting-arr, #setting-sdf, #settings-save, #settings-reset
// Tetris keys (defaults; Settings changes them): arrows move / soft drop,
// Space hard drop, Up or X rotate clockwise, Z or Ctrl counter-clockwise,
// A 180 (SRS+ only), C or Shift hold. Arena: arrows or WASD.

import { ErrorCodes, messageName } from '../proto/codec.js';
import { ArenaView, arenaBits } from '../game/arena.js';
import {
  ACTION_LABELS,
  DEFAULT_SETTINGS,
  Handling,
  InputWindow,
  keyMap,
  loadSettings,
  normalizeSettings,
  saveSettings,
} from '../game/input.js';
import { TetrisMatch } from '../game/match.js';
import { INPUT, SRS, SRS_PLUS, shiftRoom } from '../game/tetris.js';
import { connect, endpointsFrom } from './net.js';
import { drawArena, drawPanel, panelSize } from './render.js';
import { el } from './dom.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(window.location.search);
const endpoints = endpointsFrom(params, window.location);
const ERROR_NAMES = new Map(Object.entries(ErrorCodes).map(([name, code]) => [code, name]));
const RESUME_KEY = 'ludus.resume_token';
/** The room to return to after a reconnect or a reload: {roomId, spectate}. */
const ROOM_KEY = 'ludus.room';
const NICK_KEY = 'ludus.nickname';
const MAX_RECONNECTS = 5;
const FRAME_MS = 1000 / 60;
const ARENA_INPUT_MS = 1000 / 30;
const RESEND_MS = 50;
const MAX_RESENDS = 10;
const rotationSystem = params.get('rs') === 'srs+' ? SRS_PLUS : SRS;
/** debug=1 logs every server message but deltas and arena states to the
 * console, debug=2 those too. */
const DEBUG = Number(params.get('debug') || 0);

const state = {
  screen: 'welcome',
  session: null,
  transport: null,
  fallbackReason: null,
  welcome: null,
  playerId: null,
  nickname: null,
  resumed: false,
  welcomes: 0,
  rejoining: false,
  rematchQueued: false,
  userClosed: false,
  reconnects: 0,
  room: null,
  spectating: null,
  game: null,
  gameStarts: 0,
  countdownEnd: null,
  results: null,
  resultsCount: 0,
  keyMoments: [],
  errors: [],
  roomList: [],
  rttMs: null,
  names: new Map(),
  effects: new Map(),
};

let settings = loadSettings(safeStorage('localStorage'));
let keys = keyMap(settings);
const handling = new Handling({ das: settings.das, arr: settings.arr });
let softHeld = false;
const arenaHeld = { left: false, right: false, down: false, up: false };
let lastSend = 0;
let resends = 0;
let flushTimer = null;
let lastArenaInput = 0;
let heartbeatTimer = null;
let roomListTimer = null;
let settingsListening = null;

function safeStorage(name) {
  try {
    return window[name];
  } catch {
    return null;
  }
}

function log(text) {
  console.log(`[ludus] ${text}`);
}

// ---------------------------------------------------------------------------
// The automation view

const str = (v) => (v === null || v === undefined ? null : String(v));

function plainDeep(value) {
  return JSON.parse(JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? Array.from(v) : v)));
}

function membersOf() {
  const members = state.room?.members ?? state.spectating?.members;
  if (!members) return [];
  return [...members.values()].sort((a, b) => a.slot - b.slot).map((m) => ({
    playerId: String(m.player_id),
    slot: m.slot,
    nickname: m.nickname,
    ready: m.ready,
    connected: m.connected,
  }));
}

window.ludusGame = {
  get screen() { return state.screen; },
  get connected() { return state.session !== null && state.session.closedReason === null; },
  get transport() { return state.transport; },
  get fallbackReason() { return state.fallbackReason; },
  get playerId() { return state.playerId; },
  get nickname() { return state.nickname; },
  get resumed() { return state.resumed; },
  get welcomes() { return state.welcomes; },
  get roomId() { return str(state.room?.id ?? null); },
  get code() { return state.room?.code ?? null; },
  get roomName() { return state.room?.name ?? null; },
  get game() { return state.room?.game ?? state.spectating?.game ?? state.game?.kind ?? null; },
  get phase() { return state.room?.phase ?? state.spectating?.phase ?? null; },
  get capacity() { return state.room?.capacity ?? null; },
  get roomSlot() { return state.room?.yourSlot ?? null; },
  get members() { return membersOf(); },
  get ready() { return state.room?.members.get(state.playerId)?.ready ?? false; },
  get rematchQueued() { return state.rematchQueued; },
  get spectators() { return state.room?.spectators ?? state.spectating?.spectators ?? 0; },
  get countdownMs() { return state.countdownEnd === null ? null : Math.max(0, Math.round(state.countdownEnd - performance.now())); },
  get slot() { return state.game ? state.game.slot : null; },
  get spectating() { return state.spectating !== null; },
  get spectateRoomId() { return str(state.spectating?.roomId ?? null); },
  get gameStarts() { return state.gameStarts; },
  get results() { return state.results ? plainDeep(state.results) : null; },
  get resultsCount() { return state.resultsCount; },
  get keyMoments() { return state.keyMoments.map((m) => ({ ...m })); },
  get lastSnapshotTick() { return state.game?.match?.lastSnapshotTick ?? null; },
  get tick() { return state.game ? (state.game.match?.tick ?? state.game.arena?.tick ?? null) : null; },
  get input() { return state.game?.inputs ? { seq: state.game.inputs.seq, acked: state.game.inputs.acked } : null; },
  get tetris() { return state.game?.match ? state.game.match.summary() : null; },
  get own() { return ownState(); },
  get arena() { return state.game?.arena ? state.game.arena.snapshot() : null; },
  get roomList() { return state.roomList.map((r) => ({ ...r })); },
  get errors() { return state.errors.map((e) => ({ ...e })); },
  get rttMs() { return state.rttMs; },
};

/** Test hooks: dropConnection() closes the transport without a Bye, as a
 * network failure would; the page then reconnects with its resume token. */
window.ludusDebug = {
  dropConnection() {
    const channel = state.session?.channel;
    if (!channel) return false;
    channel.close(0, 'dropped by ludusDebug').catch(() => {});
    return true;
  },
};

/** The own Tetris state as predicted (what the player sees), for bots. */
function ownState() {
  const match = state.game?.match;
  const view = match?.ownView();
  if (!view) return null;
  let cells = '';
  for (const c of view.board.cells) cells += c.toString(16);
  return {
    cells,
    piece: view.piece ? { ...view.piece } : null,
    hold: view.hold,
    holdUsed: view.holdUsed,
    next: [...view.next],
    serial: match.prediction.serial,
    alive: match.me.alive,
    pending: view.pending,
  };
}

function changed() {
  document.dispatchEvent(new CustomEvent('ludus-update'));
}

// ---------------------------------------------------------------------------
// Screens and small UI helpers

function setScreen(screen) {
  if (state.screen === screen) return;
  state.screen = screen;
  document.body.dataset.screen = screen;
  if (screen === 'lobby') {
    requestRoomList();
    clearInterval(roomListTimer);
    roomListTimer = setInterval(() => {
      if (state.screen === 'lobby') requestRoomList();
    }, 3000);
  } else {
    clearInterval(roomListTimer);
    roomListTimer = null;
  }
  if (screen !== 'game') releaseKeys();
  // Keys go to the game, not to the button that was clicked last (Space
  // would press it again).
  if (screen === 'game' || screen === 'spectate') document.activeElement?.blur?.();
  changed();
}

let bannerTimer = null;
function showBanner(text, ms = 6000) {
  const banner = $('error-banner');
  banner.textContent = text;
  banner.hidden = false;
  clearTimeout(bannerTimer);
  if (ms > 0) bannerTimer = setTimeout(() => { banner.hidden = true; }, ms);
}

function clientError(text) {
  state.errors.push({ code: 0, name: 'client', inReplyTo: null, text });
  showBanner(text);
  changed();
}

function nameOf(playerId) {
  return state.names.get(String(playerId)) ?? `player ${playerId}`;
}

function slotName(slot) {
  const id = state.game?.players?.[slot];
  return id ? nameOf(id) : `#${slot}`;
}

function updateHeader() {
  const t = $('transport');
  t.dataset.transport = state.transport ?? '';
  if (!state.session || state.session.closedReason !== null) t.textContent = 'offline';
  else if (state.transport === 'wt') t.textContent = 'WebTransport';
  else t.textContent = state.fallbackReason ? 'WebSocket (fallback)' : 'WebSocket';
  t.title = state.fallbackReason ? `WebTransport failed: ${state.fallbackReason}` : '';
  $('player-name').textContent = state.nickname ? `${state.nickname}` : '';
  $('rtt').textContent = state.rttMs === null ? '' : `${state.rttMs.toFixed(1)} ms`;
}

// ---------------------------------------------------------------------------
// Connection

async function start(nickname, preference, { resumeToken = null } = {}) {
  state.userClosed = false;
  setScreen('connecting');
  $('play-guest').disabled = true;
  $('connect-status').textContent = 'connecting…';
  try {
    const { session, welcome, transport, fallbackReason } = await connect({
      preference,
      endpoints,
      nickname,
      resumeToken,
      log: (text) => {
        log(text);
        $('connect-status').textContent = text;
      },
    });
    attach(session, welcome, transport, fallbackReason);
    return true;
  } catch (error) {
    const text = error?.message ?? String(error);
    $('connect-status').textContent = `could not connect: ${text}`;
    clientError(`could not connect: ${text}`);
    if (!state.welcome) setScreen('welcome');
    return false;
  } finally {
    $('play-guest').disabled = false;
    updateHeader();
  }
}

function attach(session, welcome, transport, fallbackReason) {
  state.session = session;
  state.welcome = welcome;
  state.transport = transport;
  state.fallbackReason = fallbackReason;
  state.playerId = String(welcome.player_id);
  state.nickname = welcome.nickname;
  state.resumed = welcome.resumed;
  state.welcomes += 1;
  state.names.set(state.playerId, welcome.nickname);
  state.reconnects = 0;
  try {
    safeStorage('sessionStorage')?.setItem(RESUME_KEY, welcome.resume_token);
    safeStorage('localStorage')?.setItem(NICK_KEY, welcome.nickname);
  } catch { /* storage unavailable */ }
  log(`welcome: player ${state.playerId} "${welcome.nickname}" over ${transport}${welcome.resumed ? ' (resumed)' : ''}`);
  session.onMessage = (message) => {
    if (DEBUG > 1 || (DEBUG && message.name !== 'TetrisDelta' && message.name !== 'ArenaState')) {
      console.log(`[ludus] <- ${message.name} ${JSON.stringify(message.fields, (_, v) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? `${v.length} bytes` : v))}`);
    }
    try {
      onMessage(message.name, message.fields);
    } catch (error) {
      console.error(error);
      clientError(`while handling ${message.name}: ${error.message}`);
    }
  };
  session.onClose = (reason) => onClosed(session, reason);
  clearInterval(heartbeatTimer);
  const every = Math.max(1000, Math.min(10_000, (welcome.heartbeat_ms || 5000) / 2));
  heartbeatTimer = setInterval(() => {
    if (state.session !== session || session.closedReason !== null) return;
    session.ping({ timeoutMs: 5000 }).then(({ rttMs }) => {
      state.rttMs = rttMs;
      updateHeader();
    }, () => {});
  }, every);
  session.ping().then(({ rttMs }) => { state.rttMs = rttMs; updateHeader(); }, () => {});
  updateHeader();
  if (!welcome.resumed) {
    leaveRoomLocally();
    setScreen('lobby');
  } else {
    // The same player again: go back into the room (docs/PROTOCOL.md §5,
    // Rooms: RoomJoin, then RoomJoined, GameStart and a snapshot).
    const saved = savedRoom();
    const roomId = state.room?.id ?? state.spectating?.roomId ?? (saved ? BigInt(saved.roomId) : null);
    const spectate = state.spectating !== null || (!state.room && saved?.spectate === true);
    if (roomId !== null) {
      state.rejoining = true;
      if (spectate) send('SpectateStart', { room_id: roomId });
      else send('RoomJoin', { room_id: roomId, reservation_token: null });
    }
    if (!state.room && !state.spectating) setScreen('lobby');
  }
  changed();
}

function savedRoom() {
  try {
    const saved = JSON.parse(safeStorage('sessionStorage')?.getItem(ROOM_KEY) ?? 'null');
    return saved && typeof saved.roomId === 'string' && /^[0-9]+$/.test(saved.roomId) ? saved : null;
  } catch {
    return null;
  }
}

function saveRoom(roomId, spectate) {
  try {
    const storage = safeStorage('sessionStorage');
    if (roomId === null) storage?.removeItem(ROOM_KEY);
    else storage?.setItem(ROOM_KEY, JSON.stringify({ roomId: String(roomId), spectate }));
  } catch { /* storage unavailable */ }
}

// Leaving the page ends the session at once (Bye, then the transport
// closes), so the server frees the connection now instead of at its idle
// timeout, and no reconnect is tried.
window.addEventListener('pagehide', () => {
  state.userClosed = true;
  state.session?.bye(0, 'page closed').catch(() => {});
});

function onClosed(session, reason) {
  if (state.session !== session) return;
  log(`closed: ${reason}`);
  updateHeader();
  stopInputs();
  changed();
  if (state.userClosed) return;
  const replaced = session.serverBye?.code === ErrorCodes.session_replaced;
  if (replaced || state.reconnects >= MAX_RECONNECTS) {
    showBanner(`disconnected: ${reason}`, 0);
    state.session = null;
    setScreen('welcome');
    return;
  }
  state.reconnects += 1;
  const delay = 500 * state.reconnects;
  showBanner(`connection lost (${reason}); reconnecting (attempt ${state.reconnects})…`, delay + 4000);
  setTimeout(() => reconnect(), delay);
}

async function reconnect() {
  const token = safeStorage('sessionStorage')?.getItem(RESUME_KEY) ?? null;
  const preference = params.get('transport') || $('transport-choice').value || 'auto';
  try {
    const result = await connect({ preference, endpoints, nickname: state.nickname, resumeToken: token, log });
    attach(result.session, result.welcome, result.transport, result.fallbackReason);
    showBanner(result.welcome.resumed ? 'reconnected' : 'reconnected (the old session could not be resumed)', 3000);
  } catch (error) {
    log(`reconnect failed: ${error.message}`);
    const old = state.session;
    if (old) onClosed(old, error.message);
  }
}

function send(name, fields = {}) {
  const session = state.session;
  if (!session || session.closedReason !== null) {
    clientError(`not connected (${name} not sent)`);
    return;
  }
  session.send(name, fields).catch((error) => clientError(`${name}: ${error.message}`));
}

// ---------------------------------------------------------------------------
// Server messages

function onMessage(name, f) {
  switch (name) {
    case 'RoomList':
      state.roomList = f.rooms.map((r) => ({
        roomId: String(r.room_id), code: r.code, name: r.name, game: r.game, phase: r.phase,
        members: r.members, capacity: r.capacity, spectators: r.spectators,
      }));
      renderRoomList();
      break;
    case 'RoomJoined':
      enterRoom(f);
      break;
    case 'MemberJoined': {
      const container = state.room ?? state.spectating;
      if (!container) break;
      container.members.set(String(f.member.player_id), { ...f.member });
      state.names.set(String(f.member.player_id), f.member.nickname);
      renderRoom();
      break;
    }
    case 'MemberLeft': {
      const id = String(f.player_id);
      if (id === state.playerId && state.room) {
        const why = f.reason === 'left' ? null : `removed from the room (${f.reason})`;
        leaveRoomLocally();
        if (why) showBanner(why);
        setScreen('lobby');
        break;
      }
      const container = state.room ?? state.spectating;
      if (!container) break;
      const member = container.members.get(id);
      if (member && f.reason === 'disconnected') member.connected = false;
      else container.members.delete(id);
      renderRoom();
      break;
    }
    case 'MemberReady': {
      const container = state.room ?? state.spectating;
      const member = container?.members.get(String(f.player_id));
      if (member) member.ready = f.ready;
      if (!f.ready && container?.phase === 'countdown') {
        container.phase = 'waiting';
        state.countdownEnd = null;
      }
      if (!f.ready && container?.phase === 'finished') {
        // The room reopened after the results (every member unready): a
        // Ready clicked meanwhile goes out now.
        container.phase = 'waiting';
        if (state.rematchQueued && state.room) {
          state.rematchQueued = false;
          send('RoomReady', { ready: true });
        }
      }
      renderRoom();
      break;
    }
    case 'Countdown': {
      // remaining_ms 0: the countdown was cancelled (someone is no longer
      // ready); GameStart follows a countdown that ran out.
      const container = state.room ?? state.spectating;
      if (container && container.phase !== 'playing') container.phase = f.remaining_ms > 0 ? 'countdown' : 'waiting';
      state.countdownEnd = f.remaining_ms > 0 ? performance.now() + f.remaining_ms : null;
      renderRoom();
      break;
    }
    case 'SpectatorCount':
      if (state.room) state.room.spectators = f.count;
      if (state.spectating) state.spectating.spectators = f.count;
      renderRoom();
      break;
    case 'SpectateJoined':
      enterSpectate(f);
      break;
    case 'GameStart':
      startGame(f);
      break;
    case 'GameResults':
      gameResults(f);
      break;
    case 'ArenaState':
      arenaState(f);
      break;
    case 'TetrisSnapshot':
    case 'TetrisDelta':
    case 'PieceSpawned':
    case 'PieceLocked':
    case 'LinesCleared':
    case 'GarbageSent':
    case 'GarbageReceived':
    case 'PlayerEliminated':
    case 'KeyMoment':
      tetrisMessage(name, f);
      break;
    case 'Error':
      serverError(f);
      break;
    default:
      log(`unhandled ${name}`);
  }
  changed();
}

function serverError(f) {
  const rejoining = state.rejoining;
  state.rejoining = false;
  const entry = {
    code: f.code,
    name: ERROR_NAMES.get(f.code) ?? `error ${f.code}`,
    inReplyTo: f.in_reply_to ? safeMessageName(f.in_reply_to) : null,
    text: f.text,
  };
  state.errors.push(entry);
  if (state.errors.length > 100) state.errors.shift();
  if (rejoining) {
    // The room is gone (or we are already back in it): nothing to show.
    if (entry.name !== 'already_in_room') {
      leaveRoomLocally();
      setScreen('lobby');
    }
    return;
  }
  showBanner(`${entry.inReplyTo ? `${entry.inReplyTo}: ` : ''}${entry.name}${entry.text ? ` (${entry.text})` : ''}`);
}

function safeMessageName(code) {
  try {
    return messageName(code);
  } catch {
    return `0x${code.toString(16)}`;
  }
}

function membersMap(list) {
  const map = new Map();
  for (const m of list) {
    map.set(String(m.player_id), { ...m });
    state.names.set(String(m.player_id), m.nickname);
  }
  return map;
}

function enterRoom(f) {
  state.rejoining = false;
  saveRoom(f.room_id, false);
  const sameGame = state.room && state.room.id === f.room_id && state.game;
  state.spectating = null;
  state.room = {
    id: f.room_id,
    code: f.code,
    name: f.name,
    game: f.game,
    phase: f.phase,
    capacity: f.capacity,
    tickHz: f.tick_hz,
    yourSlot: f.your_slot,
    members: membersMap(f.members),
    spectators: state.room?.id === f.room_id ? state.room.spectators : 0,
  };
  if (!sameGame) {
    stopInputs();
    state.game = null;
  }
  state.countdownEnd = null;
  renderRoom();
  if (f.phase === 'playing') {
    // Rejoined a running game: GameStart or a snapshot follows.
    setScreen(state.game ? 'game' : 'room');
  } else {
    setScreen('room');
  }
}

function enterSpectate(f) {
  state.rejoining = false;
  saveRoom(f.room_id, true);
  stopInputs();
  state.room = null;
  state.game = null;
  state.results = null;
  state.spectating = {
    roomId: f.room_id,
    game: f.game,
    tickHz: f.tick_hz,
    delayTicks: f.delay_ticks,
    members: membersMap(f.members),
    phase: null,
    spectators: 0,
  };
  setScreen('spectate');
  setupGameView();
}

function leaveRoomLocally() {
  saveRoom(null);
  state.rematchQueued = false;
  stopInputs();
  state.room = null;
  state.spectating = null;
  state.game = null;
  state.countdownEnd = null;
}

/** Players by game slot when no GameStart was seen (joined mid-game):
 * members in slot order, as the server compacts them. */
function playersFromMembers() {
  const members = state.room?.members ?? state.spectating?.members ?? new Map();
  return [...members.values()].sort((a, b) => a.slot - b.slot).map((m) => String(m.player_id));
}

function startGame(f) {
  const players = f.players.map(String);
  const spectator = state.spectating !== null;
  const slot = spectator ? -1 : players.indexOf(state.playerId);
  const previous = state.game;
  // The same game again (back after a reconnect: it has not ended): keep
  // the input numbering, the server remembers the last input it applied.
  // (GameStart.seed is 0 for Tetris, so it cannot tell games apart.)
  const sameGame = previous && previous.kind === f.game && state.results === null && previous.slot === slot;
  state.gameStarts += 1;
  state.game = {
    kind: f.game,
    seed: String(f.seed),
    tickHz: f.tick_hz,
    startTick: f.start_tick,
    players,
    slot,
    match: null,
    arena: null,
    inputs: sameGame && previous.inputs ? previous.inputs : new InputWindow(),
  };
  createModel();
  if (!sameGame) {
    state.results = null;
    state.keyMoments = [];
    state.effects.clear();
  }
  const container = state.room ?? state.spectating;
  if (container) {
    container.phase = 'playing';
    for (const m of container.members.values()) m.ready = false;
  }
  state.countdownEnd = null;
  state.rematchQueued = false;
  setScreen(spectator ? 'spectate' : 'game');
  setupGameView();
  if (!spectator) startInputs();
}

function createModel() {
  const g = state.game;
  if (g.kind === 'tetris') {
    g.match = new TetrisMatch({ slots: g.players.length, mySlot: g.slot, system: rotationSystem, tickHz: g.tickHz, startTick: g.startTick });
  } else {
    g.arena = new ArenaView({ mySlot: g.slot, tickHz: g.tickHz });
  }
}

/** A game message with no GameStart seen (spectating or resuming mid-game). */
function ensureGame(kind) {
  if (state.game) return state.game;
  const players = playersFromMembers();
  const spectator = state.spectating !== null;
  state.game = {
    kind,
    seed: null,
    tickHz: state.room?.tickHz ?? state.spectating?.tickHz ?? (kind === 'tetris' ? 60 : 30),
    startTick: 0,
    players,
    slot: spectator ? -1 : players.indexOf(state.playerId),
    match: null,
    arena: null,
    inputs: new InputWindow(),
  };
  createModel();
  const container = state.room ?? state.spectating;
  if (container) container.phase = 'playing';
  if (spectator) setScreen('spectate');
  else if (state.room) setScreen('game');
  setupGameView();
  if (!spectator) startInputs();
  return state.game;
}

function tetrisMessage(name, f) {
  const g = ensureGame('tetris');
  if (!g.match) return;
  const notes = g.match.handle(name, f);
  const me = g.match.me;
  if (name === 'TetrisSnapshot' && me && g.inputs) g.inputs.rebaseTo(me.lastInputSeq);
  const now = performance.now();
  for (const note of notes) {
    switch (note.type) {
      case 'moment':
        state.keyMoments.push({ tick: note.tick, slot: note.slot, kind: note.kind, value: note.value, text: note.text });
        toast(note.text, { kind: note.kind, slot: note.slot });
        break;
      case 'clear': {
        const label = note.combo >= 1 ? `${note.text} · ${note.combo} COMBO` : note.text;
        setEffect(note.slot, { label, labelUntil: now + 1200, labelColor: '#fff' });
        break;
      }
      case 'attack':
        if (note.lines > 0) {
          setEffect(note.to, { flashUntil: now + 450, flashColor: '#ff4040' });
          setEffect(note.from, { label: `ATTACK ${note.lines}`, labelUntil: now + 900, labelColor: '#ff9a40' });
        } else if (note.cancelled > 0) {
          setEffect(note.from, { label: `BLOCKED ${note.cancelled}`, labelUntil: now + 900, labelColor: '#7fd0ff' });
        }
        break;
      case 'garbage':
        setEffect(note.slot, { flashUntil: now + 300, flashColor: '#aaaaaa' });
        break;
      case 'eliminated':
        if (note.slot === g.slot) toast(`K.O. · place ${note.placement}`, { kind: 'eliminated', slot: note.slot });
        break;
      default:
        break;
    }
  }
  if (name === 'TetrisSnapshot' || name === 'PlayerEliminated') updateGameStatus();
}

function setEffect(slot, values) {
  state.effects.set(slot, { ...(state.effects.get(slot) ?? {}), ...values });
}

function arenaState(f) {
  const g = ensureGame('arena');
  if (!g.arena) return;
  g.arena.handle(f, performance.now());
  const mine = f.players.find((p) => p.slot === g.slot);
  if (mine && g.inputs) g.inputs.rebaseTo(mine.last_input_seq);
}

function gameResults(f) {
  state.results = f;
  state.resultsCount += 1;
  state.game?.match?.handle('GameResults', f);
  const container = state.room ?? state.spectating;
  if (container) {
    container.phase = 'finished';
    for (const m of container.members.values()) m.ready = false;
  }
  for (const r of f.results) if (!state.names.has(String(r.player_id))) state.names.set(String(r.player_id), `player ${r.player_id}`);
  stopInputs();
  renderResults();
  setScreen('results');
  renderRoom();
}

// ---------------------------------------------------------------------------
// Lobby

function requestRoomList() {
  if (!state.session || state.session.closedReason !== null) return;
  const game = $('list-game').value || null;
  state.session.send('RoomListRequest', { game }).catch(() => {});
}

function renderRoomList() {
  const body = $('room-list');
  body.replaceChildren(...state.roomList.map((r) => el('tr', { dataset: { roomId: r.roomId, code: r.code, game: r.game, phase: r.phase } },
    el('td', { text: r.name || '(unnamed)' }),
    el('td', {}, el('code', { text: r.code })),
    el('td', { text: r.game }),
    el('td', { text: r.phase }),
    el('td', { text: `${r.members}/${r.capacity}` }),
    el('td', { text: String(r.spectators) }),
    el('td', {},
      el('button', { type: 'button', dataset: { action: 'join' }, text: 'Join', onclick: () => send('RoomJoin', { room_id: BigInt(r.roomId), reservation_token: null }) }),
      ' ',
      el('button', { type: 'button', dataset: { action: 'spectate' }, text: 'Watch', onclick: () => send('SpectateStart', { room_id: BigInt(r.roomId) }) })),
  )));
  $('room-list-empty').hidden = state.roomList.length > 0;
}

// ---------------------------------------------------------------------------
// Room

function renderRoom() {
  const room = state.room;
  if (room) {
    $('room-name').textContent = room.name || `Room ${room.code}`;
    $('room-code').textContent = room.code;
    $('room-game').textContent = room.game === 'tetris' ? (room.capacity === 1 ? 'Tetris · 40-line sprint' : 'Tetris battle') : 'Arena';
    $('room-phase').textContent = room.phase;
    $('spectator-count').textContent = String(room.spectators);
    const list = $('room-members');
    list.replaceChildren(...[...room.members.values()].sort((a, b) => a.slot - b.slot).map((m) => el('li', {
      dataset: { playerId: String(m.player_id), ready: String(m.ready), connected: String(m.connected), slot: String(m.slot) },
    }, el('span', { class: 'dot' }), el('span', { text: m.nickname }), String(m.player_id) === state.playerId ? el('span', { class: 'me', text: '(you)' }) : '',
    el('span', { class: 'muted small', text: m.connected ? (m.ready ? 'ready' : 'not ready') : 'reconnecting…' }))));
    const ready = room.members.get(state.playerId)?.ready ?? false;
    const button = $('ready-toggle');
    button.dataset.ready = String(ready);
    button.dataset.queued = String(state.rematchQueued);
    button.textContent = ready ? 'Ready ✓ (click to cancel)'
      : room.phase === 'finished' ? (state.rematchQueued ? 'Ready for the rematch ✓' : 'Ready for a rematch') : 'Ready';
    button.disabled = room.phase === 'playing';
    const count = room.members.size;
    $('room-hint').textContent = room.phase === 'playing'
      ? 'A game is running.'
      : room.phase === 'finished' ? 'Results are up; the room reopens for a rematch in a few seconds.'
      : room.capacity === 1 ? 'Solo room: ready up to start a 40-line sprint.'
        : count < 2 ? `Waiting for players: share the code ${room.code}.` : 'The game starts when everyone is ready.';
  }
  updateGameStatus();
}

function updateCountdown() {
  const text = state.countdownEnd === null ? '' : `${Math.ceil(Math.max(0, state.countdownEnd - performance.now()) / 1000)}`;
  const node = $('countdown');
  if (node.textContent !== text) node.textContent = text;
}

// ---------------------------------------------------------------------------
// Results

function renderResults() {
  const f = state.results;
  if (!f) return;
  const tickHz = f.game === 'tetris' ? 60 : 30;
  const mine = f.results.find((r) => String(r.player_id) === state.playerId);
  $('results-title').textContent = state.spectating ? 'Results' : mine ? (mine.placement === 1 ? 'You win!' : `Place ${mine.placement}`) : 'Results';
  $('results-body').replaceChildren(...f.results.map((r) => el('tr', { dataset: { playerId: String(r.player_id), placement: String(r.placement), slot: String(r.slot) } },
    el('td', { text: String(r.placement) }),
    el('td', { text: nameOf(r.player_id) + (String(r.player_id) === state.playerId ? ' (you)' : '') }),
    el('td', { text: String(r.score) }),
    el('td', { text: String(r.lines) }),
    el('td', { text: String(r.pieces) }),
    el('td', { text: String(r.garbage_sent) }),
    el('td', { text: String(r.garbage_received) }),
    el('td', { text: `${(r.survived_ticks / tickHz).toFixed(1)} s` }),
  )));
  $('results-back').textContent = state.spectating ? 'Keep watching' : 'Back to the room';
}

// ---------------------------------------------------------------------------
// Game view

function setupGameView() {
  const g = state.game;
  const kind = g?.kind ?? state.spectating?.game ?? state.room?.game;
  const spectator = state.spectating !== null;
  $('tetris-view').hidden = kind !== 'tetris';
  $('arena-view').hidden = kind !== 'arena';
  $('leave-game').hidden = spectator;
  $('stop-spectate').hidden = !spectator;
  $('game-title').textContent = kind === 'arena' ? 'Arena' : 'Tetris battle';
  $('controls-hint').textContent = spectator
    ? ''
    : kind === 'arena' ? 'Arrows or WASD to move.'
      : `Keys: ${describeKeys()} · Settings to change them.`;
  const own = $('tetris-canvas');
  const opponents = $('opponents');
  opponents.replaceChildren();
  if (kind !== 'tetris' || !g) {
    own.hidden = kind !== 'tetris' || spectator;
    updateGameStatus();
    return;
  }
  own.hidden = spectator || g.slot < 0;
  if (!own.hidden) {
    const size = panelSize(24, { side: true, name: true });
    own.width = size.width + 8;
    own.height = size.height + 8;
  }
  const many = g.players.length > 4;
  const cell = spectator || g.slot < 0 ? (many ? 12 : 16) : (many ? 10 : 14);
  const side = spectator || g.slot < 0;
  for (let slot = 0; slot < g.players.length; slot++) {
    if (slot === g.slot) continue;
    const size = panelSize(cell, { side, name: true, stats: true });
    const canvas = el('canvas', { dataset: { slot: String(slot) } });
    canvas.width = size.width + 4;
    canvas.height = size.height + (side ? cell * 3 : 4);
    opponents.append(canvas);
  }
  updateGameStatus();
}

function updateGameStatus() {
  const status = $('game-status');
  if (!status) return;
  const g = state.game;
  if (state.spectating) {
    const s = state.spectating;
    status.textContent = `watching room ${String(s.roomId)}${s.delayTicks ? ` · ${(s.delayTicks / (s.tickHz || 60)).toFixed(1)} s delay` : ''}${g ? '' : ' · waiting for the game'}`;
    return;
  }
  if (!g) {
    status.textContent = '';
    return;
  }
  if (g.match) {
    const alive = g.match.players.filter((p) => p.alive).length;
    const me = g.match.me;
    status.textContent = `${alive} of ${g.players.length} standing${me && !me.alive ? ' · you are out' : ''}`;
  } else {
    status.textContent = `${g.players.length} players`;
  }
}

function describeKeys() {
  const k = settings.keys;
  const keysOf = (action, n = 2) => k[action].slice(0, n).map(prettyKey).join('/');
  return `${keysOf('moveLeft', 1)} ${keysOf('moveRight', 1)} move · ${keysOf('softDrop', 1)} soft drop · ${keysOf('hardDrop', 1)} hard drop · ${keysOf('rotateCW')} rotate · ${keysOf('rotateCCW')} rotate back · ${keysOf('hold')} hold`;
}

const TOAST_MS = 1800;

function toast(text, { kind = '', slot = -1 } = {}) {
  const g = state.game;
  const mine = !g || g.slot < 0 || slot === g.slot;
  const label = mine || slot < 0 ? text : `${slotName(slot)}: ${text}`;
  const node = el('div', { class: 'toast', dataset: { kind, slot: String(slot), mine: String(mine) }, text: label });
  $('toasts').append(node);
  setTimeout(() => node.remove(), TOAST_MS);
  while ($('toasts').children.length > 6) $('toasts').firstChild.remove();
}

function draw(now) {
  requestAnimationFrame(draw);
  updateCountdown();
  if (state.screen !== 'game' && state.screen !== 'spectate') return;
  const g = state.game;
  if (!g) return;
  if (g.match) drawTetris(g, now);
  else if (g.arena) drawArenaView(g, now);
}

function statsOf(p) {
  return [`Score ${p.score}`, `Lines ${p.lines}`, `Level ${p.level}`, `Pieces ${p.pieces}`, p.combo > 0 ? `Combo ${p.combo}` : '', p.backToBack > 1 ? `B2B ×${p.backToBack - 1}` : ''].filter(Boolean);
}

function drawTetris(g, now) {
  const match = g.match;
  const own = $('tetris-canvas');
  if (!own.hidden && match.me) {
    const ctx = own.getContext('2d');
    ctx.clearRect(0, 0, own.width, own.height);
    const view = match.ownView();
    const me = match.me;
    drawPanel(ctx, {
      x: 4,
      y: 4,
      cell: 24,
      side: true,
      name: `${state.nickname ?? 'you'}`,
      board: view.board,
      serverBoard: view.serverBoard,
      piece: view.piece,
      ghost: view.ghost,
      hold: view.hold,
      holdUsed: view.holdUsed,
      next: view.next,
      pendingGarbage: me.pendingGarbage,
      stats: statsOf(me),
      alive: me.alive,
      placement: me.placement,
      effects: state.effects.get(g.slot),
      now,
    });
  }
  for (const canvas of $('opponents').children) {
    const slot = Number(canvas.dataset.slot);
    const p = match.players[slot];
    if (!p) continue;
    const ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const side = g.slot < 0;
    const cell = side ? (g.players.length > 4 ? 12 : 16) : (g.players.length > 4 ? 10 : 14);
    drawPanel(ctx, {
      x: 2,
      y: 2,
      cell,
      side,
      name: slotName(slot),
      board: p.board,
      piece: p.piece,
      ghost: null,
      hold: p.hold,
      holdUsed: p.holdUsed,
      next: p.next,
      pendingGarbage: p.pendingGarbage,
      stats: side ? statsOf(p) : [`${p.score}`, `${p.lines} L`],
      alive: p.alive,
      placement: p.placement,
      effects: state.effects.get(slot),
      now,
    });
  }
}

function drawArenaView(g, now) {
  const canvas = $('arena-canvas');
  const ctx = canvas.getContext('2d');
  const names = g.players.map((id) => nameOf(id));
  drawArena(ctx, canvas.width, g.arena.positionsAt(now), { mySlot: g.slot, names });
}

// ---------------------------------------------------------------------------
// Inputs

let inputTimer = null;

function playing() {
  const g = state.game;
  return g && g.slot >= 0 && state.screen === 'game' && !state.results && state.session?.closedReason === null;
}

function startInputs() {
  stopInputs();
  lastSend = 0;
  resends = 0;
  inputTimer = setInterval(inputTick, FRAME_MS);
}

function stopInputs() {
  clearInterval(inputTimer);
  inputTimer = null;
  clearTimeout(flushTimer);
  flushTimer = null;
  releaseKeys();
}

function releaseKeys() {
  handling.releaseAll();
  softHeld = false;
  arenaHeld.left = arenaHeld.right = arenaHeld.down = arenaHeld.up = false;
}

function emit(bits) {
  const g = state.game;
  if (!playing() || !g.match) return;
  const me = g.match.me;
  if (!me || !me.alive) return;
  const entry = bits | (softHeld ? INPUT.SOFT_DROP : 0);
  const seq = g.inputs.push(entry);
  g.match.recordInput(seq, entry);
  flushSoon();
}

function emitShifts(direction, count, { repeat = false } = {}) {
  const g = state.game;
  if (!g?.match) return;
  let n = count;
  if (repeat || n === Infinity) {
    const p = g.match.prediction;
    const room = p ? shiftRoom(p.board, p.piece, direction) : 0;
    n = Math.min(n, room);
  }
  for (let i = 0; i < Math.min(n, 10); i++) emit(direction < 0 ? INPUT.MOVE_LEFT : INPUT.MOVE_RIGHT);
}

function flushSoon() {
  if (flushTimer !== null) return;
  const wait = Math.max(0, lastSend + FRAME_MS - performance.now());
  if (wait === 0) {
    flush();
    return;
  }
  flushTimer = setTimeout(() => {
    flushTimer = null;
    flush();
  }, wait);
}

function flush() {
  const g = state.game;
  if (!g?.inputs || !state.session) return;
  const frame = g.match?.tick ?? g.arena?.tick ?? 0;
  for (const message of g.inputs.takeMessages(Math.max(0, frame))) state.session.sendUnreliable('Input', message);
  lastSend = performance.now();
  resends = 0;
}

function inputTick() {
  const g = state.game;
  if (!g || !playing()) return;
  const now = performance.now();
  if (g.match) {
    g.inputs.ack(g.match.ackSeq);
    const shifts = handling.update(now);
    if (shifts > 0) emitShifts(handling.direction, shifts, { repeat: true });
    // Datagrams can be lost: repeat the newest Input until it is acknowledged.
    if (state.session.datagramsEnabled && g.inputs.unacked > 0 && g.inputs.unsent === 0
      && now - lastSend >= RESEND_MS && resends < MAX_RESENDS) {
      const message = g.inputs.resendMessage(g.match.tick);
      if (message) {
        state.session.sendUnreliable('Input', message);
        lastSend = now;
        resends += 1;
      }
    }
  } else if (g.arena) {
    g.inputs.ack(g.arena.ackSeq);
    if (now - lastArenaInput >= ARENA_INPUT_MS - 1) {
      lastArenaInput = now;
      g.inputs.push(arenaBits(arenaHeld));
      flush();
    }
  }
}

const ARENA_KEYS = {
  ArrowLeft: 'left', KeyA: 'left', ArrowRight: 'right', KeyD: 'right',
  ArrowDown: 'down', KeyS: 'down', ArrowUp: 'up', KeyW: 'up',
};

function onKeyDown(event) {
  if (settingsListening || $('settings-dialog').open) return;
  if (event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement) return;
  const g = state.game;
  if (!g || state.screen !== 'game' || g.slot < 0) return;
  if (g.arena) {
    const dir = ARENA_KEYS[event.code];
    if (!dir) return;
    event.preventDefault();
    arenaHeld[dir] = true;
    return;
  }
  const action = keys.get(event.code);
  if (!action) return;
  event.preventDefault();
  if (event.repeat) return;
  const now = performance.now();
  switch (action) {
    case 'moveLeft':
      if (handling.press(-1, now)) emitShifts(-1, 1);
      break;
    case 'moveRight':
      if (handling.press(1, now)) emitShifts(1, 1);
      break;
    case 'softDrop':
      if (!softHeld) {
        softHeld = true;
        emit(0);
      }
      break;
    case 'hardDrop':
      emit(INPUT.HARD_DROP);
      break;
    case 'rotateCW':
      emit(INPUT.ROTATE_CW);
      break;
    case 'rotateCCW':
      emit(INPUT.ROTATE_CCW);
      break;
    case 'rotate180':
      if (rotationSystem === SRS_PLUS) emit(INPUT.ROTATE_180);
      else toast('180° rotation needs an SRS+ room', { kind: 'hint', slot: g.slot });
      break;
    case 'hold':
      emit(INPUT.HOLD);
      break;
    default:
      break;
  }
}

function onKeyUp(event) {
  const g = state.game;
  if (!g) return;
  if (g.arena) {
    const dir = ARENA_KEYS[event.code];
    if (dir) arenaHeld[dir] = false;
    return;
  }
  const action = keys.get(event.code);
  const now = performance.now();
  if (action === 'moveLeft') handling.release(-1, now);
  else if (action === 'moveRight') handling.release(1, now);
  else if (action === 'softDrop' && softHeld) {
    softHeld = false;
    emit(0);
  }
}

// ---------------------------------------------------------------------------
// Settings dialog

let draft = null;

function prettyKey(code) {
  const names = { ArrowLeft: '←', ArrowRight: '→', ArrowUp: '↑', ArrowDown: '↓', Space: 'Space', ControlLeft: 'Ctrl', ControlRight: 'Right Ctrl', ShiftLeft: 'Shift', ShiftRight: 'Right Shift' };
  return names[code] ?? code.replace(/^Key/, '').replace(/^Digit/, '');
}

function renderSettings() {
  const table = $('settings-keys');
  table.replaceChildren(...Object.keys(ACTION_LABELS).map((action) => el('tr', {},
    el('td', { text: ACTION_LABELS[action] }),
    el('td', {},
      el('button', { type: 'button', id: `key-${action}`, dataset: { action }, text: draft.keys[action].map(prettyKey).join(', ') || '(none)', onclick: () => listen(action, false) }),
      ' ',
      el('button', { type: 'button', id: `key-${action}-add`, class: 'small', text: '+', title: 'add another key', onclick: () => listen(action, true) })),
  )));
  $('setting-das').value = String(draft.das);
  $('setting-arr').value = String(draft.arr);
  $('setting-sdf').value = String(draft.sdf);
}

function listen(action, add) {
  settingsListening = { action, add };
  const button = $(`key-${action}`);
  button.textContent = 'press a key… (Esc cancels)';
  button.classList.add('listening');
}

function onSettingsKey(event) {
  if (!settingsListening) return;
  event.preventDefault();
  event.stopPropagation();
  const { action, add } = settingsListening;
  settingsListening = null;
  if (event.code !== 'Escape') {
    // A key belongs to one action.
    for (const other of Object.keys(draft.keys)) draft.keys[other] = draft.keys[other].filter((k) => k !== event.code);
    draft.keys[action] = add ? [...draft.keys[action], event.code] : [event.code];
  }
  renderSettings();
}

function openSettings() {
  draft = normalizeSettings(settings);
  renderSettings();
  $('settings-dialog').showModal();
}

function applySettings(next) {
  settings = saveSettings(safeStorage('localStorage'), next);
  keys = keyMap(settings);
  handling.das = settings.das;
  handling.arr = settings.arr;
  if (state.game) $('controls-hint').textContent = state.game.kind === 'tetris' && state.game.slot >= 0 ? `Keys: ${describeKeys()} · Settings to change them.` : $('controls-hint').textContent;
}

// ---------------------------------------------------------------------------
// Wiring

function init() {
  const nickname = params.get('nickname') || safeStorage('localStorage')?.getItem(NICK_KEY) || '';
  $('nickname').value = nickname;
  const preference = params.get('transport');
  if (preference && ['auto', 'wt', 'ws'].includes(preference)) $('transport-choice').value = preference;

  $('guest-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const nick = $('nickname').value.trim();
    if (!nick) return;
    const token = safeStorage('sessionStorage')?.getItem(RESUME_KEY) ?? null;
    start(nick, $('transport-choice').value, { resumeToken: token });
  });
  $('quick-tetris').addEventListener('click', () => send('QuickJoin', { game: 'tetris' }));
  $('quick-arena').addEventListener('click', () => send('QuickJoin', { game: 'arena' }));
  $('create-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const capacity = Math.min(8, Math.max(1, Number.parseInt($('create-capacity').value, 10) || 2));
    const name = $('create-name').value.trim() || `${state.nickname ?? 'guest'}'s room`;
    send('RoomCreate', { game: $('create-game').value, capacity, private: $('create-private').checked, name: name.slice(0, 48) });
  });
  $('join-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const code = $('join-code').value.trim().toUpperCase();
    if (code) send('RoomJoinByCode', { code });
  });
  $('refresh-rooms').addEventListener('click', requestRoomList);
  $('list-game').addEventListener('change', requestRoomList);
  $('ready-toggle').addEventListener('click', () => {
    if (state.room?.phase === 'finished') {
      // Results are still up: the server takes Ready once the room reopens.
      state.rematchQueued = !state.rematchQueued;
      renderRoom();
      return;
    }
    const ready = state.room?.members.get(state.playerId)?.ready ?? false;
    send('RoomReady', { ready: !ready });
  });
  $('copy-code').addEventListener('click', () => navigator.clipboard?.writeText(state.room?.code ?? '').catch(() => {}));
  const leave = () => {
    send('RoomLeave', {});
    leaveRoomLocally();
    setScreen('lobby');
  };
  $('leave-room').addEventListener('click', leave);
  $('leave-game').addEventListener('click', leave);
  $('stop-spectate').addEventListener('click', () => {
    send('SpectateStop', {});
    leaveRoomLocally();
    setScreen('lobby');
  });
  $('results-back').addEventListener('click', () => {
    if (state.spectating) setScreen('spectate');
    else if (state.room) setScreen('room');
    else setScreen('lobby');
  });

  $('settings-open').addEventListener('click', openSettings);
  $('settings-reset').addEventListener('click', () => {
    draft = normalizeSettings(DEFAULT_SETTINGS);
    renderSettings();
  });
  $('settings-form').addEventListener('submit', (event) => {
    if (event.submitter?.value === 'save') {
      draft.das = Number($('setting-das').value);
      draft.arr = Number($('setting-arr').value);
      draft.sdf = Number($('setting-sdf').value);
      applySettings(draft);
    }
  });
  $('settings-dialog').addEventListener('keydown', onSettingsKey, true);

  window.addEventListener('keydown', onKeyDown);
  window.addEventListener('keyup', onKeyUp);
  window.addEventListener('blur', releaseKeys);
  requestAnimationFrame(draw);
  updateHeader();
  changed();

  const token = safeStorage('sessionStorage')?.getItem(RESUME_KEY) ?? null;
  // A reload in the middle of a room goes straight back into it.
  const back = token !== null && savedRoom() !== null;
  if ((params.get('autoconnect') === '1' || back) && nickname) {
    start(nickname, $('transport-choice').value, { resumeToken: token });
  }
}

init();
