//! The colour maps of the pictures of the volume, readable by colour-blind readers (blue against
//! orange, never red against green) and in grey (lightness runs monotonically from each end of
//! the diverging map to its white centre, and along the sequential maps).

use plotters::style::RGBColor;

/// The stops of the diverging map from −1 to +1: dark blue, light blue, white, light orange, dark
/// orange (ColorBrewer's PuOr family, its purple turned blue).
const DIVERGING: [(f64, [u8; 3]); 5] =
    [(-1.0, [8, 48, 107]), (-0.5, [107, 174, 214]), (0.0, [247, 247, 247]), (0.5, [253, 184, 99]), (1.0, [179, 88, 6])];

/// The stops of the sequential map of counts from 0 to 1: pale yellow to dark blue through green
/// (viridis' hues, lightest first so that a single voxel stays visible on white).
const SEQUENTIAL: [(f64, [u8; 3]); 5] =
    [(0.0, [253, 231, 37]), (0.25, [94, 201, 98]), (0.5, [33, 145, 140]), (0.75, [59, 82, 139]), (1.0, [68, 1, 84])];

fn interpolate(stops: &[(f64, [u8; 3])], t: f64) -> [u8; 3] {
    let t = if t.is_nan() { stops[stops.len() / 2].0 } else { t.clamp(stops[0].0, stops[stops.len() - 1].0) };
    let i = stops.windows(2).position(|w| t <= w[1].0).unwrap_or(stops.len() - 2);
    let ((a, ca), (b, cb)) = (stops[i], stops[i + 1]);
    let f = if b > a { (t - a) / (b - a) } else { 0.0 };
    std::array::from_fn(|c| (f64::from(ca[c]) + f * (f64::from(cb[c]) - f64::from(ca[c]))).round() as u8)
}

/// Entries of the tables the maps are read from (odd: the diverging map's centre is an entry).
const STEPS: usize = 1025;

/// `stops` sampled at [`STEPS`] evenly spaced points over their range.
fn table(stops: &'static [(f64, [u8; 3])]) -> Vec<[u8; 3]> {
    let (lo, hi) = (stops[0].0, stops[stops.len() - 1].0);
    (0..STEPS).map(|i| interpolate(stops, lo + (hi - lo) * i as f64 / (STEPS - 1) as f64)).collect()
}

/// The entry of a table for `t` in [lo, hi] (nearest; NaN: the middle).
fn lookup(table: &[[u8; 3]], t: f64, lo: f64, hi: f64) -> [u8; 3] {
    if t.is_nan() {
        return table[STEPS / 2];
    }
    let i = ((t.clamp(lo, hi) - lo) / (hi - lo) * (STEPS - 1) as f64).round() as usize;
    table[i.min(STEPS - 1)]
}

/// The diverging colour of `v` on a scale from −`scale` to +`scale` centred at 0 (white).
pub fn diverging(v: f64, scale: f64) -> [u8; 3] {
    static TABLE: std::sync::OnceLock<Vec<[u8; 3]>> = std::sync::OnceLock::new();
    let t = if scale > 0.0 && scale.is_finite() { v / scale } else { 0.0 };
    lookup(TABLE.get_or_init(|| table(&DIVERGING)), t, -1.0, 1.0)
}

/// The sequential colour of `t` in [0, 1].
pub fn sequential(t: f64) -> [u8; 3] {
    static TABLE: std::sync::OnceLock<Vec<[u8; 3]>> = std::sync::OnceLock::new();
    lookup(TABLE.get_or_init(|| table(&SEQUENTIAL)), t, 0.0, 1.0)
}

/// The grey of `t` in [0, 1]: black at 0, white at 1.
pub fn grey(t: f64) -> [u8; 3] {
    let v = (t.clamp(0.0, 1.0) * 255.0).round() as u8;
    [v, v, v]
}

/// A colour as plotters takes it.
pub fn rgb(c: [u8; 3]) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lightness(c: [u8; 3]) -> f64 {
        0.2126 * f64::from(c[0]) + 0.7152 * f64::from(c[1]) + 0.0722 * f64::from(c[2])
    }

    #[test]
    fn the_diverging_map_is_white_at_zero_and_darkens_towards_both_ends() {
        assert_eq!(diverging(0.0, 1.0), [247, 247, 247]);
        assert_eq!(diverging(-2.0, 1.0), [8, 48, 107]);
        let l: Vec<f64> = (0..=20).map(|i| lightness(diverging(f64::from(i) / 20.0, 1.0))).collect();
        assert!(l.windows(2).all(|w| w[1] <= w[0]), "lightness falls from 0 to +1: {l:?}");
        let l: Vec<f64> = (0..=20).map(|i| lightness(diverging(-f64::from(i) / 20.0, 1.0))).collect();
        assert!(l.windows(2).all(|w| w[1] <= w[0]), "lightness falls from 0 to −1: {l:?}");
    }

    #[test]
    fn the_sequential_map_darkens_monotonically() {
        let l: Vec<f64> = (0..=40).map(|i| lightness(sequential(f64::from(i) / 40.0))).collect();
        assert!(l.windows(2).all(|w| w[1] <= w[0]), "{l:?}");
    }
}
