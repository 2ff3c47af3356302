//! e^x for x ≤ 0 in f64, written without branches or table look-ups so that a loop of it
//! vectorises (the activations only ever need e^x of non-positive x: e^(−|z|) for the sigmoid,
//! e^(z − max z) for the softmax).
//!
//! Range reduction: x = n·ln2 + r with n = round(x / ln2), |r| ≤ ln2/2 (+ rounding), ln2 split
//! into a high part with 32 significant bits (n·ln2_hi is exact for |n| < 2^21) and a low part
//! (Cody & Waite). Then e^r = 1 + r + r²·q(r) with q the Taylor polynomial of (e^r − 1 − r)/r² to
//! degree 11 (e^r to degree 13; the truncation error r^14/14! is below 5·10⁻¹⁸), evaluated by
//! Estrin's scheme — q = (p₀ + p₂r²) + (p₄ + p₆r²)·r⁴ + (p₈ + p₁₀r²)·r⁸ with pᵢ = Aᵢ + Aᵢ₊₁·r —
//! whose dependency chain is a third as long as Horner's (the steps of one value overlap), and
//! e^x = e^r·2^n1·2^n2 with n = n1 + n2 split in halves so that both powers of two are normal
//! floats down to the smallest subnormal result. Inputs below −745.2 give 0.
//!
//! Accuracy: within 1 ulp of the exact result on [−708, 0] (a test compares it with the platform's
//! `exp` on a million points; they agree exactly on most). Every operation is a plain IEEE
//! operation on its own value — no fused multiply-add, no lane crossing — so the scalar and the
//! vectorised builds give bit-identical results on every processor.

/// 1.5·2^52: adding it to |y| < 2^51 rounds y to an integer held in the low mantissa bits.
const SHIFT: f64 = 6_755_399_441_055_744.0;
/// ln 2 rounded to 32 significant bits (fdlibm's ln2HI), and the rest (ln2LO).
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
/// Below this e^x is under half the smallest subnormal: 0.
const LOWEST: f64 = -745.2;

/// The Taylor coefficients of q(r) = (e^r − 1 − r)/r²: A[i] = 1/(i + 2)!, i = 0 … 11.
const A: [f64; 12] = [
    0.5,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5_040.0,
    1.0 / 40_320.0,
    1.0 / 362_880.0,
    1.0 / 3_628_800.0,
    1.0 / 39_916_800.0,
    1.0 / 479_001_600.0,
    1.0 / 6_227_020_800.0,
];

/// Values computed side by side by the block loops ([`exp_lanes`] of `BLOCK` values): two AVX2
/// vectors whose dependency chains interleave.
pub const BLOCK: usize = 8;

/// 2^n for an integer n ≥ −1022 held as `n + SHIFT`.
#[inline(always)]
fn pow2(shifted: f64) -> f64 {
    // The low 12 bits of the mantissa of n + SHIFT are n mod 4096; n + 1023 lands in the exponent.
    f64::from_bits(shifted.to_bits().wrapping_add(1023) << 52)
}

/// e^x of each of `W` values, x ≤ 0 (see the module notes). Each step is applied to all the
/// values before the next, so that the W computations proceed side by side; the result of a value
/// does not depend on `W` or on its neighbours.
#[inline(always)]
pub fn exp_lanes<const W: usize>(x: [f64; W]) -> [f64; W] {
    let mut x = x;
    for v in &mut x {
        // A compare and select (f64::max would also handle NaN, which is passed through here).
        *v = if *v < LOWEST { LOWEST } else { *v };
    }
    let mut n = [0.0; W];
    let mut r = [0.0; W];
    for i in 0..W {
        n[i] = (x[i] * std::f64::consts::LOG2_E + SHIFT) - SHIFT;
        r[i] = (x[i] - n[i] * LN2_HI) - n[i] * LN2_LO;
    }
    let mut e = [0.0; W];
    for i in 0..W {
        let (r, r2) = (r[i], r[i] * r[i]);
        let (r4, p) = (r2 * r2, |k: usize| A[k] + A[k + 1] * r);
        let q = (p(0) + p(2) * r2) + (p(4) + p(6) * r2) * r4 + (p(8) + p(10) * r2) * (r4 * r4);
        let e_r = 1.0 + (r + r2 * q);
        // n ∈ [−1075, 0] ⇒ n1, n2 ∈ [−538, 0]: both powers of two normal.
        let half = n[i] * 0.5 + SHIFT;
        let n2 = (n[i] - (half - SHIFT)) + SHIFT;
        e[i] = e_r * pow2(half) * pow2(n2);
    }
    e
}

/// [`exp_lanes`] written with AVX2 intrinsics, four values to a register: the same IEEE
/// operations in the same order, so the same bits. (The compiler, left to vectorise a loop of
/// `exp_lanes` itself, interleaves several blocks through shuffles and spills.)
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    use super::{A, LN2_HI, LN2_LO, LOWEST, SHIFT};

    /// 2^n of four integers n ≥ −1022 held as `n + SHIFT` (see [`super::pow2`]).
    ///
    /// # Safety
    /// As [`exp4x`].
    #[inline(always)]
    unsafe fn pow2(shifted: __m256d) -> __m256d {
        // SAFETY: AVX2, as the caller promises.
        unsafe {
            let bits = _mm256_add_epi64(_mm256_castpd_si256(shifted), _mm256_set1_epi64x(1023));
            _mm256_castsi256_pd(_mm256_slli_epi64::<52>(bits))
        }
    }

    /// e^x of `K` registers of four values x ≤ 0 (see [`super::exp_lanes`]), each step applied to
    /// all of them before the next: K independent chains side by side, which the processor
    /// overlaps.
    ///
    /// # Safety
    /// The processor must have AVX2. Call it only from functions compiled for AVX2: it is inlined
    /// into them (a function of its own with AVX2 enabled would not be, and would pass its
    /// registers through memory).
    #[inline(always)]
    pub(crate) unsafe fn exp4x<const K: usize>(x: [__m256d; K]) -> [__m256d; K] {
        // SAFETY: AVX2, as the caller promises; no memory is touched.
        unsafe {
            let lowest = _mm256_set1_pd(LOWEST);
            let shift = _mm256_set1_pd(SHIFT);
            let (add, sub, mul) = (_mm256_add_pd, _mm256_sub_pd, _mm256_mul_pd);
            let c = |v: f64| _mm256_set1_pd(v);
            let mut x = x;
            let mut n = x;
            for k in 0..K {
                x[k] = _mm256_blendv_pd(x[k], lowest, _mm256_cmp_pd::<_CMP_LT_OQ>(x[k], lowest));
                n[k] = sub(add(mul(x[k], c(std::f64::consts::LOG2_E)), shift), shift);
            }
            let mut e = x;
            for k in 0..K {
                let r = sub(sub(x[k], mul(n[k], c(LN2_HI))), mul(n[k], c(LN2_LO)));
                let r2 = mul(r, r);
                let r4 = mul(r2, r2);
                let p = |i: usize| add(c(A[i]), mul(c(A[i + 1]), r));
                let q = add(
                    add(add(p(0), mul(p(2), r2)), mul(add(p(4), mul(p(6), r2)), r4)),
                    mul(add(p(8), mul(p(10), r2)), mul(r4, r4)),
                );
                let e_r = add(c(1.0), add(r, mul(r2, q)));
                let half = add(mul(n[k], c(0.5)), shift);
                let n2 = add(sub(n[k], sub(half, shift)), shift);
                e[k] = mul(mul(e_r, pow2(half)), pow2(n2));
            }
            e
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp_nonpositive(x: f64) -> f64 {
        exp_lanes([x])[0]
    }

    /// Distance in units in the last place between two non-negative floats.
    fn ulps(a: f64, b: f64) -> u64 {
        a.to_bits().abs_diff(b.to_bits())
    }

    #[test]
    fn within_one_ulp_of_the_platform_exp() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let (mut worst, mut equal, total) = (0, 0, 1_000_000);
        for i in 0..total {
            // Half the points near 0 (sigmoid of small logits), half over the whole normal range.
            let x = if i % 2 == 0 { -40.0 * next() } else { -708.0 * next() };
            let d = ulps(exp_nonpositive(x), x.exp());
            worst = worst.max(d);
            equal += usize::from(d == 0);
        }
        assert!(worst <= 1, "worst {worst} ulp");
        assert!(equal > total * 17 / 20, "{equal} of {total} equal");
    }

    #[test]
    fn ln2_is_split_as_claimed() {
        assert_eq!(LN2_HI.to_bits() & 0x1f_ffff, 0, "21 trailing zero bits");
        assert_eq!(LN2_HI + LN2_LO, std::f64::consts::LN_2);
        // LN2_LO carries the bits of ln 2 below those of the f64 nearest to it.
        assert!((LN2_LO - (std::f64::consts::LN_2 - LN2_HI)).abs() <= f64::EPSILON / 4.0);
    }

    #[test]
    fn exact_points_and_the_ends_of_the_range() {
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-0.0), 1.0);
        assert_eq!(exp_nonpositive(-std::f64::consts::LN_2), 0.5);
        for x in [-1.0, -0.5, -1e-300, -5e-324, -20.0, -700.0] {
            assert!(ulps(exp_nonpositive(x), x.exp()) <= 1, "{x}");
        }
        // Subnormal results: within one subnormal step.
        for x in [-709.0, -720.0, -740.0, -744.4] {
            let (a, b) = (exp_nonpositive(x), x.exp());
            assert!(a > 0.0 && a < f64::MIN_POSITIVE && ulps(a, b) <= 1, "{x}: {a} vs {b}");
        }
        assert_eq!(exp_nonpositive(-745.2), 0.0);
        assert_eq!(exp_nonpositive(-1e6), 0.0);
        assert_eq!(exp_nonpositive(f64::NEG_INFINITY), 0.0);
    }

    /// e^x of eight values through [`avx2::exp4x`] (two registers side by side).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn exp8_avx2(x: &[f64; 8]) -> [f64; 8] {
        use std::arch::x86_64::*;
        let mut out = [0.0; 8];
        // SAFETY: compiled for AVX2 (the caller checks the processor); x and out hold 8 f64.
        unsafe {
            let e = avx2::exp4x([_mm256_loadu_pd(x.as_ptr()), _mm256_loadu_pd(x.as_ptr().add(4))]);
            _mm256_storeu_pd(out.as_mut_ptr(), e[0]);
            _mm256_storeu_pd(out.as_mut_ptr().add(4), e[1]);
        }
        out
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_build_gives_the_same_bits() {
        let Some(_) = crate::simd::Avx2::detect() else { return };
        let mut xs: Vec<f64> =
            vec![0.0, -0.0, -5e-324, -1e-300, -0.5, -745.1, -745.2, -745.3, -1e6, f64::NEG_INFINITY, f64::NAN, -744.9];
        xs.extend((0..100_000).map(|i| -(i as f64) * 0.007_453_1));
        xs.extend((0..10_000).map(|i| -(i as f64) * 1e-5));
        for x in xs.chunks_exact(8) {
            // SAFETY: the processor has AVX2 (the token exists).
            let out = unsafe { exp8_avx2(x.try_into().unwrap()) };
            for (o, &v) in out.iter().zip(x) {
                let want = exp_nonpositive(v);
                assert!(o.to_bits() == want.to_bits() || (o.is_nan() && want.is_nan()), "{v}: {o} vs {want}");
            }
        }
    }

    #[test]
    fn never_decreases_as_x_grows() {
        let mut prev = 0.0;
        let mut x = -745.0;
        while x <= 0.0 {
            let e = exp_nonpositive(x);
            assert!(e >= prev, "{x}");
            prev = e;
            x += 1.0 / 1024.0 + 1e-7;
        }
    }
}
