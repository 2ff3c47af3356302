//! Cross-entropy as PyTorch computes it (the form follows the activation and the number of
//! channels; see [`crate::loss::ce`]), over every channel, with optional class weights. No
//! sum-based part: its gradient is a per-voxel term.

use super::LossParam::{self, *};
use super::{Family, SumPart};
use crate::loss::config::LossConfig;
use crate::loss::sums::CaseSums;

pub struct CrossEntropy;

impl Family for CrossEntropy {
    fn params(&self) -> &'static [LossParam] {
        &[Activation, ClassWeights]
    }

    fn sum_part(&self, _config: &LossConfig, _sums: &CaseSums) -> Option<SumPart> {
        None
    }

    fn has_ce(&self) -> bool {
        true
    }

    fn reduction(&self) -> super::interface::Reduction {
        super::interface::Reduction::Voxels
    }
}
