//! Streaming accumulators of gradient statistics, merged chunk by chunk in a fixed order.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use super::precision::{at_scale, bfloat16, float16, CastSums, LossScale, PrecisionSums};
use crate::simd::moments::block_moments;

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

/// Statistics of one channel's gradient: both sides, magnitudes, L1 sums, and the 16-bit float
/// fates of the values times the loss scale.
#[derive(Clone, Debug)]
pub struct ChannelAcc {
    /// `[background, foreground]`.
    pub side: [SideAcc; 2],
    pub max_abs: f32,
    pub min_nonzero_abs: f32,
    pub scale: LossScale,
    /// Σ |v| per side `[background, foreground]`.
    pub l1: [f64; 2],
    pub float16: CastSums,
    pub bfloat16: CastSums,
}

impl ChannelAcc {
    /// A fresh accumulator with reference values `[background, foreground]`, for the loss scale
    /// `scale`.
    pub fn new(reference: [f64; 2], scale: LossScale) -> Self {
        ChannelAcc {
            side: [SideAcc::new(reference[0]), SideAcc::new(reference[1])],
            max_abs: 0.0,
            min_nonzero_abs: f32::INFINITY,
            scale,
            l1: [0.0; 2],
            float16: CastSums::default(),
            bfloat16: CastSums::default(),
        }
    }

    /// Adds one value (value by value: the definition [`ChannelAcc::add_values`] is tested
    /// against).
    #[cfg(test)]
    pub fn add(&mut self, v: f32, foreground: bool) {
        self.side[usize::from(foreground)].add(v);
        self.magnitudes(v, foreground, 1);
    }

    /// Adds `n` copies of `v` on one side at once.
    ///
    /// Σ|v| of n copies of a float32 value is n·|v| exactly, however the additions are grouped,
    /// while n < 2^29 (the partial sums are multiples of |v| below 2^53 units of its last place):
    /// so a two-valued gradient gets the same L1 sums here as value by value.
    #[inline]
    pub fn add_run(&mut self, v: f32, foreground: bool, n: u64) {
        self.side[usize::from(foreground)].add_run(v, n);
        self.magnitudes(v, foreground, n);
    }

    /// Extremes, L1 sums and fates of `n` copies of `v`.
    fn magnitudes(&mut self, v: f32, foreground: bool, n: u64) {
        let a = v.abs();
        self.max_abs = self.max_abs.max(a);
        if a > 0.0 {
            self.min_nonzero_abs = self.min_nonzero_abs.min(a);
        }
        let side = usize::from(foreground);
        self.l1[side] += n as f64 * f64::from(a);
        self.float16.add_n(at_scale(float16, v, self.scale), side, a, n);
        self.bfloat16.add_n(at_scale(bfloat16, v, self.scale), side, a, n);
    }

    /// Adds a block of values, `g[i]` on a voxel of class `class[i]` (foreground when it is
    /// `fg`). Counts, extremes, deviation sums, L1 sums and float16 fates in
    /// [`LANES`](crate::parallel::LANES) lanes ([`block_moments`]); bfloat16 fates only for blocks
    /// holding a value whose product with the scale is not a plain normal float (the only ones
    /// bfloat16 treats differently), value by value in order; distinct values until both sides
    /// have more than are counted.
    pub fn add_values(&mut self, g: &[f32], class: &[u8], fg: u8) {
        let refs = [self.side[0].reference, self.side[1].reference];
        let m = block_moments(g, class, fg, refs, self.scale.get());
        for (k, side) in self.side.iter_mut().enumerate() {
            side.count += m.count[k];
            side.min = side.min.min(m.min[k]);
            side.max = side.max.max(m.max[k]);
            side.sum_d += m.sum_d[k];
            side.sum_d2 += m.sum_d2[k];
            self.l1[k] += m.l1[k];
            self.float16.l1_flushed[k] += m.l1_flushed[k];
        }
        self.max_abs = self.max_abs.max(m.max_abs);
        self.min_nonzero_abs = self.min_nonzero_abs.min(m.min_nonzero_abs);
        let [flushed_to_zero, subnormal, overflow] = m.float16;
        self.float16.counts.merge(&super::precision::FateCounts { flushed_to_zero, subnormal, overflow });
        if m.bfloat16_special {
            for (&v, &cl) in g.iter().zip(class) {
                let fate = at_scale(bfloat16, v, self.scale);
                self.bfloat16.add_n(fate, usize::from(cl == fg), v.abs(), 1);
            }
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
        self.l1[0] += o.l1[0];
        self.l1[1] += o.l1[1];
        self.float16.merge(&o.float16);
        self.bfloat16.merge(&o.bfloat16);
    }

    /// What the mixed-precision figures of the channel are made of.
    pub fn precision_sums(&self) -> PrecisionSums {
        PrecisionSums {
            scale: self.scale,
            values: self.side[0].count + self.side[1].count,
            max_abs: self.max_abs,
            min_nonzero_abs: self.min_nonzero_abs,
            l1: self.l1[0] + self.l1[1],
            float16: self.float16,
            bfloat16: self.bfloat16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::precision::Fate;
    use super::*;
    use crate::simd::moments::{mixed_values, TEST_SCALES};

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

    #[test]
    fn block_statistics_equal_those_added_value_by_value() {
        for (s, n) in TEST_SCALES.iter().flat_map(|&s| [0, 1, 7, 8, 9, 1000, 2048].map(|n| (s, n))) {
            let scale = LossScale::new(f64::from(s)).unwrap();
            let (v, class) = mixed_values(n);
            let mut block = ChannelAcc::new([0.1, -0.2], scale);
            block.add_values(&v, &class, 1);
            let mut each = ChannelAcc::new([0.1, -0.2], scale);
            for (&x, &c) in v.iter().zip(&class) {
                each.add(x, c == 1);
            }
            let close = |x: f64, y: f64| (x - y).abs() <= 1e-12 * x.abs().max(y.abs());
            let (p, q) = (block.precision_sums(), each.precision_sums());
            assert_eq!(
                (p.float16.counts, p.bfloat16.counts),
                (q.float16.counts, q.bfloat16.counts),
                "n = {n}, S = {s}"
            );
            for (x, y) in [(p.l1, q.l1), (p.float16.l1_flushed[0], q.float16.l1_flushed[0])].into_iter().chain([
                (p.float16.l1_flushed[1], q.float16.l1_flushed[1]),
                (p.bfloat16.l1_flushed[0], q.bfloat16.l1_flushed[0]),
            ]) {
                assert!(close(x, y), "n = {n}, S = {s}: {x} vs {y}");
            }
            for (a, b) in block.side.iter().zip(&each.side) {
                assert_eq!((a.count, a.min, a.max), (b.count, b.min, b.max), "n = {n}");
                assert_eq!(a.distinct.count(), b.distinct.count(), "n = {n}");
                for (x, y) in [(a.sum_d, b.sum_d), (a.sum_d2, b.sum_d2)] {
                    assert!((x - y).abs() <= 1e-12 * x.abs().max(y.abs()), "n = {n}: {x} vs {y}");
                }
            }
            assert_eq!((block.max_abs, block.min_nonzero_abs), (each.max_abs, each.min_nonzero_abs), "n = {n}");
        }
    }

    #[test]
    fn a_run_of_equal_values_has_the_fates_and_l1_sums_of_its_values_added_one_by_one() {
        let scale = LossScale::new(65536.0).unwrap();
        for v in [1e-15f32, -1e-11, 3e-7, 1.0, 0.0, 1e-40] {
            let n = 20_000;
            let mut run = ChannelAcc::new([0.0, 0.0], scale);
            run.add_run(v, true, n);
            run.add_run(-v * 0.75, false, n / 2);
            let mut block = ChannelAcc::new([0.0, 0.0], scale);
            let values: Vec<f32> =
                std::iter::repeat_n(v, n as usize).chain(std::iter::repeat_n(-v * 0.75, n as usize / 2)).collect();
            let class: Vec<u8> = (0..values.len()).map(|i| u8::from(i < n as usize)).collect();
            for (g, c) in values.chunks(1000).zip(class.chunks(1000)) {
                block.add_values(g, c, 1);
            }
            assert_eq!(run.precision_sums(), block.precision_sums(), "v = {v:e}");
            let flushed: Vec<f32> =
                values.iter().copied().filter(|&x| at_scale(float16, x, scale) == Fate::FlushedToZero).collect();
            assert_eq!(run.float16.counts.flushed_to_zero, flushed.len() as u64, "v = {v:e}");
            let lost = run.float16.l1_flushed[0] + run.float16.l1_flushed[1];
            assert_eq!(lost, flushed.iter().map(|x| f64::from(x.abs())).sum::<f64>(), "v = {v:e}");
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
