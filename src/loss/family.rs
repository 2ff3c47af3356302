//! Loss values and gradient coefficients from a case's sums.
//!
//! Ratio-type families (dice, jaccard, tversky and their squared forms) have, per channel,
//!
//!   f_k = 1 − Num_k/Den_k,   Num = a_I·I + ε_nr,   Den = b_I·I + b_X·X + b_G·G + ε_dr,
//!
//! with X = S (or Q = Σs² for the squared forms) and
//!
//!   dice:     a_I = 2, b_I = 0,         b_X = 1, b_G = 1     (MONAI DiceLoss)
//!   jaccard:  a_I = 2, b_I = −2,        b_X = 2, b_G = 2     (MONAI DiceLoss(jaccard=True))
//!   tversky:  a_I = 1, b_I = 1 − α − β, b_X = α, b_G = β     (MONAI TverskyLoss)
//!
//! so that ∂f/∂I = −(a_I·Den − Num·b_I)/Den² and ∂f/∂X = Num·b_X/Den². The loss is the mean over
//! the K channels in the loss of w_k·f_k; with ∂I/∂s = g, ∂S/∂s = 1 and ∂Q/∂s = 2s this gives the
//! coefficients P, R, T of dL/ds = P·g + R + T·s. log-cosh-Dice is ln(cosh(L_dice)), which scales
//! them by tanh(L_dice). Generalized Dice couples the channels through one ratio with weights w_k
//! of G_k; the mimic loss is linear in I. Cross-entropy is in [`super::ce`].

use super::ce;
use super::spec::{DiceForm, LossConfig, LossKind, WeightType};
use super::sums::{CaseSums, ChannelSums};
use crate::volume::Case;

/// What the evaluation says about one channel.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ChannelEval {
    /// The channel's own term before the reduction over channels (None when the loss has no
    /// per-channel term: generalized Dice, cross-entropy, or a channel outside the loss).
    pub term: Option<f64>,
    /// (P, R, T): dL/ds_ki = P·g_ki + R + T·s_ki for the sum-based part of the loss.
    pub coeffs: [f64; 3],
}

/// A loss evaluated on a case: its value and everything its gradient needs.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub config: LossConfig,
    pub sums: CaseSums,
    /// The loss value.
    pub value: f64,
    /// The Dice-type part (before λ_dice), when the loss has one.
    pub dice_value: Option<f64>,
    /// The cross-entropy part (before λ_ce), when the loss has one.
    pub ce_value: Option<f64>,
    /// One entry per prediction channel.
    pub channels: Vec<ChannelEval>,
    /// λ_ce / (the cross-entropy's normaliser); 0 without cross-entropy.
    pub ce_scale: f64,
}

/// Coefficients of a ratio-type family.
struct Ratio {
    a_i: f64,
    b_i: f64,
    b_x: f64,
    b_g: f64,
    squared: bool,
}

fn ratio(config: &LossConfig) -> Option<Ratio> {
    let s = &config.spec;
    let (a_i, b_i, b_x, b_g) = match s.kind {
        LossKind::Dice | LossKind::SquaredDice | LossKind::LogCoshDice | LossKind::DiceCe => (2.0, 0.0, 1.0, 1.0),
        LossKind::Jaccard | LossKind::SquaredJaccard => (2.0, -2.0, 2.0, 2.0),
        LossKind::Tversky => (1.0, 1.0 - s.alpha - s.beta, s.alpha, s.beta),
        LossKind::GeneralizedDice | LossKind::Ce | LossKind::Mimic => return None,
    };
    Some(Ratio { a_i, b_i, b_x, b_g, squared: s.kind.squared() })
}

/// `(f, ∂f/∂I, ∂f/∂X)` of one channel.
fn ratio_term(r: &Ratio, config: &LossConfig, s: &ChannelSums) -> (f64, f64, f64) {
    let spec = &config.spec;
    if spec.skip_empty && s.label_count == 0 {
        return (0.0, 0.0, 0.0);
    }
    let (i, g) = (s.intersection, s.label_count as f64);
    let x = if r.squared { s.pred_sq_sum } else { s.pred_sum };
    let num = r.a_i * i + spec.smooth_nr;
    let den_raw = r.b_i * i + r.b_x * x + r.b_g * g + spec.smooth_dr;
    let one = if spec.dice_form == DiceForm::OneMinus { 1.0 } else { 0.0 };
    if den_raw < spec.denominator_floor {
        let den = spec.denominator_floor;
        return (one - num / den, -r.a_i / den, 0.0);
    }
    let den = den_raw;
    (one - num / den, -(r.a_i * den - num * r.b_i) / (den * den), num * r.b_x / (den * den))
}

/// ln(cosh(x)) without overflow.
fn log_cosh(x: f64) -> f64 {
    let a = x.abs();
    a + (-2.0 * a).exp().ln_1p() - std::f64::consts::LN_2
}

/// Generalized Dice weights of the channels in the loss (MONAI: an infinite weight, i.e. an
/// empty class, is replaced by the largest finite weight).
pub fn generalized_weights(config: &LossConfig, sums: &CaseSums) -> Vec<f64> {
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

impl Evaluation {
    /// Evaluates the loss on a case (one pass over the data).
    pub fn compute(case: &Case, config: &LossConfig) -> Evaluation {
        let sums = CaseSums::compute(case, config);
        Evaluation::from_sums(config.clone(), sums)
    }

    /// Evaluates the loss from precomputed sums.
    pub fn from_sums(config: LossConfig, sums: CaseSums) -> Evaluation {
        let spec = config.spec.clone();
        let mut channels = vec![ChannelEval::default(); config.channels];
        let k_count = config.k() as f64;
        let mut dice_value = None;
        if let Some(r) = ratio(&config) {
            let mut total = 0.0;
            for k in config.in_loss() {
                let (f, df_di, df_dx) = ratio_term(&r, &config, &sums.channels[k]);
                let w = config.weight(k) / k_count;
                total += w * f;
                let (rr, t) = if r.squared { (0.0, 2.0 * w * df_dx) } else { (w * df_dx, 0.0) };
                channels[k] = ChannelEval { term: Some(f), coeffs: [w * df_di, rr, t] };
            }
            let (value, scale) = if spec.kind == LossKind::LogCoshDice {
                (log_cosh(total), total.tanh())
            } else if spec.kind == LossKind::DiceCe {
                (total, spec.lambda_dice)
            } else {
                (total, 1.0)
            };
            for ch in channels.iter_mut() {
                ch.coeffs = ch.coeffs.map(|c| c * scale);
            }
            dice_value = Some(value);
        } else if spec.kind == LossKind::GeneralizedDice {
            let w = generalized_weights(&config, &sums);
            let (mut num, mut den) = (spec.smooth_nr, spec.smooth_dr);
            for (wk, k) in w.iter().zip(config.in_loss()) {
                let s = &sums.channels[k];
                num += 2.0 * wk * s.intersection;
                den += wk * (s.pred_sum + s.label_count as f64);
            }
            for (wk, k) in w.iter().zip(config.in_loss()) {
                channels[k].coeffs = [-2.0 * wk / den, wk * num / (den * den), 0.0];
            }
            dice_value = Some(1.0 - num / den);
        } else if spec.kind == LossKind::Mimic {
            let mut total = 0.0;
            for k in config.in_loss() {
                let term = -config.weight(k) * sums.channels[k].intersection;
                total += term;
                channels[k] = ChannelEval { term: Some(term), coeffs: [-config.weight(k), 0.0, 0.0] };
            }
            dice_value = Some(total);
        }
        let ce_value = spec.kind.has_ce().then(|| sums.ce_sum / sums.ce_norm);
        let lambda_ce = if spec.kind == LossKind::DiceCe { spec.lambda_ce } else { 1.0 };
        let ce_scale = if spec.kind.has_ce() { lambda_ce / sums.ce_norm } else { 0.0 };
        let value = match (dice_value, ce_value) {
            (Some(d), Some(c)) => spec.lambda_dice * d + lambda_ce * c,
            (Some(d), None) => d,
            (None, Some(c)) => c,
            (None, None) => unreachable!("every family has a Dice-type or a cross-entropy part"),
        };
        Evaluation { config, sums, value, dice_value, ce_value, channels, ce_scale }
    }

    /// Soft Dice (2I + ε_nr)/(S + G + ε_dr) of channel `k`, as a figure of merit whatever the loss.
    pub fn soft_dice(&self, k: usize) -> f64 {
        let s = &self.sums.channels[k];
        let spec = &self.config.spec;
        (2.0 * s.intersection + spec.smooth_nr) / (s.pred_sum + s.label_count as f64 + spec.smooth_dr)
    }

    /// Whether dL/ds is exactly two-valued per channel: no Σs² term and no cross-entropy.
    pub fn two_valued(&self) -> bool {
        !self.config.spec.kind.has_ce() && self.channels.iter().all(|c| c.coeffs[2] == 0.0)
    }

    /// dL/ds on a voxel of channel `k` with ground truth g (the sum-based part: P·g + R, plus T·s
    /// which this ignores).
    pub fn level(&self, k: usize, foreground: bool) -> f64 {
        let [p, r, _] = self.channels[k].coeffs;
        if foreground {
            p + r
        } else {
            r
        }
    }

    /// The cross-entropy form in use, if any.
    pub fn ce_form(&self) -> Option<ce::Form> {
        self.config.spec.kind.has_ce().then(|| ce::Form::of(&self.config))
    }
}
