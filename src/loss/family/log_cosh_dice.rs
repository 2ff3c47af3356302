//! log-cosh Dice (Jadon 2020): ln(cosh(L_dice)) of the soft Dice loss L_dice. Its gradient is
//! tanh(L_dice) times Dice's, so it stays two-valued with respect to the probabilities.

use super::ratio::{scaled, Ratio};
use super::LossParam::{self, *};
use super::{Family, SumPart};
use crate::loss::config::LossConfig;
use crate::loss::sums::CaseSums;

pub struct LogCoshDice;

/// ln(cosh(x)) without overflow.
fn log_cosh(x: f64) -> f64 {
    let a = x.abs();
    a + (-2.0 * a).exp().ln_1p() - std::f64::consts::LN_2
}

impl Family for LogCoshDice {
    fn params(&self) -> &'static [LossParam] {
        &[Activation, SmoothNr, SmoothDr, IncludeBackground, DiceForm, DenominatorFloor, SkipEmpty]
    }

    fn sum_part(&self, config: &LossConfig, sums: &CaseSums) -> Option<SumPart> {
        let dice = Ratio::DICE.evaluate(config, sums);
        let total = dice.value;
        let mut part = scaled(dice, total.tanh());
        part.value = log_cosh(total);
        Some(part)
    }
}
