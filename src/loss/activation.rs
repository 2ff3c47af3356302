//! Activations applied inside the loss, and their vector–Jacobian products (the chain rule from a
//! gradient with respect to probabilities to one with respect to logits). All in f64.
//!
//! sigmoid:  s = 1 / (1 + e^(−z)),            ds/dz = s·(1 − s),
//!           so dL/dz = dL/ds · s·(1 − s) channel by channel.
//! softmax:  s_k = e^(z_k) / Σ_j e^(z_j),     ds_k/dz_j = s_k·(δ_kj − s_j),
//!           so dL/dz_j = s_j·(u_j − Σ_k s_k·u_k) with u = dL/ds, per voxel across channels.

use serde::Serialize;

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

/// Logistic sigmoid, evaluated without overflow for large |z|: with e = exp(−|z|),
/// 1/(1 + e) for z ≥ 0 and e/(1 + e) for z < 0. Written as a select rather than a branch (noisy
/// logits change sign at random).
#[inline]
pub fn sigmoid(z: f64) -> f64 {
    let e = (-z.abs()).exp();
    let num = if z >= 0.0 { 1.0 } else { e };
    num / (1.0 + e)
}

/// Softmax of `z` into `s` (same length), shifted by max(z) for stability.
#[inline]
pub fn softmax(z: &[f64], s: &mut [f64]) {
    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut total = 0.0;
    for (sk, &zk) in s.iter_mut().zip(z) {
        *sk = (zk - m).exp();
        total += *sk;
    }
    for sk in s.iter_mut() {
        *sk /= total;
    }
}

/// Chain rule through softmax: `out_j = s_j·(u_j − Σ_k s_k·u_k)`.
#[inline]
pub fn softmax_vjp(s: &[f64], u: &[f64], out: &mut [f64]) {
    let dot: f64 = s.iter().zip(u).map(|(a, b)| a * b).sum();
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
