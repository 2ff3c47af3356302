//! Pure math of the losses: each loss is a value and a closed-form gradient, with the activation's
//! chain rule when the prediction holds logits. No I/O, no formatting.
//!
//! The soft Dice loss, as MONAI's `DiceLoss(reduction="mean")` computes it for one case, per
//! channel k of the K channels in the loss (all C channels, or C − 1 without background):
//!
//!   I_k = Σ_i s_ki·g_ki,   S_k = Σ_i s_ki,   G_k = Σ_i g_ki
//!   N_k = 2·I_k + ε_nr,    D_k = S_k + G_k + ε_dr,    L = (1/K)·Σ_k (1 − N_k / D_k)
//!
//! and its gradient with respect to the probabilities s (see `docs/math.md` for the derivation):
//!
//!   dL/ds_ki = (N_k − 2·g_ki·D_k) / (K·D_k²) = −a_k·g_ki + c_k,
//!   a_k = 2 / (K·D_k),   c_k = N_k / (K·D_k²).

pub mod activation;
pub mod dice;

use std::ops::Range;

use serde::Serialize;

pub use activation::Activation;
pub use dice::{ChannelSums, Dice, GradientKernel};

use crate::error::{Error, Result};

/// The options of the Dice loss as a user gives them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct DiceOptions {
    /// Activation applied to the file's values inside the loss.
    pub activation: Activation,
    /// ε_nr, added to the numerator 2·I.
    pub smooth_nr: f64,
    /// ε_dr, added to the denominator S + G.
    pub smooth_dr: f64,
    /// Whether channel 0 (background) takes part in the loss.
    pub include_background: bool,
}

impl Default for DiceOptions {
    /// MONAI `DiceLoss()` defaults.
    fn default() -> Self {
        DiceOptions {
            activation: Activation::None,
            smooth_nr: 1e-5,
            smooth_dr: 1e-5,
            include_background: true,
        }
    }
}

/// Dice options checked against the prediction they apply to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossConfig {
    pub options: DiceOptions,
    /// Channels in the prediction, C.
    pub channels: usize,
    /// First channel in the loss (0, or 1 without background).
    pub first: usize,
    /// `--no-background` was asked for on a single-channel prediction, where (as in MONAI) it
    /// cannot apply and is ignored.
    pub background_ignored: bool,
}

impl LossConfig {
    /// Validates `options` for a prediction with `channels` channels.
    pub fn new(options: DiceOptions, channels: usize) -> Result<Self> {
        for (name, v) in [
            ("--smooth-nr", options.smooth_nr),
            ("--smooth-dr", options.smooth_dr),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::usage(format!(
                    "{name} must be a finite number ≥ 0, got {v}"
                )));
            }
        }
        if channels == 0 {
            return Err(Error::usage("the prediction has no channels"));
        }
        if options.activation == Activation::Softmax && channels < 2 {
            return Err(Error::usage(
                "--activation softmax needs at least two channels, but the prediction has one; \
                 use --activation sigmoid for a single foreground logit",
            ));
        }
        let background_ignored = !options.include_background && channels == 1;
        let first = usize::from(!options.include_background && channels > 1);
        Ok(LossConfig {
            options,
            channels,
            first,
            background_ignored,
        })
    }

    /// Number of channels in the loss, K.
    pub fn k(&self) -> usize {
        self.channels - self.first
    }

    /// The channels in the loss.
    pub fn in_loss(&self) -> Range<usize> {
        self.first..self.channels
    }

    /// The class index whose voxels are foreground (g = 1) for channel `k`: 1 for a
    /// single-channel prediction, `k` otherwise.
    pub fn fg_class(&self, k: usize) -> u8 {
        if self.channels == 1 {
            1
        } else {
            k as u8
        }
    }
}
