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
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
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
        self.row(g) * X_BINS + column(s)
    }

    /// The row of gradient value `g`.
    #[inline]
    pub fn row(&self, g: f64) -> usize {
        ((g - self.lo) * (Y_BINS as f64 / (self.hi - self.lo))).max(0.0).min((Y_BINS - 1) as f64) as usize
    }

    /// Adds the probabilities `s` of a block whose voxels all lie in row `row[side]` of their side
    /// (a gradient that is one value per side), sides from `foreground`.
    pub fn add_rows(&mut self, row: [usize; 2], s: &[f64], foreground: impl Iterator<Item = bool>) {
        let (bg, fg) = (row[0] * X_BINS, row[1] * X_BINS);
        for (&p, f) in s.iter().zip(foreground) {
            let x = column(p);
            if f {
                self.foreground[fg + x] += 1;
            } else {
                self.background[bg + x] += 1;
            }
        }
    }

    /// Adds a block of voxels: probabilities `s`, gradient values `g`, on foreground where
    /// `class` is `fg`. The same cells as [`Density::add`] value by value.
    pub fn add_block(&mut self, s: &[f64], g: &[f32], class: &[u8], fg: u8) {
        let mut cells = [0u16; BLOCK];
        let (lo, scale) = (self.lo, Y_BINS as f64 / (self.hi - self.lo));
        for ((sb, gb), cb) in s.chunks(BLOCK).zip(g.chunks(BLOCK)).zip(class.chunks(BLOCK)) {
            let m = sb.len().min(gb.len()).min(cb.len());
            joint_cells(&sb[..m], &gb[..m], &cb[..m], fg, lo, scale, &mut cells[..m]);
            for &c in &cells[..m] {
                let c = usize::from(c);
                if c >= X_BINS * Y_BINS {
                    self.foreground[c - X_BINS * Y_BINS] += 1;
                } else {
                    self.background[c] += 1;
                }
            }
        }
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
}

/// The column of probability `s` (s = 1 in the last; NaN in the first).
#[inline(always)]
pub fn column(s: f64) -> usize {
    (s * X_BINS as f64).max(0.0).min((X_BINS - 1) as f64) as usize
}

/// Voxels whose cells are computed at once, before they are counted.
const BLOCK: usize = 256;

crate::simd::avx2_or_portable! {
    /// The cell of each value of `v` in a row of [`X_BINS`] columns per side: its column (as
    /// [`column`]: NaN in the first) plus `X_BINS` on foreground voxels (class `fg`).
    fn side_columns(v: &[f32], class: &[u8], fg: u8, out: &mut [u16]) {
        for ((o, &p), &cl) in out.iter_mut().zip(v).zip(class) {
            let x = (f64::from(p) * X_BINS as f64).max(0.0).min((X_BINS - 1) as f64);
            // SAFETY: x is in [0, X_BINS − 1] (max turns NaN into 0).
            let x = unsafe { x.to_int_unchecked::<i32>() } as u16;
            *o = x + X_BINS as u16 * u16::from(cl == fg);
        }
    }
}

crate::simd::avx2_or_portable! {
    /// The cell of each voxel (as [`Density::cell`], the row from `(g − lo)·scale`), plus
    /// `X_BINS · Y_BINS` on foreground voxels (class `fg`).
    fn joint_cells(s: &[f64], g: &[f32], class: &[u8], fg: u8, lo: f64, scale: f64, out: &mut [u16]) {
        for (((o, &p), &v), &cl) in out.iter_mut().zip(s).zip(g).zip(class) {
            let x = (p * X_BINS as f64).max(0.0).min((X_BINS - 1) as f64);
            let y = ((f64::from(v) - lo) * scale).max(0.0).min((Y_BINS - 1) as f64);
            // SAFETY: x and y are in [0, X_BINS − 1] and [0, Y_BINS − 1] (max turns NaN into 0).
            let (x, y) = unsafe { (x.to_int_unchecked::<i32>() as u16, y.to_int_unchecked::<i32>() as u16) };
            *o = y * X_BINS as u16 + x + (X_BINS * Y_BINS) as u16 * u16::from(cl == fg);
        }
    }
}

/// Counts the probabilities `v` of voxels of classes `class` per side and column into `counts`
/// (`[side * X_BINS + column]`, side 1 = class `fg`), in four copies of the counters: neighbours
/// often share a cell, and one counter would make each count wait for the one before.
pub fn count_side_columns(v: &[f32], class: &[u8], fg: u8, counts: &mut [u64; 2 * X_BINS]) {
    let mut copies = [[0u32; 2 * X_BINS]; 4];
    let mut cells = [0u16; BLOCK];
    for (vb, cb) in v.chunks(BLOCK).zip(class.chunks(BLOCK)) {
        let m = vb.len().min(cb.len());
        side_columns(&vb[..m], &cb[..m], fg, &mut cells[..m]);
        for quad in cells[..m].chunks(4) {
            for (copy, &c) in copies.iter_mut().zip(quad) {
                copy[usize::from(c)] += 1;
            }
        }
    }
    for copy in &copies {
        for (t, &n) in counts.iter_mut().zip(copy) {
            *t += u64::from(n);
        }
    }
}

/// `[lo, hi]` with room: a single value (or a NaN bound) gets a range around it.
fn widened(lo: f64, hi: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (-1.0, 1.0);
    }
    if hi > lo {
        let pad = (hi - lo) * 0.08;
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
        // padded by 8 % of the span to [-1.16, 1.16]; s = 1 lands in the last column
        assert_eq!((d.lo, d.hi), (-1.16, 1.16));
        assert_eq!(d.cell(1.0, 0.0) % X_BINS, X_BINS - 1);
        assert_eq!(d.cell(0.0, d.lo), 0);
        assert_eq!(d.cell(0.0, 5.0) / X_BINS, Y_BINS - 1, "beyond the range: the end row");
        // -1 is 0.16 / 2.32 of the way up: row 4 of 60
        assert_eq!(d.cell(0.0, -1.0) / X_BINS, 4);
        let mid = d.cell(0.5, 0.0);
        assert_eq!(mid % X_BINS, X_BINS / 2);
        assert_eq!(mid / X_BINS, Y_BINS / 2);
    }

    #[test]
    fn side_columns_are_counted_as_value_by_value() {
        let v: Vec<f32> = (0..1000).map(|i| ((i * 37) % 101) as f32 / 100.0).chain([f32::NAN, 1.0, 0.0]).collect();
        let class: Vec<u8> = (0..v.len()).map(|i| (i % 3) as u8).collect();
        let mut counts = [0u64; 2 * X_BINS];
        count_side_columns(&v, &class, 2, &mut counts);
        let mut expected = [0u64; 2 * X_BINS];
        for (&p, &c) in v.iter().zip(&class) {
            expected[column(f64::from(p)) + X_BINS * usize::from(c == 2)] += 1;
        }
        assert_eq!(counts, expected);
    }

    #[test]
    fn blocks_are_counted_as_value_by_value() {
        let n = 1000;
        let s: Vec<f64> = (0..n).map(|i| ((i * 37) % 101) as f64 / 100.0).collect();
        let g: Vec<f32> = (0..n).map(|i| ((i * 53) % 97) as f32 / 97.0 - 0.4).collect();
        let class: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
        let (mut a, mut b) = (Density::new(-0.4, 0.6), Density::new(-0.4, 0.6));
        a.add_block(&s, &g, &class, 1);
        for i in 0..n {
            b.add(s[i], f64::from(g[i]), class[i] == 1);
        }
        assert_eq!((a.foreground, a.background), (b.foreground, b.background));
    }

    #[test]
    fn a_single_value_sits_in_the_middle_row() {
        let d = Density::new(-3e-4, -3e-4);
        let row = d.cell(0.2, -3e-4) / X_BINS;
        assert_eq!(row, Y_BINS / 2);
        // the middle row's centre is the value
        let centre = d.lo + (row as f64 + 0.5) * (d.hi - d.lo) / Y_BINS as f64;
        assert!((centre + 3e-4).abs() < 3e-5 * 0.1);
    }
}
