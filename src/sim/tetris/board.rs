//! The 10x40 playfield (reference §1.1): y = 0 is the bottom row.
//!
//! Each row is stored twice: a `u16` occupancy mask (bit x = column x) for
//! collision and line tests, and a `u64` of 4-bit cell kinds (column x in
//! bits 4x..4x+3) whose five low bytes, little-endian, are exactly that row
//! of the wire's [`PackedBoard`]. Both are kept in step by every mutation.

use arrayvec::ArrayVec;

use super::piece::{cells, Offset};
use crate::sim::event::{PackedBoard, Placement, PACKED_BOARD_BYTES};
use crate::sim::hash::StateHasher;

pub const BOARD_WIDTH: i8 = 10;
pub const BOARD_HEIGHT: i8 = 40;
/// Rows `0..VISIBLE_HEIGHT` are the visible field; above is the buffer zone.
pub const VISIBLE_HEIGHT: i8 = 20;
/// Cell kind of a garbage cell (pieces use their `Piece` number, 1..=7).
pub const GARBAGE_CELL: u8 = 8;

const ROWS: usize = BOARD_HEIGHT as usize;
const FULL_ROW: u16 = (1 << BOARD_WIDTH) - 1;
/// Bytes of one row in the packed layout (10 nibbles).
const PACKED_ROW_BYTES: usize = BOARD_WIDTH as usize / 2;
const _: () = assert!(PACKED_ROW_BYTES * ROWS == PACKED_BOARD_BYTES);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Board {
    rows: [u16; ROWS],
    kinds: [u64; ROWS],
}

impl Default for Board {
    fn default() -> Self {
        Board { rows: [0; ROWS], kinds: [0; ROWS] }
    }
}

/// What a garbage insertion did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insertion {
    Fits,
    /// A filled cell was pushed to y ≥ 40 (§1.4 top out).
    ToppedOut,
}

fn in_bounds(x: i8, y: i8) -> bool {
    // One unsigned comparison per axis (a negative i8 becomes ≥ 128): this
    // runs four times per collision test.
    (x as u8) < BOARD_WIDTH as u8 && (y as u8) < BOARD_HEIGHT as u8
}

impl Board {
    /// True if (x, y) is filled or outside the board (walls and floor count
    /// as occupied for collisions and T-spin corners).
    pub fn occupied(&self, x: i8, y: i8) -> bool {
        !in_bounds(x, y) || self.rows[y as usize] & (1 << x) != 0
    }

    /// Cell kind at (x, y): 0 empty, 1..=7 a piece, 8 garbage.
    pub fn cell(&self, x: i8, y: i8) -> u8 {
        debug_assert!(in_bounds(x, y));
        ((self.kinds[y as usize] >> (4 * x as u32)) & 0xF) as u8
    }

    /// True if every cell is inside the board and empty.
    pub fn fits(&self, cells: &[Offset; 4]) -> bool {
        for &(x, y) in cells {
            if self.occupied(x, y) {
                return false;
            }
        }
        true
    }

    /// Writes a piece into the board. The placement must fit.
    pub fn place(&mut self, placement: &Placement) {
        let kind = u64::from(placement.piece as u8);
        for (x, y) in cells(placement) {
            debug_assert!(!self.occupied(x, y), "locking onto a filled cell");
            let row = y as usize;
            self.rows[row] |= 1 << x;
            self.kinds[row] |= kind << (4 * x as u32);
        }
    }

    /// Full rows among the rows a placement touches, bottom first.
    pub fn full_rows_of(&self, placement: &Placement) -> ArrayVec<u8, 4> {
        let mut full = ArrayVec::new();
        let mut ys = cells(placement).map(|(_, y)| y);
        ys.sort_unstable();
        for (index, &y) in ys.iter().enumerate() {
            let repeated = index > 0 && ys[index - 1] == y;
            if !repeated && in_bounds(0, y) && self.rows[y as usize] == FULL_ROW {
                full.push(y as u8);
            }
        }
        full
    }

    /// Removes the given rows (bottom first); everything above moves down.
    pub fn remove_rows(&mut self, removed: &[u8]) {
        let Some(&lowest) = removed.first() else { return };
        let mut write = usize::from(lowest);
        for read in usize::from(lowest)..ROWS {
            if removed.contains(&(read as u8)) {
                continue;
            }
            self.rows[write] = self.rows[read];
            self.kinds[write] = self.kinds[read];
            write += 1;
        }
        for row in write..ROWS {
            self.rows[row] = 0;
            self.kinds[row] = 0;
        }
    }

    /// Pushes the stack up by `lines` and fills the bottom with garbage rows
    /// holed at `hole_column` (§7.4). Cells pushed past the top are lost.
    pub fn insert_garbage(&mut self, lines: u8, hole_column: u8) -> Insertion {
        debug_assert!(hole_column < BOARD_WIDTH as u8);
        let lines = usize::from(lines).min(ROWS);
        if lines == 0 {
            return Insertion::Fits;
        }
        let topped_out = self.rows[ROWS - lines..].iter().any(|&row| row != 0);
        self.rows.copy_within(0..ROWS - lines, lines);
        self.kinds.copy_within(0..ROWS - lines, lines);
        let mask = FULL_ROW & !(1 << hole_column);
        let kinds = garbage_kinds(hole_column);
        self.rows[..lines].fill(mask);
        self.kinds[..lines].fill(kinds);
        if topped_out {
            Insertion::ToppedOut
        } else {
            Insertion::Fits
        }
    }

    /// 0 for an empty board, else 1 + the highest filled row (§9.1).
    pub fn stack_height(&self) -> u8 {
        self.rows.iter().rposition(|&row| row != 0).map_or(0, |top| top as u8 + 1)
    }

    pub fn is_empty(&self) -> bool {
        self.rows.iter().all(|&row| row == 0)
    }

    /// Writes the wire layout: row 0 first, 5 bytes a row, even column in
    /// the low nibble.
    pub fn write_packed(&self, packed: &mut PackedBoard) {
        for (row, chunk) in self.kinds.iter().zip(packed.chunks_exact_mut(PACKED_ROW_BYTES)) {
            chunk.copy_from_slice(&row.to_le_bytes()[..PACKED_ROW_BYTES]);
        }
    }

    pub fn packed(&self) -> PackedBoard {
        let mut packed = [0; PACKED_BOARD_BYTES];
        self.write_packed(&mut packed);
        packed
    }

    pub fn hash_into(&self, hasher: &mut StateHasher) {
        // The kinds determine the masks, so hashing them covers both; rows
        // above the stack are empty, so the height and the rows below it
        // determine the board.
        let height = self.stack_height();
        hasher.u8(height);
        for &row in &self.kinds[..usize::from(height)] {
            hasher.u64(row);
        }
    }

    /// Checks that the two representations agree.
    #[cfg(test)]
    pub fn is_consistent(&self) -> bool {
        (0..ROWS).all(|row| {
            (0..BOARD_WIDTH).all(|x| {
                let kind = (self.kinds[row] >> (4 * x as u32)) & 0xF;
                let filled = self.rows[row] & (1 << x) != 0;
                kind <= u64::from(GARBAGE_CELL) && filled == (kind != 0)
            }) && self.kinds[row] >> (4 * BOARD_WIDTH as u32) == 0
                && self.rows[row] & !FULL_ROW == 0
        })
    }
}

/// Kinds of a garbage row: garbage everywhere but the hole.
fn garbage_kinds(hole_column: u8) -> u64 {
    let all: u64 =
        (0..BOARD_WIDTH as u32).fold(0, |acc, x| acc | u64::from(GARBAGE_CELL) << (4 * x));
    all & !(0xF << (4 * u32::from(hole_column)))
}

/// Test helper: a board drawn as in the reference (§10), top row first,
/// bottom line y = 0; `X` or `G` = garbage, a piece letter = that piece,
/// `.` = empty.
#[cfg(test)]
pub(crate) fn board_from_picture(lines: &[&str]) -> Board {
    let mut board = Board::default();
    for (index, line) in lines.iter().rev().enumerate() {
        assert!(index < ROWS, "picture taller than the board");
        assert_eq!(line.len(), BOARD_WIDTH as usize, "row {index} is not 10 wide");
        for (x, character) in line.chars().enumerate() {
            let kind = match character {
                '.' => 0,
                'X' | 'G' => GARBAGE_CELL,
                letter => crate::sim::event::Piece::ALL
                    .iter()
                    .find(|piece| piece.letter() == letter)
                    .map(|&piece| piece as u8)
                    .unwrap_or_else(|| panic!("unknown cell {letter:?}")),
            };
            if kind != 0 {
                board.rows[index] |= 1 << x;
                board.kinds[index] |= u64::from(kind) << (4 * x);
            }
        }
    }
    board
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::event::{Piece, Rotation};

    #[test]
    fn packs_in_the_wire_layout() {
        let board = board_from_picture(&["I........X"]);
        let packed = board.packed();
        assert_eq!(packed[0], Piece::I as u8); // column 0: low nibble of byte 0
        assert_eq!(packed[4], GARBAGE_CELL << 4); // column 9: high nibble of byte 4
        assert!(packed[5..].iter().all(|&byte| byte == 0));
        assert!(board.is_consistent());
    }

    #[test]
    fn full_rows_are_found_and_removed() {
        let mut board = board_from_picture(&[
            "....X.....", // y=3
            "XXXXXXXXX.", // y=2
            "XXXXXXXXX.", // y=1
            "X.XXXXXXX.", // y=0
        ]);
        let placement = Placement { piece: Piece::I, rotation: Rotation::Right, x: 8, y: 2 };
        board.place(&placement);
        let full = board.full_rows_of(&placement);
        assert_eq!(full.as_slice(), &[1, 2]);
        board.remove_rows(&full);
        let expected = board_from_picture(&["....X....I", "X.XXXXXXXI"]);
        assert_eq!(board, expected);
        assert_eq!(board.stack_height(), 2);
    }

    #[test]
    fn garbage_pushes_up_and_tops_out_at_row_40() {
        let mut board = board_from_picture(&["T........."]);
        assert_eq!(board.insert_garbage(2, 3), Insertion::Fits);
        assert_eq!(board, board_from_picture(&["T.........", "XXX.XXXXXX", "XXX.XXXXXX"]));
        assert!(board.is_consistent());
        assert_eq!(board.insert_garbage(37, 0), Insertion::Fits);
        assert_eq!(board.stack_height(), 40);
        assert_eq!(board.insert_garbage(1, 0), Insertion::ToppedOut);
    }

    #[test]
    fn out_of_bounds_counts_as_occupied() {
        let board = Board::default();
        assert!(board.occupied(-1, 0));
        assert!(board.occupied(10, 0));
        assert!(board.occupied(0, -1));
        assert!(board.occupied(0, 40));
        assert!(!board.occupied(9, 39));
    }
}
