//! Tversky (Salehi et al. 2017; MONAI `TverskyLoss`): per channel
//! 1 − (TP + ε_nr)/(TP + α·FP + β·FN + ε_dr) with TP = I, FP = S − I, FN = G − I, i.e. a ratio with
//! a_I = 1, b_I = 1 − α − β, b_X = α, b_G = β. Two-valued with respect to the probabilities.

use super::ratio::Ratio;
use super::LossParam::{self, *};
use super::{Family, SumPart};
use crate::loss::config::LossConfig;
use crate::loss::sums::CaseSums;

pub struct Tversky;

impl Family for Tversky {
    fn params(&self) -> &'static [LossParam] {
        &[Activation, SmoothNr, SmoothDr, IncludeBackground, Alpha, Beta, DiceForm, DenominatorFloor, SkipEmpty]
    }

    fn sum_part(&self, config: &LossConfig, sums: &CaseSums) -> Option<SumPart> {
        let s = &config.spec;
        let ratio = Ratio { a_i: 1.0, b_i: 1.0 - s.alpha - s.beta, b_x: s.alpha, b_g: s.beta, squared: false };
        Some(ratio.evaluate(config, sums))
    }
}
