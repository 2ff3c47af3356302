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
//! Cross-entropy uses every channel (background included), as MONAI's
//! `DiceCELoss` and nnU-Net's `DC_and_CE_loss` do. The logit forms never divide by a probability, so
//! saturated logits give exact, finite gradients.

use std::ops::Range;

use super::activation::Activation;
use super::config::LossConfig;
use crate::case::Case;

/// Which cross-entropy applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    SoftmaxLogits,
    SigmoidLogits,
    Nll,
    Bce,
}

impl Form {
    /// The form for a configuration: from its activation and channel count.
    pub fn of(config: &LossConfig) -> Form {
        match (config.spec.activation, config.channels) {
            (Activation::Softmax, _) => Form::SoftmaxLogits,
            (Activation::Sigmoid, _) => Form::SigmoidLogits,
            (Activation::None, 1) => Form::Bce,
            (Activation::None, _) => Form::Nll,
        }
    }
}

const LOG_FLOOR: f64 = -100.0;
/// e^−100: below it the clamped log is constant, and its derivative 0.
const CLAMPED_BELOW: f64 = 3.720075976020836e-44;
/// PyTorch's BCELoss backward divides by max(s·(1 − s), this).
const PROB_FLOOR: f64 = 1e-12;

/// `(Σ loss, Σ weight)` of the voxels in `r`.
pub fn chunk_sum(form: Form, config: &LossConfig, case: &Case, r: Range<usize>) -> (f64, f64) {
    let pred = &case.prediction;
    let class = &case.labels.class[r.clone()];
    let c = config.channels;
    let (mut loss, mut norm) = (0.0, 0.0);
    match form {
        Form::SoftmaxLogits | Form::Nll => {
            let mut z = vec![0.0; c];
            for (j, &y) in class.iter().enumerate() {
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
        Form::SigmoidLogits | Form::Bce => {
            for k in 0..c {
                let fg = config.fg_class(k);
                for (&x, &cl) in pred.channel(k)[r.clone()].iter().zip(class) {
                    let (x, g) = (x as f64, f64::from(u8::from(cl == fg)));
                    loss += if form == Form::Bce {
                        -(g * x.ln().max(LOG_FLOOR) + (1.0 - g) * (1.0 - x).ln().max(LOG_FLOOR))
                    } else {
                        x.max(0.0) - x * g + (-x.abs()).exp().ln_1p()
                    };
                    norm += 1.0;
                }
            }
        }
    }
    (loss, norm)
}

/// `scale` times the cross-entropy gradient of one value of channel `k` for the channel-wise forms
/// (sigmoid logits, one-channel BCE), from its probability `p`.
#[inline]
pub fn channel_gradient(form: Form, config: &LossConfig, k: usize, p: f64, class: u8, scale: f64) -> f64 {
    let g = f64::from(u8::from(class == config.fg_class(k)));
    match form {
        Form::SigmoidLogits => scale * (p - g),
        Form::Bce => scale * (p - g) / (p * (1.0 - p)).max(PROB_FLOOR),
        Form::SoftmaxLogits | Form::Nll => unreachable!("softmax and NLL couple the channels"),
    }
}

/// Adds `scale` times the cross-entropy gradient of one voxel (with respect to the file's values)
/// to `out`, given the voxel's activated probabilities `s` and its class.
#[inline]
pub fn add_gradient(form: Form, config: &LossConfig, s: &[f64], class: u8, scale: f64, out: &mut [f64]) {
    match form {
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
            for (k, (o, &sk)) in out.iter_mut().zip(s).enumerate() {
                *o += channel_gradient(form, config, k, sk, class, scale);
            }
        }
    }
}
