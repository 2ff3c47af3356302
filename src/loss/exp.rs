//! e^x for x ≤ 0 in f64, written without branches or table look-ups so that a loop of it
//! vectorises (the activations only ever need e^x of non-positive x: e^(−|z|) for the sigmoid,
//! e^(z − max z) for the softmax).
//!
//! Range reduction: x = n·ln2 + r with n = round(x / ln2), |r| ≤ ln2/2 (+ rounding), ln2 split
//! into a high part with 32 significant bits (n·ln2_hi is exact for |n| < 2^21) and a low part
//! (Cody & Waite). Then e^r = 1 + r + r²·q(r) with q the Taylor polynomial of (e^r − 1 − r)/r² to
//! degree 11 (e^r to degree 13; the truncation error r^14/14! is below 5·10⁻¹⁸), and
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

/// 1/k! for k = 13 down to 2.
const INV_FACT: [f64; 12] = [
    1.0 / 6_227_020_800.0,
    1.0 / 479_001_600.0,
    1.0 / 39_916_800.0,
    1.0 / 3_628_800.0,
    1.0 / 362_880.0,
    1.0 / 40_320.0,
    1.0 / 5_040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
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
    let mut q = [INV_FACT[0]; W];
    for c in &INV_FACT[1..] {
        for i in 0..W {
            q[i] = q[i] * r[i] + c;
        }
    }
    let mut e = [0.0; W];
    for i in 0..W {
        let e_r = 1.0 + (r[i] + (r[i] * r[i]) * q[i]);
        // n ∈ [−1075, 0] ⇒ n1, n2 ∈ [−538, 0]: both powers of two normal.
        let half = n[i] * 0.5 + SHIFT;
        let n2 = (n[i] - (half - SHIFT)) + SHIFT;
        e[i] = e_r * pow2(half) * pow2(n2);
    }
    e
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
