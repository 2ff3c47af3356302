//! Streaming accumulators of gradient statistics, merged chunk by chunk in a fixed order.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use super::precision::{bfloat16, float16, FateCounts, F16_NORMAL_MIN, F16_OVERFLOW, F16_ZERO_MAX};
use crate::parallel::{fold_lanes, LANES};

/// Distinct float32 values are counted exactly up to this many; beyond it only "more" is known.
pub const DISTINCT_CAP: usize = 1024;

/// Hashes the bits of a float32 with a few multiplications and shifts (every output bit depends on
/// every input bit, so that values differing only in their high bits — 0.5, 1, 2 — spread too):
/// the keys are our own values, not chosen by an adversary, and the set is small.
#[derive(Default)]
pub struct BitsHasher(u64);

impl Hasher for BitsHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, v: u32) {
        let mut x = u64::from(v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        x ^= x >> 32;
        x = x.wrapping_mul(0xd6e8_feb8_6659_fd93);
        self.0 = x ^ (x >> 29);
    }
}

/// Exact count of distinct float32 values, up to [`DISTINCT_CAP`] (−0 and +0 count as one).
#[derive(Clone, Debug, Default)]
pub struct Distinct {
    set: HashSet<u32, BuildHasherDefault<BitsHasher>>,
    last: Option<u32>,
    saturated: bool,
}

impl Distinct {
    #[inline]
    pub fn add(&mut self, v: f32) {
        let bits = (v + 0.0).to_bits();
        if self.saturated || self.last == Some(bits) {
            return;
        }
        self.last = Some(bits);
        self.set.insert(bits);
        if self.set.len() > DISTINCT_CAP {
            self.saturate();
        }
    }

    /// Gives up counting: there are more than [`DISTINCT_CAP`] distinct values.
    pub fn saturate(&mut self) {
        self.saturated = true;
        self.set = HashSet::default();
    }

    pub fn merge(&mut self, o: &Distinct) {
        if self.saturated {
            return;
        }
        if o.saturated {
            return self.saturate();
        }
        self.set.extend(&o.set);
        if self.set.len() > DISTINCT_CAP {
            self.saturate();
        }
    }

    /// `(count, capped)`: with `capped`, there are more than `count` distinct values.
    pub fn count(&self) -> (u64, bool) {
        if self.saturated {
            (DISTINCT_CAP as u64, true)
        } else {
            (self.set.len() as u64, false)
        }
    }
}

/// Statistics of the gradient values on one side (foreground or background) of one channel.
///
/// Sums are kept as deviations `d = v − reference` from a reference value: the closed-form level
/// rounded to float32, as the gradient values are. Values equal to it (every value, when the
/// gradient is two-valued) then add exact zeros, so that their spread comes out as exactly 0
/// however the additions are grouped.
#[derive(Clone, Debug)]
pub struct SideAcc {
    pub reference: f64,
    pub count: u64,
    pub min: f32,
    pub max: f32,
    pub sum_d: f64,
    pub sum_d2: f64,
    pub distinct: Distinct,
}

impl SideAcc {
    /// A fresh accumulator around the level `level` (see the type's notes).
    pub fn new(level: f64) -> Self {
        let rounded = level as f32;
        SideAcc {
            reference: if rounded.is_finite() { f64::from(rounded) } else { level },
            count: 0,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            sum_d: 0.0,
            sum_d2: 0.0,
            distinct: Distinct::default(),
        }
    }

    /// Adds one value (value by value: the definition the block routines are tested against).
    #[cfg(test)]
    pub fn add(&mut self, v: f32) {
        self.count += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        let d = v as f64 - self.reference;
        self.sum_d += d;
        self.sum_d2 += d * d;
        self.distinct.add(v);
    }

    /// Adds `n` copies of `v` (a run of equal values) at once.
    #[inline]
    pub fn add_run(&mut self, v: f32, n: u64) {
        self.count += n;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        let d = v as f64 - self.reference;
        self.sum_d += n as f64 * d;
        self.sum_d2 += n as f64 * d * d;
        self.distinct.add(v);
    }

    pub fn merge(&mut self, o: &SideAcc) {
        self.count += o.count;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum_d += o.sum_d;
        self.sum_d2 += o.sum_d2;
        self.distinct.merge(&o.distinct);
    }

    /// Mean of the values (None when there are none).
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.reference + self.sum_d / self.count as f64)
    }

    /// Σ (v − mean)², from the deviation sums; never negative.
    pub fn sum_sq_dev(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        (self.sum_d2 - self.sum_d * self.sum_d / self.count as f64).max(0.0)
    }
}

/// Statistics of one channel's gradient: both sides, magnitudes, 16-bit float fates.
#[derive(Clone, Debug)]
pub struct ChannelAcc {
    /// `[background, foreground]`.
    pub side: [SideAcc; 2],
    pub max_abs: f32,
    pub min_nonzero_abs: f32,
    pub float16: FateCounts,
    pub bfloat16: FateCounts,
}

impl ChannelAcc {
    /// A fresh accumulator with reference values `[background, foreground]`.
    pub fn new(reference: [f64; 2]) -> Self {
        ChannelAcc {
            side: [SideAcc::new(reference[0]), SideAcc::new(reference[1])],
            max_abs: 0.0,
            min_nonzero_abs: f32::INFINITY,
            float16: FateCounts::default(),
            bfloat16: FateCounts::default(),
        }
    }

    /// Adds one value (value by value: the definition [`ChannelAcc::add_values`] is tested
    /// against).
    #[cfg(test)]
    pub fn add(&mut self, v: f32, foreground: bool) {
        self.side[usize::from(foreground)].add(v);
        let a = v.abs();
        self.max_abs = self.max_abs.max(a);
        if a > 0.0 {
            self.min_nonzero_abs = self.min_nonzero_abs.min(a);
        }
        self.float16.add(float16(v));
        self.bfloat16.add(bfloat16(v));
    }

    /// Adds `n` copies of `v` on one side at once.
    #[inline]
    pub fn add_run(&mut self, v: f32, foreground: bool, n: u64) {
        self.side[usize::from(foreground)].add_run(v, n);
        let a = v.abs();
        self.max_abs = self.max_abs.max(a);
        if a > 0.0 {
            self.min_nonzero_abs = self.min_nonzero_abs.min(a);
        }
        self.float16.add_n(float16(v), n);
        self.bfloat16.add_n(bfloat16(v), n);
    }

    /// Adds a block of values, `g[i]` on a voxel of class `class[i]` (foreground when it is
    /// `fg`). Counts, extremes, deviation sums and float16 fates in [`LANES`] lanes
    /// ([`block_moments`]); bfloat16 fates only for blocks holding a value that is not a plain
    /// normal float (the only ones bfloat16 treats differently); distinct values until both sides
    /// have more than are counted.
    pub fn add_values(&mut self, g: &[f32], class: &[u8], fg: u8) {
        let refs = [self.side[0].reference, self.side[1].reference];
        let m = block_moments(g, class, fg, refs);
        for (k, side) in self.side.iter_mut().enumerate() {
            side.count += m.count[k];
            side.min = side.min.min(m.min[k]);
            side.max = side.max.max(m.max[k]);
            side.sum_d += m.sum_d[k];
            side.sum_d2 += m.sum_d2[k];
        }
        self.max_abs = self.max_abs.max(m.max_abs);
        self.min_nonzero_abs = self.min_nonzero_abs.min(m.min_nonzero_abs);
        self.float16.merge(&m.float16);
        if m.bfloat16_special {
            g.iter().for_each(|&v| self.bfloat16.add(bfloat16(v)));
        }
        if !(self.side[0].distinct.saturated && self.side[1].distinct.saturated) {
            for (&v, &cl) in g.iter().zip(class) {
                self.side[usize::from(cl == fg)].distinct.add(v);
            }
        }
    }

    pub fn merge(&mut self, o: &ChannelAcc) {
        self.side[0].merge(&o.side[0]);
        self.side[1].merge(&o.side[1]);
        self.max_abs = self.max_abs.max(o.max_abs);
        self.min_nonzero_abs = self.min_nonzero_abs.min(o.min_nonzero_abs);
        self.float16.merge(&o.float16);
        self.bfloat16.merge(&o.bfloat16);
    }
}

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
    pub float16: FateCounts,
    /// Some value is 0 < |v| < 2^−126 (float32-subnormal) or |v| ≥ 0x7f7f0000 (near the float32
    /// maximum): only such values can be anything but a normal number or a zero in bfloat16.
    pub bfloat16_special: bool,
}

/// Bits of |v| from which a float32 may round to infinity in bfloat16 (a little below the first
/// that does, 0x7f7f8000).
const BF16_NEAR_MAX: u32 = 0x7f7f_0000;

/// Statistics of the values `g` on voxels of classes `class`, split by side (class `fg` or not),
/// deviations taken from `refs` = `[background, foreground]` reference values. Values are taken in
/// [`LANES`] lanes (lane = position modulo LANES, sums added pairwise at the end), so the order of
/// the additions depends only on the positions. On AVX2 when the processor has it (the same
/// operations on the same lanes: the same result).
pub fn block_moments(g: &[f32], class: &[u8], fg: u8, refs: [f64; 2]) -> BlockMoments {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor has AVX2 (checked just above).
        return unsafe { avx2::block_moments(g, class, fg, refs) };
    }
    block_moments_portable(g, class, fg, refs)
}

/// [`block_moments`] in plain Rust: two loops, each with few enough accumulators to stay in
/// registers (deviation sums, then extremes and counts), and the values past the last whole group
/// of [`LANES`].
fn block_moments_portable(g: &[f32], class: &[u8], fg: u8, refs: [f64; 2]) -> BlockMoments {
    let n = g.len().min(class.len());
    let mut m = MomentLanes::new(n);
    let whole = n - n % LANES;
    for (vs, cs) in g[..whole].chunks_exact(LANES).zip(class[..whole].chunks_exact(LANES)) {
        for l in 0..LANES {
            m.moments(l, vs[l], cs[l] == fg, refs);
        }
    }
    for (vs, cs) in g[..whole].chunks_exact(LANES).zip(class[..whole].chunks_exact(LANES)) {
        for l in 0..LANES {
            m.extremes(l, vs[l], cs[l] == fg);
        }
    }
    m.finish(&g[whole..n], &class[whole..n], fg, refs)
}

/// Per-lane accumulators of [`block_moments`]. Minima and maxima as compare-and-select (there is
/// no NaN among the values).
struct MomentLanes {
    n: usize,
    /// Σ d on background, Σ d on foreground, Σ d² on background, Σ d² on foreground.
    sums: [[f64; LANES]; 4],
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
            sums: [[0.0; LANES]; 4],
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

    #[inline(always)]
    fn extremes(&mut self, l: usize, v: f32, f: bool) {
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
        let c = &mut self.counts;
        c[0][l] += u32::from(f);
        c[1][l] += u32::from(a > 0.0 && a <= F16_ZERO_MAX);
        c[2][l] += u32::from(a > F16_ZERO_MAX && a < F16_NORMAL_MIN);
        c[3][l] += u32::from(a >= F16_OVERFLOW);
        let bits = a.to_bits();
        c[4][l] += u32::from((bits != 0 && bits < 0x0080_0000) || bits >= BF16_NEAR_MAX);
    }

    /// Adds the last values (fewer than [`LANES`], in lanes 0, 1, …) and folds the lanes.
    fn finish(mut self, g: &[f32], class: &[u8], fg: u8, refs: [f64; 2]) -> BlockMoments {
        for (l, (&v, &cl)) in g.iter().zip(class).enumerate() {
            self.moments(l, v, cl == fg, refs);
            self.extremes(l, v, cl == fg);
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
            float16: FateCounts {
                flushed_to_zero: total(self.counts[1]),
                subnormal: total(self.counts[2]),
                overflow: total(self.counts[3]),
            },
            bfloat16_special: total(self.counts[4]) > 0,
        }
    }
}

/// [`block_moments`] with AVX2 intrinsics: the eight lanes of [`MomentLanes`] in registers (f64
/// sums in two registers of four, the rest in one of eight), the same operation per lane.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{BlockMoments, MomentLanes, BF16_NEAR_MAX, F16_NORMAL_MIN, F16_OVERFLOW, F16_ZERO_MAX, LANES};

    const _: () = assert!(LANES == 8, "eight lanes: one register of f32, two of f64");

    #[target_feature(enable = "avx2")]
    pub(super) fn block_moments(g: &[f32], class: &[u8], fg: u8, refs: [f64; 2]) -> BlockMoments {
        let n = g.len().min(class.len());
        let mut m = MomentLanes::new(n);
        let whole = n - n % LANES;
        let fg32 = _mm256_set1_epi32(i32::from(fg));
        // SAFETY (all loads below): j + 8 <= whole <= n, the length of both slices.
        let load = |j: usize| unsafe {
            let v = _mm256_loadu_ps(g.as_ptr().add(j));
            let c = _mm256_cvtepu8_epi32(_mm_loadl_epi64(class.as_ptr().add(j) as *const __m128i));
            (v, _mm256_cmpeq_epi32(c, fg32))
        };
        let (r0, r1) = (_mm256_set1_pd(refs[0]), _mm256_set1_pd(refs[1]));
        let mut sums = [[_mm256_setzero_pd(); 2]; 4];
        for j in (0..whole).step_by(LANES) {
            let (v, f) = load(j);
            let values = [_mm256_cvtps_pd(_mm256_castps256_ps128(v)), _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v))];
            let masks = [
                _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(f))),
                _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(f))),
            ];
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
        for (out, r) in m.sums.iter_mut().zip(sums) {
            // SAFETY: out holds 8 f64.
            unsafe {
                _mm256_storeu_pd(out.as_mut_ptr(), r[0]);
                _mm256_storeu_pd(out.as_mut_ptr().add(4), r[1]);
            }
        }
        let (inf, ninf) = (_mm256_set1_ps(f32::INFINITY), _mm256_set1_ps(f32::NEG_INFINITY));
        let (zero, sign) = (_mm256_setzero_ps(), _mm256_set1_ps(-0.0));
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
            let flushed = _mm256_and_ps(nz, _mm256_cmp_ps::<_CMP_LE_OQ>(a, _mm256_set1_ps(F16_ZERO_MAX)));
            let subnormal = _mm256_and_ps(
                _mm256_cmp_ps::<_CMP_GT_OQ>(a, _mm256_set1_ps(F16_ZERO_MAX)),
                _mm256_cmp_ps::<_CMP_LT_OQ>(a, _mm256_set1_ps(F16_NORMAL_MIN)),
            );
            let overflow = _mm256_cmp_ps::<_CMP_GE_OQ>(a, _mm256_set1_ps(F16_OVERFLOW));
            // The bits of |v| as a signed integer are never negative: signed compares will do.
            let bits = _mm256_castps_si256(a);
            let special = _mm256_or_si256(
                _mm256_andnot_si256(
                    _mm256_cmpeq_epi32(bits, _mm256_setzero_si256()),
                    _mm256_cmpgt_epi32(subnormal_end, bits),
                ),
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
        m.finish(&g[whole..n], &class[whole..n], fg, refs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_counts_exactly_then_caps() {
        let mut d = Distinct::default();
        for v in [1.0f32, 1.0, 2.0, -0.0, 0.0, 1.0] {
            d.add(v);
        }
        assert_eq!(d.count(), (3, false));
        for i in 0..2000 {
            d.add(i as f32 + 0.5);
        }
        assert_eq!(d.count(), (DISTINCT_CAP as u64, true));
    }

    /// Values of every kind for the 16-bit fates: zeros, float32 subnormals, values float16
    /// flushes, makes subnormal or overflows, values near the float32 maximum, and noise.
    fn mixed_values(n: usize) -> (Vec<f32>, Vec<u8>) {
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

    #[test]
    fn block_statistics_equal_those_added_value_by_value() {
        for n in [0, 1, 7, 8, 9, 1000, 2048] {
            let (v, class) = mixed_values(n);
            let mut block = ChannelAcc::new([0.1, -0.2]);
            block.add_values(&v, &class, 1);
            let mut each = ChannelAcc::new([0.1, -0.2]);
            for (&x, &c) in v.iter().zip(&class) {
                each.add(x, c == 1);
            }
            for (a, b) in block.side.iter().zip(&each.side) {
                assert_eq!((a.count, a.min, a.max), (b.count, b.min, b.max), "n = {n}");
                assert_eq!(a.distinct.count(), b.distinct.count(), "n = {n}");
                for (x, y) in [(a.sum_d, b.sum_d), (a.sum_d2, b.sum_d2)] {
                    assert!((x - y).abs() <= 1e-12 * x.abs().max(y.abs()), "n = {n}: {x} vs {y}");
                }
            }
            assert_eq!((block.max_abs, block.min_nonzero_abs), (each.max_abs, each.min_nonzero_abs), "n = {n}");
            assert_eq!((block.float16, block.bfloat16), (each.float16, each.bfloat16), "n = {n}");
        }
    }

    #[test]
    fn dispatched_block_statistics_equal_the_portable_loop_bit_for_bit() {
        for n in [0, 1, 7, 8, 9, 1000, 2051] {
            let (mut v, class) = mixed_values(n);
            let portable = block_moments_portable(&v, &class, 1, [0.1, -0.2]);
            assert_eq!(block_moments(&v, &class, 1, [0.1, -0.2]), portable, "n = {n}");
            // Only plain values: no bfloat16-special value, nothing float16 loses.
            v.iter_mut().for_each(|x| *x = 0.25 + (*x).clamp(-0.1, 0.1));
            let portable = block_moments_portable(&v, &class, 2, [0.25, 0.3]);
            assert!(!portable.bfloat16_special);
            assert_eq!(block_moments(&v, &class, 2, [0.25, 0.3]), portable, "plain values, n = {n}");
        }
    }

    #[test]
    fn distinct_counts_powers_of_two_and_whole_numbers() {
        // Values whose low bits are all zero must not collide into a few buckets.
        let mut d = Distinct::default();
        for e in -60..60 {
            d.add(2f32.powi(e));
            d.add(-(2f32.powi(e)));
        }
        for i in 0..500 {
            d.add(i as f32);
        }
        // ±2^e for 120 exponents, and 0..500 of which 1, 2, 4, …, 256 (9 values) are powers of two.
        assert_eq!(d.count(), (240 + 500 - 9, false));
    }

    #[test]
    fn equal_values_have_zero_spread_and_exact_mean() {
        let mut s = SideAcc::new(1e-7);
        for _ in 0..1000 {
            s.add(1e-7f32);
        }
        assert_eq!(s.mean(), Some(1e-7f32 as f64));
        assert_eq!(s.sum_sq_dev(), 0.0);
    }
}
