//! The reduction pass: per-channel sums of a case (and the cross-entropy sum), accumulated in f64
//! over fixed chunks and added in chunk order, so that the result does not depend on the number of
//! threads.

use std::ops::Range;

use super::activation::{sigmoid_into, softmax_into, Activation};
use super::ce;
use super::config::LossConfig;
use crate::case::Case;
use crate::parallel::{fold_chunks, with_buffer};
pub use crate::simd::sums::ChannelSums;
use crate::simd::sums::{self as reduce, Reduce};

/// All sums of a case.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CaseSums {
    /// Voxels N of the case.
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
/// (`channels[k]` holds channel k's values of the voxels of `class`): S, Q, I, G, and the hard
/// counts — at the threshold s ≥ 0.5 when `threshold`, of the argmax otherwise.
fn chunk_sums<T: Reduce>(channels: &[&[T]], config: &LossConfig, class: &[u8], threshold: bool) -> Vec<ChannelSums> {
    let sums_of = |k: usize, p: &[T]| {
        let fg = config.fg_class(k);
        if threshold {
            reduce::sums::<T, true>(fg, p, class)
        } else {
            reduce::sums::<T, false>(fg, p, class)
        }
    };
    let mut sums: Vec<ChannelSums> = channels.iter().enumerate().map(|(k, p)| sums_of(k, p)).collect();
    if !threshold {
        reduce::argmax(&mut sums, channels, class);
    }
    sums
}

/// The sums of the voxels in `r`, one entry per channel, and the cross-entropy's
/// `(Σ loss, Σ weight)` over them (zeros without cross-entropy).
pub fn range_sums(case: &Case, config: &LossConfig, r: Range<usize>) -> (Vec<ChannelSums>, (f64, f64)) {
    let c = config.channels;
    let act = config.spec.activation;
    let threshold = c == 1 || act == Activation::Sigmoid;
    let class = &case.labels.class[r.clone()];
    let sums = if act == Activation::None {
        let channels: Vec<&[f32]> = (0..c).map(|k| &case.prediction.channel(k)[r.clone()]).collect();
        chunk_sums(&channels, config, class, threshold)
    } else {
        let len = r.len();
        with_buffer(c * len, |s| {
            probabilities(case, act, r.clone(), s);
            let channels: Vec<&[f64]> = s.chunks_exact(len).collect();
            chunk_sums(&channels, config, class, threshold)
        })
    };
    let ce = if config.has_ce() { ce::chunk_sum(ce::Form::of(config), config, case, r) } else { (0.0, 0.0) };
    (sums, ce)
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
        let mut total =
            CaseSums { voxels: case.voxels() as u64, channels: vec![ChannelSums::default(); c], ..CaseSums::default() };
        let chunk = |r: Range<usize>| range_sums(case, config, r);
        fold_chunks(case.voxels(), chunk, |(part, (ce_sum, ce_norm))| {
            for (t, p) in total.channels.iter_mut().zip(&part) {
                t.add(p);
            }
            total.ce_sum += ce_sum;
            total.ce_norm += ce_norm;
        });
        total
    }
}
