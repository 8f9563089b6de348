//! Room options of a Tetris match, their defaults and their limits.
//!
//! Every limit is a named constant. A configuration that arrives out of
//! range is clamped by [`TetrisConfig::clamped`] when a match is created
//! (a game cannot refuse to start), so the engine only ever sees values it
//! was designed for.

/// Lock delay (reference §4.2): 0.5 s at 60 Hz.
pub const DEFAULT_LOCK_DELAY_TICKS: u16 = 30;
/// Successful shifts/rotations that reset the lock timer (Extended Placement).
pub const DEFAULT_LOCK_RESETS: u16 = 15;
/// Travel time of a garbage packet before it may enter a board (§7.3).
pub const DEFAULT_GARBAGE_DELAY_TICKS: u16 = 20;
/// Garbage rows that may enter a board at one lock (§7.3).
pub const DEFAULT_GARBAGE_CAP: u8 = 8;
/// Chance in percent that a new packet gets a new hole column (§7.4).
pub const DEFAULT_HOLE_CHANGE_PERCENT: u8 = 100;
/// Soft drop multiplies gravity by this factor (Guideline: 20).
pub const DEFAULT_SOFT_DROP_FACTOR: u16 = 20;
/// Inputs one player may send in one tick before the rest are dropped.
pub const DEFAULT_MAX_INPUTS_PER_TICK: u16 = 16;

/// Upper bounds of the options. Lower bounds are 1 unless noted.
pub const MAX_LOCK_DELAY_TICKS: u16 = 600;
/// 0 is allowed: the piece locks at the end of the first grounded tick.
pub const MAX_LOCK_RESETS: u16 = 255;
/// 0 is allowed: garbage is ready at once.
pub const MAX_GARBAGE_DELAY_TICKS: u16 = 3_600;
/// A board has 40 rows; more garbage than that in one lock is a top out anyway.
pub const MAX_GARBAGE_CAP: u8 = 40;
/// 0 is allowed: every packet reuses the previous hole column.
pub const MAX_HOLE_CHANGE_PERCENT: u8 = 100;
/// TETR.IO lets players pick 5x..40x.
pub const MAX_SOFT_DROP_FACTOR: u16 = 40;
/// A client repeating its last inputs against loss never needs more.
pub const MAX_INPUTS_PER_TICK: u16 = 64;

/// Lines that finish a Sprint.
pub const SPRINT_LINES: u32 = 40;
/// Lines that finish a Marathon (the end of level 15).
pub const MARATHON_LINES: u32 = 150;

/// What kind of match is played.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Players attack each other; the last one standing wins.
    #[default]
    Versus,
    /// Solo: clear 40 lines. Level 1 throughout.
    Sprint,
    /// Solo: level = 1 + lines / 10 (at most 15); ends at 150 lines.
    Marathon,
}

/// Rotation system (kick tables, reference §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RotationSystem {
    /// Guideline SRS (§2.2 + §2.3). No 180° rotation: the input bit is rejected.
    #[default]
    Srs,
    /// TETR.IO SRS+: the mirror-symmetric I table (§2.4) and 180° rotation.
    SrsPlus,
}

impl RotationSystem {
    pub fn has_half_turn(self) -> bool {
        self == RotationSystem::SrsPlus
    }
}

/// Room options of a Tetris match. `Default` is the versus defaults of the
/// rules reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TetrisConfig {
    pub mode: Mode,
    pub rotation_system: RotationSystem,
    pub lock_delay_ticks: u16,
    pub lock_resets: u16,
    pub garbage_delay_ticks: u16,
    pub garbage_cap: u8,
    pub hole_change_percent: u8,
    pub soft_drop_factor: u16,
    pub max_inputs_per_tick: u16,
}

impl Default for TetrisConfig {
    fn default() -> Self {
        TetrisConfig {
            mode: Mode::Versus,
            rotation_system: RotationSystem::Srs,
            lock_delay_ticks: DEFAULT_LOCK_DELAY_TICKS,
            lock_resets: DEFAULT_LOCK_RESETS,
            garbage_delay_ticks: DEFAULT_GARBAGE_DELAY_TICKS,
            garbage_cap: DEFAULT_GARBAGE_CAP,
            hole_change_percent: DEFAULT_HOLE_CHANGE_PERCENT,
            soft_drop_factor: DEFAULT_SOFT_DROP_FACTOR,
            max_inputs_per_tick: DEFAULT_MAX_INPUTS_PER_TICK,
        }
    }
}

impl TetrisConfig {
    /// The same options with every value brought into its documented range.
    pub fn clamped(&self) -> TetrisConfig {
        TetrisConfig {
            mode: self.mode,
            rotation_system: self.rotation_system,
            lock_delay_ticks: self.lock_delay_ticks.clamp(1, MAX_LOCK_DELAY_TICKS),
            lock_resets: self.lock_resets.min(MAX_LOCK_RESETS),
            garbage_delay_ticks: self.garbage_delay_ticks.min(MAX_GARBAGE_DELAY_TICKS),
            garbage_cap: self.garbage_cap.clamp(1, MAX_GARBAGE_CAP),
            hole_change_percent: self.hole_change_percent.min(MAX_HOLE_CHANGE_PERCENT),
            soft_drop_factor: self.soft_drop_factor.clamp(1, MAX_SOFT_DROP_FACTOR),
            max_inputs_per_tick: self.max_inputs_per_tick.clamp(1, MAX_INPUTS_PER_TICK),
        }
    }

    /// Sprint and Marathon: nobody sends garbage; each player plays alone.
    pub fn is_solo(&self) -> bool {
        self.mode != Mode::Versus
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_reference_values() {
        let config = TetrisConfig::default();
        assert_eq!(config.mode, Mode::Versus);
        assert_eq!(config.rotation_system, RotationSystem::Srs);
        assert_eq!(config.lock_delay_ticks, 30);
        assert_eq!(config.lock_resets, 15);
        assert_eq!(config.garbage_delay_ticks, 20);
        assert_eq!(config.garbage_cap, 8);
        assert_eq!(config.hole_change_percent, 100);
        assert_eq!(config.soft_drop_factor, 20);
        assert_eq!(config.max_inputs_per_tick, 16);
        assert_eq!(config.clamped(), config);
    }

    #[test]
    fn out_of_range_values_are_clamped() {
        let wild = TetrisConfig {
            lock_delay_ticks: 0,
            lock_resets: u16::MAX,
            garbage_delay_ticks: u16::MAX,
            garbage_cap: 0,
            hole_change_percent: 250,
            soft_drop_factor: 0,
            max_inputs_per_tick: 0,
            ..TetrisConfig::default()
        };
        let clamped = wild.clamped();
        assert_eq!(clamped.lock_delay_ticks, 1);
        assert_eq!(clamped.lock_resets, MAX_LOCK_RESETS);
        assert_eq!(clamped.garbage_delay_ticks, MAX_GARBAGE_DELAY_TICKS);
        assert_eq!(clamped.garbage_cap, 1);
        assert_eq!(clamped.hole_change_percent, 100);
        assert_eq!(clamped.soft_drop_factor, 1);
        assert_eq!(clamped.max_inputs_per_tick, 1);
    }
}
