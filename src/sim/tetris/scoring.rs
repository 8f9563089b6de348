//! Clear classification, points (reference §6), attack (§7.1), and the
//! REN / back-to-back state machine. Pure functions of their arguments.

use crate::sim::event::Spin;

/// Attack of a perfect clear, added on top (§7.1).
pub const PERFECT_CLEAR_ATTACK: u16 = 10;
/// Attack added by a back-to-back bonus (§7.1, no chaining).
pub const B2B_ATTACK: u16 = 1;
/// Guideline Standard combo attack by REN; the last value holds for REN ≥ 11.
pub const COMBO_ATTACK: [u16; 12] = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 4, 5];
/// Combo points are `COMBO_POINTS × REN × level`.
pub const COMBO_POINTS: u32 = 50;

/// What a lock did, for points and attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClearKind {
    Nothing,
    Single,
    Double,
    Triple,
    Tetris,
    MiniZero,
    MiniSingle,
    MiniDouble,
    TSpinZero,
    TSpinSingle,
    TSpinDouble,
    TSpinTriple,
}

impl ClearKind {
    pub fn classify(spin: Spin, lines: u8) -> ClearKind {
        match (spin, lines) {
            (Spin::None, 0) => ClearKind::Nothing,
            (Spin::None, 1) => ClearKind::Single,
            (Spin::None, 2) => ClearKind::Double,
            (Spin::None, 3) => ClearKind::Triple,
            (Spin::None, _) => ClearKind::Tetris,
            (Spin::Mini, 0) => ClearKind::MiniZero,
            (Spin::Mini, 1) => ClearKind::MiniSingle,
            (Spin::Mini, 2) => ClearKind::MiniDouble,
            // A mini triple cannot happen under the 3-corner rule (§5.6): a T
            // that clears three rows has both front corners filled.
            (Spin::Mini, _) | (Spin::Full, 3..) => ClearKind::TSpinTriple,
            (Spin::Full, 0) => ClearKind::TSpinZero,
            (Spin::Full, 1) => ClearKind::TSpinSingle,
            (Spin::Full, 2) => ClearKind::TSpinDouble,
        }
    }

    /// Action points before the level multiplier (§6).
    pub fn action_points(self) -> u32 {
        match self {
            ClearKind::Nothing => 0,
            ClearKind::Single => 100,
            ClearKind::Double => 300,
            ClearKind::Triple => 500,
            ClearKind::Tetris => 800,
            ClearKind::MiniZero => 100,
            ClearKind::MiniSingle => 200,
            ClearKind::MiniDouble => 400,
            ClearKind::TSpinZero => 400,
            ClearKind::TSpinSingle => 800,
            ClearKind::TSpinDouble => 1_200,
            ClearKind::TSpinTriple => 1_600,
        }
    }

    /// Base attack lines (§7.1).
    pub fn base_attack(self) -> u16 {
        match self {
            ClearKind::Double | ClearKind::MiniDouble => 1,
            ClearKind::Triple | ClearKind::TSpinSingle => 2,
            ClearKind::Tetris | ClearKind::TSpinDouble => 4,
            ClearKind::TSpinTriple => 6,
            _ => 0,
        }
    }

    /// A difficult (back-to-back eligible) line clear: a Tetris or a T-spin
    /// of either kind that clears at least one line.
    pub fn is_difficult(self) -> bool {
        matches!(
            self,
            ClearKind::Tetris
                | ClearKind::MiniSingle
                | ClearKind::MiniDouble
                | ClearKind::TSpinSingle
                | ClearKind::TSpinDouble
                | ClearKind::TSpinTriple
        )
    }
}

/// REN and back-to-back state of one player.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streaks {
    /// −1 when no combo runs; +1 per consecutive line-clearing lock.
    pub ren: i32,
    /// Consecutive difficult line clears; > 0 means B2B is active.
    pub b2b_chain: u16,
}

impl Default for Streaks {
    fn default() -> Self {
        Streaks { ren: -1, b2b_chain: 0 }
    }
}

impl Streaks {
    /// Updates the state for one lock; returns the B2B bonus flag.
    pub fn record(&mut self, kind: ClearKind, lines: u8) -> bool {
        if lines == 0 {
            // T-spin zero included: REN resets, B2B is left alone.
            self.ren = -1;
            return false;
        }
        self.ren = self.ren.saturating_add(1);
        if kind.is_difficult() {
            let bonus = self.b2b_chain > 0;
            self.b2b_chain = self.b2b_chain.saturating_add(1);
            bonus
        } else {
            self.b2b_chain = 0;
            false
        }
    }
}

/// One lock's result for scoring and attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClearOutcome {
    pub kind: ClearKind,
    pub lines: u8,
    /// REN after this lock.
    pub ren: i32,
    pub b2b_bonus: bool,
    pub perfect_clear: bool,
}

/// Points of a lock at `level` (§6), drops excluded.
pub fn lock_points(outcome: &ClearOutcome, level: u32) -> u32 {
    let mut action = outcome.kind.action_points() * level;
    if outcome.b2b_bonus {
        // Difficult action values are even, so ×1.5 stays an integer.
        action = action * 3 / 2;
    }
    let combo = if outcome.ren > 0 { COMBO_POINTS * outcome.ren as u32 * level } else { 0 };
    let perfect = if outcome.perfect_clear {
        perfect_clear_points(outcome.lines, outcome.b2b_bonus) * level
    } else {
        0
    };
    action + combo + perfect
}

/// Perfect clear bonus before the level multiplier (§6).
fn perfect_clear_points(lines: u8, b2b_bonus: bool) -> u32 {
    match lines {
        1 => 800,
        2 => 1_200,
        3 => 1_800,
        _ if b2b_bonus => 3_200,
        _ => 2_000,
    }
}

/// Attack of a lock (§7.1); 0 unless it cleared lines.
pub fn attack(outcome: &ClearOutcome) -> u16 {
    if outcome.lines == 0 {
        return 0;
    }
    let combo_index = (outcome.ren.max(0) as usize).min(COMBO_ATTACK.len() - 1);
    outcome.kind.base_attack()
        + if outcome.b2b_bonus { B2B_ATTACK } else { 0 }
        + COMBO_ATTACK[combo_index]
        + if outcome.perfect_clear { PERFECT_CLEAR_ATTACK } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::tetris::garbage::{GarbageQueue, Packet};

    fn outcome(streaks: &mut Streaks, spin: Spin, lines: u8, perfect_clear: bool) -> ClearOutcome {
        let kind = ClearKind::classify(spin, lines);
        let b2b_bonus = streaks.record(kind, lines);
        ClearOutcome { kind, lines, ren: streaks.ren, b2b_bonus, perfect_clear }
    }

    /// TV10: level 3, REN 2, B2B active, T-spin double = 5700 points; and
    /// the §6 example: level 1, B2B TSD at REN 1 = 1850.
    #[test]
    fn tv10_scoring() {
        let tsd = |ren| ClearOutcome {
            kind: ClearKind::TSpinDouble,
            lines: 2,
            ren,
            b2b_bonus: true,
            perfect_clear: false,
        };
        assert_eq!(lock_points(&tsd(2), 3), 5_700);
        assert_eq!(lock_points(&tsd(1), 1), 1_850);
    }

    /// TV4 through the REN/B2B state machine and the incoming queue: the
    /// attacks 4, 5, 1, 5, 0, 3, 15 and the 3-line cancel on the first lock.
    #[test]
    fn tv4_attack_sequence_with_cancelling() {
        let mut streaks = Streaks::default();
        let mut queue = GarbageQueue::default();
        queue.push(Packet { lines: 3, sender: 1, hole_column: 0, ready_tick: 1_000 });
        let sequence = [
            (Spin::None, 4, false, 0, 4, 1),
            (Spin::Full, 2, false, 1, 5, 5),
            (Spin::None, 1, false, 2, 1, 1),
            (Spin::None, 4, false, 3, 5, 5),
            (Spin::None, 0, false, -1, 0, 0),
            (Spin::Full, 1, false, 0, 3, 3),
            (Spin::None, 4, true, 1, 15, 15),
        ];
        let mut b2b_flags = Vec::new();
        for (spin, lines, perfect, ren, expected_attack, expected_sent) in sequence {
            let result = outcome(&mut streaks, spin, lines, perfect);
            assert_eq!(result.ren, ren);
            let lines_of_attack = attack(&result);
            assert_eq!(lines_of_attack, expected_attack);
            let sent = u32::from(lines_of_attack) - queue.cancel(u32::from(lines_of_attack));
            assert_eq!(sent, expected_sent);
            b2b_flags.push(result.b2b_bonus);
        }
        assert_eq!(b2b_flags, [false, true, false, false, false, true, true]);
        assert_eq!(streaks.b2b_chain, 3);
    }

    /// Direct attack computation for the rows of TV4.
    #[test]
    fn tv4_attack_table_rows() {
        let row = |kind, lines, ren, b2b_bonus, perfect_clear| {
            attack(&ClearOutcome { kind, lines, ren, b2b_bonus, perfect_clear })
        };
        assert_eq!(row(ClearKind::Tetris, 4, 0, false, false), 4);
        assert_eq!(row(ClearKind::TSpinDouble, 2, 1, true, false), 5);
        assert_eq!(row(ClearKind::Single, 1, 2, false, false), 1);
        assert_eq!(row(ClearKind::Tetris, 4, 3, false, false), 5);
        assert_eq!(row(ClearKind::Nothing, 0, -1, false, false), 0);
        assert_eq!(row(ClearKind::TSpinSingle, 1, 0, true, false), 3);
        assert_eq!(row(ClearKind::Tetris, 4, 1, true, true), 15);
        // The combo table holds its last value past REN 11.
        assert_eq!(row(ClearKind::Single, 1, 40, false, false), 5);
        // A T-spin with no lines sends nothing.
        assert_eq!(row(ClearKind::TSpinZero, 0, -1, false, false), 0);
    }

    /// §6: T-spin zero leaves B2B alone and resets REN; a plain clear breaks B2B.
    #[test]
    fn streak_rules() {
        let mut streaks = Streaks::default();
        assert!(!streaks.record(ClearKind::TSpinSingle, 1));
        assert!(!streaks.record(ClearKind::TSpinZero, 0));
        assert_eq!(streaks, Streaks { ren: -1, b2b_chain: 1 });
        assert!(streaks.record(ClearKind::MiniSingle, 1));
        assert!(!streaks.record(ClearKind::Double, 2));
        assert_eq!(streaks, Streaks { ren: 1, b2b_chain: 0 });
    }

    #[test]
    fn points_of_every_kind() {
        let points = |spin, lines| {
            let kind = ClearKind::classify(spin, lines);
            lock_points(
                &ClearOutcome { kind, lines, ren: 0, b2b_bonus: false, perfect_clear: false },
                2,
            )
        };
        assert_eq!(points(Spin::None, 1), 200);
        assert_eq!(points(Spin::None, 4), 1_600);
        assert_eq!(points(Spin::Mini, 0), 200);
        assert_eq!(points(Spin::Mini, 2), 800);
        assert_eq!(points(Spin::Full, 0), 800);
        assert_eq!(points(Spin::Full, 3), 3_200);
        let perfect_b2b_tetris = ClearOutcome {
            kind: ClearKind::Tetris,
            lines: 4,
            ren: 0,
            b2b_bonus: true,
            perfect_clear: true,
        };
        assert_eq!(lock_points(&perfect_b2b_tetris, 1), 1_200 + 3_200);
    }
}
