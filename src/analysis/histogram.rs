//! Histograms of a gradient: equal-width bins over the values' range (for the pictures of one case)
//! and, filled in the same pass, fixed logarithmic bins of |gradient| ([`LogHistogram`], which add
//! up exactly over cases), and their ranges.

use serde::Serialize;

pub use super::log_histogram::LogHistogram;
use super::stats::ChannelAcc;
use crate::simd::avx2_or_portable;

/// Histogram bins per channel.
pub const HISTOGRAM_BINS: usize = 100;

/// Counts of gradient values in equal-width bins over `[lo, hi]`.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Histogram {
    /// Left edge of the first bin.
    pub lo: f64,
    /// Right edge of the last bin.
    pub hi: f64,
    /// Counts of foreground voxels per bin.
    pub foreground: Vec<u64>,
    /// Counts of background voxels per bin.
    pub background: Vec<u64>,
}

/// Equal-width and log histograms of one channel, being filled.
#[derive(Clone)]
pub(super) struct Bins {
    lo: f64,
    hi: f64,
    /// Bins per unit of value.
    scale: f64,
    foreground: Vec<u64>,
    background: Vec<u64>,
    log: LogHistogram,
}

impl Bins {
    pub(super) fn new((lo, hi): (f64, f64)) -> Bins {
        Bins {
            lo,
            hi,
            scale: HISTOGRAM_BINS as f64 / (hi - lo),
            foreground: vec![0; HISTOGRAM_BINS],
            background: vec![0; HISTOGRAM_BINS],
            log: LogHistogram::empty(),
        }
    }

    /// Adds `n` copies of `v` on one side.
    #[inline]
    pub(super) fn add_run(&mut self, v: f32, foreground: bool, n: u64) {
        let b = bin(v, self.lo, self.scale);
        self.log.add_n(v, foreground, n);
        if foreground {
            self.foreground[b] += n;
        } else {
            self.background[b] += n;
        }
    }

    /// Adds a block of values, `g[i]` on a voxel of class `class[i]` (foreground when it is
    /// `fg`), counted in [`STRIPES`] copies of the counts ([`count_values`]): neighbouring voxels
    /// often fall in the same bin, and a single counter would make each count wait for the one
    /// before.
    pub(super) fn add_values(&mut self, g: &[f32], class: &[u8], fg: u8) {
        let n = g.len().min(class.len());
        assert!(n < u32::MAX as usize, "a block of fewer than 2^32 values");
        // Counts as [background bins, foreground bins], and per side the log bins and the zeros.
        let mut lin = [[0u32; 2 * HISTOGRAM_BINS]; STRIPES];
        let mut log = [[0u32; 2 * LOG_SLOTS]; STRIPES];
        count_values(&g[..n], &class[..n], fg, self.lo, self.scale, &mut lin, &mut log);
        for (i, t) in self.background.iter_mut().enumerate() {
            *t += summed(&lin, i);
        }
        for (i, t) in self.foreground.iter_mut().enumerate() {
            *t += summed(&lin, HISTOGRAM_BINS + i);
        }
        for side in 0..2 {
            let bins = if side == 1 { &mut self.log.foreground } else { &mut self.log.background };
            for (i, t) in bins.iter_mut().enumerate() {
                *t += summed(&log, side * LOG_SLOTS + i);
            }
            self.log.zeros[side] += summed(&log, side * LOG_SLOTS + LogHistogram::BINS);
        }
    }

    pub(super) fn merge(&mut self, o: &Bins) {
        for (a, b) in self.foreground.iter_mut().zip(&o.foreground) {
            *a += b;
        }
        for (a, b) in self.background.iter_mut().zip(&o.background) {
            *a += b;
        }
        self.log.merge(&o.log);
    }

    pub(super) fn into_histograms(self) -> (Histogram, LogHistogram) {
        (Histogram { lo: self.lo, hi: self.hi, foreground: self.foreground, background: self.background }, self.log)
    }
}

/// Equal-width bin of `v` over bins starting at `lo`, `scale` bins per unit (values outside the
/// range go to the first or the last bin).
#[inline(always)]
fn bin(v: f32, lo: f64, scale: f64) -> usize {
    // `max` returns 0 for NaN, so x is a number in [0, bins − 1].
    let x = ((f64::from(v) - lo) * scale).max(0.0).min((HISTOGRAM_BINS - 1) as f64);
    // SAFETY: x is finite and in [0, 99], within i32. (A checked `as` conversion does not compile
    // to a vector instruction.)
    unsafe { x.to_int_unchecked::<i32>() as usize }
}

/// Count `i` added over the copies of a table.
fn summed<const N: usize>(copies: &[[u32; N]], i: usize) -> u64 {
    copies.iter().map(|c| u64::from(c[i])).sum()
}

/// Log-histogram slots per side: the log bins, then exact zeros.
const LOG_SLOTS: usize = LogHistogram::BINS + 1;

/// Values whose bin numbers [`bin_indices`] computes at a time.
const INDEX_BLOCK: usize = 64;

/// Copies of the counts that [`Bins::add_values`] counts into in turn.
const STRIPES: usize = 4;

avx2_or_portable! {
    /// Counts the values `g` (on voxels of classes `class`) into `lin` (equal-width bins) and `log`
    /// (log slots), value i into copy i mod [`STRIPES`]: bin numbers [`INDEX_BLOCK`] values at a
    /// time ([`bin_indices`]), then counted.
    fn count_values(
        g: &[f32],
        class: &[u8],
        fg: u8,
        lo: f64,
        scale: f64,
        lin: &mut [[u32; 2 * HISTOGRAM_BINS]; STRIPES],
        log: &mut [[u32; 2 * LOG_SLOTS]; STRIPES],
    ) {
        let (mut li, mut gi) = ([0u16; INDEX_BLOCK], [0u16; INDEX_BLOCK]);
        for (gb, cb) in g.chunks(INDEX_BLOCK).zip(class.chunks(INDEX_BLOCK)) {
            bin_indices(gb, cb, fg, lo, scale, &mut li, &mut gi);
            let m = gb.len().min(cb.len());
            for (ls, gs) in li[..m].chunks(STRIPES).zip(gi[..m].chunks(STRIPES)) {
                for (s, (&a, &b)) in ls.iter().zip(gs).enumerate() {
                    lin[s][usize::from(a)] += 1;
                    log[s][usize::from(b)] += 1;
                }
            }
        }
    }
}

/// For each value `g[i]` (on a voxel of class `class[i]`), its equal-width bin as an index into
/// `[background bins, foreground bins]` (`lin[i]`), and its log slot as an index into
/// `[background slots, foreground slots]` of [`LOG_SLOTS`] each (`log[i]`).
#[inline(always)]
fn bin_indices(g: &[f32], class: &[u8], fg: u8, lo: f64, scale: f64, lin: &mut [u16], log: &mut [u16]) {
    for (((&v, &cl), l), e) in g.iter().zip(class).zip(lin.iter_mut()).zip(log.iter_mut()) {
        let side = u16::from(cl == fg);
        *l = side * HISTOGRAM_BINS as u16 + bin(v, lo, scale) as u16;
        *e =
            side * LOG_SLOTS as u16 + if v == 0.0 { LogHistogram::BINS as u16 } else { LogHistogram::bin_of(v) as u16 };
    }
}

/// A range widened by 5 % on each side (so that spikes at the extremes stay visible), or ±5 %
/// around a single value (±1 if that value is 0); (−1, 1) when there are no values.
pub(super) fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if !lo.is_finite() || !hi.is_finite() {
        return (-1.0, 1.0);
    }
    let span = hi - lo;
    let pad = if span > 0.0 {
        0.05 * span
    } else if lo != 0.0 {
        0.05 * lo.abs()
    } else {
        1.0
    };
    (lo - pad, hi + pad)
}

/// Histogram range from the measured values.
pub(super) fn histogram_range(acc: &ChannelAcc) -> (f64, f64) {
    padded(acc.side[0].min.min(acc.side[1].min) as f64, acc.side[0].max.max(acc.side[1].max) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_counts_equal_those_added_value_by_value() {
        let n = 1000;
        let v: Vec<f32> = (0..n)
            .map(|i| match i % 7 {
                0 => 0.0,
                1 => -1e-40,
                2 => 5.0,  // beyond the range: last bin
                3 => -5.0, // below it: first bin
                _ => ((i * 7919) % 1000) as f32 * 1e-3 - 0.5,
            })
            .collect();
        let class: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
        let mut block = Bins::new((-0.6, 0.7));
        block.add_values(&v, &class, 2);
        let mut each = Bins::new((-0.6, 0.7));
        for (&x, &c) in v.iter().zip(&class) {
            each.add_run(x, c == 2, 1);
        }
        let ((h1, l1), (h2, l2)) = (block.into_histograms(), each.into_histograms());
        assert_eq!((h1.foreground, h1.background), (h2.foreground.clone(), h2.background.clone()));
        assert_eq!(l1, l2);
        assert_eq!(h2.foreground.iter().chain(&h2.background).sum::<u64>(), n as u64);
        assert_eq!(h2.background[0] + h2.foreground[0], (n / 7 + 1) as u64, "values below the range");
    }
}
