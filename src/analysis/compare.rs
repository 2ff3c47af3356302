//! Side-by-side comparison of the gradients of several losses on the same case: per channel and
//! per pair, the cosine similarity of the two gradient fields, the least-squares scale between
//! them, and the share of voxels where their signs agree; and, between a two-valued loss and the
//! mimic loss, the exact weighting that turns one into the other.
//!
//! For gradient fields a and b of one channel (sums over its voxels, f64 of the float32 values):
//!   cosine = Σab / √(Σa²·Σb²),   scale = Σab / Σa² (b ≈ scale·a),   sign agreement = #(sgn a = sgn b) / N.
//! Mimic equivalence: a two-valued loss has dL/ds = P·g + R, the mimic loss −w·g, so
//!   dL/ds = (−P/w)·(mimic gradient) + R:
//! the mimic loss reproduces the ground-truth part and leaves out the constant R, whose share of
//! the squared gradient norm is N·R² / (G·(P + R)² + (N − G)·R²).

use serde::Serialize;

use crate::case::IGNORED;
use crate::loss::sums::probabilities;
use crate::loss::{pairs, Evaluation, GradientKernel, LossKind};
use crate::parallel::fold_chunks;

/// Comparison figures of one channel for one pair of losses.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct PairChannel {
    pub channel: usize,
    /// Cosine similarity of the two gradient fields (None if one is zero everywhere).
    pub cosine: Option<f64>,
    /// Least-squares scale λ minimising Σ(b − λ·a)² (None if a is zero everywhere).
    pub scale: Option<f64>,
    /// Share (0–1) of the channel's voxels where the two gradients have the same sign (−, 0, +).
    pub sign_agreement: f64,
}

/// The mimic loss against a two-valued loss, for one channel: loss gradient = scale × mimic
/// gradient + offset, exactly, with respect to probabilities.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct MimicEquivalence {
    pub channel: usize,
    /// −P/w: the weight that makes the mimic gradient equal the ground-truth part (a/w for Dice).
    pub scale: f64,
    /// R: the constant the mimic loss leaves out (c for Dice).
    pub offset: f64,
    /// Share (0–1) of the two-valued loss's squared gradient norm that no multiple of the mimic
    /// gradient reproduces: splitting P·g + R orthogonally into (P + R)·g and R·(1 − g), the
    /// share of the second, (N − G)·R²/(G·(P + R)² + (N − G)·R²) = 1 − cos² of the two gradients.
    pub offset_share: f64,
}

/// One pair of losses.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Pair {
    /// Loss a (the reference of the scale).
    pub a: LossKind,
    /// Loss b.
    pub b: LossKind,
    pub channels: Vec<PairChannel>,
    /// When one of the two is the mimic loss and the other is two-valued: the exact weighting.
    pub mimic_equivalence: Option<Vec<MimicEquivalence>>,
}

/// Sums over one channel's voxels of a pair of gradient fields a, b.
#[derive(Clone, Copy, Default)]
struct PairSums {
    ab: f64,
    aa: f64,
    bb: f64,
    agree: u64,
    count: u64,
}

/// −1, 0 or 1.
fn sign(x: f64) -> i8 {
    (x > 0.0) as i8 - (x < 0.0) as i8
}

fn pair_channel(channel: usize, a: &PairSums) -> PairChannel {
    let denom = (a.aa * a.bb).sqrt();
    PairChannel {
        channel,
        cosine: (denom > 0.0).then(|| a.ab / denom),
        scale: (a.aa > 0.0).then(|| a.ab / a.aa),
        sign_agreement: a.agree as f64 / a.count.max(1) as f64,
    }
}

fn mimic_equivalence(two_valued: &Evaluation, mimic: &Evaluation) -> Option<Vec<MimicEquivalence>> {
    if !two_valued.two_valued() || two_valued.config.spec.loss == LossKind::Mimic {
        return None;
    }
    Some(
        two_valued
            .config
            .in_loss()
            .filter_map(|k| {
                let (p, r) = (two_valued.coefficients(k).p, two_valued.coefficients(k).r);
                let m = mimic.coefficients(k).p;
                let s = &two_valued.sums.channels[k];
                let g = s.label_count as f64;
                let voxels = two_valued.sums.voxels as f64;
                let norm = g * (p + r) * (p + r) + (voxels - g) * r * r;
                (m != 0.0).then(|| MimicEquivalence {
                    channel: k,
                    scale: p / m,
                    offset: r,
                    offset_share: if norm > 0.0 { (voxels - g) * r * r / norm } else { 0.0 },
                })
            })
            .collect(),
    )
}

/// Compares every pair of the given losses (all evaluated on the same case with the same
/// activation). One pass over the case.
pub fn compare(kernels: &[GradientKernel], evals: &[Evaluation]) -> Vec<Pair> {
    let case = kernels[0].case();
    let c = case.prediction.channels;
    let act = kernels[0].config().spec.activation;
    let m = kernels.len();
    let pairs = pairs(m);
    let mut totals = vec![vec![PairSums::default(); c]; pairs.len()];
    let chunk = |r: std::ops::Range<usize>| {
        let len = r.len();
        let mut s = vec![0.0; c * len];
        probabilities(case, act, r.clone(), &mut s);
        let grads: Vec<Vec<f32>> = kernels
            .iter()
            .map(|k| {
                let mut g = vec![0f32; c * len];
                k.gradient(r.clone(), &s, &mut g);
                g
            })
            .collect();
        let mut acc = vec![vec![PairSums::default(); c]; pairs.len()];
        // voxels of the ignore label are in no figure (both gradients are 0 there)
        let class = &case.labels.class[r.clone()];
        let ignored = |v: usize| case.labels.ignores() && class[v] == IGNORED;
        for (p, &(i, j)) in pairs.iter().enumerate() {
            for k in 0..c {
                let a_k = &grads[i][k * len..(k + 1) * len];
                let b_k = &grads[j][k * len..(k + 1) * len];
                let t = &mut acc[p][k];
                for (v, (&a, &b)) in a_k.iter().zip(b_k).enumerate() {
                    if ignored(v) {
                        continue;
                    }
                    let (a, b) = (a as f64, b as f64);
                    t.ab += a * b;
                    t.aa += a * a;
                    t.bb += b * b;
                    t.agree += u64::from(sign(a) == sign(b));
                    t.count += 1;
                }
            }
        }
        acc
    };
    fold_chunks(case.voxels(), chunk, |part| {
        for (total, p) in totals.iter_mut().zip(&part) {
            for (t, x) in total.iter_mut().zip(p) {
                t.ab += x.ab;
                t.aa += x.aa;
                t.bb += x.bb;
                t.agree += x.agree;
                t.count += x.count;
            }
        }
    });
    pairs
        .iter()
        .zip(totals)
        .map(|(&(i, j), total)| {
            let (ea, eb) = (&evals[i], &evals[j]);
            let mimic_equivalence = match (ea.config.spec.loss, eb.config.spec.loss) {
                (LossKind::Mimic, _) => mimic_equivalence(eb, ea),
                (_, LossKind::Mimic) => mimic_equivalence(ea, eb),
                _ => None,
            };
            Pair {
                a: ea.config.spec.loss,
                b: eb.config.spec.loss,
                channels: total.iter().enumerate().map(|(k, t)| pair_channel(k, t)).collect(),
                mimic_equivalence,
            }
        })
        .collect()
}
