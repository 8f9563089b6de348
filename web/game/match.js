// One Tetris match as a client sees it: every player's board rebuilt from
// the server's messages, and the own falling piece predicted from the
// inputs the server has not acknowledged yet. Pure (no DOM, no clock): the
// page feeds it messages and inputs and draws what it holds.
//
// Authority. The server runs gravity, locking, garbage and scoring. Boards
// come from TetrisSnapshot (complete, reliable, every ~2 s) and between
// snapshots from the reliable events (PieceLocked writes the piece,
// LinesCleared removes rows, GarbageReceived raises the stack). Falling
// pieces come from TetrisDelta (unreliable), PieceSpawned and snapshots;
// a piece update older than the one shown (by tick) is ignored.
//
// Prediction (own slot only). Each input the player makes is applied at
// once to a predicted state and kept in `pending` with its seq and the
// serial of the piece it was made on (serial + 1 after each hard drop or
// hold, as the server sends one PieceSpawned per new piece). Whenever the
// server's piece or board changes, the prediction is rebuilt: start from
// the server's piece, drop pending inputs the server already applied
// (seq <= last_input_seq) or that belong to a piece the server has
// already replaced (serial below the server's), and re-apply the rest
// (reconciliation). A wrong guess (a gravity lock the client did not see
// coming, garbage) lasts until the next authoritative piece.
//
// PieceSpawned carries no hold: a spawn with no lock since the previous
// spawn is a hold, and the held piece is the one that was falling.

import { Board, HEIGHT, PIECE_CODE, SRS, WIDTH, applyInput, cellsOf, dropPosition, predictionState, replay } from './tetris.js';

const CLEAR_NAMES = ['', 'SINGLE', 'DOUBLE', 'TRIPLE', 'TETRIS'];

/** Toast text of a KeyMoment. */
export function momentText(kind, value) {
  switch (kind) {
    case 'tetris': return 'TETRIS';
    case 't_spin_single': return 'T-SPIN SINGLE';
    case 't_spin_double': return 'T-SPIN DOUBLE';
    case 't_spin_triple': return 'T-SPIN TRIPLE';
    case 'back_to_back': return `BACK-TO-BACK ×${Math.max(1, value)}`;
    case 'garbage_surge': return `GARBAGE SURGE ${value}`;
    case 'near_death_survival': return 'NEAR-DEATH SURVIVAL';
    case 'elimination': return 'K.O.';
    case 'comeback': return 'COMEBACK';
    case 'perfect_clear': return 'PERFECT CLEAR';
    default: return String(kind).toUpperCase().replaceAll('_', ' ');
  }
}

/** Label of a line clear ("T-SPIN MINI DOUBLE", "TETRIS"). */
export function clearText({ rows, t_spin: tSpin }) {
  const name = CLEAR_NAMES[rows.length] ?? `${rows.length} LINES`;
  if (tSpin === 'full') return `T-SPIN ${name}`;
  if (tSpin === 'mini') return `T-SPIN MINI ${name}`;
  return name;
}

function emptyPlayer(slot) {
  return {
    slot,
    alive: true,
    board: new Board(),
    piece: null,
    /** Tick of the piece shown; older piece updates are ignored. */
    pieceTick: -1,
    hold: null,
    holdUsed: false,
    next: [],
    pendingGarbage: 0,
    score: 0,
    lines: 0,
    level: 1,
    combo: 0,
    backToBack: 0,
    pieces: 0,
    lastInputSeq: 0,
    placement: null,
    /** True once a snapshot set the board (later ones are compared). */
    rebuilt: false,
    // Hold inference.
    snapshotPiece: null,
    eventsSinceSnapshot: 0,
    spawned: false,
    lockedSinceSpawn: false,
    currentKind: null,
  };
}

export class TetrisMatch {
  /** Latest server tick seen in any game message. */
  tick = 0;
  lastSnapshotTick = null;
  stateHash = null;
  keyMoments = [];
  results = null;
  /** Own inputs the server has not applied yet: {seq, bits, serial}. */
  pending = [];
  /** Newest own input the server reported as applied. */
  ackSeq = 0;
  /** Own pieces the server spawned so far (PieceSpawned count). */
  serverSerial = 0;
  /** Prediction corrections: times a rebuilt prediction differed from the
   * one shown (for diagnostics). */
  corrections = 0;
  /** Snapshots whose board differed from the one rebuilt from events since
   * the previous snapshot: [{tick, slot}] (the last 20). */
  snapshotMismatches = [];
  /** Snapshots compared against a rebuilt board. */
  snapshotsChecked = 0;
  /** Set by a snapshot: re-assign the pending inputs' piece serials. */
  #retag = false;

  /**
   * @param {{slots?: number, mySlot?: number, system?: string, tickHz?: number, startTick?: number}} options
   *   slots: players in the game; mySlot: own game slot, -1 for a spectator.
   */
  constructor({ slots = 2, mySlot = -1, system = SRS, tickHz = 60, startTick = 0 } = {}) {
    this.mySlot = mySlot;
    this.system = system;
    this.tickHz = tickHz;
    this.tick = startTick;
    this.players = [];
    for (let slot = 0; slot < slots; slot++) this.players.push(emptyPlayer(slot));
    this.prediction = null;
    this.#repredict();
  }

  get me() {
    return this.mySlot >= 0 ? this.players[this.mySlot] ?? null : null;
  }

  #player(slot) {
    while (this.players.length <= slot) this.players.push(emptyPlayer(this.players.length));
    return this.players[slot];
  }

  #seeTick(tick) {
    if (tick > this.tick) this.tick = tick;
  }

  /**
   * Applies one server message. Returns notes for the page to show:
   * {type: 'clear'|'attack'|'garbage'|'moment'|'eliminated'|'lock'|'results', ...}.
   */
  handle(name, f) {
    const notes = [];
    let touchedMe = false;
    switch (name) {
      case 'TetrisSnapshot': {
        this.#seeTick(f.tick);
        this.lastSnapshotTick = f.tick;
        this.stateHash = f.state_hash;
        for (const b of f.boards) {
          const p = this.#player(b.slot);
          p.alive = b.alive;
          const board = Board.unpack(b.cells);
          if (p.rebuilt) this.snapshotsChecked += 1;
          if (p.rebuilt && !sameCells(p.board, board)) {
            // The board rebuilt from events disagrees with the server's.
            this.snapshotMismatches.push({ tick: f.tick, slot: b.slot });
            if (this.snapshotMismatches.length > 20) this.snapshotMismatches.shift();
          }
          p.rebuilt = true;
          p.board = board;
          if (f.tick >= p.pieceTick) {
            p.piece = b.piece ? { ...b.piece } : null;
            p.pieceTick = f.tick;
          }
          p.hold = b.hold;
          p.holdUsed = b.hold_used;
          p.next = [...b.next];
          p.pendingGarbage = b.pending_garbage;
          p.score = b.score;
          p.lines = b.lines;
          p.level = b.level;
          p.combo = b.combo;
          p.backToBack = b.back_to_back;
          p.pieces = b.pieces;
          p.lastInputSeq = Math.max(p.lastInputSeq, b.last_input_seq);
          p.snapshotPiece = b.piece ? { ...b.piece } : null;
          p.eventsSinceSnapshot = 0;
          p.spawned = b.piece !== null;
          p.lockedSinceSpawn = false;
          p.currentKind = b.piece?.kind ?? null;
          if (!b.alive) p.piece = null;
          if (b.slot === this.mySlot) {
            this.ackSeq = Math.max(this.ackSeq, b.last_input_seq);
            touchedMe = true;
            this.#retag = true;
          }
        }
        break;
      }
      case 'TetrisDelta': {
        this.#seeTick(f.tick);
        for (const u of f.pieces) {
          const p = this.#player(u.slot);
          if (u.slot === this.mySlot) {
            if (u.last_input_seq > this.ackSeq) this.ackSeq = u.last_input_seq;
            touchedMe = true;
          }
          if (f.tick > p.pieceTick && u.last_input_seq >= p.lastInputSeq && p.alive) {
            p.piece = u.piece ? { ...u.piece } : null;
            p.pieceTick = f.tick;
            p.lastInputSeq = u.last_input_seq;
          }
        }
        break;
      }
      case 'PieceSpawned': {
        this.#seeTick(f.tick);
        const p = this.#player(f.slot);
        if (this.#beforeSnapshot(f.tick)) break;
        if (p.eventsSinceSnapshot === 0 && f.tick === this.lastSnapshotTick && samePiece(p.snapshotPiece, f.piece)) {
          // The spawn the snapshot already shows (the first pieces of a
          // game come as a snapshot and their spawn events).
          p.eventsSinceSnapshot += 1;
          break;
        }
        p.eventsSinceSnapshot += 1;
        if (p.spawned && !p.lockedSinceSpawn && p.currentKind) {
          p.hold = p.currentKind;
          p.holdUsed = true;
        }
        p.spawned = true;
        p.lockedSinceSpawn = false;
        p.currentKind = f.piece.kind;
        p.next = [...f.next];
        if (f.tick >= p.pieceTick) {
          p.piece = { ...f.piece };
          p.pieceTick = f.tick;
        }
        if (f.slot === this.mySlot) {
          this.serverSerial += 1;
          touchedMe = true;
        }
        break;
      }
      case 'PieceLocked': {
        this.#seeTick(f.tick);
        const p = this.#player(f.slot);
        if (this.#beforeSnapshot(f.tick)) break;
        p.eventsSinceSnapshot += 1;
        const locked = lockInto(p.board, f.piece);
        if (!locked) notes.push({ type: 'warning', text: `PieceLocked for slot ${f.slot} outside the board` });
        p.pieces += 1;
        p.holdUsed = false;
        p.lockedSinceSpawn = true;
        if (f.tick >= p.pieceTick) {
          p.piece = null;
          p.pieceTick = f.tick;
        }
        notes.push({ type: 'lock', slot: f.slot, piece: f.piece, tSpin: f.t_spin });
        touchedMe = f.slot === this.mySlot;
        break;
      }
      case 'LinesCleared': {
        this.#seeTick(f.tick);
        const p = this.#player(f.slot);
        if (this.#beforeSnapshot(f.tick)) break;
        p.board.removeRows([...f.rows]);
        p.score = f.score;
        p.lines += f.rows.length;
        p.combo = f.combo;
        p.backToBack = f.back_to_back ? p.backToBack + 1 : (f.rows.length === 4 || f.t_spin !== 'none' ? 1 : 0);
        notes.push({ type: 'clear', slot: f.slot, rows: [...f.rows], text: clearText(f), combo: f.combo, backToBack: f.back_to_back, perfectClear: f.perfect_clear });
        touchedMe = f.slot === this.mySlot;
        break;
      }
      case 'GarbageSent': {
        this.#seeTick(f.tick);
        if (this.#beforeSnapshot(f.tick)) break;
        this.#player(f.to_slot).pendingGarbage += f.lines;
        const from = this.#player(f.from_slot);
        from.pendingGarbage = Math.max(0, from.pendingGarbage - f.cancelled);
        notes.push({ type: 'attack', from: f.from_slot, to: f.to_slot, lines: f.lines, cancelled: f.cancelled });
        break;
      }
      case 'GarbageReceived': {
        this.#seeTick(f.tick);
        const p = this.#player(f.slot);
        if (this.#beforeSnapshot(f.tick)) break;
        p.board.insertGarbage(f.lines, f.hole_column);
        p.pendingGarbage = Math.max(0, p.pendingGarbage - f.lines);
        notes.push({ type: 'garbage', slot: f.slot, from: f.from_slot, lines: f.lines });
        touchedMe = f.slot === this.mySlot;
        break;
      }
      case 'PlayerEliminated': {
        this.#seeTick(f.tick);
        const p = this.#player(f.slot);
        p.alive = false;
        p.piece = null;
        p.pieceTick = Math.max(p.pieceTick, f.tick);
        p.placement = f.placement;
        notes.push({ type: 'eliminated', slot: f.slot, placement: f.placement, by: f.by_slot });
        touchedMe = f.slot === this.mySlot;
        break;
      }
      case 'KeyMoment': {
        this.#seeTick(f.tick);
        const moment = { tick: f.tick, slot: f.slot, kind: f.kind, value: f.value, text: momentText(f.kind, f.value) };
        this.keyMoments.push(moment);
        notes.push({ type: 'moment', ...moment });
        break;
      }
      case 'GameResults': {
        this.results = f;
        for (const r of f.results) {
          const p = this.players[r.slot];
          if (p) p.placement = r.placement;
        }
        notes.push({ type: 'results', results: f });
        break;
      }
      default:
        return notes;
    }
    if (touchedMe) this.#repredict();
    return notes;
  }

  /** An event older than the last snapshot: the snapshot includes it.
   * (Events of the snapshot's own tick may come after it and are not in
   * it: inputs applied after that tick's simulation carry its number.) */
  #beforeSnapshot(tick) {
    return this.lastSnapshotTick !== null && tick < this.lastSnapshotTick;
  }

  /** The player made an input (already numbered by the InputWindow). */
  recordInput(seq, bits) {
    const me = this.me;
    if (!me || !me.alive || this.results) return;
    const entry = { seq, bits, serial: this.prediction.serial };
    this.pending.push(entry);
    this.prediction = applyInput(this.prediction, bits, { system: this.system });
  }

  /** Rebuilds the prediction from the server's state (reconciliation). */
  #repredict() {
    const me = this.me;
    if (!me) {
      this.prediction = null;
      return;
    }
    const base = predictionState({
      board: me.board,
      piece: me.alive ? me.piece : null,
      hold: me.hold,
      holdUsed: me.holdUsed,
      next: me.next,
      serial: this.serverSerial,
    });
    this.pending = this.pending.filter((e) => e.seq > this.ackSeq);
    if (this.#retag) {
      // After a snapshot the remaining inputs all follow the server's piece.
      this.#retag = false;
      let s = base;
      for (const e of this.pending) {
        e.serial = s.serial;
        s = applyInput(s, e.bits, { system: this.system });
      }
    }
    this.pending = this.pending.filter((e) => e.serial >= this.serverSerial);
    const before = this.prediction?.piece;
    this.prediction = replay(base, this.pending, { system: this.system });
    const after = this.prediction.piece;
    if (before && after && this.pending.length > 0 && (before.x !== after.x || before.rotation !== after.rotation || before.kind !== after.kind)) {
      this.corrections += 1;
    }
  }

  /** What to draw for the own board: the prediction, its ghost, and which
   * cells are only predicted (not yet confirmed by the server). */
  ownView() {
    const me = this.me;
    if (!me || !this.prediction) return null;
    const { board, piece, hold, holdUsed, next } = this.prediction;
    return {
      board,
      serverBoard: me.board,
      piece,
      ghost: piece ? dropPosition(board, piece) : null,
      hold,
      holdUsed,
      next,
      pending: this.pending.length,
    };
  }

  /** A JSON-friendly summary (for automation and debugging). */
  summary() {
    return {
      tick: this.tick,
      lastSnapshotTick: this.lastSnapshotTick,
      mySlot: this.mySlot,
      ackSeq: this.ackSeq,
      pending: this.pending.length,
      corrections: this.corrections,
      snapshotsChecked: this.snapshotsChecked,
      snapshotMismatches: this.snapshotMismatches.map((m) => ({ ...m })),
      players: this.players.map((p) => ({
        slot: p.slot,
        alive: p.alive,
        score: p.score,
        lines: p.lines,
        pieces: p.pieces,
        pendingGarbage: p.pendingGarbage,
        stackHeight: p.board.stackHeight(),
        placement: p.placement,
      })),
    };
  }
}

function sameCells(a, b) {
  for (let i = 0; i < a.cells.length; i++) if (a.cells[i] !== b.cells[i]) return false;
  return true;
}

function samePiece(a, b) {
  return a !== null && b !== null && a.kind === b.kind && a.rotation === b.rotation && a.x === b.x && a.y === b.y;
}

/** Writes a locked piece into the board in place; false if a cell fell outside. */
function lockInto(board, piece) {
  const code = PIECE_CODE[piece.kind];
  let inside = true;
  for (const [x, y] of cellsOf(piece)) {
    if (x < 0 || x >= WIDTH || y < 0 || y >= HEIGHT) {
      inside = false;
      continue;
    }
    board.set(x, y, code);
  }
  return inside;
}
