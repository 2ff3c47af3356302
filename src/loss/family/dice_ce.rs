//! Dice plus cross-entropy (MONAI `DiceCELoss`, nnU-Net `DC_and_CE_loss`):
//! λ_dice·L_dice + λ_ce·CE, the Dice part over the channels in the loss, the cross-entropy part over
//! every channel ([`crate::loss::ce`]). Not two-valued: the cross-entropy term varies per voxel.

use super::ratio::{scaled, Ratio};
use super::LossParam::{self, *};
use super::LossSpec;
use super::{Family, SumPart};
use crate::loss::config::LossConfig;
use crate::loss::sums::CaseSums;

pub struct DiceCe;

impl Family for DiceCe {
    fn params(&self) -> &'static [LossParam] {
        &[
            Activation,
            SmoothNr,
            SmoothDr,
            IncludeBackground,
            ClassWeights,
            LambdaDice,
            LambdaCe,
            DiceForm,
            DenominatorFloor,
            SkipEmpty,
        ]
    }

    fn sum_part(&self, config: &LossConfig, sums: &CaseSums) -> Option<SumPart> {
        Some(scaled(Ratio::DICE.evaluate(config, sums), config.spec.lambda_dice))
    }

    fn has_ce(&self) -> bool {
        true
    }

    fn part_weights(&self, spec: &LossSpec) -> (f64, f64) {
        (spec.lambda_dice, spec.lambda_ce)
    }
}
