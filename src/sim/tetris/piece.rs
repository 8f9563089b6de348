//! Tetromino shapes (reference §1.2) and the spawn position (§1.3).
//!
//! Offsets are `(dx, dy)` from the pivot with +dx right and +dy up, exactly
//! as the reference prints them, so the kick tables of §2 apply unchanged.

use crate::sim::event::{Piece, Placement, Rotation};

/// Pivot column of every spawning piece.
pub const SPAWN_X: i8 = 4;
/// Pivot row of every spawning piece: just above the visible field.
pub const SPAWN_Y: i8 = 20;

/// One cell offset from the pivot.
pub type Offset = (i8, i8);

/// Cells of each piece in each rotation state, indexed
/// `[piece as usize - 1][rotation as usize]`.
const SHAPES: [[[Offset; 4]; 4]; 7] = [
    // I: the pivot is the second cell of the second row of its 4x4 box.
    [
        [(-1, 0), (0, 0), (1, 0), (2, 0)],
        [(1, 1), (1, 0), (1, -1), (1, -2)],
        [(-1, -1), (0, -1), (1, -1), (2, -1)],
        [(0, 1), (0, 0), (0, -1), (0, -2)],
    ],
    // O never changes shape.
    [
        [(0, 0), (1, 0), (0, 1), (1, 1)],
        [(0, 0), (1, 0), (0, 1), (1, 1)],
        [(0, 0), (1, 0), (0, 1), (1, 1)],
        [(0, 0), (1, 0), (0, 1), (1, 1)],
    ],
    // T
    [
        [(-1, 0), (0, 0), (1, 0), (0, 1)],
        [(0, 1), (0, 0), (0, -1), (1, 0)],
        [(-1, 0), (0, 0), (1, 0), (0, -1)],
        [(0, 1), (0, 0), (0, -1), (-1, 0)],
    ],
    // S
    [
        [(0, 1), (1, 1), (-1, 0), (0, 0)],
        [(0, 1), (0, 0), (1, 0), (1, -1)],
        [(0, 0), (1, 0), (-1, -1), (0, -1)],
        [(-1, 1), (-1, 0), (0, 0), (0, -1)],
    ],
    // Z
    [
        [(-1, 1), (0, 1), (0, 0), (1, 0)],
        [(1, 1), (1, 0), (0, 0), (0, -1)],
        [(-1, 0), (0, 0), (0, -1), (1, -1)],
        [(0, 1), (0, 0), (-1, 0), (-1, -1)],
    ],
    // J
    [
        [(-1, 1), (-1, 0), (0, 0), (1, 0)],
        [(1, 1), (0, 1), (0, 0), (0, -1)],
        [(1, -1), (1, 0), (0, 0), (-1, 0)],
        [(-1, -1), (0, -1), (0, 0), (0, 1)],
    ],
    // L
    [
        [(1, 1), (-1, 0), (0, 0), (1, 0)],
        [(1, -1), (0, 1), (0, 0), (0, -1)],
        [(-1, -1), (-1, 0), (0, 0), (1, 0)],
        [(-1, 1), (0, 1), (0, 0), (0, -1)],
    ],
];

/// The four cell offsets of `piece` in `rotation`.
pub fn offsets(piece: Piece, rotation: Rotation) -> &'static [Offset; 4] {
    &SHAPES[piece as usize - 1][rotation as usize]
}

/// The four board cells `(x, y)` of a placement, y up (may be out of
/// bounds). Exported as `piece_cells` for renderers and tests.
pub fn cells(placement: &Placement) -> [Offset; 4] {
    let offsets = offsets(placement.piece, placement.rotation);
    let mut cells = *offsets;
    for cell in &mut cells {
        *cell = (placement.x + cell.0, placement.y + cell.1);
    }
    cells
}

/// A piece as it spawns: state 0, pivot (4, 20).
pub fn spawn_placement(piece: Piece) -> Placement {
    Placement { piece, rotation: Rotation::Spawn, x: SPAWN_X, y: SPAWN_Y }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut cells: [Offset; 4]) -> [Offset; 4] {
        cells.sort_unstable();
        cells
    }

    /// The table is the SRS basic rotation: each state is the previous one
    /// turned clockwise about the piece's true centre.
    #[test]
    fn each_state_is_the_previous_turned_clockwise() {
        for piece in Piece::ALL {
            for rotation in Rotation::ALL {
                let turned = offsets(piece, rotation).map(|(x, y)| match piece {
                    Piece::I => (y + 1, -x),
                    Piece::O => (x, y),
                    _ => (y, -x),
                });
                let expected = *offsets(piece, rotation.clockwise());
                assert_eq!(sorted(turned), sorted(expected), "{piece:?} {rotation:?}");
            }
        }
    }

    /// §1.3: the spawn cells of every piece.
    #[test]
    fn spawn_cells_match_the_reference() {
        let expected: [(Piece, [Offset; 4]); 7] = [
            (Piece::I, [(3, 20), (4, 20), (5, 20), (6, 20)]),
            (Piece::O, [(4, 20), (5, 20), (4, 21), (5, 21)]),
            (Piece::T, [(3, 20), (4, 20), (5, 20), (4, 21)]),
            (Piece::J, [(3, 21), (3, 20), (4, 20), (5, 20)]),
            (Piece::L, [(5, 21), (3, 20), (4, 20), (5, 20)]),
            (Piece::S, [(4, 21), (5, 21), (3, 20), (4, 20)]),
            (Piece::Z, [(3, 21), (4, 21), (4, 20), (5, 20)]),
        ];
        for (piece, spawn_cells) in expected {
            assert_eq!(sorted(cells(&spawn_placement(piece))), sorted(spawn_cells));
        }
    }
}
