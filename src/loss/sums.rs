//! The reduction pass: per-channel sums of a case (and the cross-entropy sum), accumulated in f64
//! over fixed chunks and added in chunk order, so that the result does not depend on the number of
//! threads.

use std::ops::Range;

use super::activation::{sigmoid_into, softmax_into, Activation};
use super::ce;
use super::config::LossConfig;
use crate::case::labels::{gather, kept};
use crate::case::Case;
use crate::parallel::{fold_chunks, with_buffer};
pub use crate::simd::sums::ChannelSums;
use crate::simd::sums::{self as reduce, Reduce};

/// All sums of a case.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct CaseSums {
    /// Voxels N of the case that take part in the loss (every voxel but those of the ignore
    /// label).
    pub voxels: u64,
    /// One entry per prediction channel.
    pub channels: Vec<ChannelSums>,
    /// Σ over voxels of the (weighted) cross-entropy; 0 when the loss has none.
    pub ce_sum: f64,
    /// The cross-entropy's normaliser: Σ of the voxels' class weights (softmax / NLL), or the
    /// number of values (binary cross-entropy).
    pub ce_norm: f64,
}

/// Activated probabilities of the voxels in `r`, for every channel, channel-major into `s`
/// (`s[k*len + j]` for voxel `r.start + j`), in f64.
pub fn probabilities(case: &Case, act: Activation, r: Range<usize>, s: &mut [f64]) {
    let pred = &case.prediction;
    let len = r.len();
    let c = pred.channels;
    if len == 0 {
        return;
    }
    if act == Activation::Softmax {
        let z: Vec<&[f32]> = (0..c).map(|k| &pred.channel(k)[r.clone()]).collect();
        with_buffer(len, |scratch| softmax_into(&z, &mut s[..c * len], scratch));
        return;
    }
    for (k, dst) in s.chunks_exact_mut(len).take(c).enumerate() {
        channel_probabilities(case, act, k, r.clone(), dst);
    }
}

/// Probabilities of channel `k` of the voxels in `r` into `out`, in f64, for an activation taken
/// channel by channel (none or sigmoid; a softmax needs every channel: [`probabilities`]).
pub fn channel_probabilities(case: &Case, act: Activation, k: usize, r: Range<usize>, out: &mut [f64]) {
    let x = &case.prediction.channel(k)[r];
    match act {
        Activation::Sigmoid => sigmoid_into(x, out),
        _ => out.iter_mut().zip(x).for_each(|(d, &v)| *d = f64::from(v)),
    }
}

/// The activation applied once to every value of the case, on the chunks and threads of the real
/// passes, and the first probability of each chunk added up (so that the work is not optimised
/// away): the least work an exact analysis of logits does, which the benchmarks measure beside
/// the real passes. For probabilities, a conversion to f64.
pub fn activation_pass(case: &Case, act: Activation) -> f64 {
    let c = case.prediction.channels;
    let mut total = 0.0;
    fold_chunks(
        case.voxels(),
        |r| {
            with_buffer(c * r.len(), |s: &mut [f64]| {
                probabilities(case, act, r, s);
                s.first().copied().unwrap_or(0.0)
            })
        },
        |x| total += x,
    );
    total
}

/// Sums of the voxels of one chunk, one entry per channel, from the channels' probabilities
/// (`channels[k]` holds channel k's values of the voxels of `targets[k]`, the channel's target
/// and the value of its foreground there): S, Q, I, G, and the hard counts — at the threshold
/// s ≥ 0.5 when `threshold`, of the argmax otherwise (one class per voxel: every target is the
/// class array).
fn chunk_sums<T: Reduce>(channels: &[&[T]], targets: &[(&[u8], u8)], threshold: bool) -> Vec<ChannelSums> {
    let sums_of = |p: &[T], (class, fg): (&[u8], u8)| {
        if threshold {
            reduce::sums::<T, true>(fg, p, class)
        } else {
            reduce::sums::<T, false>(fg, p, class)
        }
    };
    let mut sums: Vec<ChannelSums> = channels.iter().zip(targets).map(|(p, &t)| sums_of(p, t)).collect();
    if !threshold {
        reduce::argmax(&mut sums, channels, targets[0].0);
    }
    sums
}

/// The sums of the voxels of one range.
pub struct RangeSums {
    /// One entry per channel.
    pub channels: Vec<ChannelSums>,
    /// The cross-entropy's `(Σ loss, Σ weight)` (zeros without cross-entropy).
    pub ce: (f64, f64),
    /// The voxels that take part in the loss (those not of the ignore label).
    pub voxels: u64,
}

/// The sums of the voxels in `r`. Voxels of the ignore label take no part: a range that holds
/// some is gathered without them first (so that the loops of the sums stay the same).
pub fn range_sums(case: &Case, config: &LossConfig, r: Range<usize>) -> RangeSums {
    let c = config.channels;
    let act = config.spec.activation;
    let labels = &case.labels;
    let threshold = c == 1 || act == Activation::Sigmoid || config.regions;
    let targets: Vec<(&[u8], u8)> = (0..c)
        .map(|k| {
            let (t, fg) = labels.target(k);
            (&t[r.clone()], fg)
        })
        .collect();
    let kept = if labels.ignores() { kept(&labels.class[r.clone()]) } else { None };
    let len = r.len();
    let sums = match &kept {
        None if act == Activation::None => {
            let channels: Vec<&[f32]> = (0..c).map(|k| &case.prediction.channel(k)[r.clone()]).collect();
            chunk_sums(&channels, &targets, threshold)
        }
        None => with_buffer(c * len, |s| {
            probabilities(case, act, r.clone(), s);
            let channels: Vec<&[f64]> = s.chunks_exact(len).collect();
            chunk_sums(&channels, &targets, threshold)
        }),
        Some(at) => {
            let held: Vec<Vec<u8>> = targets.iter().map(|(t, _)| gather(t, at)).collect();
            let targets: Vec<(&[u8], u8)> = held.iter().zip(&targets).map(|(t, &(_, fg))| (&t[..], fg)).collect();
            if act == Activation::None {
                let values: Vec<Vec<f32>> =
                    (0..c).map(|k| gather(&case.prediction.channel(k)[r.clone()], at)).collect();
                let channels: Vec<&[f32]> = values.iter().map(|v| &v[..]).collect();
                chunk_sums(&channels, &targets, threshold)
            } else {
                with_buffer(c * len, |s| {
                    probabilities(case, act, r.clone(), s);
                    let values: Vec<Vec<f64>> = s.chunks_exact(len).map(|sk| gather(sk, at)).collect();
                    let channels: Vec<&[f64]> = values.iter().map(|v| &v[..]).collect();
                    chunk_sums(&channels, &targets, threshold)
                })
            }
        }
    };
    let ce = if config.has_ce() { ce::chunk_sum(ce::Form::of(config), config, case, r.clone()) } else { (0.0, 0.0) };
    RangeSums { channels: sums, ce, voxels: kept.map_or(len, |k| k.len()) as u64 }
}

impl CaseSums {
    /// Adds another case's sums (MONAI `batch=True`, nnU-Net `batch_dice`): channel by channel.
    pub fn pool(&mut self, o: &CaseSums) {
        self.voxels += o.voxels;
        for (a, b) in self.channels.iter_mut().zip(&o.channels) {
            a.add(b);
        }
        self.ce_sum += o.ce_sum;
        self.ce_norm += o.ce_norm;
    }

    /// One pass over the case.
    pub fn compute(case: &Case, config: &LossConfig) -> CaseSums {
        let c = config.channels;
        let mut total = CaseSums { voxels: 0, channels: vec![ChannelSums::default(); c], ..CaseSums::default() };
        let chunk = |r: Range<usize>| range_sums(case, config, r);
        fold_chunks(case.voxels(), chunk, |part| {
            for (t, p) in total.channels.iter_mut().zip(&part.channels) {
                t.add(p);
            }
            total.voxels += part.voxels;
            total.ce_sum += part.ce.0;
            total.ce_norm += part.ce.1;
        });
        total
    }
}
