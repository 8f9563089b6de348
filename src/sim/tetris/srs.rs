//! Kick tables of the Super Rotation System (reference §2), y-up.
//!
//! Table names used in docs/GAMES.md:
//! - `JLSTZ_KICKS`: §2.2, shared by both systems;
//! - `I_KICKS_SRS`: §2.3, Guideline SRS (the default);
//! - `I_KICKS_SRS_PLUS`: §2.4, TETR.IO SRS+;
//! - `JLSTZ_HALF_TURN_KICKS`, `I_HALF_TURN_KICKS`: §2.4 180° tables (SRS+ only).
//!
//! Rows of the 90° tables are indexed by [`quarter_turn_row`]: for each
//! starting state, first the clockwise then the counter-clockwise turn.

use super::config::RotationSystem;
use super::piece::Offset;
use crate::sim::event::{Piece, Rotation};

/// Tests of a 90° rotation.
pub const QUARTER_TURN_TESTS: usize = 5;
/// Tests of a JLSTZ 180° rotation (I has 2).
pub const HALF_TURN_TESTS: usize = 6;

type QuarterTable = [[Offset; QUARTER_TURN_TESTS]; 8];

/// Rows: 0→R, 0→L, R→2, R→0, 2→L, 2→R, L→0, L→2.
const JLSTZ_KICKS: QuarterTable = [
    [(0, 0), (-1, 0), (-1, 1), (0, -2), (-1, -2)], // 0→R
    [(0, 0), (1, 0), (1, 1), (0, -2), (1, -2)],    // 0→L
    [(0, 0), (1, 0), (1, -1), (0, 2), (1, 2)],     // R→2
    [(0, 0), (1, 0), (1, -1), (0, 2), (1, 2)],     // R→0
    [(0, 0), (1, 0), (1, 1), (0, -2), (1, -2)],    // 2→L
    [(0, 0), (-1, 0), (-1, 1), (0, -2), (-1, -2)], // 2→R
    [(0, 0), (-1, 0), (-1, -1), (0, 2), (-1, 2)],  // L→0
    [(0, 0), (-1, 0), (-1, -1), (0, 2), (-1, 2)],  // L→2
];

const I_KICKS_SRS: QuarterTable = [
    [(0, 0), (-2, 0), (1, 0), (-2, -1), (1, 2)], // 0→R
    [(0, 0), (-1, 0), (2, 0), (-1, 2), (2, -1)], // 0→L
    [(0, 0), (-1, 0), (2, 0), (-1, 2), (2, -1)], // R→2
    [(0, 0), (2, 0), (-1, 0), (2, 1), (-1, -2)], // R→0
    [(0, 0), (2, 0), (-1, 0), (2, 1), (-1, -2)], // 2→L
    [(0, 0), (1, 0), (-2, 0), (1, -2), (-2, 1)], // 2→R
    [(0, 0), (1, 0), (-2, 0), (1, -2), (-2, 1)], // L→0
    [(0, 0), (-2, 0), (1, 0), (-2, -1), (1, 2)], // L→2
];

const I_KICKS_SRS_PLUS: QuarterTable = [
    [(0, 0), (1, 0), (-2, 0), (-2, -1), (1, 2)], // 0→R
    [(0, 0), (-1, 0), (2, 0), (2, -1), (-1, 2)], // 0→L
    [(0, 0), (-1, 0), (2, 0), (-1, 2), (2, -1)], // R→2
    [(0, 0), (-1, 0), (2, 0), (-1, -2), (2, 1)], // R→0
    [(0, 0), (2, 0), (-1, 0), (2, 1), (-1, -2)], // 2→L
    [(0, 0), (-2, 0), (1, 0), (-2, 1), (1, -2)], // 2→R
    [(0, 0), (1, 0), (-2, 0), (1, -2), (-2, 1)], // L→0
    [(0, 0), (1, 0), (-2, 0), (1, 2), (-2, -1)], // L→2
];

/// Rows indexed by the starting state: 0→2, R→L, 2→0, L→R.
const JLSTZ_HALF_TURN_KICKS: [[Offset; HALF_TURN_TESTS]; 4] = [
    [(0, 0), (0, 1), (1, 1), (-1, 1), (1, 0), (-1, 0)],
    [(0, 0), (1, 0), (1, 2), (1, 1), (0, 2), (0, 1)],
    [(0, 0), (0, -1), (-1, -1), (1, -1), (-1, 0), (1, 0)],
    [(0, 0), (-1, 0), (-1, 2), (-1, 1), (0, 2), (0, 1)],
];

const I_HALF_TURN_KICKS: [[Offset; 2]; 4] =
    [[(0, 0), (0, 1)], [(0, 0), (1, 0)], [(0, 0), (0, -1)], [(0, 0), (-1, 0)]];

/// O rotates in place: its shape is the same in every state.
const O_KICKS: [Offset; 1] = [(0, 0)];

/// The row of a 90° table for `from` turned clockwise (or not).
fn quarter_turn_row(from: Rotation, clockwise: bool) -> usize {
    from as usize * 2 + usize::from(!clockwise)
}

/// The offsets to try, in order, for a 90° rotation.
pub fn quarter_turn_kicks(
    system: RotationSystem,
    piece: Piece,
    from: Rotation,
    clockwise: bool,
) -> &'static [Offset] {
    let row = quarter_turn_row(from, clockwise);
    match (piece, system) {
        (Piece::O, _) => &O_KICKS,
        (Piece::I, RotationSystem::Srs) => &I_KICKS_SRS[row],
        (Piece::I, RotationSystem::SrsPlus) => &I_KICKS_SRS_PLUS[row],
        _ => &JLSTZ_KICKS[row],
    }
}

/// The offsets to try, in order, for a 180° rotation (SRS+ only).
pub fn half_turn_kicks(piece: Piece, from: Rotation) -> &'static [Offset] {
    match piece {
        Piece::O => &O_KICKS,
        Piece::I => &I_HALF_TURN_KICKS[from as usize],
        _ => &JLSTZ_HALF_TURN_KICKS[from as usize],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// §2.2: each counter-clockwise row is the negated reverse clockwise row.
    #[test]
    fn jlstz_rotations_are_reversible() {
        for from in Rotation::ALL {
            let to = from.clockwise();
            let forward = quarter_turn_kicks(RotationSystem::Srs, Piece::T, from, true);
            let back = quarter_turn_kicks(RotationSystem::Srs, Piece::T, to, false);
            for (a, b) in forward.iter().zip(back) {
                assert_eq!((a.0, a.1), (-b.0, -b.1), "{from:?}");
            }
        }
    }

    /// Guideline SRS I kicks are reversible too; SRS+ ones are mirror
    /// symmetric instead (0→R is 0→L with x negated, §2.4 note).
    #[test]
    fn i_tables_have_their_symmetries() {
        for from in Rotation::ALL {
            let forward = quarter_turn_kicks(RotationSystem::Srs, Piece::I, from, true);
            let back = quarter_turn_kicks(RotationSystem::Srs, Piece::I, from.clockwise(), false);
            for (a, b) in forward.iter().zip(back) {
                assert_eq!((a.0, a.1), (-b.0, -b.1));
            }
        }
        let right = quarter_turn_kicks(RotationSystem::SrsPlus, Piece::I, Rotation::Spawn, true);
        let left = quarter_turn_kicks(RotationSystem::SrsPlus, Piece::I, Rotation::Spawn, false);
        for (a, b) in right.iter().zip(left) {
            assert_eq!((a.0, a.1), (-b.0, b.1));
        }
    }

    /// §2.4: the 180 table, spot checks of both shapes of row.
    #[test]
    fn half_turn_tables_match_the_reference() {
        assert_eq!(
            half_turn_kicks(Piece::T, Rotation::Right),
            &[(0, 0), (1, 0), (1, 2), (1, 1), (0, 2), (0, 1)]
        );
        assert_eq!(
            half_turn_kicks(Piece::S, Rotation::Reverse),
            &[(0, 0), (0, -1), (-1, -1), (1, -1), (-1, 0), (1, 0)]
        );
        assert_eq!(half_turn_kicks(Piece::I, Rotation::Left), &[(0, 0), (-1, 0)]);
        assert_eq!(half_turn_kicks(Piece::O, Rotation::Left), &[(0, 0)]);
    }
}
