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

/// Logistic sigmoid of one value (see [`sigmoid_lanes`]).
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

avx2_or_portable! {
    /// [`sigmoid`] of each value of `z` into `s` (same length).
    pub fn sigmoid_into(z: &[f32], s: &mut [f64]) {
        // BLOCK values side by side, the rest one by one (same operations per value).
        let s = &mut s[..z.len()];
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
            let (mut out, mut src) = (sk.chunks_exact_mut(BLOCK), zk[..len].chunks_exact(BLOCK));
            let mut max = scratch.chunks_exact(BLOCK);
            for ((o, zb), mb) in (&mut out).zip(&mut src).zip(&mut max) {
                let mut x = [0.0; BLOCK];
                for ((v, &zv), &m) in x.iter_mut().zip(zb).zip(mb) {
                    *v = f64::from(zv) - m;
                }
                o.copy_from_slice(&exp_lanes(x));
            }
            let rest = out.into_remainder().iter_mut().zip(src.remainder()).zip(max.remainder());
            for ((o, &zv), &m) in rest {
                *o = exp_lanes([f64::from(zv) - m])[0];
            }
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
