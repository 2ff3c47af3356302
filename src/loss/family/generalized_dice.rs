//! Generalized Dice (Sudre et al. 2017; MONAI `GeneralizedDiceLoss`): one ratio over the channels
//! in the loss,
//!
//!   L = 1 − (2·Σ_k w_k·I_k + ε_nr)/(Σ_k w_k·(S_k + G_k) + ε_dr),
//!
//! with class weights w_k from the ground-truth volumes G_k ([`WeightType`]; an empty class's
//! infinite weight is replaced by the largest finite one, as MONAI does). With the weights held
//! constant, dL/ds_k = −2·w_k/Den·g + w_k·Num/Den²: two-valued per channel.

use super::LossParam::{self, *};
use super::{ChannelEval, Coefficients, Family, SumPart};
use crate::loss::config::LossConfig;
use crate::loss::sums::CaseSums;
use crate::names::named_enum;

named_enum! {
    /// Class weights of the generalized Dice loss, from the ground-truth volume G_k.
    pub enum WeightType: "weighting" {
        /// w = 1 / G².
        Square = "square",
        /// w = 1 / G.
        Simple = "simple",
        /// w = 1.
        Uniform = "uniform",
    }
}

pub struct GeneralizedDice;

/// The weights of the channels in the loss, in channel order.
pub fn weights(config: &LossConfig, sums: &CaseSums) -> Vec<f64> {
    let raw: Vec<f64> = config
        .in_loss()
        .map(|k| {
            let g = sums.channels[k].label_count as f64;
            match config.spec.w_type {
                WeightType::Square => 1.0 / (g * g),
                WeightType::Simple => 1.0 / g,
                WeightType::Uniform => 1.0,
            }
        })
        .collect();
    let max_finite = raw.iter().copied().filter(|w| w.is_finite()).fold(0.0, f64::max);
    raw.into_iter().map(|w| if w.is_finite() { w } else { max_finite }).collect()
}

impl Family for GeneralizedDice {
    fn params(&self) -> &'static [LossParam] {
        &[Activation, SmoothNr, SmoothDr, IncludeBackground, WType]
    }

    fn sum_part(&self, config: &LossConfig, sums: &CaseSums) -> Option<SumPart> {
        let spec = &config.spec;
        let w = weights(config, sums);
        let (mut num, mut den) = (spec.smooth_nr, spec.smooth_dr);
        for (wk, k) in w.iter().zip(config.in_loss()) {
            let s = &sums.channels[k];
            num += 2.0 * wk * s.intersection;
            den += wk * (s.pred_sum + s.label_count as f64);
        }
        let mut channels = vec![ChannelEval::default(); config.channels];
        for (wk, k) in w.iter().zip(config.in_loss()) {
            channels[k].coefficients = Coefficients { p: -2.0 * wk / den, r: wk * num / (den * den), t: 0.0 };
        }
        Some(SumPart { value: 1.0 - num / den, channels })
    }

    fn reduction(&self) -> super::interface::Reduction {
        super::interface::Reduction::Pooled
    }
}
