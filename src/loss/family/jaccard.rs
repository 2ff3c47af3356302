//! Soft Jaccard / IoU (MONAI `DiceLoss(jaccard=True)`): per channel
//! 1 − (2I + ε_nr)/(2S + 2G − 2I + ε_dr), the mean over the channels in the loss. Two-valued with
//! respect to the probabilities, like Dice.

use super::ratio::Ratio;
use super::LossParam;
use super::{Family, SumPart};
use crate::loss::config::LossConfig;
use crate::loss::sums::CaseSums;

pub struct Jaccard;

impl Family for Jaccard {
    fn params(&self) -> &'static [LossParam] {
        super::SHARED
    }

    fn sum_part(&self, config: &LossConfig, sums: &CaseSums) -> Option<SumPart> {
        Some(Ratio::JACCARD.evaluate(config, sums))
    }
}
