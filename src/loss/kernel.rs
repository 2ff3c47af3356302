//! The gradient of a loss with respect to the prediction's values, on blocks of voxels.
//!
//! Per voxel: u_k = P_k·g_k + R_k + T_k·s_k (dL/ds of the sum-based part), taken through the
//! activation (see [`super::activation`]), plus the cross-entropy term, which [`super::ce`] gives
//! directly with respect to the file's values. Everything in f64, rounded once to f32.

use std::ops::Range;

use rayon::prelude::*;

use super::activation::Activation;
use super::ce;
use super::config::LossConfig;
use super::evaluation::Evaluation;
use super::family::Coefficients;
use super::sums::{channel_probabilities, probabilities};
use crate::case::labels::{channel_class, zero_ignored};
use crate::case::{Case, IGNORED};
use crate::parallel::{with_buffer, CHUNK};
use crate::simd::avx2_or_portable;

/// Evaluates the gradient of one evaluated loss on a case.
pub struct GradientKernel<'a> {
    case: &'a Case<'a>,
    config: LossConfig,
    coeffs: Vec<Coefficients>,
    ce: Option<ce::Form>,
    ce_scale: f64,
}

impl<'a> GradientKernel<'a> {
    pub fn new(case: &'a Case<'a>, eval: &Evaluation) -> Self {
        GradientKernel {
            case,
            config: eval.config.clone(),
            coeffs: eval.channels.iter().map(|c| c.coefficients).collect(),
            ce: eval.ce_form(),
            ce_scale: eval.ce_scale,
        }
    }

    /// The case this kernel evaluates.
    pub fn case(&self) -> &'a Case<'a> {
        self.case
    }

    /// The loss configuration.
    pub fn config(&self) -> &LossConfig {
        &self.config
    }

    /// dL/ds of the sum-based (Dice-type) part of channel `k` with respect to its probability
    /// `p`, on a foreground or background voxel: P·g + R + T·p (0 for a loss without such a part).
    #[inline]
    pub fn probability_gradient(&self, k: usize, foreground: bool, p: f64) -> f64 {
        dice_u(self.coeffs[k], foreground, p)
    }

    /// The gradient of channel `k` on every voxel of one side (foreground or background), when it
    /// does not depend on the voxel's value: the values are the probabilities (no activation), no
    /// cross-entropy, and T_k = 0. Then `u` is P·g + R + 0·s for every voxel of the side, so any
    /// probability gives it; None otherwise. (Voxels of the ignore label are on neither side:
    /// their gradient is 0.)
    pub fn side_value(&self, k: usize, foreground: bool) -> Option<f32> {
        let independent =
            self.config.spec.activation == Activation::None && self.ce.is_none() && self.coeffs[k].t == 0.0;
        independent.then(|| self.single(k, foreground, 0.0))
    }

    /// Whether channel k's gradient depends on channel k alone.
    fn channelwise(&self) -> bool {
        self.config.spec.activation != Activation::Softmax
            && !matches!(self.ce, Some(ce::Form::SoftmaxLogits | ce::Form::SoftmaxOfInput | ce::Form::Nll))
    }

    /// Gradient of one value of channel `k` when it depends on that channel alone.
    #[inline]
    fn single(&self, k: usize, foreground: bool, p: f64) -> f32 {
        let u = dice_u(self.coeffs[k], foreground, p);
        let mut g = match self.config.spec.activation {
            Activation::Sigmoid => through_sigmoid(u, p),
            _ => u,
        };
        if let Some(form) = self.ce {
            g += ce::channel_gradient(form, p, foreground, self.ce_scale);
        }
        g as f32
    }

    /// Gradient of channel `k` on a block of voxels whose targets are `target` (foreground where
    /// it is `fg`) from that channel's probabilities `p`, when the gradient is channel-wise.
    fn channel_gradient(&self, k: usize, target: &[u8], fg: u8, p: &[f64], out: &mut [f32]) {
        let coeffs = self.coeffs[k];
        match (self.config.spec.activation, self.ce) {
            (Activation::Sigmoid, None) => sigmoid_dice_block(coeffs, fg, target, p, out),
            (Activation::None, None) => dice_block(coeffs, fg, target, p, out),
            _ => {
                for ((o, &p), &cl) in out.iter_mut().zip(p).zip(target) {
                    *o = self.single(k, cl == fg, p);
                }
            }
        }
    }

    /// Gradient of the voxels in `r` for every channel, channel-major into `out`
    /// (`out[k*len + j]` for voxel `r.start + j`), from their probabilities `s` (as given by
    /// [`probabilities`]). Voxels of the ignore label get 0.
    pub fn gradient(&self, r: Range<usize>, s: &[f64], out: &mut [f32]) {
        let len = r.len();
        let labels = &self.case.labels;
        let c = self.config.channels;
        if len == 0 {
            return;
        }
        let class = &labels.class[r.clone()];
        let ignored = labels.ignores() && class.contains(&IGNORED);
        if self.channelwise() {
            for ((k, sk), ok) in s.chunks_exact(len).take(c).enumerate().zip(out.chunks_exact_mut(len)) {
                let (target, fg) = labels.target(k);
                self.channel_gradient(k, &target[r.clone()], fg, sk, ok);
            }
        } else {
            // one class per voxel; an ignored voxel computed as background, then set to 0
            let held: Vec<u8>;
            let class = if ignored {
                held = class.iter().map(|&c| if c == IGNORED { 0 } else { c }).collect();
                &held[..]
            } else {
                class
            };
            self.coupled_gradient(r.clone(), class, s, out);
        }
        if ignored {
            for ok in out.chunks_exact_mut(len).take(c) {
                zero_ignored(ok, class);
            }
        }
    }

    /// [`GradientKernel::gradient`] when the channels are coupled (a softmax, or a cross-entropy
    /// over every channel), on voxels of classes `class` (none ignored).
    fn coupled_gradient(&self, r: Range<usize>, class: &[u8], s: &[f64], out: &mut [f32]) {
        let len = r.len();
        let c = self.config.channels;
        // one class per voxel: channel k's foreground is class k (class 1 for one channel)
        let fg_of = |k: usize| channel_class(c, k);
        if self.config.spec.activation == Activation::Softmax {
            // The cross-entropy through softmax is that of softmax(logits), per voxel
            // scale·w_y·(s_k − [k = y]).
            let ce_weight: Option<Vec<f64>> =
                self.ce.map(|_| (0..c).map(|y| self.ce_scale * self.config.weight(y)).collect());
            let fgs: Vec<u8> = (0..c).map(fg_of).collect();
            with_buffer(c * len, |u| {
                with_buffer(len, |dot| {
                    softmax_dice_block(&self.coeffs, &fgs, ce_weight.as_deref(), class, s, u, dot, out)
                })
            });
            return;
        }
        // What is left couples the channels through the cross-entropy only: the negative
        // log-likelihood of several channels' probabilities, or MONAI's softmax cross-entropy of
        // the values as given beside a sum-based part on probabilities or through a sigmoid.
        let sigmoid = self.config.spec.activation == Activation::Sigmoid;
        let (mut sv, mut zv, mut g) = (vec![0.0; c], vec![0.0; c], vec![0.0; c]);
        for (j, &cl) in class.iter().enumerate() {
            for k in 0..c {
                sv[k] = s[k * len + j];
                zv[k] = f64::from(self.case.prediction.channel(k)[r.start + j]);
                let u = dice_u(self.coeffs[k], cl == fg_of(k), sv[k]);
                g[k] = if sigmoid { through_sigmoid(u, sv[k]) } else { u };
            }
            if let Some(form) = self.ce {
                ce::add_gradient(form, &self.config, &sv, &zv, cl, self.ce_scale, &mut g);
            }
            for k in 0..c {
                out[k * len + j] = g[k] as f32;
            }
        }
    }

    /// Gradient of channel `k` on the voxels in `r` into `out`. When the gradient is channel-wise
    /// only channel `k` is read; otherwise every channel is.
    fn channel_block(&self, k: usize, r: Range<usize>, out: &mut [f32]) {
        let act = self.config.spec.activation;
        let len = r.len();
        if !self.channelwise() {
            let c = self.config.channels;
            with_buffer(c * len, |s: &mut [f64]| {
                with_buffer(c * len, |g: &mut [f32]| {
                    probabilities(self.case, act, r.clone(), s);
                    self.gradient(r, s, g);
                    out.copy_from_slice(&g[k * len..(k + 1) * len]);
                })
            });
            return;
        }
        with_buffer(len, |p| {
            channel_probabilities(self.case, act, k, r.clone(), p);
            let labels = &self.case.labels;
            let (target, fg) = labels.target(k);
            let target = &target[r.clone()];
            self.channel_gradient(k, target, fg, p, out);
            if labels.ignores() {
                zero_ignored(out, target);
            }
        });
    }

    /// Gradient values in the order of the prediction's values: `out[i]` is the gradient of value
    /// `start + i` of the channel-major `C·N` values (for a NIfTI file, the file's order).
    /// Parallel over fixed chunks.
    pub fn fill(&self, start: usize, out: &mut [f32]) {
        let n = self.case.voxels();
        if start == 0 && out.len() == n * self.config.channels && !self.channelwise() {
            return self.fill_all(out);
        }
        let mut done = 0;
        while done < out.len() {
            let flat = start + done;
            let (k, v0) = (flat / n, flat % n);
            let len = (n - v0).min(out.len() - done);
            let seg = &mut out[done..done + len];
            seg.par_chunks_mut(CHUNK).enumerate().for_each(|(i, piece)| {
                let r = v0 + i * CHUNK..v0 + i * CHUNK + piece.len();
                self.channel_block(k, r, piece);
            });
            done += len;
        }
    }
}

impl GradientKernel<'_> {
    /// Every gradient value (`out`: the C·N values, channel-major) when the channels are coupled:
    /// each fixed chunk of voxels evaluated once for all channels (rather than once per channel,
    /// as [`fill`](Self::fill) of a part must), each value the same.
    fn fill_all(&self, out: &mut [f32]) {
        let (n, c) = (self.case.voxels(), self.config.channels);
        let act = self.config.spec.activation;
        // the C pieces of each chunk of voxels, one per channel
        let mut chunks: Vec<Vec<&mut [f32]>> = (0..n.div_ceil(CHUNK)).map(|_| Vec::with_capacity(c)).collect();
        for channel in out.chunks_mut(n) {
            for (i, piece) in channel.chunks_mut(CHUNK).enumerate() {
                chunks[i].push(piece);
            }
        }
        chunks.into_par_iter().enumerate().for_each(|(i, mut pieces)| {
            let len = pieces[0].len();
            let r = i * CHUNK..i * CHUNK + len;
            with_buffer(c * len, |s: &mut [f64]| {
                with_buffer(c * len, |g: &mut [f32]| {
                    probabilities(self.case, act, r.clone(), s);
                    self.gradient(r, s, g);
                    for (piece, gk) in pieces.iter_mut().zip(g.chunks_exact(len)) {
                        piece.copy_from_slice(gk);
                    }
                })
            });
        });
    }
}

/// dL/ds of the sum-based part on one value: P·g + R + T·s.
#[inline(always)]
fn dice_u(c: Coefficients, foreground: bool, p: f64) -> f64 {
    c.p * f64::from(u8::from(foreground)) + c.r + c.t * p
}

/// Chain rule through the sigmoid: dL/dz = dL/ds · s·(1 − s).
#[inline(always)]
fn through_sigmoid(u: f64, p: f64) -> f64 {
    u * p * (1.0 - p)
}

avx2_or_portable! {
    /// Gradient of a sum-based loss with respect to probabilities on one channel's block.
    fn dice_block(coeffs: Coefficients, fg: u8, class: &[u8], p: &[f64], out: &mut [f32]) {
        for ((o, &p), &cl) in out.iter_mut().zip(p).zip(class) {
            *o = dice_u(coeffs, cl == fg, p) as f32;
        }
    }
}

avx2_or_portable! {
    /// Gradient of a sum-based loss through the sigmoid on one channel's block.
    fn sigmoid_dice_block(coeffs: Coefficients, fg: u8, class: &[u8], p: &[f64], out: &mut [f32]) {
        for ((o, &p), &cl) in out.iter_mut().zip(p).zip(class) {
            *o = through_sigmoid(dice_u(coeffs, cl == fg, p), p) as f32;
        }
    }
}

avx2_or_portable! {
    /// Gradient of a sum-based loss through the softmax on a block of voxels, channel-major
    /// (`s`, `u`, `out`: `[k*len + j]`), plus `ce_weight[y]·(s_k − [k = y])` for softmax
    /// cross-entropy. The same operations, in the same order, as
    /// [`softmax_vjp`](super::activation::softmax_vjp) and
    /// [`ce::add_gradient`] on each voxel.
    #[allow(clippy::too_many_arguments)]
    fn softmax_dice_block(
        coeffs: &[Coefficients],
        fgs: &[u8],
        ce_weight: Option<&[f64]>,
        class: &[u8],
        s: &[f64],
        u: &mut [f64],
        dot: &mut [f64],
        out: &mut [f32],
    ) {
        let len = class.len();
        for (k, (uk, sk)) in u.chunks_exact_mut(len).zip(s.chunks_exact(len)).enumerate() {
            for ((u, &p), &cl) in uk.iter_mut().zip(sk).zip(class) {
                *u = dice_u(coeffs[k], cl == fgs[k], p);
            }
        }
        // dot = Σ_k s_k·u_k, added in channel order.
        for (k, (uk, sk)) in u.chunks_exact(len).zip(s.chunks_exact(len)).enumerate() {
            for ((d, &u), &p) in dot.iter_mut().zip(uk).zip(sk) {
                *d = if k == 0 { p * u } else { *d + p * u };
            }
        }
        let blocks = out.chunks_exact_mut(len).zip(u.chunks_exact(len)).zip(s.chunks_exact(len));
        for (k, ((ok, uk), sk)) in blocks.enumerate() {
            match ce_weight {
                None => {
                    for (((o, &u), &p), &d) in ok.iter_mut().zip(uk).zip(sk).zip(dot.iter()) {
                        *o = (p * (u - d)) as f32;
                    }
                }
                Some(w) => {
                    for ((((o, &u), &p), &d), &cl) in ok.iter_mut().zip(uk).zip(sk).zip(dot.iter()).zip(class) {
                        let y = usize::from(cl);
                        *o = (p * (u - d) + w[y] * (p - f64::from(u8::from(k == y)))) as f32;
                    }
                }
            }
        }
    }
}
