//! Jaccard with squared sums (MONAI `DiceLoss(squared_pred=True, jaccard=True)`): per channel
//! 1 − (2I + ε_nr)/(2Q + 2G − 2I + ε_dr) with Q = Σs². Not two-valued.

use super::ratio::Ratio;
use super::LossParam;
use super::{Family, SumPart};
use crate::loss::config::LossConfig;
use crate::loss::sums::CaseSums;

pub struct SquaredJaccard;

impl Family for SquaredJaccard {
    fn params(&self) -> &'static [LossParam] {
        super::SHARED
    }

    fn sum_part(&self, config: &LossConfig, sums: &CaseSums) -> Option<SumPart> {
        Some(Ratio::JACCARD.with_squares().evaluate(config, sums))
    }
}
