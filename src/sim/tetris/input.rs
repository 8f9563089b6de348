//! Input bits of a Tetris player (one `u16` per input) and their validation.
//!
//! One input applies its parts in this order: hold, rotation, shift,
//! soft-drop state, hard drop. Soft drop is a state: on while set in the
//! latest applied input, off when an input arrives without it.

use super::config::RotationSystem;

pub const INPUT_LEFT: u16 = 1 << 0;
pub const INPUT_RIGHT: u16 = 1 << 1;
pub const INPUT_SOFT_DROP: u16 = 1 << 2;
pub const INPUT_HARD_DROP: u16 = 1 << 3;
pub const INPUT_ROTATE_CW: u16 = 1 << 4;
pub const INPUT_ROTATE_CCW: u16 = 1 << 5;
pub const INPUT_ROTATE_180: u16 = 1 << 6;
pub const INPUT_HOLD: u16 = 1 << 7;

/// Every defined bit; anything above is rejected.
pub const INPUT_ALL: u16 = (1 << 8) - 1;
const ROTATIONS: u16 = INPUT_ROTATE_CW | INPUT_ROTATE_CCW | INPUT_ROTATE_180;

/// True if the bits describe a possible input under `system`: no unknown
/// bits, not left and right together, at most one rotation, and no 180°
/// rotation unless the system has one.
pub fn is_valid(bits: u16, system: RotationSystem) -> bool {
    let unknown = bits & !INPUT_ALL != 0;
    let both_ways = bits & (INPUT_LEFT | INPUT_RIGHT) == INPUT_LEFT | INPUT_RIGHT;
    let rotations = (bits & ROTATIONS).count_ones();
    let half_turn_refused = bits & INPUT_ROTATE_180 != 0 && !system.has_half_turn();
    !unknown && !both_ways && rotations <= 1 && !half_turn_refused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_rules() {
        let srs = RotationSystem::Srs;
        let plus = RotationSystem::SrsPlus;
        assert!(is_valid(0, srs));
        assert!(is_valid(INPUT_ALL & !(INPUT_RIGHT | ROTATIONS) | INPUT_ROTATE_CW, srs));
        assert!(!is_valid(1 << 8, srs));
        assert!(!is_valid(1 << 15, plus));
        assert!(!is_valid(INPUT_LEFT | INPUT_RIGHT, srs));
        assert!(!is_valid(INPUT_ROTATE_CW | INPUT_ROTATE_CCW, plus));
        assert!(!is_valid(INPUT_ROTATE_CW | INPUT_ROTATE_180, plus));
        assert!(!is_valid(INPUT_ROTATE_180, srs));
        assert!(is_valid(INPUT_ROTATE_180 | INPUT_HOLD | INPUT_HARD_DROP, plus));
    }
}
