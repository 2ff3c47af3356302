//! The mimic loss (Kervadec & de Bruijne 2023): L = −Σ_k w_k·Σ_i s_ki·g_ki, the network output
//! times a negative of the ground truth, summed over the channels in the loss. Linear in I, so its
//! gradient is −w_k·g: the ground-truth part of the Dice gradient without the constant.

use super::LossParam::{self, *};
use super::{ChannelEval, Coefficients, Family, SumPart};
use crate::loss::config::LossConfig;
use crate::loss::sums::CaseSums;

pub struct Mimic;

impl Family for Mimic {
    fn params(&self) -> &'static [LossParam] {
        &[Activation, IncludeBackground, ClassWeights]
    }

    fn sum_part(&self, config: &LossConfig, sums: &CaseSums) -> Option<SumPart> {
        let mut channels = vec![ChannelEval::default(); config.channels];
        let mut total = 0.0;
        for k in config.in_loss() {
            let term = -config.weight(k) * sums.channels[k].intersection;
            total += term;
            channels[k] =
                ChannelEval { term: Some(term), coefficients: Coefficients { p: -config.weight(k), r: 0.0, t: 0.0 } };
        }
        Some(SumPart { value: total, channels })
    }

    fn reduction(&self) -> super::interface::Reduction {
        super::interface::Reduction::Sum
    }
}
