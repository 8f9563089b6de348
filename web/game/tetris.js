// The Tetris rules a client needs to predict its own falling piece: the
// board, the seven pieces, Guideline SRS and SRS+ kicks, hold and hard
// drop, as /work/shared/reference/tetris-battle.md §1-§5 define them.
// Pure: no DOM, no clock, no network; every function returns new values
// (boards are copied before they change) so a prediction can be replayed
// from the server's state as often as needed.
//
// Coordinates are the wire's: x 0..9 left to right, y 0..39 bottom to top
// (y grows upward), rows 0..19 visible. A piece is the wire's TetrisPiece:
// {kind: 'I'|'O'|'T'|'S'|'Z'|'J'|'L', rotation: '0'|'R'|'2'|'L', x, y}
// where (x, y) is the pivot. Board cells: 0 empty, 1-7 the pieces in the
// order I O T S Z J L, 8 garbage.
//
// Gravity and locking stay on the server: the client moves, rotates and
// holds its piece at once, and on a hard drop places it and spawns the
// next one from the queue until the server says what really happened.

export const WIDTH = 10;
export const HEIGHT = 40;
export const VISIBLE_HEIGHT = 20;
/** Packed board size: 10 x 40 cells, 4 bits each. */
export const PACKED_BYTES = (WIDTH * HEIGHT) / 2;

export const PIECES = Object.freeze(['I', 'O', 'T', 'S', 'Z', 'J', 'L']);
export const GARBAGE = 8;
/** Board cell value of a piece kind. */
export const PIECE_CODE = Object.freeze(Object.fromEntries(PIECES.map((kind, i) => [kind, i + 1])));
export const ROTATIONS = Object.freeze(['0', 'R', '2', 'L']);

/** Spawn pivot (§1.3): state 0 at (4, 20), just above the visible field. */
export const SPAWN_X = 4;
export const SPAWN_Y = 20;

/** Input bits of a Tetris Input entry (docs/PROTOCOL.md §5). */
export const INPUT = Object.freeze({
  MOVE_LEFT: 1 << 0,
  MOVE_RIGHT: 1 << 1,
  SOFT_DROP: 1 << 2,
  HARD_DROP: 1 << 3,
  ROTATE_CW: 1 << 4,
  ROTATE_CCW: 1 << 5,
  ROTATE_180: 1 << 6,
  HOLD: 1 << 7,
});

/** Rotation systems (room option): Guideline SRS, or TETR.IO SRS+ with 180. */
export const SRS = 'srs';
export const SRS_PLUS = 'srs+';

// ---------------------------------------------------------------------------
// Shapes (§1.2, y-up offsets from the pivot)

const SHAPES = {
  I: { 0: [[-1, 0], [0, 0], [1, 0], [2, 0]], R: [[1, 1], [1, 0], [1, -1], [1, -2]], 2: [[-1, -1], [0, -1], [1, -1], [2, -1]], L: [[0, 1], [0, 0], [0, -1], [0, -2]] },
  O: { 0: [[0, 0], [1, 0], [0, 1], [1, 1]], R: [[0, 0], [1, 0], [0, 1], [1, 1]], 2: [[0, 0], [1, 0], [0, 1], [1, 1]], L: [[0, 0], [1, 0], [0, 1], [1, 1]] },
  T: { 0: [[-1, 0], [0, 0], [1, 0], [0, 1]], R: [[0, 1], [0, 0], [0, -1], [1, 0]], 2: [[-1, 0], [0, 0], [1, 0], [0, -1]], L: [[0, 1], [0, 0], [0, -1], [-1, 0]] },
  J: { 0: [[-1, 1], [-1, 0], [0, 0], [1, 0]], R: [[1, 1], [0, 1], [0, 0], [0, -1]], 2: [[1, -1], [1, 0], [0, 0], [-1, 0]], L: [[-1, -1], [0, -1], [0, 0], [0, 1]] },
  L: { 0: [[1, 1], [-1, 0], [0, 0], [1, 0]], R: [[1, -1], [0, 1], [0, 0], [0, -1]], 2: [[-1, -1], [-1, 0], [0, 0], [1, 0]], L: [[-1, 1], [0, 1], [0, 0], [0, -1]] },
  S: { 0: [[0, 1], [1, 1], [-1, 0], [0, 0]], R: [[0, 1], [0, 0], [1, 0], [1, -1]], 2: [[0, 0], [1, 0], [-1, -1], [0, -1]], L: [[-1, 1], [-1, 0], [0, 0], [0, -1]] },
  Z: { 0: [[-1, 1], [0, 1], [0, 0], [1, 0]], R: [[1, 1], [1, 0], [0, 0], [0, -1]], 2: [[-1, 0], [0, 0], [0, -1], [1, -1]], L: [[0, 1], [0, 0], [-1, 0], [-1, -1]] },
};

/** The four (dx, dy) offsets of `kind` in `rotation` (a fresh copy). */
export function shapeOf(kind, rotation) {
  const shape = SHAPES[kind]?.[rotation];
  if (!shape) throw new TypeError(`no shape for ${kind} ${rotation}`);
  return shape.map(([dx, dy]) => [dx, dy]);
}

/** The four board cells [x, y] of a piece. */
export function cellsOf(piece) {
  return SHAPES[piece.kind][piece.rotation].map(([dx, dy]) => [piece.x + dx, piece.y + dy]);
}

// ---------------------------------------------------------------------------
// Kicks (§2, y-up). Keys are "from>to".

const JLSTZ_KICKS = {
  '0>R': [[0, 0], [-1, 0], [-1, 1], [0, -2], [-1, -2]],
  'R>0': [[0, 0], [1, 0], [1, -1], [0, 2], [1, 2]],
  'R>2': [[0, 0], [1, 0], [1, -1], [0, 2], [1, 2]],
  '2>R': [[0, 0], [-1, 0], [-1, 1], [0, -2], [-1, -2]],
  '2>L': [[0, 0], [1, 0], [1, 1], [0, -2], [1, -2]],
  'L>2': [[0, 0], [-1, 0], [-1, -1], [0, 2], [-1, 2]],
  'L>0': [[0, 0], [-1, 0], [-1, -1], [0, 2], [-1, 2]],
  '0>L': [[0, 0], [1, 0], [1, 1], [0, -2], [1, -2]],
};

const I_KICKS_SRS = {
  '0>R': [[0, 0], [-2, 0], [1, 0], [-2, -1], [1, 2]],
  'R>0': [[0, 0], [2, 0], [-1, 0], [2, 1], [-1, -2]],
  'R>2': [[0, 0], [-1, 0], [2, 0], [-1, 2], [2, -1]],
  '2>R': [[0, 0], [1, 0], [-2, 0], [1, -2], [-2, 1]],
  '2>L': [[0, 0], [2, 0], [-1, 0], [2, 1], [-1, -2]],
  'L>2': [[0, 0], [-2, 0], [1, 0], [-2, -1], [1, 2]],
  'L>0': [[0, 0], [1, 0], [-2, 0], [1, -2], [-2, 1]],
  '0>L': [[0, 0], [-1, 0], [2, 0], [-1, 2], [2, -1]],
};

const I_KICKS_SRS_PLUS = {
  '0>R': [[0, 0], [1, 0], [-2, 0], [-2, -1], [1, 2]],
  'R>0': [[0, 0], [-1, 0], [2, 0], [-1, -2], [2, 1]],
  'R>2': [[0, 0], [-1, 0], [2, 0], [-1, 2], [2, -1]],
  '2>R': [[0, 0], [-2, 0], [1, 0], [-2, 1], [1, -2]],
  '2>L': [[0, 0], [2, 0], [-1, 0], [2, 1], [-1, -2]],
  'L>2': [[0, 0], [1, 0], [-2, 0], [1, 2], [-2, -1]],
  'L>0': [[0, 0], [1, 0], [-2, 0], [1, -2], [-2, 1]],
  '0>L': [[0, 0], [-1, 0], [2, 0], [2, -1], [-1, 2]],
};

const JLSTZ_KICKS_180 = {
  '0>2': [[0, 0], [0, 1], [1, 1], [-1, 1], [1, 0], [-1, 0]],
  'R>L': [[0, 0], [1, 0], [1, 2], [1, 1], [0, 2], [0, 1]],
  '2>0': [[0, 0], [0, -1], [-1, -1], [1, -1], [-1, 0], [1, 0]],
  'L>R': [[0, 0], [-1, 0], [-1, 2], [-1, 1], [0, 2], [0, 1]],
};

const I_KICKS_180 = {
  '0>2': [[0, 0], [0, 1]],
  'R>L': [[0, 0], [1, 0]],
  '2>0': [[0, 0], [0, -1]],
  'L>R': [[0, 0], [-1, 0]],
};

/** The kick offsets tried, in order, for `kind` turning `from` -> `to`. */
export function kicksFor(kind, from, to, system = SRS) {
  if (kind === 'O') return [[0, 0]];
  const key = `${from}>${to}`;
  const half = ROTATIONS[(ROTATIONS.indexOf(from) + 2) % 4] === to;
  let table;
  if (half) table = kind === 'I' ? I_KICKS_180 : JLSTZ_KICKS_180;
  else if (kind === 'I') table = system === SRS_PLUS ? I_KICKS_SRS_PLUS : I_KICKS_SRS;
  else table = JLSTZ_KICKS;
  const kicks = table[key];
  if (!kicks) throw new TypeError(`no kicks for ${kind} ${key}`);
  return kicks;
}

// ---------------------------------------------------------------------------
// The board

/** 10 x 40 cells, index y * 10 + x, row 0 at the bottom. */
export class Board {
  constructor(cells = new Uint8Array(WIDTH * HEIGHT)) {
    if (cells.length !== WIDTH * HEIGHT) throw new RangeError(`a board has ${WIDTH * HEIGHT} cells, not ${cells.length}`);
    this.cells = cells;
  }

  /** A board from the wire's 200 packed bytes (low nibble = even column). */
  static unpack(bytes) {
    if (!bytes || bytes.length !== PACKED_BYTES) {
      throw new RangeError(`packed board of ${bytes?.length} bytes, expected ${PACKED_BYTES}`);
    }
    const cells = new Uint8Array(WIDTH * HEIGHT);
    for (let i = 0; i < PACKED_BYTES; i++) {
      cells[2 * i] = bytes[i] & 0x0f;
      cells[2 * i + 1] = bytes[i] >> 4;
    }
    return new Board(cells);
  }

  /** Rows drawn top first ('X' filled, '.' empty), bottom row last, as
   * the reference's test vectors draw them. */
  static fromRows(rows) {
    const board = new Board();
    rows.forEach((row, i) => {
      const y = rows.length - 1 - i;
      for (let x = 0; x < WIDTH; x++) {
        const c = row[x];
        if (c === undefined || c === '.' || c === ' ') continue;
        board.cells[y * WIDTH + x] = c === 'X' ? GARBAGE : (PIECE_CODE[c] ?? GARBAGE);
      }
    });
    return board;
  }

  pack() {
    const bytes = new Uint8Array(PACKED_BYTES);
    for (let i = 0; i < PACKED_BYTES; i++) bytes[i] = (this.cells[2 * i] & 0x0f) | ((this.cells[2 * i + 1] & 0x0f) << 4);
    return bytes;
  }

  clone() {
    return new Board(this.cells.slice());
  }

  get(x, y) {
    return this.cells[y * WIDTH + x];
  }

  set(x, y, value) {
    this.cells[y * WIDTH + x] = value;
  }

  /** In bounds and empty. */
  isFree(x, y) {
    return x >= 0 && x < WIDTH && y >= 0 && y < HEIGHT && this.cells[y * WIDTH + x] === 0;
  }

  /** Filled or out of bounds (the T-spin corner rule). */
  isBlocked(x, y) {
    return !this.isFree(x, y);
  }

  fits(piece) {
    for (const [dx, dy] of SHAPES[piece.kind][piece.rotation]) {
      if (!this.isFree(piece.x + dx, piece.y + dy)) return false;
    }
    return true;
  }

  rowFull(y) {
    for (let x = 0; x < WIDTH; x++) if (this.cells[y * WIDTH + x] === 0) return false;
    return true;
  }

  /** Full rows, bottom first. */
  fullRows() {
    const rows = [];
    for (let y = 0; y < HEIGHT; y++) if (this.rowFull(y)) rows.push(y);
    return rows;
  }

  /** Removes the given rows (y before removal); rows above fall down. */
  removeRows(rows) {
    if (rows.length === 0) return;
    const gone = new Set(rows);
    let to = 0;
    for (let y = 0; y < HEIGHT; y++) {
      if (gone.has(y)) continue;
      if (to !== y) this.cells.copyWithin(to * WIDTH, y * WIDTH, (y + 1) * WIDTH);
      to++;
    }
    this.cells.fill(0, to * WIDTH);
  }

  /** Raises the stack by `lines` garbage rows open at `hole`. True when a
   * filled cell was pushed out of the board (top out). */
  insertGarbage(lines, hole) {
    if (lines <= 0) return false;
    let toppedOut = false;
    for (let y = HEIGHT - lines; y < HEIGHT; y++) {
      if (y < 0) continue;
      for (let x = 0; x < WIDTH; x++) if (this.cells[y * WIDTH + x] !== 0) toppedOut = true;
    }
    const n = Math.min(lines, HEIGHT);
    this.cells.copyWithin(n * WIDTH, 0, (HEIGHT - n) * WIDTH);
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < WIDTH; x++) this.cells[y * WIDTH + x] = x === hole ? 0 : GARBAGE;
    }
    return toppedOut;
  }

  /** 0 when empty, else 1 + the highest filled row. */
  stackHeight() {
    for (let y = HEIGHT - 1; y >= 0; y--) {
      for (let x = 0; x < WIDTH; x++) if (this.cells[y * WIDTH + x] !== 0) return y + 1;
    }
    return 0;
  }

  isEmpty() {
    return this.cells.every((c) => c === 0);
  }

  /** Rows top first, as fromRows takes them ('X' for any filled cell). */
  toRows(height = VISIBLE_HEIGHT) {
    const rows = [];
    for (let y = height - 1; y >= 0; y--) {
      let row = '';
      for (let x = 0; x < WIDTH; x++) row += this.cells[y * WIDTH + x] === 0 ? '.' : 'X';
      rows.push(row);
    }
    return rows;
  }
}

// ---------------------------------------------------------------------------
// Moves

/** A fresh piece of `kind` at the spawn position, state 0. */
export function spawnPiece(kind) {
  return { kind, rotation: '0', x: SPAWN_X, y: SPAWN_Y };
}

/** The piece moved by (dx, dy), or null when it does not fit there. */
export function tryMove(board, piece, dx, dy) {
  const moved = { ...piece, x: piece.x + dx, y: piece.y + dy };
  return board.fits(moved) ? moved : null;
}

/**
 * Rotates with kicks (§2.1). `turn` is 'cw', 'ccw' or '180' (180 only
 * with SRS+). Returns {piece, test} (test = 1-based kick test that
 * succeeded) or null when every test fails or the turn is not allowed.
 */
export function rotate(board, piece, turn, system = SRS) {
  const step = turn === 'cw' ? 1 : turn === 'ccw' ? 3 : turn === '180' ? 2 : null;
  if (step === null) throw new TypeError(`unknown turn ${turn}`);
  if (step === 2 && system !== SRS_PLUS) return null;
  const from = piece.rotation;
  const to = ROTATIONS[(ROTATIONS.indexOf(from) + step) % 4];
  const kicks = kicksFor(piece.kind, from, to, system);
  for (let i = 0; i < kicks.length; i++) {
    const [dx, dy] = kicks[i];
    const candidate = { kind: piece.kind, rotation: to, x: piece.x + dx, y: piece.y + dy };
    if (board.fits(candidate)) return { piece: candidate, test: i + 1 };
  }
  return null;
}

/** Where a hard drop puts the piece (the ghost). */
export function dropPosition(board, piece) {
  let y = piece.y;
  while (board.fits({ ...piece, y: y - 1 })) y--;
  return { ...piece, y };
}

/**
 * T-spin classification at lock (§5) for a piece whose last successful
 * action was a rotation that used kick test `test` (`halfTurn` for a 180).
 * Returns 'none', 'mini' or 'full'. The caller passes the board before
 * any row is removed.
 */
export function tSpinKind(board, piece, { lastActionWasRotation = true, test = 1, halfTurn = false } = {}) {
  if (piece.kind !== 'T' || !lastActionWasRotation) return 'none';
  const corners = { ul: [-1, 1], ur: [1, 1], dl: [-1, -1], dr: [1, -1] };
  const occupied = (name) => board.isBlocked(piece.x + corners[name][0], piece.y + corners[name][1]);
  const count = Object.keys(corners).filter(occupied).length;
  if (count < 3) return 'none';
  const front = { 0: ['ul', 'ur'], R: ['ur', 'dr'], 2: ['dl', 'dr'], L: ['ul', 'dl'] }[piece.rotation];
  const frontCount = front.filter(occupied).length;
  if (frontCount === 2) return 'full';
  if (test === 5 && !halfTurn) return 'full';
  return 'mini';
}

/** Writes the piece into a copy of the board and removes full rows:
 * {board, rows} with rows bottom first (y before removal). */
export function lockPiece(board, piece) {
  const next = board.clone();
  const code = PIECE_CODE[piece.kind];
  for (const [x, y] of cellsOf(piece)) {
    if (x >= 0 && x < WIDTH && y >= 0 && y < HEIGHT) next.set(x, y, code);
  }
  const rows = next.fullRows();
  next.removeRows(rows);
  return { board: next, rows };
}

// ---------------------------------------------------------------------------
// Predicting the own piece

/**
 * A player's state as the client predicts it:
 * {board: Board, piece: piece|null, hold: kind|null, holdUsed: bool,
 *  next: [kind...], serial: number}
 * `serial` counts the pieces that entered since some origin: a hard drop
 * or a hold ends the current piece and spawns the next, serial + 1, just
 * as the server sends one PieceSpawned for each.
 */
export function predictionState({ board, piece = null, hold = null, holdUsed = false, next = [], serial = 0 }) {
  return { board, piece: piece ? { ...piece } : null, hold, holdUsed, next: [...next], serial, lockedPieces: [] };
}

function spawnFromQueue(state) {
  if (state.next.length === 0) {
    state.piece = null;
    return;
  }
  const [kind, ...rest] = state.next;
  state.next = rest;
  const piece = spawnPiece(kind);
  // A spawn that does not fit is a block out: the server decides.
  state.piece = state.board.fits(piece) ? piece : null;
}

/**
 * Applies one input entry (its bits) to a prediction state, returning a
 * new state. Order within one entry, as the server's (src/sim/tetris/
 * input.rs): hold, one rotation (clockwise before counter-clockwise before
 * 180), one shift (left before right), hard drop. The soft-drop bit is a
 * state the server turns into faster gravity: no immediate effect here.
 * Unknown or disallowed bits are ignored (the server rejects such inputs;
 * the client never sends them).
 */
export function applyInput(state, bits, { system = SRS } = {}) {
  const s = { ...state, next: [...state.next], lockedPieces: state.lockedPieces };
  if (!s.piece) return s;
  if (bits & INPUT.HOLD) {
    if (!s.holdUsed) {
      const current = s.piece.kind;
      if (s.hold === null) {
        spawnFromQueue(s);
      } else {
        const piece = spawnPiece(s.hold);
        s.piece = s.board.fits(piece) ? piece : null;
      }
      s.hold = current;
      s.holdUsed = true;
      s.serial += 1;
      if (!s.piece) return s;
    }
  }
  const turn = bits & INPUT.ROTATE_CW ? 'cw' : bits & INPUT.ROTATE_CCW ? 'ccw' : bits & INPUT.ROTATE_180 ? '180' : null;
  if (turn) s.piece = rotate(s.board, s.piece, turn, system)?.piece ?? s.piece;
  if (bits & INPUT.MOVE_LEFT) s.piece = tryMove(s.board, s.piece, -1, 0) ?? s.piece;
  else if (bits & INPUT.MOVE_RIGHT) s.piece = tryMove(s.board, s.piece, 1, 0) ?? s.piece;
  if (bits & INPUT.HARD_DROP) {
    const landed = dropPosition(s.board, s.piece);
    const { board, rows } = lockPiece(s.board, landed);
    s.board = board;
    s.lockedPieces = [...s.lockedPieces, { piece: landed, rows }];
    s.holdUsed = false;
    s.serial += 1;
    spawnFromQueue(s);
  }
  return s;
}

/** Applies input entries ({bits}) in order. */
export function replay(state, inputs, options = {}) {
  let s = state;
  for (const input of inputs) s = applyInput(s, input.bits, options);
  return s;
}

/** How many cells the piece can still shift by `dx` steps of one (for
 * ARR 0: "move to the wall"). */
export function shiftRoom(board, piece, dx) {
  if (!piece) return 0;
  let n = 0;
  let p = piece;
  for (;;) {
    const moved = tryMove(board, p, dx, 0);
    if (!moved) return n;
    p = moved;
    n++;
  }
}
