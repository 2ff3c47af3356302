//! Logits that look like a trained network's: saturated far from the boundaries, soft near them.
//!
//! A trained segmentation network is confident almost everywhere: away from the boundaries of the
//! structures its logits sit on plateaus (the class of the voxel high, every other class at −10 to
//! −20: probabilities of about 1e-10, and the top one rounding to 1 in float32), and only within a
//! few voxels of a boundary do they pass through 0. The white noise of [`generate`](super::generate)
//! spreads them over the whole volume instead. Model, for class k (background included) and voxel
//! x, all lengths in voxels:
//!
//! 1. the prediction's regions: the label map shifted by a whole number of voxels per axis, up to
//!    `shift` (edges repeated), as [`generate`](super::generate) shifts it; R_k the voxels of
//!    class k there.
//! 2. the signed distance d_k(x) to R_k's boundary: inside R_k, the Euclidean distance to the
//!    nearest voxel outside it, minus ½; outside, minus the distance to the nearest voxel inside,
//!    plus ½ (so ±½ next to the boundary; exact, by the separable transform of Felzenszwalb &
//!    Huttenlocher 2012). A class absent from the labels is at −∞.
//! 3. plateaus that vary slowly over the volume: a ceiling H_k(x) ∈ [6, 12] and a floor depth
//!    L_k(x) ∈ [10, 20], each the trilinear interpolation of independent uniform values on a
//!    lattice of [`PLATEAU_SPACING`] voxels.
//!    Outside the body — an ellipsoid about the grid's centre with semi-axes 45 % of each
//!    side, and no labelled voxel — the network sees only air, the same input everywhere, and so
//!    gives the same output: there the three fields of step 3 and 4 take their value at the grid's
//!    centre. (This is what makes real predictions compress.)
//! 4. z_k(x) = clamp(β·d_k, −L_k, H_k): linear across the boundary with slope β = `sharpness` / 2
//!    per voxel (2 by default: half a voxel inside, z = 1; three voxels, 6), level on the plateaus
//!    from a few voxels on, as the piecewise-linear output of a ReLU network levels off;
//!    plus `noise` × 0.25 × a smooth texture (uniform in [−1, 1] on a lattice of [`TEXTURE_SPACING`]
//!    voxels, interpolated the same way): a network's errors are smooth, not voxel by voxel.
//! 5. the logits the file holds — z, or for two classes one channel z_1 − z_0 — rounded to float16,
//!    as a network run in mixed precision (PyTorch's autocast, as nnU-Net and MONAI infer on a
//!    GPU) gives them; probabilities = their softmax (their sigmoid for one channel), in float64,
//!    stored as float32.

use super::Rng;
use crate::case::{voxel_count, Shape3};

/// Lattice spacing of the plateau fields, voxels.
pub const PLATEAU_SPACING: usize = 64;
/// The texture's amplitude, logits, at `noise` 1.
const TEXTURE: f32 = 0.25;
/// Lattice spacing of the texture, voxels.
pub const TEXTURE_SPACING: usize = 8;
/// Semi-axes of the body, share of each side.
const BODY: f64 = 0.45;
/// Ceiling and floor depth ranges of the plateaus.
const CEILING: (f32, f32) = (6.0, 12.0);
const FLOOR: (f32, f32) = (10.0, 20.0);

/// A large squared distance standing for "no such voxel".
const FAR: f32 = 1e20;

/// The logits of every class, channel-major (C·N values), for `labels` on `shape` shifted by
/// `offset`.
pub(super) fn logits(
    labels: &[u8],
    shape: Shape3,
    classes: usize,
    offset: [i64; 3],
    o: (f32, f32),
    rng: &mut Rng,
) -> Vec<f32> {
    let (sharpness, noise) = o;
    let slope = sharpness / 2.0;
    let shifted = shift_labels(labels, shape, offset);
    let air = outside_body(&shifted, shape);
    let centre = shape[0] / 2 + shape[0] * (shape[1] / 2 + shape[1] * (shape[2] / 2));
    // a field as the network gives it: constant where it sees only air
    let field = |spacing, range, rng: &mut Rng| {
        let mut f = lattice_field(shape, spacing, range, rng);
        let at_centre = f[centre];
        f.iter_mut().zip(&air).filter(|(_, &a)| a).for_each(|(v, _)| *v = at_centre);
        f
    };
    let mut z = Vec::with_capacity(classes * shifted.len());
    for k in 0..classes {
        let ceiling = field(PLATEAU_SPACING, CEILING, rng);
        let floor = field(PLATEAU_SPACING, FLOOR, rng);
        let texture = field(TEXTURE_SPACING, (-1.0, 1.0), rng);
        let d = signed_distance(&shifted, shape, k as u8);
        z.extend((0..shifted.len()).map(|i| {
            let v = (slope * d[i]).clamp(-floor[i], ceiling[i]);
            v + TEXTURE * noise * texture[i]
        }));
    }
    z
}

/// `x` rounded to the nearest float16 (ties to even), as a float32: ±∞ beyond float16's range,
/// NaN for NaN.
pub fn round_to_f16(x: f32) -> f32 {
    const SMALLEST_NORMAL: f32 = 6.103_515_6e-5; // 2^-14
    const OVERFLOW: f32 = 65520.0; // half-way between float16's largest value and 2^16
    if x.is_nan() || x.abs() >= OVERFLOW {
        return if x.is_nan() { x } else { f32::INFINITY.copysign(x) };
    }
    if x.abs() < SMALLEST_NORMAL {
        // subnormal float16: multiples of 2^-24 (exact in float32, rounded ties to even)
        let scale = 16_777_216.0; // 2^24
        return (x * scale).round_ties_even() / scale;
    }
    // keep 10 of float32's 23 mantissa bits, rounding the 13 dropped ties to even
    let b = x.to_bits();
    let rounded = b + 0x0fff + ((b >> 13) & 1);
    f32::from_bits(rounded & !0x1fff)
}

/// The voxels outside the body: outside the ellipsoid whose semi-axes are [`BODY`] of each side,
/// about the grid's centre, and away from every labelled voxel.
fn outside_body(labels: &[u8], shape: Shape3) -> Vec<bool> {
    let mut air = Vec::with_capacity(labels.len());
    for z in 0..shape[2] {
        for y in 0..shape[1] {
            for x in 0..shape[0] {
                let r = |c: usize, n: usize| (c as f64 + 0.5 - n as f64 / 2.0) / (BODY * n as f64);
                air.push(r(x, shape[0]).powi(2) + r(y, shape[1]).powi(2) + r(z, shape[2]).powi(2) > 1.0);
            }
        }
    }
    air.iter_mut().zip(labels).for_each(|(a, &l)| *a &= l == 0);
    air
}

/// `labels` moved by `offset` voxels along each axis, edges repeated.
fn shift_labels(labels: &[u8], shape: Shape3, offset: [i64; 3]) -> Vec<u8> {
    let [nx, ny, nz] = shape;
    let at = |c: usize, axis: usize| (c as i64 - offset[axis]).clamp(0, shape[axis] as i64 - 1) as usize;
    let mut out = Vec::with_capacity(labels.len());
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                out.push(labels[at(x, 0) + nx * (at(y, 1) + ny * at(z, 2))]);
            }
        }
    }
    out
}

/// d_k of the model: the signed distance to the boundary of the voxels of class `k`.
fn signed_distance(labels: &[u8], shape: Shape3, k: u8) -> Vec<f32> {
    let to_inside = squared_distance(shape, |i| labels[i] == k);
    let to_outside = squared_distance(shape, |i| labels[i] != k);
    labels
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            if l == k {
                to_outside[i].sqrt() - 0.5
            } else if to_inside[i] >= FAR {
                f32::NEG_INFINITY
            } else {
                0.5 - to_inside[i].sqrt()
            }
        })
        .collect()
}

/// The squared Euclidean distance from every voxel to the nearest voxel `i` with `target(i)`
/// (0 on those; 1e20 or more when there is none): the 1D lower-envelope transform along x, then
/// y, then z (Felzenszwalb & Huttenlocher, "Distance transforms of sampled functions", 2012).
pub fn squared_distance(shape: Shape3, target: impl Fn(usize) -> bool) -> Vec<f32> {
    let n = voxel_count(shape);
    let mut f: Vec<f32> = (0..n).map(|i| if target(i) { 0.0 } else { FAR }).collect();
    let strides = [1, shape[0], shape[0] * shape[1]];
    let (mut line, mut out) = (Vec::new(), Vec::new());
    for axis in 0..3 {
        let len = shape[axis];
        line.resize(len, 0.0);
        out.resize(len, 0.0);
        for base in (0..n).filter(|&i| (i / strides[axis]).is_multiple_of(len)) {
            for (j, v) in line.iter_mut().enumerate() {
                *v = f[base + j * strides[axis]];
            }
            transform_line(&line, &mut out);
            for (j, v) in out.iter().enumerate() {
                f[base + j * strides[axis]] = *v;
            }
        }
    }
    f
}

/// out[q] = min over p of (q − p)² + f[p]: the lower envelope of the parabolas rooted at (p, f[p]).
fn transform_line(f: &[f32], out: &mut [f32]) {
    let n = f.len();
    let (mut v, mut edges) = (vec![0usize; n], vec![0f64; n + 1]);
    let mut k = 0;
    edges[0] = f64::NEG_INFINITY;
    edges[1] = f64::INFINITY;
    let meet = |p: usize, q: usize| {
        let (fp, fq) = (f64::from(f[p]), f64::from(f[q]));
        ((fq + (q * q) as f64) - (fp + (p * p) as f64)) / (2.0 * (q as f64 - p as f64))
    };
    for q in 1..n {
        let mut s = meet(v[k], q);
        while s <= edges[k] {
            k -= 1;
            s = meet(v[k], q);
        }
        k += 1;
        v[k] = q;
        edges[k] = s;
        edges[k + 1] = f64::INFINITY;
    }
    k = 0;
    for (q, o) in out.iter_mut().enumerate() {
        while edges[k + 1] < q as f64 {
            k += 1;
        }
        let d = q as f64 - v[k] as f64;
        *o = (d * d + f64::from(f[v[k]])) as f32;
    }
}

/// A field that varies slowly: uniform values in [lo, hi) on a lattice of `spacing` voxels
/// (from `rng`, x fastest), interpolated trilinearly.
fn lattice_field(shape: Shape3, spacing: usize, (lo, hi): (f32, f32), rng: &mut Rng) -> Vec<f32> {
    let knots = shape.map(|n| n.div_ceil(spacing) + 1);
    let lattice: Vec<f32> =
        (0..knots.iter().product::<usize>()).map(|_| rng.range(lo as f64, hi as f64) as f32).collect();
    let at = |i: usize, j: usize, k: usize| lattice[i + knots[0] * (j + knots[1] * k)];
    let split = |c: usize| (c / spacing, (c % spacing) as f32 / spacing as f32);
    let mut out = Vec::with_capacity(voxel_count(shape));
    for z in 0..shape[2] {
        let (k, tz) = split(z);
        for y in 0..shape[1] {
            let (j, ty) = split(y);
            for x in 0..shape[0] {
                let (i, tx) = split(x);
                let lerp = |a: f32, b: f32, t: f32| a + (b - a) * t;
                let plane = |k| {
                    lerp(lerp(at(i, j, k), at(i + 1, j, k), tx), lerp(at(i, j + 1, k), at(i + 1, j + 1, k), tx), ty)
                };
                out.push(lerp(plane(k), plane(k + 1), tz));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squared_distances_are_those_counted_voxel_by_voxel() {
        let shape = [7, 5, 4];
        let n = voxel_count(shape);
        let target = |i: usize| i % 13 == 3 || i == 60;
        let got = squared_distance(shape, target);
        let xyz = |i: usize| [i % 7, i / 7 % 5, i / 35];
        for (i, &d) in got.iter().enumerate() {
            let [x, y, z] = xyz(i);
            let best = (0..n)
                .filter(|&j| target(j))
                .map(|j| {
                    let [a, b, c] = xyz(j);
                    (x as f32 - a as f32).powi(2) + (y as f32 - b as f32).powi(2) + (z as f32 - c as f32).powi(2)
                })
                .fold(f32::INFINITY, f32::min);
            assert_eq!(d, best, "voxel {i}");
        }
        assert!(squared_distance(shape, |_| false).iter().all(|&d| d >= FAR));
    }

    #[test]
    fn rounding_to_float16_is_what_a_float16_conversion_gives() {
        let mut x = 1e-9f32;
        while x < 1e6 {
            for v in [x, -x, x * 1.000_37, x * 0.999_91] {
                assert_eq!(round_to_f16(v), half::f16::from_f32(v).to_f32(), "{v:e}");
            }
            x *= 1.0137;
        }
        assert_eq!(round_to_f16(65519.0), 65504.0);
        assert_eq!(round_to_f16(-65520.0), f32::NEG_INFINITY);
        assert!(round_to_f16(f32::NAN).is_nan());
        // ties go to even: 1 + 2^-11 lies half-way between 1 and 1 + 2^-10
        assert_eq!(round_to_f16(1.0 + 2f32.powi(-11)), 1.0);
        assert_eq!(round_to_f16(1.0 + 3.0 * 2f32.powi(-11)), 1.0 + 2.0 * 2f32.powi(-10));
    }

    #[test]
    fn logits_pass_zero_at_the_boundary_and_sit_on_their_plateaus_far_from_it() {
        // a slab: class 1 where x ≥ 30 of 60
        let shape = [60, 3, 2];
        let labels: Vec<u8> = (0..voxel_count(shape)).map(|i| u8::from(i % 60 >= 30)).collect();
        let z = logits(&labels, shape, 2, [0; 3], (4.0, 0.0), &mut Rng(1));
        let n = labels.len();
        let (z0, z1) = z.split_at(n);
        // next to the boundary, ±½ voxel at slope 2: about ±1
        assert!((z1[30] - 1.0).abs() < 0.05 && (z1[29] + 1.0).abs() < 0.05, "{} {}", z1[29], z1[30]);
        assert!((z0[29] - 1.0).abs() < 0.05);
        // far away: the plateaus
        for i in [0, 59] {
            let (high, low) = if i == 0 { (z0[i], z1[i]) } else { (z1[i], z0[i]) };
            assert!(high > 0.99 * CEILING.0 && high < CEILING.1, "{high}");
            assert!(-low > 0.99 * FLOOR.0 && -low < FLOOR.1, "{low}");
        }
        // a class absent from the labels is at its floor everywhere
        let z = logits(&labels, shape, 3, [0; 3], (4.0, 0.0), &mut Rng(1));
        assert!(z[2 * n..].iter().all(|&v| v <= -FLOOR.0 && v >= -FLOOR.1));
    }
}
