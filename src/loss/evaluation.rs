//! A loss evaluated on a case: its value, its parts, and the coefficients its gradient needs, from
//! the case's sums (one pass over the data, [`super::sums`]). The family computes its sum-based
//! part ([`super::family`]); the cross-entropy part is the mean of its per-voxel terms.

use super::ce;
use super::config::LossConfig;
use super::family::{ChannelEval, Coefficients};
use super::sums::CaseSums;
use crate::case::Case;

/// A loss evaluated on a case.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub config: LossConfig,
    pub sums: CaseSums,
    /// The loss value.
    pub value: f64,
    /// The sum-based (Dice-type) part before its λ and the loss weight, when the loss has one.
    pub dice_value: Option<f64>,
    /// The cross-entropy part before its λ and the loss weight, when the loss has one.
    pub ce_value: Option<f64>,
    /// One entry per prediction channel.
    pub channels: Vec<ChannelEval>,
    /// loss weight · λ_ce / (the cross-entropy's normaliser); 0 without cross-entropy.
    pub ce_scale: f64,
}

impl Evaluation {
    /// Evaluates the loss on a case (one pass over the data).
    pub fn compute(case: &Case, config: &LossConfig) -> Evaluation {
        let sums = CaseSums::compute(case, config);
        Evaluation::from_sums(config.clone(), sums)
    }

    /// Evaluates the loss from precomputed sums.
    pub fn from_sums(config: LossConfig, sums: CaseSums) -> Evaluation {
        let family = config.spec.loss.family();
        let (lambda_sum, lambda_ce) = family.part_weights(&config.spec);
        let part = family.sum_part(&config, &sums);
        let dice_value = part.as_ref().map(|p| p.value);
        let channels = part.map_or_else(|| vec![ChannelEval::default(); config.channels], |p| p.channels);
        let has_ce = family.has_ce();
        // no voxel kept (all of the ignore label): nnU-Net skips the cross-entropy (DC_and_CE_loss:
        // `num_fg > 0`), or divides 0 by a clipped mask sum (DC_and_BCE_loss): 0, and no gradient
        let nothing_kept = sums.voxels == 0 && sums.ce_norm == 0.0;
        let ce_value = has_ce.then(|| if nothing_kept { 0.0 } else { sums.ce_sum / sums.ce_norm });
        let ce_scale = if has_ce && !nothing_kept { lambda_ce / sums.ce_norm } else { 0.0 };
        let value = match (dice_value, ce_value) {
            (Some(d), Some(c)) => lambda_sum * d + lambda_ce * c,
            (Some(d), None) => d,
            (None, Some(c)) => c,
            (None, None) => unreachable!("every family has a sum-based or a cross-entropy part"),
        };
        // the loss weight multiplies the loss and so every part of its gradient
        let w = config.spec.loss_weight;
        let (value, ce_scale) = (w * value, w * ce_scale);
        let channels = if w == 1.0 {
            channels
        } else {
            channels.into_iter().map(|c| ChannelEval { coefficients: c.coefficients.scaled(w), ..c }).collect()
        };
        Evaluation { config, sums, value, dice_value, ce_value, channels, ce_scale }
    }

    /// The loss evaluated on one member of a mini-batch whose loss is the mean of its members'
    /// sum-based parts plus one cross-entropy over the whole mini-batch (torch's mean over every
    /// voxel, class-weighted: Σ w_y·ce / Σ w_y over the mini-batch): the member's share of that
    /// loss and of its gradient, from its own sums `own` and the mini-batch's `pooled`, with
    /// `share` = 1/B. With loss weight w and the member's cross-entropy sum ce_b:
    ///
    /// ```text
    ///   value_b      = w·(λ_sum·share·L(own) + λ_ce·ce_b / W_batch)     (Σ_b value_b = the loss)
    ///   coefficients = share·w·coefficients(own),   ce_scale = w·λ_ce / W_batch
    /// ```
    pub fn member(config: LossConfig, own: CaseSums, pooled: &CaseSums, share: f64) -> Evaluation {
        let (lambda_sum, _) = config.spec.loss.family().part_weights(&config.spec);
        let w = config.spec.loss_weight;
        let sums = CaseSums { ce_norm: pooled.ce_norm, ..own };
        let mut e = Evaluation::from_sums(config, sums);
        if let Some(d) = e.dice_value {
            let factor = if e.ce_value.is_some() { lambda_sum } else { 1.0 };
            e.value -= (1.0 - share) * w * factor * d;
        }
        for c in &mut e.channels {
            c.coefficients = c.coefficients.scaled(share);
        }
        e
    }

    /// The coefficients of channel `k`.
    pub fn coefficients(&self, k: usize) -> Coefficients {
        self.channels[k].coefficients
    }

    /// Soft Dice (2I + ε_nr)/(S + G + ε_dr) of channel `k`, as a figure of merit whatever the loss.
    pub fn soft_dice(&self, k: usize) -> f64 {
        let s = &self.sums.channels[k];
        let spec = &self.config.spec;
        (2.0 * s.intersection + spec.smooth_nr) / (s.pred_sum + s.label_count as f64 + spec.smooth_dr)
    }

    /// Whether dL/ds is exactly two-valued per channel: no Σs² term and no cross-entropy.
    pub fn two_valued(&self) -> bool {
        !self.config.has_ce() && self.channels.iter().all(|c| c.coefficients.t == 0.0)
    }

    /// Whether the closed-form levels describe the gradient as computed: two-valued with respect to
    /// the probabilities, and the gradient taken with respect to them (no activation).
    pub fn levels_describe_gradient(&self) -> bool {
        self.two_valued() && self.config.spec.activation == super::Activation::None
    }

    /// dL/ds on a voxel of channel `k` with ground truth g (the sum-based part: P·g + R, plus T·s
    /// which this ignores).
    pub fn level(&self, k: usize, foreground: bool) -> f64 {
        self.coefficients(k).level(foreground)
    }

    /// The cross-entropy form in use, if any.
    pub fn ce_form(&self) -> Option<ce::Form> {
        self.config.has_ce().then(|| ce::Form::of(&self.config))
    }
}
