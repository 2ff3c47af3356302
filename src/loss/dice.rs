//! Soft Dice: the reduction pass (per-channel sums, hard counts), the loss value, the closed-form
//! levels of its gradient, and the kernel that evaluates the gradient on a block of voxels.
//!
//! With respect to probabilities the gradient of channel k takes two values only:
//!
//!   foreground (g = 1):  (N_k − 2·D_k) / (K·D_k²) = c_k − a_k
//!   background (g = 0):   N_k / (K·D_k²)          = c_k
//!
//! whose ratio is (N_k − 2·D_k) / N_k = 1 − 2 / soft_dice_k with soft_dice_k = N_k / D_k.
//! Through an activation the gradient with respect to the logits is the chain rule applied to
//! these levels (see [`super::activation`]); it then varies from voxel to voxel.

use std::ops::Range;

use rayon::prelude::*;

use super::activation::{sigmoid, softmax, softmax_vjp, Activation};
use super::LossConfig;
use crate::parallel::{map_chunks, CHUNK};
use crate::volume::Case;

/// Sums over the voxels of one channel, accumulated in f64 in a fixed order.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ChannelSums {
    /// I = Σ s·g.
    pub intersection: f64,
    /// S = Σ s.
    pub pred_sum: f64,
    /// G = Σ g: the number of foreground voxels.
    pub label_count: u64,
    /// Voxels predicted as this class (argmax, or s ≥ 0.5) that are foreground.
    pub hard_tp: u64,
    /// Voxels predicted as this class.
    pub hard_pred: u64,
}

impl ChannelSums {
    fn add(&mut self, o: &ChannelSums) {
        self.intersection += o.intersection;
        self.pred_sum += o.pred_sum;
        self.label_count += o.label_count;
        self.hard_tp += o.hard_tp;
        self.hard_pred += o.hard_pred;
    }
}

/// Activated probabilities of the voxels in `r`, for every channel, channel-major into `s`
/// (`s[k*len + j]` for voxel `r.start + j`), in f64.
pub fn probabilities(case: &Case, act: Activation, r: Range<usize>, s: &mut [f64]) {
    let pred = &case.prediction;
    let len = r.len();
    let c = pred.channels;
    match act {
        Activation::None | Activation::Sigmoid => {
            for k in 0..c {
                let src = &pred.channel(k)[r.clone()];
                let dst = &mut s[k * len..(k + 1) * len];
                if act == Activation::None {
                    dst.iter_mut().zip(src).for_each(|(d, &v)| *d = v as f64);
                } else {
                    dst.iter_mut()
                        .zip(src)
                        .for_each(|(d, &v)| *d = sigmoid(v as f64));
                }
            }
        }
        Activation::Softmax => {
            let (mut z, mut p) = (vec![0.0; c], vec![0.0; c]);
            for j in 0..len {
                for (k, zk) in z.iter_mut().enumerate() {
                    *zk = pred.channel(k)[r.start + j] as f64;
                }
                softmax(&z, &mut p);
                for (k, pk) in p.iter().enumerate() {
                    s[k * len + j] = *pk;
                }
            }
        }
    }
}

/// The soft Dice loss of one case: sums per channel, and everything derived from them.
#[derive(Clone, Debug)]
pub struct Dice {
    pub config: LossConfig,
    /// Sums for every prediction channel (also those not in the loss).
    pub sums: Vec<ChannelSums>,
}

impl Dice {
    /// One pass over the case: per-channel sums in f64, reduced in a fixed chunk order so that the
    /// result does not depend on the number of threads.
    pub fn compute(case: &Case, config: LossConfig) -> Dice {
        let c = config.channels;
        let hard_threshold = c == 1 || config.options.activation == Activation::Sigmoid;
        let partial = map_chunks(case.voxels(), |r| {
            let len = r.len();
            let mut s = vec![0.0; c * len];
            probabilities(case, config.options.activation, r.clone(), &mut s);
            let class = &case.labels.class[r];
            let mut sums = vec![ChannelSums::default(); c];
            for (k, sk) in sums.iter_mut().enumerate() {
                let fg = config.fg_class(k);
                let p = &s[k * len..(k + 1) * len];
                for (&v, &cl) in p.iter().zip(class) {
                    sk.pred_sum += v;
                    if cl == fg {
                        sk.intersection += v;
                        sk.label_count += 1;
                    }
                }
                if hard_threshold {
                    for (&v, &cl) in p.iter().zip(class) {
                        if v >= 0.5 {
                            sk.hard_pred += 1;
                            sk.hard_tp += u64::from(cl == fg);
                        }
                    }
                }
            }
            if !hard_threshold {
                for (j, &cl) in class.iter().enumerate() {
                    let mut best = 0;
                    for k in 1..c {
                        if s[k * len + j] > s[best * len + j] {
                            best = k;
                        }
                    }
                    sums[best].hard_pred += 1;
                    sums[best].hard_tp += u64::from(cl == best as u8);
                }
            }
            sums
        });
        let mut sums = vec![ChannelSums::default(); c];
        for part in &partial {
            for (total, p) in sums.iter_mut().zip(part) {
                total.add(p);
            }
        }
        Dice { config, sums }
    }

    /// N_k = 2·I_k + ε_nr.
    pub fn numerator(&self, k: usize) -> f64 {
        2.0 * self.sums[k].intersection + self.config.options.smooth_nr
    }

    /// D_k = S_k + G_k + ε_dr.
    pub fn denominator(&self, k: usize) -> f64 {
        self.sums[k].pred_sum + self.sums[k].label_count as f64 + self.config.options.smooth_dr
    }

    /// Soft Dice N_k / D_k (NaN when both are 0, i.e. no smoothing and nothing predicted or labelled).
    pub fn soft_dice(&self, k: usize) -> f64 {
        self.numerator(k) / self.denominator(k)
    }

    /// The channel's term of the loss, 1 − N_k / D_k (before the mean over channels).
    pub fn term(&self, k: usize) -> f64 {
        1.0 - self.soft_dice(k)
    }

    /// L = mean over the channels in the loss of 1 − N_k / D_k.
    pub fn value(&self) -> f64 {
        self.config.in_loss().map(|k| self.term(k)).sum::<f64>() / self.config.k() as f64
    }

    /// a_k = 2 / (K·D_k): the weight of the ground truth in the gradient.
    pub fn slope(&self, k: usize) -> f64 {
        2.0 / (self.config.k() as f64 * self.denominator(k))
    }

    /// c_k = N_k / (K·D_k²): the constant part of the gradient (its value on background voxels).
    pub fn offset(&self, k: usize) -> f64 {
        let d = self.denominator(k);
        self.numerator(k) / (self.config.k() as f64 * d * d)
    }

    /// dL/ds on a voxel of channel k with ground truth g: (N_k − 2·g·D_k) / (K·D_k²); 0 for a
    /// channel not in the loss.
    pub fn level(&self, k: usize, foreground: bool) -> f64 {
        if !self.config.in_loss().contains(&k) {
            return 0.0;
        }
        let (n, d) = (self.numerator(k), self.denominator(k));
        let g = if foreground { 1.0 } else { 0.0 };
        (n - 2.0 * g * d) / (self.config.k() as f64 * d * d)
    }

    /// Hard Dice 2·TP / (P + G) of the thresholded (one channel, sigmoid) or argmax prediction;
    /// 1 when the class is absent from both.
    pub fn hard_dice(&self, k: usize) -> f64 {
        let s = &self.sums[k];
        let denom = s.hard_pred + s.label_count;
        if denom == 0 {
            1.0
        } else {
            2.0 * s.hard_tp as f64 / denom as f64
        }
    }
}

/// Evaluates the gradient of the loss with respect to the values in the prediction file.
pub struct GradientKernel<'a> {
    case: &'a Case,
    config: LossConfig,
    /// `[background, foreground]` level of dL/ds per channel (0 for channels not in the loss).
    levels: Vec<[f64; 2]>,
}

impl<'a> GradientKernel<'a> {
    pub fn new(case: &'a Case, dice: &Dice) -> Self {
        let levels = (0..dice.config.channels)
            .map(|k| [dice.level(k, false), dice.level(k, true)])
            .collect();
        GradientKernel {
            case,
            config: dice.config,
            levels,
        }
    }

    /// The case this kernel evaluates.
    pub fn case(&self) -> &Case {
        self.case
    }

    /// The loss configuration.
    pub fn config(&self) -> LossConfig {
        self.config
    }

    /// dL/ds of channel `k` on a voxel of class `class`.
    #[inline]
    fn u(&self, k: usize, class: u8) -> f64 {
        self.levels[k][usize::from(class == self.config.fg_class(k))]
    }

    /// Gradient of one value of channel `k` for a channel-wise activation (none or sigmoid), from
    /// its probability `p`: dL/ds, or dL/ds·p·(1 − p) through sigmoid.
    #[inline]
    fn channelwise(&self, k: usize, class: u8, p: f64) -> f32 {
        let u = self.u(k, class);
        match self.config.options.activation {
            Activation::Sigmoid => (u * p * (1.0 - p)) as f32,
            _ => u as f32,
        }
    }

    /// Gradient of the voxels in `r` for every channel, channel-major into `out`
    /// (`out[k*len + j]` for voxel `r.start + j`), from their probabilities `s` (as given by
    /// [`probabilities`]). Computed in f64, rounded once to f32.
    pub fn gradient(&self, r: Range<usize>, s: &[f64], out: &mut [f32]) {
        let len = r.len();
        let class = &self.case.labels.class[r];
        let c = self.config.channels;
        if self.config.options.activation != Activation::Softmax {
            for k in 0..c {
                let (sk, ok) = (&s[k * len..(k + 1) * len], &mut out[k * len..(k + 1) * len]);
                for ((o, &p), &cl) in ok.iter_mut().zip(sk).zip(class) {
                    *o = self.channelwise(k, cl, p);
                }
            }
            return;
        }
        let (mut sv, mut uv, mut g) = (vec![0.0; c], vec![0.0; c], vec![0.0; c]);
        for (j, &cl) in class.iter().enumerate() {
            for k in 0..c {
                sv[k] = s[k * len + j];
                uv[k] = self.u(k, cl);
            }
            softmax_vjp(&sv, &uv, &mut g);
            for k in 0..c {
                out[k * len + j] = g[k] as f32;
            }
        }
    }

    /// Gradient of channel `k` on the voxels in `r` into `out`. With a channel-wise activation
    /// only channel `k` is read; with softmax every channel is.
    fn channel_block(&self, k: usize, r: Range<usize>, out: &mut [f32]) {
        let act = self.config.options.activation;
        if act == Activation::Softmax {
            let (c, len) = (self.config.channels, r.len());
            let mut s = vec![0.0; c * len];
            let mut g = vec![0f32; c * len];
            probabilities(self.case, act, r.clone(), &mut s);
            self.gradient(r, &s, &mut g);
            out.copy_from_slice(&g[k * len..(k + 1) * len]);
            return;
        }
        let x = &self.case.prediction.channel(k)[r.clone()];
        let class = &self.case.labels.class[r];
        for ((o, &v), &cl) in out.iter_mut().zip(x).zip(class) {
            let p = if act == Activation::Sigmoid {
                sigmoid(v as f64)
            } else {
                v as f64
            };
            *o = self.channelwise(k, cl, p);
        }
    }

    /// Gradient values in file order: `out[i]` is the value of flat index `start + i` of the
    /// channel-major `C·N` gradient volume. Parallel over fixed chunks.
    pub fn fill_file_order(&self, start: usize, out: &mut [f32]) {
        let n = self.case.voxels();
        let mut done = 0;
        while done < out.len() {
            let flat = start + done;
            let (k, v0) = (flat / n, flat % n);
            let len = (n - v0).min(out.len() - done);
            let seg = &mut out[done..done + len];
            seg.par_chunks_mut(CHUNK)
                .enumerate()
                .for_each(|(i, piece)| {
                    let r = v0 + i * CHUNK..v0 + i * CHUNK + piece.len();
                    self.channel_block(k, r, piece);
                });
            done += len;
        }
    }
}
