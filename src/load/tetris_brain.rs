//! The placement brain of the Tetris load-test bots (`ludus bots`).
//!
//! Owns: a tiny occupancy board ([`BotBoard`], one `u16` mask per row) kept
//! in step with the server from the lock and garbage it reports, and the
//! choice of where the falling piece goes ([`plan`], [`plan_nth`]) with the
//! inputs that put it there. Never does: I/O, clocks, floats or heap
//! allocation (candidates live in a fixed array of at most
//! [`CANDIDATES_MAX`]); it keeps no state between calls.
//!
//! The search is the classic one-piece greedy search with Yiyuan Lee's
//! linear weights over the board after the lock: aggregate height, complete
//! lines, holes and bumpiness, in integer per-mille. Geometry is the
//! simulation's own ([`piece_cells`]), so the bot's idea of a piece's cells
//! is the server's.
//!
//! A placement counts as reachable only if the exact inputs the bot will
//! send move the piece there without a collision: input `i` carries the
//! `i`-th rotation press and the `i`-th one-column shift, and every SRS
//! rotation is accepted only in its unkicked position (the first kick test
//! of every SRS table is `(0, 0)`, so the server takes the same position).
//! The plan is made for a piece still at its spawn placement; a piece that
//! gravity already moved may end elsewhere, which only costs a bot a worse
//! placement, never an invalid input.

use arrayvec::ArrayVec;

use crate::proto::wire::{PieceKind, Rotation, TETRIS_BOARD_BYTES};
use crate::sim::event::{Piece, Placement, Rotation as SimRotation, PACKED_BOARD_BYTES};
use crate::sim::tetris::{
    piece_cells, BOARD_HEIGHT, BOARD_WIDTH, INPUT_HARD_DROP, INPUT_LEFT, INPUT_RIGHT,
    INPUT_ROTATE_CCW, INPUT_ROTATE_CW, SPAWN_X, SPAWN_Y,
};

/// Most inputs one plan sends (rotations and shifts share inputs; the
/// farthest placement needs five).
pub const PLAN_INPUTS_MAX: usize = 8;
/// Most candidate placements of one piece: 4 rotations x 10 columns.
pub const CANDIDATES_MAX: usize = 4 * BOARD_WIDTH as usize;

const ROWS: usize = BOARD_HEIGHT as usize;
const COLUMNS: usize = BOARD_WIDTH as usize;
const FULL_ROW: u16 = (1 << BOARD_WIDTH) - 1;
/// Bytes of one row in the wire's packed layout (10 nibbles).
const PACKED_ROW_BYTES: usize = COLUMNS / 2;
/// Bits of one cell in the packed layout.
const PACKED_CELL_BITS: u32 = 4;
const PACKED_CELL_MASK: u8 = 0x0F;

const _: () = assert!(PACKED_ROW_BYTES * ROWS == TETRIS_BOARD_BYTES);
const _: () = assert!(TETRIS_BOARD_BYTES == PACKED_BOARD_BYTES);
const _: () = assert!(COLUMNS <= u16::BITS as usize);

/// Occupancy of a 10x40 Tetris board: bit x of `rows[y]` is column x of
/// row y, row 0 at the bottom. Cell kinds are not kept: the brain only
/// needs to know what is filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BotBoard {
    rows: [u16; ROWS],
}

impl BotBoard {
    /// An empty board.
    pub fn new() -> BotBoard {
        BotBoard { rows: [0; ROWS] }
    }

    /// The board of a `TetrisBoard.cells` blob: 5 bytes a row, row 0 first,
    /// the even column in the low nibble; any non-zero nibble is filled.
    /// Bytes past the 200th are ignored; a short blob leaves the rest empty.
    pub fn from_wire_cells(cells: &[u8]) -> BotBoard {
        let mut board = BotBoard::new();
        for (index, &byte) in cells.iter().take(TETRIS_BOARD_BYTES).enumerate() {
            let row = index / PACKED_ROW_BYTES;
            let column = (index % PACKED_ROW_BYTES) * 2;
            if byte & PACKED_CELL_MASK != 0 {
                board.rows[row] |= 1 << column;
            }
            if (byte >> PACKED_CELL_BITS) & PACKED_CELL_MASK != 0 {
                board.rows[row] |= 1 << (column + 1);
            }
        }
        board
    }

    /// True if (x, y) is filled or beside or below the board. Cells above
    /// the top row count as empty.
    pub fn occupied(&self, x: i8, y: i8) -> bool {
        if !(0..BOARD_WIDTH).contains(&x) || y < 0 {
            return true;
        }
        y < BOARD_HEIGHT && self.rows[y as usize] & (1 << x) != 0
    }

    /// Places the piece as the server locked it and clears full rows
    /// (exactly as the server: only rows the piece touched are tested, and
    /// rows above shift down). Returns lines cleared. Cells outside the
    /// board are ignored (no panic).
    pub fn lock(&mut self, kind: PieceKind, rotation: Rotation, x: i8, y: i8) -> u8 {
        let placement = sim_placement(kind, rotation, x, y);
        let cells = piece_cells(&placement);
        for (cell_x, cell_y) in cells {
            if in_board(cell_x, cell_y) {
                self.rows[cell_y as usize] |= 1 << cell_x;
            }
        }
        let mut full_rows: u64 = 0;
        for (cell_x, cell_y) in cells {
            if in_board(cell_x, cell_y) && self.rows[cell_y as usize] == FULL_ROW {
                full_rows |= 1 << cell_y;
            }
        }
        self.remove_rows(full_rows);
        let lines = full_rows.count_ones() as u8;
        debug_assert!(lines <= 4, "a piece spans at most four rows");
        lines
    }

    /// Removes the rows whose bit is set in `removed`; rows above move down.
    fn remove_rows(&mut self, removed: u64) {
        if removed == 0 {
            return;
        }
        let mut write = 0;
        for read in 0..ROWS {
            if removed & (1 << read) == 0 {
                self.rows[write] = self.rows[read];
                write += 1;
            }
        }
        self.rows[write..].fill(0);
    }

    /// Garbage rising from the bottom: `lines` rows full except
    /// `hole_column`; rows pushed off the top are lost. A hole column off
    /// the board (the server never sends one) gives rows without a hole.
    pub fn insert_garbage(&mut self, lines: u8, hole_column: u8) {
        let lines = usize::from(lines).min(ROWS);
        if lines == 0 {
            return;
        }
        let hole = 1u16.checked_shl(u32::from(hole_column)).unwrap_or(0);
        self.rows.copy_within(0..ROWS - lines, lines);
        self.rows[..lines].fill(FULL_ROW & !hole);
    }

    /// 0 for an empty board, else 1 + the highest filled row (as the
    /// server reports it).
    pub fn stack_height(&self) -> u8 {
        self.rows.iter().rposition(|&row| row != 0).map_or(0, |top| top as u8 + 1)
    }

    /// True if every cell is inside the board and empty.
    fn fits(&self, placement: &Placement) -> bool {
        piece_cells(placement).iter().all(|&(x, y)| !self.occupied(x, y))
    }
}

impl Default for BotBoard {
    fn default() -> Self {
        BotBoard::new()
    }
}

fn in_board(x: i8, y: i8) -> bool {
    (0..BOARD_WIDTH).contains(&x) && (0..BOARD_HEIGHT).contains(&y)
}

/// Weights of the board features, in thousandths per unit of the feature.
/// The score of a placement is the weighted sum; higher is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weights {
    /// Per cell of the summed column heights.
    pub aggregate_height: i32,
    /// Per line the placement clears.
    pub complete_lines: i32,
    /// Per empty cell with a filled cell above it in its column.
    pub holes: i32,
    /// Per cell of height difference between neighbouring columns.
    pub bumpiness: i32,
}

impl Default for Weights {
    /// Yiyuan Lee's weights (-0.510066, 0.760666, -0.35663, -0.184483),
    /// rounded to thousandths.
    fn default() -> Self {
        Weights { aggregate_height: -510, complete_lines: 760, holes: -357, bumpiness: -184 }
    }
}

/// Where the piece goes and how to get it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub rotation: Rotation,
    /// Pivot column after the shifts.
    pub x: i8,
    /// Pivot row where the hard drop locks the piece.
    pub landing_y: i8,
    /// Lines the lock clears.
    pub lines: u8,
    /// The weighted score of the board after the lock, in thousandths.
    pub score: i32,
    /// The inputs to send, in order ([`inputs_for`]).
    pub inputs: ArrayVec<u16, PLAN_INPUTS_MAX>,
}

/// Best placement of `kind`, spawned at the sim's spawn placement
/// (SPAWN_X, SPAWN_Y, rotation Spawn), over every rotation and column
/// reachable by the plan's own inputs (rotating at spawn height while
/// shifting sideways) with no collision along the way, scored by the
/// weights over the board after the lock (aggregate height, holes,
/// bumpiness, lines cleared). None when nothing is reachable (the bot then
/// just hard-drops). Ties go to the placement needing fewer inputs.
pub fn plan(board: &BotBoard, kind: PieceKind, weights: &Weights) -> Option<Plan> {
    plan_nth(board, kind, weights, 0)
}

/// The `rank`-th best distinct placement (0 = the best, as [`plan`]), for
/// bots told to blunder. Placements are distinct when their cells differ
/// (an O piece has one placement per column whatever its rotation). None
/// when fewer than `rank + 1` placements are reachable.
pub fn plan_nth(board: &BotBoard, kind: PieceKind, weights: &Weights, rank: usize) -> Option<Plan> {
    let mut candidates = candidates(board, kind, weights);
    candidates.sort_unstable_by(|a, b| {
        b.score.cmp(&a.score).then(a.steps.cmp(&b.steps)).then(a.order.cmp(&b.order))
    });
    let chosen = candidates.get(rank)?;
    let plan = Plan {
        rotation: chosen.rotation,
        x: chosen.x,
        landing_y: chosen.landing_y,
        lines: chosen.lines,
        score: chosen.score,
        inputs: inputs_for(chosen.rotation, chosen.x),
    };
    debug_assert_eq!(plan.inputs.len(), usize::from(chosen.steps));
    Some(plan)
}

/// The inputs that take a piece from spawn to `rotation` at pivot column
/// `x`: one input per step, input i carries the i-th rotation press (CW,
/// CW for Reverse; one CCW for Left) and the i-th one-column shift toward
/// x; the last input also carries hard drop. Always 1..=8 inputs (a target
/// farther than 8 columns, which no piece has, gets 8 shifts).
pub fn inputs_for(rotation: Rotation, x: i8) -> ArrayVec<u16, PLAN_INPUTS_MAX> {
    let (presses, rotate_bit) = rotation_presses(rotation);
    let distance = usize::from(x.abs_diff(SPAWN_X)).min(PLAN_INPUTS_MAX);
    let shift_bit = if x < SPAWN_X { INPUT_LEFT } else { INPUT_RIGHT };
    let steps = presses.max(distance).max(1);
    let mut inputs = ArrayVec::new();
    for step in 0..steps {
        let mut bits = 0;
        if step < presses {
            bits |= rotate_bit;
        }
        if step < distance {
            bits |= shift_bit;
        }
        inputs.push(bits);
    }
    if let Some(last) = inputs.last_mut() {
        *last |= INPUT_HARD_DROP;
    }
    debug_assert!((1..=PLAN_INPUTS_MAX).contains(&inputs.len()));
    inputs
}

/// Rotation presses from spawn to `rotation` and the bit pressed. No 180°
/// bit: it exists only in SRS+ rooms.
fn rotation_presses(rotation: Rotation) -> (usize, u16) {
    match rotation {
        Rotation::Spawn => (0, 0),
        Rotation::Right => (1, INPUT_ROTATE_CW),
        Rotation::Reverse => (2, INPUT_ROTATE_CW),
        Rotation::Left => (1, INPUT_ROTATE_CCW),
    }
}

/// The search order of the rotations: fewest presses first, so that of
/// two placements with the same cells the one found first needs fewer.
const ROTATION_ORDER: [Rotation; 4] =
    [Rotation::Spawn, Rotation::Right, Rotation::Left, Rotation::Reverse];

/// One reachable placement and its score.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    rotation: Rotation,
    x: i8,
    landing_y: i8,
    lines: u8,
    score: i32,
    /// Inputs needed (`inputs_for(rotation, x).len()`).
    steps: u8,
    /// Position in the search, the last tie-break.
    order: u8,
    /// The locked cells as `y * 10 + x`, sorted: equal cells, equal keys.
    key: [u16; 4],
}

/// Every distinct reachable placement, unsorted.
fn candidates(
    board: &BotBoard,
    kind: PieceKind,
    weights: &Weights,
) -> ArrayVec<Candidate, CANDIDATES_MAX> {
    let mut found = ArrayVec::<Candidate, CANDIDATES_MAX>::new();
    if !board.fits(&sim_placement(kind, Rotation::Spawn, SPAWN_X, SPAWN_Y)) {
        return found;
    }
    for rotation in ROTATION_ORDER {
        let (low, high) = pivot_columns(kind, rotation);
        for x in low..=high {
            let order = found.len() as u8;
            let Some(candidate) = evaluate(board, kind, rotation, x, weights, order) else {
                continue;
            };
            match found.iter_mut().find(|other| other.key == candidate.key) {
                Some(other) if candidate.steps < other.steps => *other = candidate,
                Some(_) => {}
                None => found.push(candidate),
            }
        }
    }
    found
}

/// The pivot columns where every cell of the piece is inside the walls.
fn pivot_columns(kind: PieceKind, rotation: Rotation) -> (i8, i8) {
    let cells = piece_cells(&sim_placement(kind, rotation, 0, 0));
    let left = cells.iter().map(|&(x, _)| x).min().unwrap_or(0);
    let right = cells.iter().map(|&(x, _)| x).max().unwrap_or(0);
    (-left, BOARD_WIDTH - 1 - right)
}

/// The candidate for `rotation` at pivot column `x`, if the inputs reach it.
fn evaluate(
    board: &BotBoard,
    kind: PieceKind,
    rotation: Rotation,
    x: i8,
    weights: &Weights,
    order: u8,
) -> Option<Candidate> {
    let mut placement = reach(board, kind, rotation, x)?;
    while board.fits(&Placement { y: placement.y - 1, ..placement }) {
        placement.y -= 1;
    }
    let landing_y = placement.y;
    let mut after = *board;
    let lines = after.lock(kind, rotation, x, landing_y);
    let mut key = piece_cells(&placement).map(|(cell_x, cell_y)| {
        debug_assert!(in_board(cell_x, cell_y));
        cell_y as u16 * COLUMNS as u16 + cell_x as u16
    });
    key.sort_unstable();
    Some(Candidate {
        rotation,
        x,
        landing_y,
        lines,
        score: score(&after, lines, weights),
        steps: inputs_for(rotation, x).len() as u8,
        order,
        key,
    })
}

/// Follows the inputs of [`inputs_for`] from spawn (without the hard drop):
/// the placement before the drop, or None if a rotation (unkicked) or a
/// shift would collide.
fn reach(board: &BotBoard, kind: PieceKind, rotation: Rotation, x: i8) -> Option<Placement> {
    let (presses, rotate_bit) = rotation_presses(rotation);
    let distance = usize::from(x.abs_diff(SPAWN_X));
    let direction: i8 = if x < SPAWN_X { -1 } else { 1 };
    let mut placement = sim_placement(kind, Rotation::Spawn, SPAWN_X, SPAWN_Y);
    for step in 0..presses.max(distance) {
        if step < presses {
            placement.rotation = if rotate_bit == INPUT_ROTATE_CW {
                placement.rotation.clockwise()
            } else {
                placement.rotation.counter_clockwise()
            };
            if !board.fits(&placement) {
                return None;
            }
        }
        if step < distance {
            placement.x += direction;
            if !board.fits(&placement) {
                return None;
            }
        }
    }
    debug_assert_eq!(placement.rotation, sim_rotation(rotation));
    debug_assert_eq!(placement.x, x);
    Some(placement)
}

/// The weighted features of the board after a lock that cleared `lines`.
fn score(board: &BotBoard, lines: u8, weights: &Weights) -> i32 {
    let mut heights = [0i32; COLUMNS];
    let mut covered: u16 = 0;
    let mut holes: i32 = 0;
    // Top down: an empty cell below a covered column is a hole, and a
    // column's height is set by the first filled cell met.
    for y in (0..ROWS).rev() {
        let row = board.rows[y];
        holes += (covered & !row).count_ones() as i32;
        let mut newly = row & !covered;
        while newly != 0 {
            let column = newly.trailing_zeros() as usize;
            heights[column] = y as i32 + 1;
            newly &= newly - 1;
        }
        covered |= row;
    }
    let aggregate_height: i32 = heights.iter().sum();
    let bumpiness: i32 = heights.windows(2).map(|pair| (pair[0] - pair[1]).abs()).sum();
    weights
        .aggregate_height
        .saturating_mul(aggregate_height)
        .saturating_add(weights.complete_lines.saturating_mul(i32::from(lines)))
        .saturating_add(weights.holes.saturating_mul(holes))
        .saturating_add(weights.bumpiness.saturating_mul(bumpiness))
}

// ---- wire to sim types ----

fn sim_placement(kind: PieceKind, rotation: Rotation, x: i8, y: i8) -> Placement {
    Placement { piece: sim_piece(kind), rotation: sim_rotation(rotation), x, y }
}

fn sim_piece(kind: PieceKind) -> Piece {
    match kind {
        PieceKind::I => Piece::I,
        PieceKind::O => Piece::O,
        PieceKind::T => Piece::T,
        PieceKind::S => Piece::S,
        PieceKind::Z => Piece::Z,
        PieceKind::J => Piece::J,
        PieceKind::L => Piece::L,
    }
}

fn sim_rotation(rotation: Rotation) -> SimRotation {
    match rotation {
        Rotation::Spawn => SimRotation::Spawn,
        Rotation::Right => SimRotation::Right,
        Rotation::Reverse => SimRotation::Reverse,
        Rotation::Left => SimRotation::Left,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::event::PackedBoard;
    use crate::sim::tetris::{
        Mode, TetrisBattle, TetrisConfig, INPUT_ALL, INPUT_HOLD, INPUT_ROTATE_180, INPUT_SOFT_DROP,
    };
    use crate::sim::{EventKind, Game, InputOutcome, Slot};

    const KINDS: [PieceKind; 7] = [
        PieceKind::I,
        PieceKind::O,
        PieceKind::T,
        PieceKind::S,
        PieceKind::Z,
        PieceKind::J,
        PieceKind::L,
    ];

    fn wire_kind(piece: Piece) -> PieceKind {
        KINDS[piece as usize - 1]
    }

    fn wire_rotation(rotation: SimRotation) -> Rotation {
        Rotation::ALL[rotation as usize]
    }

    /// Writes one cell kind into a packed board (the wire layout).
    fn set_packed(packed: &mut PackedBoard, x: usize, y: usize, kind: u8) {
        let byte = &mut packed[y * PACKED_ROW_BYTES + x / 2];
        if x.is_multiple_of(2) {
            *byte = (*byte & 0xF0) | kind;
        } else {
            *byte = (*byte & 0x0F) | (kind << 4);
        }
    }

    fn board_with_rows(rows: &[(usize, u16)]) -> BotBoard {
        let mut board = BotBoard::new();
        for &(y, mask) in rows {
            board.rows[y] = mask;
        }
        board
    }

    /// The cells of a plan's final placement.
    fn plan_cells(kind: PieceKind, plan: &Plan) -> [(i8, i8); 4] {
        piece_cells(&sim_placement(kind, plan.rotation, plan.x, plan.landing_y))
    }

    /// The brain's inputs are ones the server accepts in a plain SRS room.
    fn assert_valid_inputs(inputs: &[u16]) {
        assert!((1..=PLAN_INPUTS_MAX).contains(&inputs.len()), "{inputs:?}");
        for (index, &bits) in inputs.iter().enumerate() {
            assert_eq!(bits & !INPUT_ALL, 0, "{inputs:?}");
            assert_ne!(bits & (INPUT_LEFT | INPUT_RIGHT), INPUT_LEFT | INPUT_RIGHT, "{inputs:?}");
            let rotations = bits & (INPUT_ROTATE_CW | INPUT_ROTATE_CCW | INPUT_ROTATE_180);
            assert!(rotations.count_ones() <= 1, "{inputs:?}");
            assert_eq!(bits & (INPUT_ROTATE_180 | INPUT_HOLD | INPUT_SOFT_DROP), 0, "{inputs:?}");
            let last = index + 1 == inputs.len();
            assert_eq!(bits & INPUT_HARD_DROP != 0, last, "{inputs:?}");
        }
    }

    /// Packed cells decode to exactly the cells written, both nibbles of a
    /// byte, garbage included; short and long blobs do not panic.
    #[test]
    fn wire_cells_round_trip() {
        let filled =
            [(0, 0, 1), (1, 0, 8), (9, 0, 7), (4, 1, 3), (5, 19, 2), (3, 39, 8), (8, 39, 5)];
        let mut packed: PackedBoard = [0; PACKED_BOARD_BYTES];
        for &(x, y, kind) in &filled {
            set_packed(&mut packed, x, y, kind);
        }
        let board = BotBoard::from_wire_cells(&packed);
        for y in 0..BOARD_HEIGHT {
            for x in 0..BOARD_WIDTH {
                let expected =
                    filled.iter().any(|&(fx, fy, _)| (fx, fy) == (x as usize, y as usize));
                assert_eq!(board.occupied(x, y), expected, "({x}, {y})");
            }
        }
        assert_eq!(board.stack_height(), 40);

        // Three bytes are columns 0..=5 of row 0: only (0, 0) and (1, 0).
        let short = BotBoard::from_wire_cells(&packed[..3]);
        assert_eq!(short, board_with_rows(&[(0, 0b11)]));
        let mut long = packed.to_vec();
        long.extend_from_slice(&[0xFF; 50]);
        assert_eq!(BotBoard::from_wire_cells(&long), board);
        assert_eq!(BotBoard::from_wire_cells(&[]), BotBoard::new());
    }

    /// Walls and floor are solid, the sky above row 39 is not.
    #[test]
    fn occupied_outside_the_board() {
        let board = BotBoard::new();
        assert!(board.occupied(-1, 5) && board.occupied(10, 5) && board.occupied(3, -1));
        assert!(!board.occupied(3, 40) && !board.occupied(0, 39) && !board.occupied(9, 0));
        assert!(board.occupied(-1, 40));
    }

    /// A horizontal I into a row holding six cells clears it, and the rows
    /// above move down one; an untouched full row would be the server's
    /// business, not the lock's.
    #[test]
    fn lock_clears_the_rows_the_piece_completes() {
        let mut board =
            board_with_rows(&[(0, 0b00_0011_1111), (1, 0b00_0000_0001), (2, 0b10_0000_0000)]);
        // Pivot (7, 0) in Spawn: cells 6..=9 of row 0.
        assert_eq!(board.lock(PieceKind::I, Rotation::Spawn, 7, 0), 1);
        assert_eq!(board, board_with_rows(&[(0, 0b00_0000_0001), (1, 0b10_0000_0000)]));
        assert_eq!(board.stack_height(), 2);

        // Vertical I (Left: pivot column, rows y-2..=y+1) into a 2-deep well
        // under a roof-less stack: two lines, the rest drops by two.
        let almost = FULL_ROW & !(1 << 4);
        let mut board = board_with_rows(&[(0, almost), (1, almost), (2, 0b1)]);
        assert_eq!(board.lock(PieceKind::I, Rotation::Left, 4, 2), 2);
        assert_eq!(board, board_with_rows(&[(0, 0b1 | 1 << 4), (1, 1 << 4)]));

        // Cells outside the board are ignored, not a panic.
        let mut board = BotBoard::new();
        assert_eq!(board.lock(PieceKind::O, Rotation::Spawn, -5, 45), 0);
        assert_eq!(board.lock(PieceKind::I, Rotation::Spawn, 0, 0), 0);
        assert_eq!(board, board_with_rows(&[(0, 0b111)]));
    }

    /// Garbage pushes the stack up, holes at the given column, and what is
    /// pushed past row 39 is gone.
    #[test]
    fn garbage_rises_from_the_bottom() {
        let mut board = board_with_rows(&[(0, 0b1), (39, 0b10)]);
        board.insert_garbage(2, 3);
        let garbage = FULL_ROW & !(1 << 3);
        assert_eq!(board, board_with_rows(&[(0, garbage), (1, garbage), (2, 0b1)]));
        assert_eq!(board.stack_height(), 3);
        board.insert_garbage(0, 5);
        assert_eq!(board.stack_height(), 3);
        board.insert_garbage(200, 9);
        assert!(board.rows.iter().all(|&row| row == FULL_ROW & !(1 << 9)));
        let mut board = BotBoard::new();
        board.insert_garbage(1, 200);
        assert_eq!(board, board_with_rows(&[(0, FULL_ROW)]));
    }

    /// On an empty board every piece gets a plan whose cells fit, resting
    /// on the floor (it cannot go lower), with valid inputs.
    #[test]
    fn plans_on_an_empty_board_are_legal() {
        let board = BotBoard::new();
        for kind in KINDS {
            let plan = plan(&board, kind, &Weights::default()).expect("an empty board has room");
            let cells = plan_cells(kind, &plan);
            assert!(cells.iter().all(|&(x, y)| !board.occupied(x, y)), "{kind:?} {plan:?}");
            assert_eq!(cells.iter().map(|&(_, y)| y).min(), Some(0), "{kind:?} {plan:?}");
            assert_eq!(plan.lines, 0);
            assert_eq!(plan.inputs, inputs_for(plan.rotation, plan.x));
            assert_valid_inputs(&plan.inputs);
            // A flat piece is best on an empty floor: the stack stays 2 rows
            // or less, never a vertical I or an upright S.
            let height = cells.iter().map(|&(_, y)| y).max().unwrap_or(0) + 1;
            assert!(height <= 2, "{kind:?} {plan:?}");
        }
    }

    /// A four-deep well at the edge: the I goes in upright for a tetris,
    /// leaving an empty board.
    #[test]
    fn plan_takes_the_lines_on_offer() {
        for well in [0, 5, 9] {
            let almost = FULL_ROW & !(1 << well);
            let board = board_with_rows(&[(0, almost), (1, almost), (2, almost), (3, almost)]);
            let plan = plan(&board, PieceKind::I, &Weights::default()).expect("room");
            assert_eq!(plan.lines, 4, "well {well}: {plan:?}");
            let cells = plan_cells(PieceKind::I, &plan);
            assert!(cells.iter().all(|&(x, _)| x == well as i8), "{plan:?}");
            let mut after = board;
            assert_eq!(after.lock(PieceKind::I, plan.rotation, plan.x, plan.landing_y), 4);
            assert_eq!(after, BotBoard::new());
        }
        // One line on offer for an O: it takes it rather than stack up.
        let board = board_with_rows(&[(0, FULL_ROW & !0b11_0000_0000)]);
        let plan = plan(&board, PieceKind::O, &Weights::default()).expect("room");
        assert_eq!((plan.x, plan.landing_y, plan.lines), (8, 0, 1));
    }

    /// Every rotation and column gets one rotation press and one shift per
    /// input at most, in the right number and direction, hard drop last.
    #[test]
    fn inputs_carry_the_presses_and_shifts() {
        for rotation in Rotation::ALL.iter().copied() {
            for x in -1..=10i8 {
                let inputs = inputs_for(rotation, x);
                assert_valid_inputs(&inputs);
                let count = |bit: u16| inputs.iter().filter(|&&bits| bits & bit != 0).count();
                let (cw, ccw) = match rotation {
                    Rotation::Spawn => (0, 0),
                    Rotation::Right => (1, 0),
                    Rotation::Reverse => (2, 0),
                    Rotation::Left => (0, 1),
                };
                assert_eq!((count(INPUT_ROTATE_CW), count(INPUT_ROTATE_CCW)), (cw, ccw));
                let left = usize::from((SPAWN_X - x).max(0) as u8);
                let right = usize::from((x - SPAWN_X).max(0) as u8);
                assert_eq!((count(INPUT_LEFT), count(INPUT_RIGHT)), (left, right), "{x}");
                assert_eq!(inputs.len(), cw.max(ccw).max(left).max(right).max(1));
                // Presses and shifts start at the first input, none idle.
                assert!(
                    inputs.iter().all(|&bits| bits & !INPUT_HARD_DROP != 0) || inputs.len() == 1
                );
            }
        }
        assert_eq!(inputs_for(Rotation::Spawn, SPAWN_X).as_slice(), &[INPUT_HARD_DROP]);
        assert_eq!(
            inputs_for(Rotation::Reverse, 3).as_slice(),
            &[INPUT_ROTATE_CW | INPUT_LEFT, INPUT_ROTATE_CW | INPUT_HARD_DROP]
        );
        assert_eq!(inputs_for(Rotation::Left, 100).len(), PLAN_INPUTS_MAX);
    }

    /// Ranks go from best to worst over distinct cells, and run out at the
    /// number of distinct placements (O: 9 columns; I: 7 flat + 10 upright;
    /// T: 8 + 9 + 8 + 9).
    #[test]
    fn plan_nth_ranks_distinct_placements() {
        let board = BotBoard::new();
        let weights = Weights::default();
        for (kind, distinct) in [(PieceKind::O, 9), (PieceKind::I, 17), (PieceKind::T, 34)] {
            let mut seen: ArrayVec<[(i8, i8); 4], CANDIDATES_MAX> = ArrayVec::new();
            let mut previous = i32::MAX;
            for rank in 0..distinct {
                let plan = plan_nth(&board, kind, &weights, rank).expect("rank in range");
                assert!(plan.score <= previous, "{kind:?} rank {rank}");
                previous = plan.score;
                let mut cells = plan_cells(kind, &plan);
                cells.sort_unstable();
                assert!(!seen.contains(&cells), "{kind:?} rank {rank} repeats {cells:?}");
                seen.push(cells);
                assert_valid_inputs(&plan.inputs);
            }
            assert_eq!(plan_nth(&board, kind, &weights, distinct), None, "{kind:?}");
            assert_eq!(plan_nth(&board, kind, &weights, 0), plan(&board, kind, &weights));
        }
    }

    /// Blocks at spawn height limit the columns to those the piece can
    /// slide to; a blocked spawn gives no plan at all.
    #[test]
    fn plan_only_reaches_what_the_path_allows() {
        // Row 20 blocked at columns 2 and 7: an O (cells x, x+1) can only
        // sit at pivots 3, 4 and 5, though the floor is open everywhere.
        let board = board_with_rows(&[(20, 1 << 2 | 1 << 7)]);
        let weights = Weights::default();
        let mut columns: ArrayVec<i8, CANDIDATES_MAX> = ArrayVec::new();
        let mut rank = 0;
        while let Some(plan) = plan_nth(&board, PieceKind::O, &weights, rank) {
            assert_eq!(plan.landing_y, 0);
            columns.push(plan.x);
            rank += 1;
        }
        columns.sort_unstable();
        assert_eq!(columns.as_slice(), &[3, 4, 5]);

        // A cell just under a T's spawn pivot: the piece spawns and slides
        // freely, but every unkicked turn at spawn needs that cell, so only
        // the 8 flat placements remain (the server might kick; the brain
        // does not count on it).
        let board = board_with_rows(&[(19, 1 << 4)]);
        let mut rank = 0;
        while let Some(plan) = plan_nth(&board, PieceKind::T, &weights, rank) {
            assert_eq!(plan.rotation, Rotation::Spawn, "{plan:?}");
            rank += 1;
        }
        assert_eq!(rank, 8);

        let blocked = board_with_rows(&[(20, 1 << 4)]);
        for kind in KINDS {
            assert_eq!(plan(&blocked, kind, &weights), None, "{kind:?}");
        }
    }

    /// One bot of the end-to-end runs: its board, the piece waiting for a
    /// plan, and the plan waiting for its lock.
    #[derive(Default)]
    struct Bot {
        board: BotBoard,
        spawned: Option<Piece>,
        planned: Option<Plan>,
        /// Every how many pieces the bot blunders (0 = never).
        blunder_every: u32,
        /// The rank it plays when it blunders.
        blunder_rank: usize,
        pieces: u32,
        lines: u32,
        predictions_checked: u32,
        garbage_lines: u32,
        unplanned: u32,
    }

    /// Keeps every bot's board in step from the events alone and checks
    /// each lock against the plan that caused it.
    fn observe(bots: &mut [Bot], events: &[crate::sim::Event]) {
        for event in events {
            let Some(slot) = event.player else { continue };
            let bot = &mut bots[usize::from(slot)];
            match &event.kind {
                EventKind::PieceSpawn { placement, .. } => {
                    assert_eq!((placement.x, placement.y), (SPAWN_X, SPAWN_Y));
                    assert_eq!(placement.rotation, SimRotation::Spawn);
                    bot.spawned = Some(placement.piece);
                }
                EventKind::PieceLock(lock) => {
                    let at = lock.placement;
                    let kind = wire_kind(at.piece);
                    let lines = bot.board.lock(kind, wire_rotation(at.rotation), at.x, at.y);
                    assert_eq!(lines, lock.lines, "slot {slot} piece {}", bot.pieces);
                    if let Some(plan) = bot.planned.take() {
                        let predicted = (plan.rotation, plan.x, plan.landing_y, plan.lines);
                        let locked = (wire_rotation(at.rotation), at.x, at.y, lock.lines);
                        assert_eq!(predicted, locked, "slot {slot} piece {}", bot.pieces);
                        bot.predictions_checked += 1;
                    }
                    bot.pieces += 1;
                    bot.lines += u32::from(lines);
                }
                EventKind::GarbageReceived { lines, hole_column, .. } => {
                    bot.board.insert_garbage(*lines as u8, *hole_column);
                    bot.garbage_lines += u32::from(*lines);
                }
                _ => {}
            }
        }
    }

    /// Plans the waiting piece of `slot` and sends the plan's inputs.
    fn play(game: &mut TetrisBattle, bots: &mut [Bot], slot: Slot, seq: &mut u32) {
        let bot = &mut bots[usize::from(slot)];
        let Some(piece) = bot.spawned.take() else { return };
        let active = game.player(slot).and_then(|player| player.active());
        let spawn = Placement { piece, rotation: SimRotation::Spawn, x: SPAWN_X, y: SPAWN_Y };
        assert_eq!(active, Some(spawn), "the plan assumes the piece is still at spawn");
        let blunders = bot.blunder_every > 0 && bot.pieces.is_multiple_of(bot.blunder_every);
        let rank = if blunders { bot.blunder_rank } else { 0 };
        let weights = Weights::default();
        let chosen = plan_nth(&bot.board, wire_kind(piece), &weights, rank)
            .or_else(|| plan(&bot.board, wire_kind(piece), &weights));
        let inputs = match &chosen {
            Some(plan) => plan.inputs.clone(),
            None => [INPUT_HARD_DROP].into_iter().collect(),
        };
        bot.unplanned += u32::from(chosen.is_none());
        bot.planned = chosen;
        assert_valid_inputs(&inputs);
        let mut events = Vec::new();
        for bits in inputs {
            *seq += 1;
            assert_eq!(game.input(slot, *seq, bits, &mut events), InputOutcome::Applied);
        }
        observe(bots, &events);
    }

    /// Drives the real simulation with one bot per player for up to
    /// `pieces` pieces each (one piece per player per tick), checking after
    /// every step that each bot's board is the server's.
    fn run(config: &TetrisConfig, seed: u64, bots: &mut [Bot], pieces: u32) {
        let players = bots.len() as u8;
        let mut events = Vec::new();
        let mut game = TetrisBattle::new(config, seed, players, &mut events);
        observe(bots, &events);
        let mut seq = 0;
        // Each tick places one piece per player: pieces + 1 ticks suffice.
        for _ in 0..=pieces {
            for slot in 0..players {
                if bots[usize::from(slot)].pieces < pieces {
                    play(&mut game, bots, slot, &mut seq);
                }
            }
            events.clear();
            game.tick(&mut events);
            observe(bots, &events);
            for slot in 0..players {
                let player = game.player(slot).expect("slot in the match");
                let server = BotBoard::from_wire_cells(&player.packed_board());
                let bot = &bots[usize::from(slot)];
                assert_eq!(bot.board, server, "seed {seed} slot {slot} piece {}", bot.pieces);
                assert_eq!(bot.board.stack_height(), player.stack_height());
                assert_eq!(bot.lines, player.lines());
            }
            if game.is_finished() || bots.iter().all(|bot| bot.pieces >= pieces) {
                break;
            }
        }
        assert_eq!(game.inputs_rejected_total(), 0);
    }

    /// A solo marathon played by the brain: every lock lands where the
    /// plan said, the board stays the server's, and lines get cleared.
    #[test]
    fn brain_plays_a_marathon_in_step_with_the_server() {
        let config = TetrisConfig { mode: Mode::Marathon, ..TetrisConfig::default() };
        for seed in [1, 0xB07, 0x5EED_B0B5] {
            let mut bots = [Bot::default()];
            run(&config, seed, &mut bots, 200);
            let bot = &bots[0];
            assert_eq!(bot.pieces, 200, "seed {seed}: the bot topped out");
            assert_eq!(bot.predictions_checked, 200);
            assert_eq!(bot.unplanned, 0);
            // 200 pieces are 800 cells, 80 lines at most; Lee's weights
            // clear about 75 (the brief asked for more than 20).
            assert!(bot.lines > 60, "seed {seed}: only {} lines in 200 pieces", bot.lines);
        }
    }

    /// Versus between the brain and a blundering brain: garbage rises into
    /// both boards, the bots keep up from the events alone, and every plan,
    /// blunders included, lands where predicted. A mild blunderer (second
    /// best every sixth piece) lasts the 200 pieces and trades garbage; a
    /// wild one (fourth best every other piece) tops out, its far-off
    /// placements checked on the way.
    #[test]
    fn brain_keeps_up_with_garbage_in_versus() {
        let config = TetrisConfig::default();
        let mut garbage_lines = [0; 2];
        for seed in [7, 0xFACE, 0xD00D] {
            let blunderer = Bot { blunder_every: 6, blunder_rank: 1, ..Bot::default() };
            let mut bots = [Bot::default(), blunderer];
            run(&config, seed, &mut bots, 200);
            for (slot, bot) in bots.iter().enumerate() {
                assert_eq!(bot.pieces, 200, "seed {seed} slot {slot}: topped out");
                assert_eq!(bot.predictions_checked, bot.pieces);
                garbage_lines[slot] += bot.garbage_lines;
            }

            let wild = Bot { blunder_every: 2, blunder_rank: 3, ..Bot::default() };
            let mut bots = [Bot::default(), wild];
            run(&config, seed, &mut bots, 200);
            assert!(bots[1].pieces >= 20, "seed {seed}: only {} pieces", bots[1].pieces);
            for bot in &bots {
                assert_eq!(bot.predictions_checked + bot.unplanned, bot.pieces);
            }
        }
        // Without garbage on both sides the test would prove nothing about it.
        assert!(garbage_lines.iter().all(|&lines| lines > 0), "{garbage_lines:?}");
    }
}
