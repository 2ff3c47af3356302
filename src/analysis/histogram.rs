//! Histograms of a gradient: equal-width bins over the values' range (for the pictures of one case)
//! and fixed logarithmic bins of |gradient| (which add up exactly over cases), and their ranges.

use serde::Serialize;

use super::stats::ChannelAcc;

/// Histogram bins per channel.
pub const HISTOGRAM_BINS: usize = 100;

/// Counts of gradient values in equal-width bins over `[lo, hi]`.
#[derive(Clone, Debug, Serialize)]
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

/// Counts of |gradient| in fixed logarithmic bins — one per binary order of magnitude, read off
/// the float32 exponent — split by ground truth, zeros apart. The bins are the same for every
/// case, so that histograms of many cases add up exactly.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct LogHistogram {
    /// Foreground counts; bin b holds |v| in [2^(b−127), 2^(b−126)) (b = 0: float32 subnormals).
    pub foreground: Vec<u64>,
    pub background: Vec<u64>,
    /// Exact zeros on [background, foreground] voxels.
    pub zeros: [u64; 2],
}

impl LogHistogram {
    /// Number of bins (the float32 exponents).
    pub const BINS: usize = 256;

    pub fn empty() -> Self {
        LogHistogram { foreground: vec![0; Self::BINS], background: vec![0; Self::BINS], zeros: [0, 0] }
    }

    /// Adds `n` copies of one value.
    #[inline]
    pub fn add_n(&mut self, v: f32, foreground: bool, n: u64) {
        if v == 0.0 {
            self.zeros[usize::from(foreground)] += n;
            return;
        }
        let b = ((v.to_bits() >> 23) & 0xff) as usize;
        if foreground {
            self.foreground[b] += n;
        } else {
            self.background[b] += n;
        }
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, o: &LogHistogram) {
        for (a, b) in self.foreground.iter_mut().zip(&o.foreground) {
            *a += b;
        }
        for (a, b) in self.background.iter_mut().zip(&o.background) {
            *a += b;
        }
        self.zeros[0] += o.zeros[0];
        self.zeros[1] += o.zeros[1];
    }
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
        let b = (((v as f64 - self.lo) * self.scale) as usize).min(HISTOGRAM_BINS - 1);
        self.log.add_n(v, foreground, n);
        if foreground {
            self.foreground[b] += n;
        } else {
            self.background[b] += n;
        }
    }

    /// Adds a block of values, one run of equal (value, side) at a time.
    pub(super) fn add_all(&mut self, g: &[f32], class: &[u8], fg: u8) {
        let mut i = 0;
        while i < g.len() {
            let (v, side) = (g[i], class[i] == fg);
            let mut j = i + 1;
            while j < g.len() && g[j].to_bits() == v.to_bits() && (class[j] == fg) == side {
                j += 1;
            }
            self.add_run(v, side, (j - i) as u64);
            i = j;
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

/// A range widened by 5 % on each side (so that spikes at the extremes stay visible), or ±5 %
/// around a single value (±1 if that value is 0); (−1, 1) when there are no values.
fn padded(lo: f64, hi: f64) -> (f64, f64) {
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
