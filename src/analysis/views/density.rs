//! The joint distribution of a channel's gradient and its predicted probability: a 2-D histogram,
//! foreground and background voxels apart, filled in one streaming pass (no per-voxel storage).
//!
//! x: the probability s of the channel, in [`X_BINS`] equal bins over [0, 1] (s = 1 in the last);
//! y: the gradient, in [`Y_BINS`] equal bins over `[lo, hi]` (values outside go to the end bins).
//! With respect to probabilities a Dice-type gradient is −a·g + c: each side is one horizontal
//! line. Through a softmax or sigmoid, dL/dz = s·(u − Σ s·u) (softmax) or s·(1 − s)·u (sigmoid):
//! the lines bend into the s(1 − s) shape, zero at s = 0 and s = 1.

use serde::Serialize;

/// Bins along the probability.
pub const X_BINS: usize = 80;
/// Bins along the gradient.
pub const Y_BINS: usize = 60;

/// Counts of (probability, gradient) pairs, per side.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Density {
    /// Lower edge of the gradient's first bin.
    pub lo: f64,
    /// Upper edge of the gradient's last bin.
    pub hi: f64,
    /// Foreground counts, row-major by gradient bin: `[y * X_BINS + x]`, y = 0 the lowest values.
    #[serde(skip)]
    pub foreground: Vec<u64>,
    /// Background counts, as `foreground`.
    #[serde(skip)]
    pub background: Vec<u64>,
}

impl Density {
    /// An empty histogram over gradient values `[lo, hi]` (widened when they are equal, so that a
    /// single value sits in the middle).
    pub fn new(lo: f64, hi: f64) -> Density {
        let (lo, hi) = widened(lo, hi);
        Density { lo, hi, foreground: vec![0; X_BINS * Y_BINS], background: vec![0; X_BINS * Y_BINS] }
    }

    /// The bin of a (probability, gradient) pair.
    #[inline]
    pub fn cell(&self, s: f64, g: f64) -> usize {
        let x = (s * X_BINS as f64).max(0.0).min((X_BINS - 1) as f64) as usize;
        let y = ((g - self.lo) / (self.hi - self.lo) * Y_BINS as f64).max(0.0).min((Y_BINS - 1) as f64) as usize;
        y * X_BINS + x
    }

    /// Adds one voxel.
    #[inline]
    pub fn add(&mut self, s: f64, g: f64, foreground: bool) {
        let c = self.cell(s, g);
        if foreground {
            self.foreground[c] += 1;
        } else {
            self.background[c] += 1;
        }
    }

    /// Adds another histogram over the same bins.
    pub fn merge(&mut self, o: &Density) {
        for (a, b) in self.foreground.iter_mut().zip(&o.foreground) {
            *a += b;
        }
        for (a, b) in self.background.iter_mut().zip(&o.background) {
            *a += b;
        }
    }

    /// The gradient at the centre of row `y`.
    pub fn row_value(&self, y: usize) -> f64 {
        self.lo + (y as f64 + 0.5) * (self.hi - self.lo) / Y_BINS as f64
    }

    /// The largest count of either side (for the colour scale).
    pub fn peak(&self) -> u64 {
        self.foreground.iter().chain(&self.background).copied().max().unwrap_or(0)
    }
}

/// `[lo, hi]` with room: a single value (or a NaN bound) gets a range around it.
fn widened(lo: f64, hi: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (-1.0, 1.0);
    }
    if hi > lo {
        let pad = (hi - lo) * 0.02;
        return (lo - pad, hi + pad);
    }
    let d = if lo == 0.0 { 1e-12 } else { lo.abs() * 0.1 };
    (lo - d, hi + d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_follow_the_bin_edges() {
        let d = Density::new(-1.0, 1.0);
        // padded to [-1.04, 1.04]; s = 1 lands in the last column, 0.999 too
        assert_eq!(d.cell(1.0, 0.0) % X_BINS, X_BINS - 1);
        assert_eq!(d.cell(0.0, -1.0), 0);
        assert_eq!(d.cell(0.5, 1.0) / X_BINS, Y_BINS - 1);
        let mid = d.cell(0.5, 0.0);
        assert_eq!(mid % X_BINS, X_BINS / 2);
        assert_eq!(mid / X_BINS, Y_BINS / 2);
    }

    #[test]
    fn a_single_value_sits_in_the_middle_row() {
        let d = Density::new(-3e-4, -3e-4);
        let row = d.cell(0.2, -3e-4) / X_BINS;
        assert_eq!(row, Y_BINS / 2);
        assert!((d.row_value(row) + 3e-4).abs() < 1e-5 * 3.0);
    }
}
