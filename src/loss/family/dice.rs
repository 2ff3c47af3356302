//! Soft Dice (MONAI `DiceLoss`, the default): per channel 1 − (2I + ε_nr)/(S + G + ε_dr), the
//! mean over the channels in the loss, each weighted by its class weight. With respect to the
//! probabilities its gradient takes two values per channel, −a·g + c with a = 2/(K·D) and
//! c = N/(K·D²) (Kervadec & de Bruijne 2023).

use super::ratio::Ratio;
use super::LossParam;
use super::{Family, SumPart};
use crate::loss::config::LossConfig;
use crate::loss::sums::CaseSums;

pub struct Dice;

impl Family for Dice {
    fn params(&self) -> &'static [LossParam] {
        super::SHARED
    }

    fn sum_part(&self, config: &LossConfig, sums: &CaseSums) -> Option<SumPart> {
        Some(Ratio::DICE.evaluate(config, sums))
    }
}
