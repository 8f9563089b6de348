// Canvas drawing of Tetris boards and the arena. Knows nothing of the
// network: it draws what the match model and the page hand it.

import { HEIGHT, PIECES, VISIBLE_HEIGHT, WIDTH, cellsOf, shapeOf } from '../game/tetris.js';
import { WORLD_MILLI } from '../game/arena.js';

/** Guideline colours by cell value (1-7 I O T S Z J L, 8 garbage). */
export const COLORS = ['#0000', '#31c7ef', '#f7d308', '#ad4d9c', '#42b642', '#ef2029', '#5a65ad', '#ef7921', '#7d7d7d'];
export const PLAYER_COLORS = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#42d4f4', '#f032e6', '#bfef45'];
const PIECE_INDEX = Object.fromEntries(PIECES.map((k, i) => [k, i + 1]));
/** Rows drawn: the 20 visible ones and two of the buffer, where pieces spawn. */
const SHOWN_ROWS = VISIBLE_HEIGHT + 2;

function cellRect(ctx, px, py, size, color, alpha = 1) {
  ctx.globalAlpha = alpha;
  ctx.fillStyle = color;
  ctx.fillRect(px + 1, py + 1, size - 2, size - 2);
  if (size >= 10 && alpha === 1) {
    ctx.fillStyle = 'rgba(255,255,255,0.18)';
    ctx.fillRect(px + 1, py + 1, size - 2, Math.max(2, size / 6));
  }
  ctx.globalAlpha = 1;
}

/** A small picture of a piece (hold, next), centred in a w x h box. */
function drawMiniPiece(ctx, kind, x, y, w, h, cell, dim = false) {
  if (!kind) return;
  const shape = shapeOf(kind, '0');
  const xs = shape.map(([dx]) => dx);
  const ys = shape.map(([, dy]) => dy);
  const minX = Math.min(...xs);
  const maxX = Math.max(...xs);
  const minY = Math.min(...ys);
  const maxY = Math.max(...ys);
  const pw = (maxX - minX + 1) * cell;
  const ph = (maxY - minY + 1) * cell;
  const ox = x + (w - pw) / 2;
  const oy = y + (h - ph) / 2;
  for (const [dx, dy] of shape) {
    cellRect(ctx, ox + (dx - minX) * cell, oy + (maxY - dy) * cell, cell, dim ? '#666' : COLORS[PIECE_INDEX[kind]]);
  }
}

/**
 * Draws one player's panel. Options:
 *   x, y, cell         where and how big (cell in px)
 *   board              Board to draw (own: the predicted one)
 *   serverBoard        cells that differ from it are drawn as predicted
 *   piece, ghost       falling piece and its landing place (or null)
 *   hold, holdUsed, next, pendingGarbage
 *   side               true: hold on the left, next queue on the right
 *   name, stats        labels
 *   alive, placement   a K.O. overlay when not alive
 *   effects            {flashUntil, flashColor, label, labelUntil} (ms)
 *   now                performance.now()
 * Returns the panel's width and height.
 */
export function drawPanel(ctx, o) {
  const cell = o.cell;
  const side = o.side ? cell * 4.5 : 0;
  const meterW = Math.max(4, Math.round(cell / 2));
  const boardX = o.x + side + meterW + 4;
  const boardY = o.y + (o.name ? cell + 6 : 0);
  const boardW = WIDTH * cell;
  const boardH = SHOWN_ROWS * cell;
  const py = (row) => boardY + (SHOWN_ROWS - 1 - row) * cell;

  if (o.name) {
    ctx.fillStyle = '#ddd';
    ctx.font = `${Math.max(11, Math.round(cell * 0.7))}px system-ui, sans-serif`;
    ctx.textBaseline = 'top';
    ctx.fillText(o.name, boardX, o.y, boardW);
  }

  // Field background: the buffer rows darker than the visible field.
  ctx.fillStyle = '#101018';
  ctx.fillRect(boardX, boardY, boardW, boardH);
  ctx.fillStyle = '#1b1b27';
  ctx.fillRect(boardX, py(VISIBLE_HEIGHT - 1), boardW, VISIBLE_HEIGHT * cell);
  if (cell >= 14) {
    ctx.strokeStyle = '#24243a';
    ctx.lineWidth = 1;
    for (let gx = 1; gx < WIDTH; gx++) {
      ctx.beginPath();
      ctx.moveTo(boardX + gx * cell + 0.5, py(VISIBLE_HEIGHT - 1));
      ctx.lineTo(boardX + gx * cell + 0.5, boardY + boardH);
      ctx.stroke();
    }
  }

  // Locked cells.
  const board = o.board;
  for (let row = 0; row < Math.min(SHOWN_ROWS, HEIGHT); row++) {
    for (let col = 0; col < WIDTH; col++) {
      const v = board.get(col, row);
      if (v === 0) continue;
      const predicted = o.serverBoard && o.serverBoard.get(col, row) !== v;
      cellRect(ctx, boardX + col * cell, py(row), cell, COLORS[v] ?? '#fff', predicted ? 0.55 : 1);
    }
  }

  // Ghost, then the piece.
  if (o.ghost && o.piece) {
    // The ghost: a faint fill with an outline, unlike a predicted lock.
    const color = COLORS[PIECE_INDEX[o.ghost.kind]];
    ctx.strokeStyle = color;
    ctx.lineWidth = 1;
    for (const [cx, cy] of cellsOf(o.ghost)) {
      if (cy >= SHOWN_ROWS) continue;
      cellRect(ctx, boardX + cx * cell, py(cy), cell, color, 0.15);
      ctx.globalAlpha = 0.6;
      ctx.strokeRect(boardX + cx * cell + 1.5, py(cy) + 1.5, cell - 3, cell - 3);
      ctx.globalAlpha = 1;
    }
  }
  if (o.piece) {
    for (const [cx, cy] of cellsOf(o.piece)) {
      if (cy < SHOWN_ROWS) cellRect(ctx, boardX + cx * cell, py(cy), cell, COLORS[PIECE_INDEX[o.piece.kind]]);
    }
  }

  // Incoming garbage meter, left of the field: one cell per line (red).
  ctx.fillStyle = '#222';
  ctx.fillRect(boardX - meterW - 2, py(VISIBLE_HEIGHT - 1), meterW, VISIBLE_HEIGHT * cell);
  const pending = Math.min(VISIBLE_HEIGHT, o.pendingGarbage ?? 0);
  if (pending > 0) {
    ctx.fillStyle = pending >= 8 ? '#ff2a2a' : '#ff8a2a';
    ctx.fillRect(boardX - meterW - 2, boardY + boardH - pending * cell, meterW, pending * cell);
  }

  // Border; flashes when attacked.
  const now = o.now ?? 0;
  const fx = o.effects ?? {};
  const flashing = fx.flashUntil && now < fx.flashUntil;
  ctx.strokeStyle = flashing ? fx.flashColor ?? '#ff4040' : '#4a4a66';
  ctx.lineWidth = flashing ? 3 : 1;
  ctx.strokeRect(boardX - 0.5, py(VISIBLE_HEIGHT - 1) - 0.5, boardW + 1, VISIBLE_HEIGHT * cell + 1);

  if (o.side) {
    const small = Math.round(cell * 0.75);
    ctx.fillStyle = '#aaa';
    ctx.font = `${Math.max(10, Math.round(cell * 0.55))}px system-ui, sans-serif`;
    ctx.textBaseline = 'top';
    ctx.fillText('HOLD', o.x, boardY + cell);
    drawMiniPiece(ctx, o.hold, o.x, boardY + cell * 2, side - cell / 2, small * 2.5, small, o.holdUsed);
    const nextX = boardX + boardW + cell / 2;
    ctx.fillStyle = '#aaa';
    ctx.fillText('NEXT', nextX, boardY + cell);
    (o.next ?? []).slice(0, 5).forEach((kind, i) => {
      drawMiniPiece(ctx, kind, nextX, boardY + cell * 2 + i * small * 3, side - cell / 2, small * 2.5, i === 0 ? small : Math.round(small * 0.85));
    });
    if (o.stats) {
      ctx.fillStyle = '#ccc';
      ctx.font = `${Math.max(10, Math.round(cell * 0.55))}px system-ui, sans-serif`;
      o.stats.forEach((line, i) => ctx.fillText(line, o.x, boardY + cell * 6 + i * cell * 0.9, side - 4));
    }
  } else if (o.stats) {
    ctx.fillStyle = '#bbb';
    ctx.font = `${Math.max(10, Math.round(cell * 0.8))}px system-ui, sans-serif`;
    ctx.textBaseline = 'top';
    ctx.fillText(o.stats.join('  '), boardX, boardY + boardH + 3, boardW + meterW);
  }

  // Label (line clears, attacks) over the field.
  if (fx.label && now < fx.labelUntil) {
    ctx.font = `bold ${Math.max(12, Math.round(cell * 0.9))}px system-ui, sans-serif`;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillStyle = '#000a';
    ctx.fillRect(boardX, py(12), boardW, cell * 2);
    ctx.fillStyle = fx.labelColor ?? '#fff';
    ctx.fillText(fx.label, boardX + boardW / 2, py(12) + cell, boardW - 4);
    ctx.textAlign = 'start';
  }

  if (o.alive === false) {
    ctx.fillStyle = '#000b';
    ctx.fillRect(boardX, py(VISIBLE_HEIGHT - 1), boardW, VISIBLE_HEIGHT * cell);
    ctx.fillStyle = '#ff5050';
    ctx.font = `bold ${Math.max(12, cell)}px system-ui, sans-serif`;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText(o.placement ? `K.O. #${o.placement}` : 'K.O.', boardX + boardW / 2, py(10));
    ctx.textAlign = 'start';
  }

  const width = side * (o.side ? 2 : 0) + meterW + 4 + boardW + (o.side ? cell / 2 : 0);
  const height = boardY - o.y + boardH + (o.stats && !o.side ? cell + 6 : 0);
  return { width, height };
}

/** Size drawPanel needs. */
export function panelSize(cell, { side = false, name = false, stats = false } = {}) {
  const sideW = side ? cell * 4.5 : 0;
  const meterW = Math.max(4, Math.round(cell / 2));
  const width = sideW * 2 + meterW + 4 + WIDTH * cell + (side ? cell / 2 : 0);
  const height = (name ? cell + 6 : 0) + SHOWN_ROWS * cell + (stats && !side ? cell + 6 : 0);
  return { width: Math.ceil(width), height: Math.ceil(height) };
}

/** The arena: a square world with one dot per player. */
export function drawArena(ctx, size, positions, { mySlot = -1, names = [] } = {}) {
  ctx.fillStyle = '#14141c';
  ctx.fillRect(0, 0, size, size);
  ctx.strokeStyle = '#33334a';
  ctx.lineWidth = 1;
  for (let i = 1; i < 10; i++) {
    const p = Math.round((i * size) / 10) + 0.5;
    ctx.beginPath();
    ctx.moveTo(p, 0);
    ctx.lineTo(p, size);
    ctx.moveTo(0, p);
    ctx.lineTo(size, p);
    ctx.stroke();
  }
  ctx.strokeStyle = '#777';
  ctx.strokeRect(0.5, 0.5, size - 1, size - 1);
  const scale = size / WORLD_MILLI;
  ctx.font = '12px system-ui, sans-serif';
  ctx.textAlign = 'center';
  for (const p of positions) {
    const px = p.x * scale;
    const py = size - p.y * scale;
    ctx.beginPath();
    ctx.arc(px, py, p.slot === mySlot ? 9 : 7, 0, Math.PI * 2);
    ctx.fillStyle = PLAYER_COLORS[p.slot % PLAYER_COLORS.length];
    ctx.fill();
    if (p.slot === mySlot) {
      ctx.strokeStyle = '#fff';
      ctx.lineWidth = 2;
      ctx.stroke();
    }
    ctx.fillStyle = '#ddd';
    ctx.fillText(names[p.slot] ?? `#${p.slot}`, px, py - 14);
  }
  ctx.textAlign = 'start';
}
