//! Dice with squared sums in the denominator (Milletari et al. 2016, V-Net; MONAI
//! `DiceLoss(squared_pred=True)`): per channel 1 − (2I + ε_nr)/(Q + G + ε_dr) with Q = Σs² (and
//! Σg² = G). Its gradient has a term T·s: not two-valued.

use super::ratio::Ratio;
use super::LossParam;
use super::{Family, SumPart};
use crate::loss::config::LossConfig;
use crate::loss::sums::CaseSums;

pub struct SquaredDice;

impl Family for SquaredDice {
    fn params(&self) -> &'static [LossParam] {
        super::SHARED
    }

    fn sum_part(&self, config: &LossConfig, sums: &CaseSums) -> Option<SumPart> {
        Some(Ratio::DICE.with_squares().evaluate(config, sums))
    }
}
