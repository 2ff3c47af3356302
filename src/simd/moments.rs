//! Statistics of a block of gradient values, split by side (foreground or background): counts,
//! extremes, deviation sums, magnitudes, L1 sums and the float16 fates of the values times a loss
//! scale, in [`LANES`] lanes — the loop that [`crate::analysis`] runs on every block of every
//! channel. A portable build and an AVX2 build with intrinsics, the same operation per lane.
//!
//! The float16 thresholds (see [`crate::analysis::precision`]): with round-to-nearest-even,
//! |x| ≤ 2^−25 becomes 0; 2^−25 < |x| < 2^−14 − 2^−25 becomes subnormal; |x| ≥ 65520 becomes
//! infinite. They are applied to x = S·v, the product rounded to float32 (one multiplication, the
//! same in both builds).

use super::Avx2;
use super::{fold_lanes, LANES};

/// |x| up to this (2^−25) becomes 0 in float16.
pub const F16_ZERO_MAX: f32 = 2.980_232_2e-8;
/// |x| from this (2^−14 − 2^−25: rounds up to the smallest normal) stays normal in float16.
pub const F16_NORMAL_MIN: f32 = 6.100_535_4e-5;
/// |x| from this becomes infinite in float16.
pub const F16_OVERFLOW: f32 = 65520.0;

/// What [`block_moments`] measures on a block: per side `[background, foreground]`.
#[derive(Debug, PartialEq)]
pub struct BlockMoments {
    pub count: [u64; 2],
    pub min: [f32; 2],
    pub max: [f32; 2],
    /// Σ (v − reference), Σ (v − reference)².
    pub sum_d: [f64; 2],
    pub sum_d2: [f64; 2],
    pub max_abs: f32,
    /// +∞ when all values are 0.
    pub min_nonzero_abs: f32,
    /// float16 fates of S·v: [flushed to zero (v ≠ 0), subnormal, overflow].
    pub float16: [u64; 3],
    /// Σ |v| per side.
    pub l1: [f64; 2],
    /// Σ |v| per side over the values whose S·v float16 flushes to zero.
    pub l1_flushed: [f64; 2],
    /// Some value has 0 < |v| and |S·v| < 2^−126 (float32-subnormal or 0), or |S·v| ≥ 0x7f7f0000
    /// (near the float32 maximum): only such values can be anything but a normal number or a zero
    /// in bfloat16.
    pub bfloat16_special: bool,
}

/// Bits of |v| from which a float32 may round to infinity in bfloat16 (a little below the first
/// that does, 0x7f7f8000).
const BF16_NEAR_MAX: u32 = 0x7f7f_0000;

/// Statistics of the values `g` on voxels of classes `class`, split by side (class `fg` or not),
/// deviations taken from `refs` = `[background, foreground]` reference values, fates of the values
/// times the loss scale `scale`. Values are taken in [`LANES`] lanes (lane = position modulo
/// LANES, sums added pairwise at the end), so the order of the additions depends only on the
/// positions. On AVX2 when the processor has it (the same operations on the same lanes: the same
/// result).
pub fn block_moments(g: &[f32], class: &[u8], fg: u8, refs: [f64; 2], scale: f32) -> BlockMoments {
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx2::get() {
        return avx2::block_moments(t, g, class, fg, refs, scale);
    }
    block_moments_portable(g, class, fg, refs, scale)
}

/// [`block_moments`] in plain Rust: three loops, each with few enough accumulators to stay in
/// registers (deviation sums; extremes and counts; L1 sums), and the values past the last whole
/// group of [`LANES`].
fn block_moments_portable(g: &[f32], class: &[u8], fg: u8, refs: [f64; 2], scale: f32) -> BlockMoments {
    let n = g.len().min(class.len());
    let mut m = MomentLanes::new(n);
    let whole = n - n % LANES;
    let groups = || g[..whole].chunks_exact(LANES).zip(class[..whole].chunks_exact(LANES));
    for (vs, cs) in groups() {
        for l in 0..LANES {
            m.moments(l, vs[l], cs[l] == fg, refs);
        }
    }
    for (vs, cs) in groups() {
        for l in 0..LANES {
            m.extremes(l, vs[l], cs[l] == fg, scale);
        }
    }
    for (vs, cs) in groups() {
        for l in 0..LANES {
            m.magnitudes(l, vs[l], cs[l] == fg, scale);
        }
    }
    m.finish(&g[whole..n], &class[whole..n], fg, refs, scale)
}

/// Per-lane accumulators of [`block_moments`]. Minima and maxima as compare-and-select (there is
/// no NaN among the values).
struct MomentLanes {
    n: usize,
    /// Σ d on background, Σ d on foreground, Σ d² on background, Σ d² on foreground; Σ |v| on
    /// background, on foreground; Σ |v| of float16-flushed values on background, on foreground.
    sums: [[f64; LANES]; 8],
    /// Extremes per side `[background, foreground]`.
    lo: [[f32; LANES]; 2],
    hi: [[f32; LANES]; 2],
    max_abs: [f32; LANES],
    min_nz: [f32; LANES],
    /// Foreground voxels; float16 flushed, subnormal, overflowing; bfloat16-special.
    counts: [[u32; LANES]; 5],
}

impl MomentLanes {
    fn new(n: usize) -> Self {
        assert!(n / LANES < u32::MAX as usize, "a block of at most 2^32 values per lane");
        let inf = f32::INFINITY;
        MomentLanes {
            n,
            sums: [[0.0; LANES]; 8],
            lo: [[inf; LANES]; 2],
            hi: [[-inf; LANES]; 2],
            max_abs: [0.0; LANES],
            min_nz: [inf; LANES],
            counts: [[0; LANES]; 5],
        }
    }

    #[inline(always)]
    fn moments(&mut self, l: usize, v: f32, f: bool, refs: [f64; 2]) {
        let d = f64::from(v) - if f { refs[1] } else { refs[0] };
        let d2 = d * d;
        self.sums[0][l] += if f { 0.0 } else { d };
        self.sums[1][l] += if f { d } else { 0.0 };
        self.sums[2][l] += if f { 0.0 } else { d2 };
        self.sums[3][l] += if f { d2 } else { 0.0 };
    }

    /// Extremes, magnitudes and the fates of `scale`·v.
    #[inline(always)]
    fn extremes(&mut self, l: usize, v: f32, f: bool, scale: f32) {
        let inf = f32::INFINITY;
        let min = |m: f32, v: f32| if v < m { v } else { m };
        let max = |m: f32, v: f32| if v > m { v } else { m };
        let a = v.abs();
        self.lo[1][l] = min(self.lo[1][l], if f { v } else { inf });
        self.hi[1][l] = max(self.hi[1][l], if f { v } else { -inf });
        self.lo[0][l] = min(self.lo[0][l], if f { inf } else { v });
        self.hi[0][l] = max(self.hi[0][l], if f { -inf } else { v });
        self.max_abs[l] = max(self.max_abs[l], a);
        self.min_nz[l] = min(self.min_nz[l], if a > 0.0 { a } else { inf });
        let y = (v * scale).abs();
        let c = &mut self.counts;
        c[0][l] += u32::from(f);
        c[1][l] += u32::from(a > 0.0 && y <= F16_ZERO_MAX);
        c[2][l] += u32::from(y > F16_ZERO_MAX && y < F16_NORMAL_MIN);
        c[3][l] += u32::from(y >= F16_OVERFLOW);
        let bits = y.to_bits();
        c[4][l] += u32::from((a > 0.0 && bits < 0x0080_0000) || bits >= BF16_NEAR_MAX);
    }

    /// L1 sums per side, of all values and of those whose `scale`·v float16 flushes to zero.
    #[inline(always)]
    fn magnitudes(&mut self, l: usize, v: f32, f: bool, scale: f32) {
        let a = v.abs();
        let flushed = a > 0.0 && (v * scale).abs() <= F16_ZERO_MAX;
        let (a, lost) = (f64::from(a), if flushed { f64::from(a) } else { 0.0 });
        self.sums[4][l] += if f { 0.0 } else { a };
        self.sums[5][l] += if f { a } else { 0.0 };
        self.sums[6][l] += if f { 0.0 } else { lost };
        self.sums[7][l] += if f { lost } else { 0.0 };
    }

    /// Adds the last values (fewer than [`LANES`], in lanes 0, 1, …) and folds the lanes.
    fn finish(mut self, g: &[f32], class: &[u8], fg: u8, refs: [f64; 2], scale: f32) -> BlockMoments {
        for (l, (&v, &cl)) in g.iter().zip(class).enumerate() {
            self.moments(l, v, cl == fg, refs);
            self.extremes(l, v, cl == fg, scale);
            self.magnitudes(l, v, cl == fg, scale);
        }
        let inf = f32::INFINITY;
        let fold_min = |x: [f32; LANES]| x.iter().fold(inf, |m, &v| if v < m { v } else { m });
        let fold_max = |x: [f32; LANES]| x.iter().fold(-inf, |m, &v| if v > m { v } else { m });
        let total = |x: [u32; LANES]| x.iter().map(|&c| u64::from(c)).sum::<u64>();
        let fg_count = total(self.counts[0]);
        BlockMoments {
            count: [self.n as u64 - fg_count, fg_count],
            min: [fold_min(self.lo[0]), fold_min(self.lo[1])],
            max: [fold_max(self.hi[0]), fold_max(self.hi[1])],
            sum_d: [fold_lanes(self.sums[0]), fold_lanes(self.sums[1])],
            sum_d2: [fold_lanes(self.sums[2]), fold_lanes(self.sums[3])],
            max_abs: fold_max(self.max_abs),
            min_nonzero_abs: fold_min(self.min_nz),
            float16: [total(self.counts[1]), total(self.counts[2]), total(self.counts[3])],
            l1: [fold_lanes(self.sums[4]), fold_lanes(self.sums[5])],
            l1_flushed: [fold_lanes(self.sums[6]), fold_lanes(self.sums[7])],
            bfloat16_special: total(self.counts[4]) > 0,
        }
    }
}

/// [`block_moments`] with AVX2 intrinsics: the eight lanes of [`MomentLanes`] in registers (f64
/// sums in two registers of four, the rest in one of eight), the same operation per lane.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::super::Avx2;
    use super::{BlockMoments, MomentLanes, BF16_NEAR_MAX, F16_NORMAL_MIN, F16_OVERFLOW, F16_ZERO_MAX, LANES};

    const _: () = assert!(LANES == 8, "eight lanes: one register of f32, two of f64");

    pub(super) fn block_moments(_: Avx2, g: &[f32], class: &[u8], fg: u8, refs: [f64; 2], scale: f32) -> BlockMoments {
        // SAFETY: the token proves the processor has AVX2.
        unsafe { block_moments_avx2(g, class, fg, refs, scale) }
    }

    /// The two halves of eight f32 lanes as f64, and of a 32-bit mask as 64-bit masks.
    #[target_feature(enable = "avx2")]
    fn widen(v: __m256, mask: __m256i) -> ([__m256d; 2], [__m256d; 2]) {
        let values = [_mm256_cvtps_pd(_mm256_castps256_ps128(v)), _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v))];
        let masks = [
            _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(mask))),
            _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(mask))),
        ];
        (values, masks)
    }

    #[target_feature(enable = "avx2")]
    fn block_moments_avx2(g: &[f32], class: &[u8], fg: u8, refs: [f64; 2], scale: f32) -> BlockMoments {
        let n = g.len().min(class.len());
        let mut m = MomentLanes::new(n);
        let whole = n - n % LANES;
        let fg32 = _mm256_set1_epi32(i32::from(fg));
        let load = |j: usize| {
            debug_assert!(j + LANES <= whole);
            // SAFETY: the loops below call this with j + 8 <= whole <= n, the length of both slices.
            unsafe {
                let v = _mm256_loadu_ps(g.as_ptr().add(j));
                let c = _mm256_cvtepu8_epi32(_mm_loadl_epi64(class.as_ptr().add(j) as *const __m128i));
                (v, _mm256_cmpeq_epi32(c, fg32))
            }
        };
        let (r0, r1) = (_mm256_set1_pd(refs[0]), _mm256_set1_pd(refs[1]));
        let mut sums = [[_mm256_setzero_pd(); 2]; 4];
        for j in (0..whole).step_by(LANES) {
            let (v, f) = load(j);
            let (values, masks) = widen(v, f);
            for h in 0..2 {
                let fm = masks[h];
                let d = _mm256_sub_pd(values[h], _mm256_blendv_pd(r0, r1, fm));
                let d2 = _mm256_mul_pd(d, d);
                sums[0][h] = _mm256_add_pd(sums[0][h], _mm256_andnot_pd(fm, d));
                sums[1][h] = _mm256_add_pd(sums[1][h], _mm256_and_pd(fm, d));
                sums[2][h] = _mm256_add_pd(sums[2][h], _mm256_andnot_pd(fm, d2));
                sums[3][h] = _mm256_add_pd(sums[3][h], _mm256_and_pd(fm, d2));
            }
        }
        let store_sums = |out: &mut [[f64; LANES]], sums: &[[__m256d; 2]]| {
            for (out, r) in out.iter_mut().zip(sums) {
                // SAFETY: out holds 8 f64.
                unsafe {
                    _mm256_storeu_pd(out.as_mut_ptr(), r[0]);
                    _mm256_storeu_pd(out.as_mut_ptr().add(4), r[1]);
                }
            }
        };
        store_sums(&mut m.sums[..4], &sums);
        let (inf, ninf) = (_mm256_set1_ps(f32::INFINITY), _mm256_set1_ps(f32::NEG_INFINITY));
        let (zero, sign) = (_mm256_setzero_ps(), _mm256_set1_ps(-0.0));
        let s = _mm256_set1_ps(scale);
        let (mut lo, mut hi) = ([inf; 2], [ninf; 2]);
        let (mut max_abs, mut min_nz) = (zero, inf);
        let mut counts = [_mm256_setzero_si256(); 5];
        let subnormal_end = _mm256_set1_epi32(0x0080_0000);
        let near_max = _mm256_set1_epi32(BF16_NEAR_MAX as i32 - 1);
        for j in (0..whole).step_by(LANES) {
            let (v, f) = load(j);
            let fm = _mm256_castsi256_ps(f);
            let a = _mm256_andnot_ps(sign, v);
            // _mm256_min_ps(x, m) is `if x < m { x } else { m }`, as in MomentLanes::extremes.
            lo[1] = _mm256_min_ps(_mm256_blendv_ps(inf, v, fm), lo[1]);
            hi[1] = _mm256_max_ps(_mm256_blendv_ps(ninf, v, fm), hi[1]);
            lo[0] = _mm256_min_ps(_mm256_blendv_ps(v, inf, fm), lo[0]);
            hi[0] = _mm256_max_ps(_mm256_blendv_ps(v, ninf, fm), hi[0]);
            max_abs = _mm256_max_ps(a, max_abs);
            let nz = _mm256_cmp_ps::<_CMP_GT_OQ>(a, zero);
            min_nz = _mm256_min_ps(_mm256_blendv_ps(inf, a, nz), min_nz);
            let y = _mm256_andnot_ps(sign, _mm256_mul_ps(v, s));
            let flushed = _mm256_and_ps(nz, _mm256_cmp_ps::<_CMP_LE_OQ>(y, _mm256_set1_ps(F16_ZERO_MAX)));
            let subnormal = _mm256_and_ps(
                _mm256_cmp_ps::<_CMP_GT_OQ>(y, _mm256_set1_ps(F16_ZERO_MAX)),
                _mm256_cmp_ps::<_CMP_LT_OQ>(y, _mm256_set1_ps(F16_NORMAL_MIN)),
            );
            let overflow = _mm256_cmp_ps::<_CMP_GE_OQ>(y, _mm256_set1_ps(F16_OVERFLOW));
            // The bits of |S·v| as a signed integer are never negative: signed compares will do.
            let bits = _mm256_castps_si256(y);
            let special = _mm256_or_si256(
                _mm256_and_si256(_mm256_castps_si256(nz), _mm256_cmpgt_epi32(subnormal_end, bits)),
                _mm256_cmpgt_epi32(bits, near_max),
            );
            let masks = [
                f,
                _mm256_castps_si256(flushed),
                _mm256_castps_si256(subnormal),
                _mm256_castps_si256(overflow),
                special,
            ];
            for (c, mk) in counts.iter_mut().zip(masks) {
                *c = _mm256_sub_epi32(*c, mk);
            }
        }
        let store = |out: &mut [f32; LANES], r: __m256| {
            // SAFETY: out holds 8 f32.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), r) }
        };
        for k in 0..2 {
            store(&mut m.lo[k], lo[k]);
            store(&mut m.hi[k], hi[k]);
        }
        store(&mut m.max_abs, max_abs);
        store(&mut m.min_nz, min_nz);
        for (out, r) in m.counts.iter_mut().zip(counts) {
            // SAFETY: out holds 8 u32.
            unsafe { _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, r) };
        }
        let zero_max = _mm256_set1_ps(F16_ZERO_MAX);
        let mut l1 = [[_mm256_setzero_pd(); 2]; 4];
        for j in (0..whole).step_by(LANES) {
            let (v, f) = load(j);
            let a = _mm256_andnot_ps(sign, v);
            let y = _mm256_andnot_ps(sign, _mm256_mul_ps(v, s));
            let flushed = _mm256_and_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(a, zero), _mm256_cmp_ps::<_CMP_LE_OQ>(y, zero_max));
            let (mags, fm) = widen(a, f);
            let (_, lm) = widen(a, _mm256_castps_si256(flushed));
            for h in 0..2 {
                let lost = _mm256_and_pd(lm[h], mags[h]);
                l1[0][h] = _mm256_add_pd(l1[0][h], _mm256_andnot_pd(fm[h], mags[h]));
                l1[1][h] = _mm256_add_pd(l1[1][h], _mm256_and_pd(fm[h], mags[h]));
                l1[2][h] = _mm256_add_pd(l1[2][h], _mm256_andnot_pd(fm[h], lost));
                l1[3][h] = _mm256_add_pd(l1[3][h], _mm256_and_pd(fm[h], lost));
            }
        }
        store_sums(&mut m.sums[4..], &l1);
        m.finish(&g[whole..n], &class[whole..n], fg, refs, scale)
    }
}

/// Values of every kind for the 16-bit fates — zeros, float32 subnormals, values float16 flushes,
/// makes subnormal or overflows, values near the float32 maximum, and noise — with classes 0–2.
#[cfg(test)]
pub(crate) fn mixed_values(n: usize) -> (Vec<f32>, Vec<u8>) {
    let v = (0..n)
        .map(|i| match i % 11 {
            0 => 0.0,
            1 => -1e-40,
            2 => 1e-9,
            3 => -3e-6,
            4 => 7e4,
            5 => f32::MAX,
            6 => -0.0,
            _ => ((i * 7919) % 1000) as f32 * 1e-3 - 0.5,
        })
        .collect();
    (v, (0..n).map(|i| (i % 3) as u8).collect())
}

/// Loss scales that move values across every threshold: 1, powers of two, a scale float32 does
/// not multiply exactly, one that overflows float32 and one that underflows it.
#[cfg(test)]
pub(crate) const TEST_SCALES: [f32; 6] = [1.0, 65536.0, 16_777_216.0, 1000.0, 1e30, 1e-30];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avx2_block_statistics_equal_the_portable_loop_bit_for_bit() {
        let Some(t) = Avx2::detect() else { return };
        for s in TEST_SCALES {
            for n in [0, 1, 7, 8, 9, 1000, 2051] {
                let (mut v, class) = mixed_values(n);
                let portable = block_moments_portable(&v, &class, 1, [0.1, -0.2], s);
                assert_eq!(avx2::block_moments(t, &v, &class, 1, [0.1, -0.2], s), portable, "n = {n}, S = {s}");
                assert_eq!(block_moments(&v, &class, 1, [0.1, -0.2], s), portable, "the dispatched build, n = {n}");
                // Only plain values: no bfloat16-special value, nothing float16 loses at S = 1.
                v.iter_mut().for_each(|x| *x = 0.25 + (*x).clamp(-0.1, 0.1));
                let portable = block_moments_portable(&v, &class, 2, [0.25, 0.3], s);
                assert!(!portable.bfloat16_special || s != 1.0);
                let avx = avx2::block_moments(t, &v, &class, 2, [0.25, 0.3], s);
                assert_eq!(avx, portable, "plain values, n = {n}, S = {s}");
            }
        }
    }

    #[test]
    fn every_kind_of_fate_is_met_by_the_test_values() {
        let (v, class) = mixed_values(2051);
        for s in [1.0, 65536.0] {
            let m = block_moments_portable(&v, &class, 1, [0.1, -0.2], s);
            let [flushed, subnormal, overflow] = m.float16;
            assert!(flushed > 0 && overflow > 0 && (subnormal > 0 || s != 1.0) && m.bfloat16_special, "S = {s}: {m:?}");
            assert!(m.l1_flushed.iter().chain(&m.l1).all(|&x| x > 0.0 && x.is_finite()), "{m:?}");
        }
    }

    #[test]
    fn thresholds_are_the_powers_of_two_they_claim() {
        assert_eq!(F16_ZERO_MAX, 2f32.powi(-25));
        assert_eq!(F16_NORMAL_MIN, 2f32.powi(-14) - 2f32.powi(-25));
    }
}
