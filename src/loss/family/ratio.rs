//! Ratio-type families: per channel k,
//!
//!   f_k = 1 − Num_k/Den_k,   Num = a_I·I + ε_nr,   Den = b_I·I + b_X·X + b_G·G + ε_dr,
//!
//! with X = S = Σs (or Q = Σs² for the squared forms) and, for instance,
//!
//!   dice:     a_I = 2, b_I = 0,         b_X = 1, b_G = 1     (MONAI DiceLoss)
//!   jaccard:  a_I = 2, b_I = −2,        b_X = 2, b_G = 2     (MONAI DiceLoss(jaccard=True))
//!   tversky:  a_I = 1, b_I = 1 − α − β, b_X = α, b_G = β     (MONAI TverskyLoss)
//!
//! so that ∂f/∂I = −(a_I·Den − Num·b_I)/Den² and ∂f/∂X = Num·b_X/Den². The loss is the mean over
//! the K channels in the loss of w_k·f_k; with ∂I/∂s = g, ∂S/∂s = 1 and ∂Q/∂s = 2s this gives the
//! coefficients P, R, T of dL/ds = P·g + R + T·s.
//!
//! Framework variants, set by presets: the value may be −Num/Den instead of 1 − Num/Den
//! ([`DiceForm`], nnU-Net); the denominator may have a lower bound (nnU-Net 1e-8, smp 1e-7), where
//! it is a constant; and a channel without foreground voxels may contribute nothing (smp).

use super::{ChannelEval, Coefficients, SumPart};
use crate::loss::config::LossConfig;
use crate::loss::sums::{CaseSums, ChannelSums};
use crate::names::named_enum;

named_enum! {
    /// How a Dice term enters the loss value (the gradient is the same).
    pub enum DiceForm: "Dice form" {
        /// 1 − dice (MONAI, segmentation_models_pytorch, Kervadec et al.).
        OneMinus = "one_minus",
        /// −dice (nnU-Net).
        Negative = "negative",
    }
}

/// The coefficients of a ratio-type family (see the module notes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ratio {
    pub a_i: f64,
    pub b_i: f64,
    pub b_x: f64,
    pub b_g: f64,
    /// X is Q = Σs² instead of S = Σs.
    pub squared: bool,
}

impl Ratio {
    /// Soft Dice: (2I + ε_nr)/(S + G + ε_dr).
    pub const DICE: Ratio = Ratio { a_i: 2.0, b_i: 0.0, b_x: 1.0, b_g: 1.0, squared: false };
    /// Soft Jaccard: (2I + ε_nr)/(2S + 2G − 2I + ε_dr).
    pub const JACCARD: Ratio = Ratio { a_i: 2.0, b_i: -2.0, b_x: 2.0, b_g: 2.0, squared: false };

    /// The same ratio with Q = Σs² in place of S.
    pub const fn with_squares(self) -> Ratio {
        Ratio { squared: true, ..self }
    }

    /// `(f, ∂f/∂I, ∂f/∂X)` of one channel.
    fn term(&self, config: &LossConfig, s: &ChannelSums) -> (f64, f64, f64) {
        let spec = &config.spec;
        if spec.skip_empty && s.label_count == 0 {
            return (0.0, 0.0, 0.0);
        }
        let (i, g) = (s.intersection, s.label_count as f64);
        let x = if self.squared { s.pred_sq_sum } else { s.pred_sum };
        let num = self.a_i * i + spec.smooth_nr;
        let den_raw = self.b_i * i + self.b_x * x + self.b_g * g + spec.smooth_dr;
        let one = if spec.dice_form == DiceForm::OneMinus { 1.0 } else { 0.0 };
        if den_raw < spec.denominator_floor {
            let den = spec.denominator_floor;
            return (one - num / den, -self.a_i / den, 0.0);
        }
        let den = den_raw;
        (one - num / den, -(self.a_i * den - num * self.b_i) / (den * den), num * self.b_x / (den * den))
    }

    /// The mean over the channels in the loss of w_k·f_k, and each channel's coefficients.
    pub fn evaluate(&self, config: &LossConfig, sums: &CaseSums) -> SumPart {
        let mut channels = vec![ChannelEval::default(); config.channels];
        let k_count = config.k() as f64;
        let mut total = 0.0;
        for k in config.in_loss() {
            let (f, df_di, df_dx) = self.term(config, &sums.channels[k]);
            let w = config.weight(k) / k_count;
            total += w * f;
            let (r, t) = if self.squared { (0.0, 2.0 * w * df_dx) } else { (w * df_dx, 0.0) };
            channels[k] = ChannelEval { term: Some(f), coefficients: Coefficients { p: w * df_di, r, t } };
        }
        SumPart { value: total, channels }
    }
}

/// The part with every channel's coefficients multiplied by `x`.
pub fn scaled(mut part: SumPart, x: f64) -> SumPart {
    for ch in &mut part.channels {
        ch.coefficients = ch.coefficients.scaled(x);
    }
    part
}
