//! The mimic weights of a loss on a case: per channel, the weight with which the mimic loss
//! (Kervadec & de Bruijne 2023) reproduces the ground-truth part of the loss's gradient.
//!
//! With respect to the probabilities a sum-based loss has dL/ds_ki = P_k·g_ki + R_k + T_k·s_ki
//! ([`super::family::interface`]); its ground-truth part is −a_k·g_ki with
//!
//!   a_k = −P_k                              (Dice: a_k = 2·w_k / (K·D_k), D_k = S_k + G_k + ε_dr),
//!
//! times λ_dice and the loss weight when they are not 1. The mimic loss −Σ_k m_k·Σ_i s_ki·g_ki has
//! the gradient −m_k·g_ki, so with m_k = a_k it equals that part exactly and leaves out R_k (and
//! T_k·s_ki). a_k grows as a class gets smaller (D_k is about twice its volume once predicted).
//!
//! The weights reported are normalised to sum to 1,
//!
//!   w_k = a_k / Σ_j a_j      over the channels in the sum-based part with a foreground voxel,
//!
//! and w_k = 0 for the other channels: a channel without foreground voxels (G_k = 0) has no
//! ground-truth part, so any weight mimics it, and its a_k (about 2/(K·ε) when nothing is
//! predicted either) would swamp the others. The weights are undetermined when that sum is 0 or
//! not finite (no channel of the loss with a foreground voxel, or class weights of 0 on those
//! that have); a loss without a sum-based part (cross-entropy, whose dL/ds = −g/(N·s) weighs the
//! ground truth per voxel, not per class) has no mimic weights at all.

use super::Evaluation;

/// The mimic weights of an evaluated loss.
#[derive(Clone, Debug, PartialEq)]
pub struct MimicWeights {
    /// a_k = −P_k per prediction channel (0 for a channel outside the sum-based part).
    pub a: Vec<f64>,
    /// Σ_j a_j over the channels that hold foreground: the ground-truth part is −total·w_k·g.
    pub total: f64,
    /// w_k per prediction channel, summing to 1 (see the module's doc); None when undetermined.
    pub weights: Option<Vec<f64>>,
}

impl MimicWeights {
    /// The mimic weights of `eval`; None when its loss has no sum-based part.
    pub fn of(eval: &Evaluation) -> Option<MimicWeights> {
        eval.dice_value?;
        let a: Vec<f64> = (0..eval.config.channels).map(|k| 0.0 - eval.coefficients(k).p).collect();
        let counts: Vec<bool> = eval.sums.channels.iter().map(|s| s.label_count > 0).collect();
        Some(MimicWeights::from_a(a, &counts))
    }

    /// Σ_j a_j when the weights are determined.
    pub fn determined_total(&self) -> Option<f64> {
        self.weights.as_ref().map(|_| self.total)
    }

    /// The weights of the raw `a` when channel k holds foreground as `present[k]` says.
    pub fn from_a(a: Vec<f64>, present: &[bool]) -> MimicWeights {
        let kept = |k: usize| present[k] && a[k] != 0.0;
        let total: f64 = (0..a.len()).filter(|&k| kept(k)).map(|k| a[k]).sum();
        let weights = (total != 0.0 && total.is_finite())
            .then(|| (0..a.len()).map(|k| if kept(k) { a[k] / total } else { 0.0 }).collect());
        MimicWeights { a, total, weights }
    }

    /// w_k of channel `k`, when the weights are determined.
    pub fn weight(&self, k: usize) -> Option<f64> {
        self.weights.as_ref().map(|w| w[k])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_over_the_channels_with_foreground() {
        let m = MimicWeights::from_a(vec![1.0, 3.0, 1e5, 0.0], &[true, true, false, true]);
        assert_eq!(m.weights, Some(vec![0.25, 0.75, 0.0, 0.0]));
        assert_eq!(m.total, 4.0);
    }

    #[test]
    fn weights_are_undetermined_without_a_ground_truth_part() {
        assert_eq!(MimicWeights::from_a(vec![0.0, 0.0], &[true, true]).weights, None);
        assert_eq!(MimicWeights::from_a(vec![2.0, 5.0], &[false, false]).weights, None);
        assert_eq!(MimicWeights::from_a(vec![f64::INFINITY, 1.0], &[true, true]).weights, None);
    }
}
