// The client's Tetris rules against the rules reference
// (/work/shared/reference/tetris-battle.md §1, §2, §5 and test vectors
// TV1-TV3). node --test web/game/

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  Board,
  GARBAGE,
  INPUT,
  PACKED_BYTES,
  PIECES,
  SRS,
  SRS_PLUS,
  applyInput,
  cellsOf,
  dropPosition,
  kicksFor,
  lockPiece,
  predictionState,
  replay,
  rotate,
  shapeOf,
  shiftRoom,
  spawnPiece,
  tSpinKind,
  tryMove,
} from './tetris.js';

const sorted = (cells) => cells.map(([x, y]) => `${x},${y}`).sort();

test('spawn cells are the reference §1.3 table', () => {
  const expected = {
    I: [[3, 20], [4, 20], [5, 20], [6, 20]],
    O: [[4, 20], [5, 20], [4, 21], [5, 21]],
    T: [[3, 20], [4, 20], [5, 20], [4, 21]],
    J: [[3, 21], [3, 20], [4, 20], [5, 20]],
    L: [[5, 21], [3, 20], [4, 20], [5, 20]],
    S: [[4, 21], [5, 21], [3, 20], [4, 20]],
    Z: [[3, 21], [4, 21], [4, 20], [5, 20]],
  };
  for (const kind of PIECES) {
    assert.deepEqual(sorted(cellsOf(spawnPiece(kind))), sorted(expected[kind]), kind);
  }
});

test('shapes: a clockwise turn maps (x, y) to (y, -x) (I: (y + 1, -x)); O never changes', () => {
  const order = ['0', 'R', '2', 'L'];
  for (const kind of PIECES) {
    for (let r = 0; r < 4; r++) {
      const shape = shapeOf(kind, order[r]);
      const turned = shapeOf(kind, order[(r + 1) % 4]);
      assert.equal(shape.length, 4);
      let expected;
      if (kind === 'O') expected = shape;
      else if (kind === 'I') expected = shape.map(([x, y]) => [y + 1, -x]);
      else expected = shape.map(([x, y]) => [y, -x]);
      assert.deepEqual(sorted(turned), sorted(expected), `${kind} ${order[r]} -> ${order[(r + 1) % 4]}`);
    }
  }
});

test('JLSTZ and SRS I kicks are reversible; SRS+ I is mirror-symmetric', () => {
  const order = ['0', 'R', '2', 'L'];
  for (const kind of ['T', 'I']) {
    for (let r = 0; r < 4; r++) {
      const a = order[r];
      const b = order[(r + 1) % 4];
      const forward = kicksFor(kind, a, b, SRS);
      const back = kicksFor(kind, b, a, SRS);
      assert.deepEqual(back, forward.map(([x, y]) => [-x || 0, -y || 0]), `${kind} ${a}<->${b}`);
    }
  }
  // SRS+: 0->R vs 0->L with x negated.
  const cw = kicksFor('I', '0', 'R', SRS_PLUS);
  const ccw = kicksFor('I', '0', 'L', SRS_PLUS);
  assert.deepEqual(sorted(ccw), sorted(cw.map(([x, y]) => [-x || 0, y])));
  assert.deepEqual(kicksFor('O', '0', 'R'), [[0, 0]]);
});

test('TV1: T-spin double without a kick', () => {
  const board = Board.fromRows([
    'XX........',
    'X...XXXXXX',
    'XX.XXXXXXX',
  ]);
  // A state-R T falls to pivot (2, 1).
  const t = dropPosition(board, { kind: 'T', rotation: 'R', x: 2, y: 10 });
  assert.deepEqual([t.x, t.y], [2, 1]);
  assert.deepEqual(sorted(cellsOf(t)), sorted([[2, 2], [2, 1], [2, 0], [3, 1]]));
  // A state-L T cannot pass the overhang.
  const l = dropPosition(board, { kind: 'T', rotation: 'L', x: 2, y: 10 });
  assert.equal(l.y, 3);

  const turned = rotate(board, t, 'cw');
  assert.equal(turned.test, 1);
  assert.deepEqual(turned.piece, { kind: 'T', rotation: '2', x: 2, y: 1 });
  assert.deepEqual(sorted(cellsOf(turned.piece)), sorted([[1, 1], [2, 1], [3, 1], [2, 0]]));
  assert.equal(tSpinKind(board, turned.piece, { test: turned.test }), 'full');

  const { board: after, rows } = lockPiece(board, turned.piece);
  assert.deepEqual(rows, [0, 1]);
  assert.deepEqual(after.toRows(2), ['..........', 'XX........']);
});

test('TV2: the test-5 (TST) kick upgrades a mini to a full T-spin', () => {
  const board = Board.fromRows([
    '...XXXXXXX',
    '....XXXXXX',
    'XXX.XXXXXX',
    'XX..XXXXXX',
    'XX..XXXXXX',
  ]);
  let t = dropPosition(board, { kind: 'T', rotation: '0', x: 1, y: 15 });
  assert.deepEqual([t.x, t.y], [1, 3]);
  t = tryMove(board, t, 1, 0);
  assert.deepEqual([t.x, t.y], [2, 3]);
  assert.equal(tryMove(board, t, 0, -1), null, 'cannot fall further');

  const turned = rotate(board, t, 'ccw');
  assert.equal(turned.test, 5);
  assert.deepEqual(turned.piece, { kind: 'T', rotation: 'L', x: 3, y: 1 });
  assert.deepEqual(sorted(cellsOf(turned.piece)), sorted([[3, 2], [3, 1], [3, 0], [2, 1]]));
  assert.equal(tSpinKind(board, turned.piece, { test: 5 }), 'full');
  assert.equal(tSpinKind(board, turned.piece, { test: 4 }), 'mini', 'without the TST kick it would be a mini');
  assert.equal(tSpinKind(board, turned.piece, { test: 5, lastActionWasRotation: false }), 'none');

  const { rows } = lockPiece(board, turned.piece);
  assert.deepEqual(rows, [1, 2]);
});

test('TV3a: I kicks differ between SRS and SRS+', () => {
  const board = new Board();
  board.set(5, 9, GARBAGE);
  const i = { kind: 'I', rotation: '0', x: 4, y: 10 };
  const srs = rotate(board, i, 'cw', SRS);
  assert.equal(srs.test, 2);
  assert.deepEqual(srs.piece, { kind: 'I', rotation: 'R', x: 2, y: 10 });
  assert.deepEqual(sorted(cellsOf(srs.piece)), sorted([[3, 11], [3, 10], [3, 9], [3, 8]]));
  const plus = rotate(board, i, 'cw', SRS_PLUS);
  assert.equal(plus.test, 2);
  assert.deepEqual(plus.piece, { kind: 'I', rotation: 'R', x: 5, y: 10 });
  assert.deepEqual(sorted(cellsOf(plus.piece)), sorted([[6, 11], [6, 10], [6, 9], [6, 8]]));
});

test('TV3b: I floor kick uses test 5 in both systems', () => {
  const board = new Board();
  const i = { kind: 'I', rotation: '0', x: 1, y: 0 };
  for (const system of [SRS, SRS_PLUS]) {
    const turned = rotate(board, i, 'cw', system);
    assert.equal(turned.test, 5, system);
    assert.deepEqual(turned.piece, { kind: 'I', rotation: 'R', x: 2, y: 2 });
    assert.deepEqual(sorted(cellsOf(turned.piece)), sorted([[3, 3], [3, 2], [3, 1], [3, 0]]));
  }
});

test('TV3c: JLSTZ wall kick off the left wall', () => {
  const board = new Board();
  const turned = rotate(board, { kind: 'T', rotation: 'R', x: 0, y: 5 }, 'ccw');
  assert.equal(turned.test, 2);
  assert.deepEqual(turned.piece, { kind: 'T', rotation: '0', x: 1, y: 5 });
  assert.deepEqual(sorted(cellsOf(turned.piece)), sorted([[0, 5], [1, 5], [2, 5], [1, 6]]));
});

test('180 rotation exists only in SRS+', () => {
  const board = new Board();
  const t = spawnPiece('T');
  assert.equal(rotate(board, t, '180', SRS), null);
  const half = rotate(board, t, '180', SRS_PLUS);
  assert.deepEqual(half, { piece: { kind: 'T', rotation: '2', x: 4, y: 20 }, test: 1 });
  // On the floor, the 0->2 turn kicks up (test 2: (0, +1)).
  const floor = rotate(board, { kind: 'T', rotation: '0', x: 4, y: 0 }, '180', SRS_PLUS);
  assert.deepEqual(floor, { piece: { kind: 'T', rotation: '2', x: 4, y: 1 }, test: 2 });
  assert.equal(applyInput(predictionState({ board, piece: t }), INPUT.ROTATE_180).piece.rotation, '0', 'ignored in SRS');
});

test('a rotation that fits nowhere fails and changes nothing', () => {
  // An I standing in a one-wide well of height 4 cannot turn flat.
  const rows = [];
  for (let i = 0; i < 6; i++) rows.push('XXXX.XXXXX');
  const board = Board.fromRows(rows);
  const i = { kind: 'I', rotation: 'L', x: 4, y: 2 };
  assert.ok(board.fits(i));
  assert.equal(rotate(board, i, 'cw'), null);
  assert.equal(rotate(board, i, 'ccw'), null);
});

test('packed cells: 200 bytes, row 0 first, low nibble = even column', () => {
  const bytes = new Uint8Array(PACKED_BYTES);
  bytes[0] = 0x21; // (0,0) = I, (1,0) = O
  bytes[4] = 0x80; // (8,0) empty, (9,0) garbage
  bytes[5] = 0x03; // (0,1) = T
  bytes[199] = 0x75; // (8,39) = Z, (9,39) = L
  const board = Board.unpack(bytes);
  assert.equal(board.get(0, 0), 1);
  assert.equal(board.get(1, 0), 2);
  assert.equal(board.get(8, 0), 0);
  assert.equal(board.get(9, 0), GARBAGE);
  assert.equal(board.get(0, 1), 3);
  assert.equal(board.get(8, 39), 5);
  assert.equal(board.get(9, 39), 7);
  assert.deepEqual(board.pack(), bytes);
  assert.throws(() => Board.unpack(new Uint8Array(199)), RangeError);
  let filled = 0;
  for (const c of board.cells) if (c !== 0) filled++;
  assert.equal(filled, 6);
});

test('rows: removal drops the rows above; garbage rises with one hole', () => {
  const board = Board.fromRows([
    '....X.....',
    'XXXXXXXXXX',
    'X.........',
    'XXXXXXXXXX',
  ]);
  assert.deepEqual(board.fullRows(), [0, 2]);
  board.removeRows([0, 2]);
  assert.deepEqual(board.toRows(3), ['..........', '....X.....', 'X.........']);
  assert.equal(board.stackHeight(), 2);
  assert.equal(board.insertGarbage(2, 3), false);
  assert.deepEqual(board.toRows(4), ['....X.....', 'X.........', 'XXX.XXXXXX', 'XXX.XXXXXX']);
  assert.equal(board.stackHeight(), 4);
  const full = Board.fromRows(['X.........', ...Array(39).fill('..........')]);
  assert.equal(full.insertGarbage(1, 0), true, 'a cell pushed out of row 39 is a top out');
});

test('prediction: shifts stop at walls, hard drop locks and spawns the next piece', () => {
  const board = new Board();
  let s = predictionState({ board, piece: spawnPiece('T'), next: ['I', 'O', 'L'] });
  assert.equal(shiftRoom(board, s.piece, -1), 3);
  assert.equal(shiftRoom(board, s.piece, 1), 4);
  for (let i = 0; i < 6; i++) s = applyInput(s, INPUT.MOVE_LEFT);
  assert.equal(s.piece.x, 1);
  s = applyInput(s, INPUT.HARD_DROP);
  assert.equal(s.serial, 1);
  assert.deepEqual(s.piece, spawnPiece('I'));
  assert.deepEqual(s.next, ['O', 'L']);
  assert.equal(s.board.get(0, 0), 3);
  assert.equal(s.board.get(1, 1), 3);
  assert.equal(s.lockedPieces.length, 1);
  assert.equal(board.get(0, 0), 0, 'the input board is not modified');
});

test('prediction: hold swaps once per piece, from the queue when empty', () => {
  const board = new Board();
  let s = predictionState({ board, piece: { kind: 'T', rotation: 'R', x: 2, y: 15 }, next: ['I', 'O'] });
  s = applyInput(s, INPUT.HOLD);
  assert.equal(s.hold, 'T');
  assert.deepEqual(s.piece, spawnPiece('I'));
  assert.deepEqual(s.next, ['O']);
  assert.equal(s.serial, 1);
  const again = applyInput(s, INPUT.HOLD);
  assert.deepEqual(again.piece, s.piece, 'second hold ignored');
  assert.equal(again.serial, 1);
  s = applyInput(s, INPUT.HARD_DROP);
  assert.equal(s.holdUsed, false);
  assert.deepEqual(s.piece, spawnPiece('O'));
  s = applyInput(s, INPUT.HOLD);
  assert.equal(s.hold, 'O');
  assert.deepEqual(s.piece, spawnPiece('T'));
  // The queue ran out: the next piece is unknown until the server says.
  s = applyInput(s, INPUT.HARD_DROP);
  assert.equal(s.piece, null);
  assert.equal(applyInput(s, INPUT.MOVE_LEFT).piece, null);
});

test('replay applies entries in order, soft drop alone does nothing', () => {
  const board = new Board();
  const start = predictionState({ board, piece: spawnPiece('J'), next: ['S'] });
  const s = replay(start, [
    { bits: INPUT.SOFT_DROP },
    { bits: INPUT.MOVE_RIGHT | INPUT.SOFT_DROP },
    { bits: INPUT.ROTATE_CW | INPUT.SOFT_DROP },
    { bits: 0 },
  ]);
  assert.deepEqual(s.piece, { kind: 'J', rotation: 'R', x: 5, y: 20 });
});
