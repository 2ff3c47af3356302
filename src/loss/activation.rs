//! Activations applied inside the loss, and their vector–Jacobian products (the chain rule from a
//! gradient with respect to probabilities to one with respect to logits). All in f64.
//!
//! sigmoid:  s = 1 / (1 + e^(−z)),            ds/dz = s·(1 − s),
//!           so dL/dz = dL/ds · s·(1 − s) channel by channel.
//! softmax:  s_k = e^(z_k) / Σ_j e^(z_j),     ds_k/dz_j = s_k·(δ_kj − s_j),
//!           so dL/dz_j = s_j·(u_j − Σ_k s_k·u_k) with u = dL/ds, per voxel across channels.

use serde::Serialize;

use super::exp::{exp_lanes, BLOCK};
use crate::simd::avx2_or_portable;

/// What the loss applies to the values in the prediction file before computing Dice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// The file holds probabilities; no activation.
    None,
    /// The file holds logits; sigmoid per channel.
    Sigmoid,
    /// The file holds logits; softmax across channels (needs at least two channels).
    Softmax,
}

impl Activation {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Activation::None => "none",
            Activation::Sigmoid => "sigmoid",
            Activation::Softmax => "softmax",
        }
    }

    /// What the gradient is taken with respect to.
    pub fn wrt(self) -> &'static str {
        match self {
            Activation::None => "probabilities",
            Activation::Sigmoid => "logits (through sigmoid)",
            Activation::Softmax => "logits (through softmax)",
        }
    }
}

/// Logistic sigmoid of `W` values, evaluated without overflow for large |z|: with
/// e = exp(−|z|), 1/(1 + e) for z ≥ 0 and e/(1 + e) for z < 0. Written as a select rather than a
/// branch (noisy logits change sign at random).
#[inline(always)]
fn sigmoid_lanes<const W: usize>(z: [f64; W]) -> [f64; W] {
    let mut e = [0.0; W];
    for i in 0..W {
        e[i] = -z[i].abs();
    }
    let mut e = exp_lanes(e);
    for i in 0..W {
        let num = if z[i] >= 0.0 { 1.0 } else { e[i] };
        e[i] = num / (1.0 + e[i]);
    }
    e
}

/// Logistic sigmoid of one value (see `sigmoid_lanes`).
#[inline(always)]
pub fn sigmoid(z: f64) -> f64 {
    sigmoid_lanes([z])[0]
}

/// Softmax of `z` into `s` (same length), shifted by max(z) for stability.
#[inline]
pub fn softmax(z: &[f64], s: &mut [f64]) {
    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut total = 0.0;
    for (sk, &zk) in s.iter_mut().zip(z) {
        *sk = exp_lanes([zk - m])[0];
        total += *sk;
    }
    for sk in s.iter_mut() {
        *sk /= total;
    }
}

/// [`sigmoid`] of each value of `z` into `s` (same length); on AVX2 when the processor has it.
pub fn sigmoid_into(z: &[f32], s: &mut [f64]) {
    let s = &mut s[..z.len()];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor has AVX2 (checked just above).
        return unsafe { avx2::sigmoid_into(z, s) };
    }
    // BLOCK values side by side, the rest one by one (same operations per value).
    let (mut out, mut src) = (s.chunks_exact_mut(BLOCK), z.chunks_exact(BLOCK));
    for (o, zb) in (&mut out).zip(&mut src) {
        let mut x = [0.0; BLOCK];
        for (v, &zv) in x.iter_mut().zip(zb) {
            *v = f64::from(zv);
        }
        o.copy_from_slice(&sigmoid_lanes(x));
    }
    for (o, &zv) in out.into_remainder().iter_mut().zip(src.remainder()) {
        *o = sigmoid(f64::from(zv));
    }
}

/// `out[j] = e^(z[j] − m[j])` (z[j] ≤ m[j]); on AVX2 when the processor has it.
fn exp_shifted_into(z: &[f32], m: &[f64], out: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor has AVX2 (checked just above).
        return unsafe { avx2::exp_shifted_into(z, m, out) };
    }
    let (mut o, mut src, mut max) = (out.chunks_exact_mut(BLOCK), z.chunks_exact(BLOCK), m.chunks_exact(BLOCK));
    for ((ob, zb), mb) in (&mut o).zip(&mut src).zip(&mut max) {
        let mut x = [0.0; BLOCK];
        for ((v, &zv), &m) in x.iter_mut().zip(zb).zip(mb) {
            *v = f64::from(zv) - m;
        }
        ob.copy_from_slice(&exp_lanes(x));
    }
    for ((o, &zv), &m) in o.into_remainder().iter_mut().zip(src.remainder()).zip(max.remainder()) {
        *o = exp_lanes([f64::from(zv) - m])[0];
    }
}

avx2_or_portable! {
    /// [`softmax`] across channels of a block of voxels: `z[k]` holds channel k's logits of the
    /// block, `s` receives the probabilities channel-major (`s[k*len + j]` for voxel j), `scratch`
    /// (one value per voxel) holds the per-voxel maxima and then totals. The same operations, in the
    /// same order, as [`softmax`] on each voxel.
    pub fn softmax_into(z: &[&[f32]], s: &mut [f64], scratch: &mut [f64]) {
        let len = scratch.len();
        scratch.fill(f64::NEG_INFINITY);
        for zk in z {
            for (m, &v) in scratch.iter_mut().zip(*zk) {
                *m = m.max(f64::from(v));
            }
        }
        for (zk, sk) in z.iter().zip(s.chunks_exact_mut(len)) {
            exp_shifted_into(&zk[..len], scratch, sk);
        }
        scratch.fill(0.0);
        for sk in s.chunks_exact(len) {
            for (t, &e) in scratch.iter_mut().zip(sk) {
                *t += e;
            }
        }
        for sk in s.chunks_exact_mut(len) {
            for (e, &t) in sk.iter_mut().zip(scratch.iter()) {
                *e /= t;
            }
        }
    }
}

/// Chain rule through softmax: `out_j = s_j·(u_j − Σ_k s_k·u_k)`.
#[inline]
pub fn softmax_vjp(s: &[f64], u: &[f64], out: &mut [f64]) {
    // Σ_k s_k·u_k in channel order, starting from the first product.
    let dot = s.iter().zip(u).map(|(a, b)| a * b).reduce(|t, x| t + x).unwrap_or(0.0);
    for ((o, &sj), &uj) in out.iter_mut().zip(s).zip(u) {
        *o = sj * (uj - dot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_is_symmetric_and_saturates_without_nan() {
        for z in [-800.0, -3.0, 0.0, 0.7, 800.0] {
            let s = sigmoid(z);
            assert!((s + sigmoid(-z) - 1.0).abs() < 1e-15);
            assert!(s.is_finite());
        }
        assert_eq!(sigmoid(0.0), 0.5);
    }

    #[test]
    fn block_versions_equal_the_per_value_ones_bit_for_bit() {
        let len = 1037;
        let z: Vec<Vec<f32>> = (0..3)
            .map(|k| (0..len).map(|j| ((j * 7919 + k * 104_729) % 2001) as f32 * 0.037 - 37.0).collect())
            .collect();
        let mut s = vec![0.0; len];
        sigmoid_into(&z[0], &mut s);
        for (j, &v) in z[0].iter().enumerate() {
            assert_eq!(s[j].to_bits(), sigmoid(f64::from(v)).to_bits(), "sigmoid at {j}");
        }
        let channels: Vec<&[f32]> = z.iter().map(Vec::as_slice).collect();
        let (mut s, mut scratch) = (vec![0.0; 3 * len], vec![0.0; len]);
        softmax_into(&channels, &mut s, &mut scratch);
        for j in 0..len {
            let zv: Vec<f64> = (0..3).map(|k| f64::from(z[k][j])).collect();
            let mut p = [0.0; 3];
            softmax(&zv, &mut p);
            for k in 0..3 {
                assert_eq!(s[k * len + j].to_bits(), p[k].to_bits(), "softmax at {j}, channel {k}");
            }
        }
    }

    #[test]
    fn softmax_vjp_matches_finite_differences() {
        let z = [0.3, -1.2, 2.0, 0.0];
        let u = [0.5, -2.0, 0.25, 1.0];
        let f = |z: &[f64]| {
            let mut s = [0.0; 4];
            softmax(z, &mut s);
            s.iter().zip(&u).map(|(a, b)| a * b).sum::<f64>()
        };
        let mut s = [0.0; 4];
        softmax(&z, &mut s);
        let mut g = [0.0; 4];
        softmax_vjp(&s, &u, &mut g);
        for j in 0..4 {
            let h = 1e-6;
            let (mut zp, mut zm) = (z, z);
            zp[j] += h;
            zm[j] -= h;
            let fd = (f(&zp) - f(&zm)) / (2.0 * h);
            assert!((fd - g[j]).abs() < 1e-9, "channel {j}: fd {fd} vs {}", g[j]);
        }
    }
}

/// The activations' loops written with AVX2 intrinsics around [`exp4x`](super::exp::avx2::exp4x): the same operations per
/// value as the portable code, so the same bits.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::super::exp::avx2::exp4x;
    use super::{exp_lanes, sigmoid};

    /// Registers of four values that the loops below work on side by side.
    const K: usize = 4;

    /// [`super::sigmoid_lanes`] of `K` registers of four values: e = e^(−|z|) (|z| with its sign
    /// bit set), then 1/(1 + e) where z ≥ 0 and e/(1 + e) elsewhere.
    ///
    /// # Safety
    /// As [`exp4x`]: AVX2, and called only from functions compiled for it.
    #[inline(always)]
    unsafe fn sigmoid4x(z: [__m256d; K]) -> [__m256d; K] {
        let mut e = z;
        for k in 0..K {
            e[k] = _mm256_or_pd(z[k], _mm256_set1_pd(-0.0));
        }
        let mut e = exp4x(e);
        let one = _mm256_set1_pd(1.0);
        for k in 0..K {
            let num = _mm256_blendv_pd(e[k], one, _mm256_cmp_pd::<_CMP_GE_OQ>(z[k], _mm256_setzero_pd()));
            e[k] = _mm256_div_pd(num, _mm256_add_pd(one, e[k]));
        }
        e
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn sigmoid_into(z: &[f32], s: &mut [f64]) {
        let n = z.len().min(s.len());
        let done = n / (4 * K) * (4 * K);
        for j in (0..done).step_by(4 * K) {
            let mut v = [_mm256_setzero_pd(); K];
            for (k, v) in v.iter_mut().enumerate() {
                // SAFETY: j + 4K <= n, the length of z.
                *v = _mm256_cvtps_pd(unsafe { _mm_loadu_ps(z.as_ptr().add(j + 4 * k)) });
            }
            // SAFETY: this function is compiled for AVX2, which the caller checked.
            for (k, v) in unsafe { sigmoid4x(v) }.into_iter().enumerate() {
                // SAFETY: j + 4K <= n, the length of s.
                unsafe { _mm256_storeu_pd(s.as_mut_ptr().add(j + 4 * k), v) };
            }
        }
        for j in done..n {
            s[j] = sigmoid(f64::from(z[j]));
        }
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn exp_shifted_into(z: &[f32], m: &[f64], out: &mut [f64]) {
        let n = z.len().min(m.len()).min(out.len());
        let done = n / (4 * K) * (4 * K);
        for j in (0..done).step_by(4 * K) {
            let mut x = [_mm256_setzero_pd(); K];
            for (k, x) in x.iter_mut().enumerate() {
                let i = j + 4 * k;
                // SAFETY: i + 4 <= n, the length of all three slices.
                *x = unsafe {
                    _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(z.as_ptr().add(i))), _mm256_loadu_pd(m.as_ptr().add(i)))
                };
            }
            // SAFETY: this function is compiled for AVX2, which the caller checked.
            for (k, e) in unsafe { exp4x(x) }.into_iter().enumerate() {
                // SAFETY: as above.
                unsafe { _mm256_storeu_pd(out.as_mut_ptr().add(j + 4 * k), e) };
            }
        }
        for j in done..n {
            out[j] = exp_lanes([f64::from(z[j]) - m[j]])[0];
        }
    }
}
