//! The activations' per-value loops on blocks: the sigmoid, and the shifted exponential e^(z − m)
//! of the softmax. Portable lanes ([`BLOCK`] values side by side) and AVX2 intrinsics around
//! `exp4x` (the AVX2 exponential of [`super::exp`]), the same operations per value, so the same bits.

use super::exp::{exp_lanes, BLOCK};
use super::Avx2;

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

/// [`sigmoid`] of each value of `z` into `s` (at least as long).
pub fn sigmoid_into(z: &[f32], s: &mut [f64]) {
    let s = &mut s[..z.len()];
    match Avx2::get() {
        Some(t) => avx2::sigmoid_into(t, z, s),
        None => sigmoid_into_portable(z, s),
    }
}

fn sigmoid_into_portable(z: &[f32], s: &mut [f64]) {
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

/// `out[j] = e^(z[j] − m[j])` (`z[j] ≤ m[j]`) for j < the shortest length.
pub fn exp_shifted_into(z: &[f32], m: &[f64], out: &mut [f64]) {
    match Avx2::get() {
        Some(t) => avx2::exp_shifted_into(t, z, m, out),
        None => exp_shifted_into_portable(z, m, out),
    }
}

fn exp_shifted_into_portable(z: &[f32], m: &[f64], out: &mut [f64]) {
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

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::super::exp::avx2::exp4x;
    use super::super::Avx2;
    use super::{exp_lanes, sigmoid};

    /// Registers of four values that the loops below work on side by side.
    const K: usize = 4;

    /// `sigmoid_lanes` of `K` registers of four values: e = e^(−|z|) (|z| with its sign bit
    /// set), then 1/(1 + e) where z ≥ 0 and e/(1 + e) elsewhere.
    ///
    /// # Safety
    /// As [`exp4x`]: AVX2, and called only from functions compiled for it.
    #[inline(always)]
    unsafe fn sigmoid4x(z: [__m256d; K]) -> [__m256d; K] {
        // SAFETY: AVX2, as the caller promises; no memory is touched.
        unsafe {
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
    }

    pub(super) fn sigmoid_into(_: Avx2, z: &[f32], s: &mut [f64]) {
        // SAFETY: the token proves the processor has AVX2.
        unsafe { sigmoid_into_avx2(z, s) }
    }

    #[target_feature(enable = "avx2")]
    fn sigmoid_into_avx2(z: &[f32], s: &mut [f64]) {
        let n = z.len().min(s.len());
        let done = n / (4 * K) * (4 * K);
        for j in (0..done).step_by(4 * K) {
            let mut v = [_mm256_setzero_pd(); K];
            for (k, v) in v.iter_mut().enumerate() {
                // SAFETY: j + 4K <= n, the length of z.
                *v = _mm256_cvtps_pd(unsafe { _mm_loadu_ps(z.as_ptr().add(j + 4 * k)) });
            }
            // SAFETY: this function is compiled for AVX2.
            for (k, v) in unsafe { sigmoid4x(v) }.into_iter().enumerate() {
                // SAFETY: j + 4K <= n, the length of s.
                unsafe { _mm256_storeu_pd(s.as_mut_ptr().add(j + 4 * k), v) };
            }
        }
        for j in done..n {
            s[j] = sigmoid(f64::from(z[j]));
        }
    }

    pub(super) fn exp_shifted_into(_: Avx2, z: &[f32], m: &[f64], out: &mut [f64]) {
        // SAFETY: the token proves the processor has AVX2.
        unsafe { exp_shifted_into_avx2(z, m, out) }
    }

    #[target_feature(enable = "avx2")]
    fn exp_shifted_into_avx2(z: &[f32], m: &[f64], out: &mut [f64]) {
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
            // SAFETY: this function is compiled for AVX2.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn logits(len: usize, k: usize) -> Vec<f32> {
        (0..len).map(|j| ((j * 7919 + k * 104_729) % 2001) as f32 * 0.037 - 37.0).collect()
    }

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
    fn the_portable_block_loops_equal_the_per_value_definitions() {
        let z = logits(1037, 0);
        let mut s = vec![0.0; z.len()];
        sigmoid_into_portable(&z, &mut s);
        for (j, &v) in z.iter().enumerate() {
            assert_eq!(s[j].to_bits(), sigmoid(f64::from(v)).to_bits(), "sigmoid at {j}");
        }
        let m: Vec<f64> = z.iter().map(|&v| f64::from(v) + 0.5).collect();
        let mut e = vec![0.0; z.len()];
        exp_shifted_into_portable(&z, &m, &mut e);
        for j in 0..z.len() {
            assert_eq!(e[j].to_bits(), exp_lanes([f64::from(z[j]) - m[j]])[0].to_bits(), "exp at {j}");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_build_gives_the_same_bits_as_the_portable_one() {
        let Some(t) = Avx2::detect() else { return };
        for len in [0, 1, 15, 16, 17, 1037] {
            let z = logits(len, 3);
            let (mut a, mut b) = (vec![0.0; len], vec![0.0; len]);
            sigmoid_into_portable(&z, &mut a);
            avx2::sigmoid_into(t, &z, &mut b);
            assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "sigmoid, {len} values");
            let m: Vec<f64> = z.iter().map(|&v| f64::from(v).max(0.0) + 1.0).collect();
            exp_shifted_into_portable(&z, &m, &mut a);
            avx2::exp_shifted_into(t, &z, &m, &mut b);
            assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "exp, {len} values");
        }
    }
}
