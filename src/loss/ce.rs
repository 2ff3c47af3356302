//! Cross-entropy as PyTorch computes it, in the form that matches the prediction values. y_i is the
//! voxel's class, W the normaliser.
//!
//! ```text
//! logits, softmax      torch CrossEntropyLoss(weight=w), mean:
//!   CE = Σ_i w_{y_i}·(−log softmax(z_i)_{y_i}) / W,  W = Σ_i w_{y_i}
//!   dCE/dz_ki = w_{y_i}·(s_ki − g_ki) / W
//! logits, sigmoid      torch BCEWithLogitsLoss, mean over all C·N values:
//!   CE = Σ_{k,i} [max(z,0) − z·g + log(1 + e^(−|z|))] / (C·N)
//!   dCE/dz_ki = (s_ki − g_ki) / (C·N)
//! probabilities, C ≥ 2 torch NLLLoss(weight=w) of log p, log clamped at −100 as BCELoss does:
//!   CE = Σ_i w_{y_i}·(−max(log s_{y_i,i}, −100)) / W
//!   dCE/ds_ki = −g_ki·w_{y_i} / (s_ki·W) where log s_ki > −100, else 0 (the derivative of the
//!   value, clamp included, as autograd of torch.log(p).clamp(min=−100) gives it)
//! probabilities, C = 1 torch BCELoss:
//!   CE = Σ_i −[g·max(log s, −100) + (1 − g)·max(log(1 − s), −100)] / N
//!   dCE/ds_i = (s − g) / (max(s·(1 − s), 1e−12)·N)   (PyTorch's own backward formula)
//! ```
//!
//! MONAI's `DiceCELoss` (monai/losses/dice.py, 1.6.1) applies `CrossEntropyLoss(weight)` (C ≥ 2) or
//! `BCEWithLogitsLoss` (C = 1) to its raw input whatever its Dice part's `softmax`/`sigmoid` flags:
//! on probabilities it takes the softmax (or sigmoid) of the probabilities, and with `sigmoid=True`
//! and C ≥ 2 the softmax cross-entropy of the logits. With the `monai` preset the cross-entropy
//! follows it ([`Form::SoftmaxOfInput`], [`Form::SigmoidOfInput`]): the value and gradient of the
//! logit forms above with z the values as given, q = softmax(z) or sigmoid(z):
//!
//! ```text
//!   dCE/dz_ki = w_{y_i}·(q_ki − g_ki) / W    (C ≥ 2),    (q_i − g_i) / N    (C = 1)
//! ```
//!
//! Cross-entropy uses every channel (background included), as MONAI's
//! `DiceCELoss` and nnU-Net's `DC_and_CE_loss` do. The logit forms never divide by a probability, so
//! saturated logits give exact, finite gradients.

use std::ops::Range;

use super::activation::{sigmoid, softmax, Activation};
use super::config::LossConfig;
use super::family::LossSpec;
use super::preset::Preset;
use crate::case::{Case, IGNORED};

/// Which cross-entropy applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    SoftmaxLogits,
    SigmoidLogits,
    Nll,
    Bce,
    /// Softmax cross-entropy of the values as given while the sum-based part takes them as
    /// probabilities or through a sigmoid (MONAI `DiceCELoss`, C ≥ 2).
    SoftmaxOfInput,
    /// Binary cross-entropy with logits of the values as given while the sum-based part takes
    /// them as probabilities (MONAI `DiceCELoss`, C = 1).
    SigmoidOfInput,
}

impl Form {
    /// The form for a configuration: from its activation, channel count and preset.
    pub fn of(config: &LossConfig) -> Form {
        Form::for_spec(&config.spec, config.channels, config.regions)
    }

    /// The form for the parameters `spec` on a prediction of `channels` channels: one binary
    /// problem per channel when they are overlapping `regions` (as for one channel; nnU-Net's
    /// `DC_and_BCE_loss`).
    pub fn for_spec(spec: &LossSpec, channels: usize, regions: bool) -> Form {
        let monai = spec.preset == Some(Preset::Monai);
        let channels = if regions { 1 } else { channels };
        match (spec.activation, channels) {
            (Activation::Softmax, _) => Form::SoftmaxLogits,
            (Activation::Sigmoid, 1) => Form::SigmoidLogits,
            (Activation::Sigmoid, _) if monai => Form::SoftmaxOfInput,
            (Activation::Sigmoid, _) => Form::SigmoidLogits,
            (Activation::None, 1) if monai => Form::SigmoidOfInput,
            (Activation::None, 1) => Form::Bce,
            (Activation::None, _) if monai => Form::SoftmaxOfInput,
            (Activation::None, _) => Form::Nll,
        }
    }

    /// Whether the form is one channel at a time (binary cross-entropy), which takes no class
    /// weights.
    pub fn binary(self) -> bool {
        matches!(self, Form::SigmoidLogits | Form::Bce | Form::SigmoidOfInput)
    }
}

const LOG_FLOOR: f64 = -100.0;
/// e^−100: below it the clamped log is constant, and its derivative 0.
const CLAMPED_BELOW: f64 = 3.720075976020836e-44;
/// PyTorch's BCELoss backward divides by max(s·(1 − s), this).
const PROB_FLOOR: f64 = 1e-12;

/// `(Σ loss, Σ weight)` of the voxels in `r`. Voxels of the ignore label take no part (torch's
/// `ignore_index`; the binary forms: a mean over the values kept). With regions and an ignore
/// label the normaliser counts the voxels kept, not the values: nnU-Net's `DC_and_BCE_loss`
/// divides the masked sum over every channel by the mask's sum, which has one channel.
pub fn chunk_sum(form: Form, config: &LossConfig, case: &Case, r: Range<usize>) -> (f64, f64) {
    let pred = &case.prediction;
    let labels = &case.labels;
    let class = &labels.class[r.clone()];
    let c = config.channels;
    let (mut loss, mut norm) = (0.0, 0.0);
    match form {
        Form::SoftmaxLogits | Form::SoftmaxOfInput | Form::Nll => {
            let mut z = vec![0.0; c];
            for (j, &y) in class.iter().enumerate() {
                if y == IGNORED {
                    continue;
                }
                for (k, zk) in z.iter_mut().enumerate() {
                    *zk = pred.channel(k)[r.start + j] as f64;
                }
                let y = y as usize;
                let w = config.weight(y);
                let nll = if form == Form::Nll {
                    -z[y].ln().max(LOG_FLOOR)
                } else {
                    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
                    lse - z[y]
                };
                loss += w * nll;
                norm += w;
            }
        }
        Form::SigmoidLogits | Form::SigmoidOfInput | Form::Bce => {
            let per_voxel = labels.ignores() && config.regions;
            for k in 0..c {
                let (target, fg) = labels.target(k);
                for (&x, &cl) in pred.channel(k)[r.clone()].iter().zip(&target[r.clone()]) {
                    if cl == IGNORED {
                        continue;
                    }
                    let (x, g) = (x as f64, f64::from(u8::from(cl == fg)));
                    loss += if form == Form::Bce {
                        -(g * x.ln().max(LOG_FLOOR) + (1.0 - g) * (1.0 - x).ln().max(LOG_FLOOR))
                    } else {
                        x.max(0.0) - x * g + (-x.abs()).exp().ln_1p()
                    };
                    if !per_voxel || k == 0 {
                        norm += 1.0;
                    }
                }
            }
        }
    }
    (loss, norm)
}

/// `scale` times the cross-entropy gradient of one value of channel `k` for the channel-wise forms
/// (sigmoid logits, one-channel BCE), from its probability `p` (for [`Form::SigmoidOfInput`], which
/// comes with no activation, the value as given) on a voxel of the channel's foreground or not.
#[inline]
pub fn channel_gradient(form: Form, p: f64, foreground: bool, scale: f64) -> f64 {
    let g = f64::from(u8::from(foreground));
    match form {
        Form::SigmoidLogits => scale * (p - g),
        Form::SigmoidOfInput => scale * (sigmoid(p) - g),
        Form::Bce => scale * (p - g) / (p * (1.0 - p)).max(PROB_FLOOR),
        Form::SoftmaxLogits | Form::SoftmaxOfInput | Form::Nll => {
            unreachable!("softmax and NLL couple the channels")
        }
    }
}

/// Whether channel `k` is the foreground of a voxel of class `class` when there is one class per
/// voxel.
#[inline]
fn is_class(channels: usize, k: usize, class: u8) -> bool {
    class == crate::case::labels::channel_class(channels, k)
}

/// Adds `scale` times the cross-entropy gradient of one voxel (with respect to the file's values)
/// to `out`, given the voxel's activated probabilities `s`, its values as given `z` and its class.
#[inline]
pub fn add_gradient(form: Form, config: &LossConfig, s: &[f64], z: &[f64], class: u8, scale: f64, out: &mut [f64]) {
    match form {
        Form::SoftmaxOfInput => {
            let mut q = vec![0.0; z.len()];
            softmax(z, &mut q);
            add_gradient(Form::SoftmaxLogits, config, &q, z, class, scale, out);
        }
        Form::SoftmaxLogits => {
            let y = class as usize;
            let w = scale * config.weight(y);
            for (k, (o, &sk)) in out.iter_mut().zip(s).enumerate() {
                *o += w * (sk - f64::from(u8::from(k == y)));
            }
        }
        Form::Nll => {
            let y = class as usize;
            if s[y] > CLAMPED_BELOW {
                out[y] -= scale * config.weight(y) / s[y];
            }
        }
        Form::SigmoidLogits | Form::Bce => {
            let c = s.len();
            for (k, (o, &sk)) in out.iter_mut().zip(s).enumerate() {
                *o += channel_gradient(form, sk, is_class(c, k, class), scale);
            }
        }
        Form::SigmoidOfInput => {
            let c = z.len();
            for (k, (o, &zk)) in out.iter_mut().zip(z).enumerate() {
                *o += channel_gradient(form, zk, is_class(c, k, class), scale);
            }
        }
    }
}
