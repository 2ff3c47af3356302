//! What every loss family provides ([`Family`]): the parameters it reads, and from a case's sums
//! its value and the coefficients of its gradient with respect to the probabilities,
//!
//!   dL/ds_ki = P_k·g_ki + R_k + T_k·s_ki     (P = ∂L/∂I, R = ∂L/∂S, T = 2·∂L/∂Q),
//!
//! of its sum-based part; a cross-entropy part, when there is one, is in [`crate::loss::ce`].

use super::{LossParam, LossSpec};
use crate::loss::config::LossConfig;
use crate::loss::sums::CaseSums;

/// The gradient of a sum-based loss on one channel, dL/ds = P·g + R + T·s.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Coefficients {
    /// P = ∂L/∂I: the weight of the ground truth.
    pub p: f64,
    /// R = ∂L/∂S: the constant.
    pub r: f64,
    /// T = 2·∂L/∂Q: the weight of the probability itself (0 unless the loss uses Σs²).
    pub t: f64,
}

impl Coefficients {
    /// All three multiplied by `x`.
    pub fn scaled(self, x: f64) -> Coefficients {
        Coefficients { p: self.p * x, r: self.r * x, t: self.t * x }
    }

    /// dL/ds on a voxel of the channel when T = 0: P + R on foreground, R on background.
    pub fn level(self, foreground: bool) -> f64 {
        if foreground {
            self.p + self.r
        } else {
            self.r
        }
    }
}

/// What a family's sum-based part says about one channel.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ChannelEval {
    /// The channel's own term before the reduction over channels (None when the loss has no
    /// per-channel term: generalized Dice, cross-entropy, or a channel outside the loss).
    pub term: Option<f64>,
    pub coefficients: Coefficients,
}

/// The sum-based part of a loss on a case.
#[derive(Clone, Debug, PartialEq)]
pub struct SumPart {
    /// Its value (before any λ of a combined loss).
    pub value: f64,
    /// One entry per prediction channel; the coefficients include the λ of a combined loss.
    pub channels: Vec<ChannelEval>,
}

/// A loss family.
pub trait Family: Sync {
    /// The parameters the family reads (the family itself aside). A parameter given explicitly
    /// that none of the requested losses reads is refused.
    fn params(&self) -> &'static [LossParam];

    /// The sum-based part of the loss: its value and coefficients. None when the loss has none
    /// (cross-entropy).
    fn sum_part(&self, config: &LossConfig, sums: &CaseSums) -> Option<SumPart>;

    /// Whether the loss has a cross-entropy part (which uses every channel, background included).
    fn has_ce(&self) -> bool {
        false
    }

    /// The weights (λ_sum, λ_ce) of the two parts when the loss has both.
    fn part_weights(&self, _spec: &LossSpec) -> (f64, f64) {
        (1.0, 1.0)
    }

    /// How the sum-based part combines the channels in the loss.
    fn reduction(&self) -> Reduction {
        Reduction::Mean
    }
}

/// How a loss combines its channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reduction {
    /// The mean of the channels' terms (each weighted by its class weight).
    Mean,
    /// The sum of the channels' terms (mimic).
    Sum,
    /// One ratio of sums pooled over the channels (generalized Dice).
    Pooled,
    /// No per-channel terms: the mean over voxels of a term that reads every channel
    /// (cross-entropy).
    Voxels,
}

impl Reduction {
    /// In words, for the `channels` channels in the loss.
    pub fn describe(self, channels: usize) -> String {
        let s = if channels == 1 { "" } else { "s" };
        match self {
            Reduction::Mean => format!("mean over {channels} channel{s}"),
            Reduction::Sum => format!("summed over {channels} channel{s}"),
            Reduction::Pooled => format!("one ratio pooled over {channels} channel{s}"),
            Reduction::Voxels => "mean over voxels of a term that reads every channel".to_string(),
        }
    }
}
