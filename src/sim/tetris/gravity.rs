//! Gravity in fixed point (reference §4.1) and the level rules.
//!
//! No floats: gravity is rows per tick in 1/65536ths, computed offline from
//! `G(L) = 1 / (60 · (0.8 − (L − 1) · 0.007)^(L − 1))` and rounded up, so a
//! whole period comes out exact (level 1 falls one row every 60 ticks, not
//! 61) and no level is slower than the formula. A unit test checks every
//! entry against the formula.

/// Fixed-point scale: 1 row = 65 536.
pub const GRAVITY_ONE_ROW: u32 = 1 << GRAVITY_SHIFT;
pub const GRAVITY_SHIFT: u32 = 16;

/// Highest level of every mode.
pub const MAX_LEVEL: u8 = 15;
/// Versus: the level rises every 30 s of match time.
pub const VERSUS_LEVEL_TICKS: u32 = 1_800;
/// Marathon: the level rises every 10 lines.
pub const MARATHON_LEVEL_LINES: u32 = 10;

/// Rows per tick × 65 536 for levels 1..=15 (index = level − 1).
pub const GRAVITY_BY_LEVEL: [u32; MAX_LEVEL as usize] = [
    1_093, 1_378, 1_769, 2_311, 3_076, 4_169, 5_759, 8_107, 11_635, 17_027, 25_416, 38_709, 60_169,
    95_484, 154_743,
];

/// 20G: the piece falls to the stack in the tick after it spawns. Not used
/// by any mode today; kept so a future "master" mode has a named value.
pub const GRAVITY_20G: u32 = 20 * GRAVITY_ONE_ROW;

/// Gravity of a level (clamped into 1..=15).
pub fn gravity(level: u8) -> u32 {
    GRAVITY_BY_LEVEL[usize::from(level.clamp(1, MAX_LEVEL)) - 1]
}

/// Versus: `min(15, 1 + floor(ticks / 1800))`.
pub fn versus_level(tick: u32) -> u8 {
    (1 + tick / VERSUS_LEVEL_TICKS).min(u32::from(MAX_LEVEL)) as u8
}

/// Marathon: `min(15, 1 + floor(lines / 10))`.
pub fn marathon_level(lines: u32) -> u8 {
    (1 + lines / MARATHON_LEVEL_LINES).min(u32::from(MAX_LEVEL)) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formula(level: u32) -> f64 {
        let seconds_per_row = (0.8 - f64::from(level - 1) * 0.007).powi(level as i32 - 1);
        1.0 / (60.0 * seconds_per_row)
    }

    /// TV9 and every table entry: the formula rounded up.
    #[test]
    fn table_matches_the_guideline_formula() {
        for level in 1..=u32::from(MAX_LEVEL) {
            let exact = formula(level) * f64::from(GRAVITY_ONE_ROW);
            let stored = f64::from(gravity(level as u8));
            assert!(stored >= exact && stored - exact < 1.0, "level {level}: {stored} vs {exact}");
        }
        // TV9: level 10 ≈ 0.2598 G (3.85 ticks per row), level 15 ≈ 2.36 G.
        let g10 = f64::from(gravity(10)) / f64::from(GRAVITY_ONE_ROW);
        assert!((g10 - 0.2598).abs() < 0.0005);
        assert!((1.0 / g10 - 3.85).abs() < 0.01);
        let g15 = f64::from(gravity(15)) / f64::from(GRAVITY_ONE_ROW);
        assert!((g15 - 2.36).abs() < 0.005);
        assert!((formula(19) - 20.0).abs() < 0.5, "level 19 is the 20G of the table");
        assert_eq!(GRAVITY_20G, 1_310_720);
    }

    #[test]
    fn levels() {
        assert_eq!(versus_level(0), 1);
        assert_eq!(versus_level(1_799), 1);
        assert_eq!(versus_level(1_800), 2);
        assert_eq!(versus_level(14 * 1_800), 15);
        assert_eq!(versus_level(u32::MAX), 15);
        assert_eq!(marathon_level(9), 1);
        assert_eq!(marathon_level(10), 2);
        assert_eq!(marathon_level(149), 15);
        assert_eq!(gravity(0), gravity(1));
        assert_eq!(gravity(200), gravity(15));
    }
}
