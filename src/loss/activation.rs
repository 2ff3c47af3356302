//! Activations applied inside the loss, and their vector–Jacobian products (the chain rule from a
//! gradient with respect to probabilities to one with respect to logits). All in f64.
//!
//! sigmoid:  s = 1 / (1 + e^(−z)),            ds/dz = s·(1 − s),
//!           so dL/dz = dL/ds · s·(1 − s) channel by channel.
//! softmax:  s_k = e^(z_k) / Σ_j e^(z_j),     ds_k/dz_j = s_k·(δ_kj − s_j),
//!           so dL/dz_j = s_j·(u_j − Σ_k s_k·u_k) with u = dL/ds, per voxel across channels.
//!
//! The exponential and the per-value block loops are in [`crate::simd`].

use crate::names::named_enum;
use crate::simd::activation::exp_shifted_into;
pub use crate::simd::activation::{sigmoid, sigmoid_into};
use crate::simd::avx2_or_portable;
use crate::simd::exp::exp_lanes;

named_enum! {
    /// What the loss applies to the values in the prediction before computing Dice.
    pub enum Activation: "activation" {
        /// The values are probabilities; no activation.
        None = "none",
        /// The values are logits; sigmoid per channel.
        Sigmoid = "sigmoid",
        /// The values are logits; softmax across channels (needs at least two channels).
        Softmax = "softmax",
    }
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
    fn block_softmax_equals_the_per_voxel_one_bit_for_bit() {
        let len = 1037;
        let z: Vec<Vec<f32>> = (0..3)
            .map(|k| (0..len).map(|j| ((j * 7919 + k * 104_729) % 2001) as f32 * 0.037 - 37.0).collect())
            .collect();
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
