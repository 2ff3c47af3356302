//! Streaming accumulators of gradient statistics, merged chunk by chunk in a fixed order.

use std::collections::HashSet;

use super::precision::{bfloat16, float16, FateCounts};

/// Distinct float32 values are counted exactly up to this many; beyond it only "more" is known.
pub const DISTINCT_CAP: usize = 1024;

/// Exact count of distinct float32 values, up to [`DISTINCT_CAP`] (−0 and +0 count as one).
#[derive(Clone, Debug, Default)]
pub struct Distinct {
    set: HashSet<u32>,
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
        self.set = HashSet::new();
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
/// Sums are kept as deviations `d = v − reference` from a reference value (the closed-form level),
/// so that the spread of values that are all equal comes out as exactly 0.
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
    pub fn new(reference: f64) -> Self {
        SideAcc {
            reference,
            count: 0,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            sum_d: 0.0,
            sum_d2: 0.0,
            distinct: Distinct::default(),
        }
    }

    #[inline]
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

    #[inline]
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

    /// Adds a block of values with their sides, one run of equal (value, side) at a time.
    pub fn add_block(&mut self, g: &[f32], foreground: impl Fn(usize) -> bool) {
        let mut i = 0;
        while i < g.len() {
            let (v, side) = (g[i].to_bits(), foreground(i));
            let mut j = i + 1;
            while j < g.len() && g[j].to_bits() == v && foreground(j) == side {
                j += 1;
            }
            self.add_run(g[i], side, (j - i) as u64);
            i = j;
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
