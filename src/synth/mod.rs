//! Seeded synthetic cases: a label map made of a few overlapping ellipsoids, and a prediction that
//! is a shifted, blurred and noisy version of it, as logits and as probabilities. No file I/O; the
//! same seed and options give the same bytes on every machine.
//!
//! Construction, for C classes on a grid of N voxels:
//! 1. labels: for each class 1..C−1 in turn, one or two ellipsoids (centres in the middle half of
//!    the grid, semi-axes 12–30 % of each side) are painted with the class; later classes overwrite
//!    earlier ones, so shapes overlap and touch.
//! 2. scores: the one-hot labels shifted by a whole number of voxels, up to `shift`, along each
//!    axis, box-blurred (radius 2, applied twice per axis), B_k ∈ [0, 1].
//! 3. logits z_k = sharpness·(2·B_k − 1) + noise·ε with ε standard normal per voxel and channel;
//!    probabilities = softmax(z). For two classes the files hold one channel: the foreground logit
//!    z_1 − z_0 and its sigmoid (which equals softmax channel 1).
//!
//! With `trained`, step 3 is replaced by logits that look like a trained network's, saturated far
//! from the boundaries and soft near them ([`trained`] describes the model).
//!
//! [`sequence`] builds from the same pieces a training-like series of predictions of one case.

pub mod sequence;
pub mod trained;

pub use sequence::{Sequence, SequenceOptions, StepPrediction};

use crate::case::{voxel_count, Shape3};
use crate::loss::activation::sigmoid;

/// Options of a synthetic case.
#[derive(Clone, Copy, Debug)]
pub struct SynthOptions {
    pub shape: Shape3,
    /// Number of classes C ≥ 2 (label values 0..C−1, 0 = background).
    pub classes: usize,
    pub seed: u64,
    /// Largest shift of the prediction against the labels, in voxels per axis.
    pub shift: i64,
    /// Logit scale of the blurred one-hot.
    pub sharpness: f32,
    /// Standard deviation of the logit noise (with `trained`, the amplitude of a smooth texture).
    pub noise: f32,
    /// Logits like a trained network's ([`trained`]) instead of a blurred one-hot plus noise.
    pub trained: bool,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions { shape: [64, 64, 48], classes: 2, seed: 0, shift: 2, sharpness: 4.0, noise: 1.0, trained: false }
    }
}

/// A synthetic case in memory. `logits` and `probs` hold one channel (N values) for two classes,
/// C channels (C·N values, channel-major) otherwise.
pub struct SynthCase {
    pub labels: Vec<u8>,
    pub logits: Vec<f32>,
    pub probs: Vec<f32>,
    /// Channels in `logits` / `probs`.
    pub channels: usize,
}

/// SplitMix64: a small, well-mixed, seedable generator whose output is fixed by its definition.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }
    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

fn paint_labels(shape: Shape3, classes: usize, rng: &mut Rng) -> Vec<u8> {
    let mut labels = vec![0u8; voxel_count(shape)];
    for class in 1..classes {
        let blobs = 1 + (rng.next_u64() % 2) as usize;
        for _ in 0..blobs {
            paint_ellipsoid(&mut labels, shape, class as u8, (0.12, 0.3, 1.0), rng);
        }
    }
    labels
}

/// Paints one ellipsoid with `class`: centre in the middle half of the grid, semi-axes a share in
/// `[lo, hi)` of each side and at least `least` voxels, for `size = (lo, hi, least)`.
fn paint_ellipsoid(labels: &mut [u8], shape: Shape3, class: u8, size: (f64, f64, f64), rng: &mut Rng) {
    let [nx, ny, nz] = shape;
    let (lo, hi, least) = size;
    let c: Vec<f64> = shape.iter().map(|&n| rng.range(0.25, 0.75) * n as f64).collect();
    let r: Vec<f64> = shape.iter().map(|&n| (rng.range(lo, hi) * n as f64).max(least)).collect();
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let d = ((x as f64 - c[0]) / r[0]).powi(2)
                    + ((y as f64 - c[1]) / r[1]).powi(2)
                    + ((z as f64 - c[2]) / r[2]).powi(2);
                if d <= 1.0 {
                    labels[x + nx * (y + ny * z)] = class;
                }
            }
        }
    }
}

/// Replaces every line of `v` along `axis` by `f(line, out)`'s `out`.
fn map_lines(v: &mut [f32], shape: Shape3, axis: usize, mut f: impl FnMut(&[f32], &mut [f32])) {
    let stride = [1, shape[0], shape[0] * shape[1]][axis];
    let n = shape[axis];
    let (mut line, mut out) = (vec![0f32; n], vec![0f32; n]);
    let lines = voxel_count(shape) / n;
    for l in 0..lines {
        let base = if axis == 0 {
            l * n
        } else if axis == 1 {
            (l / shape[0]) * shape[0] * shape[1] + l % shape[0]
        } else {
            l
        };
        for (i, x) in line.iter_mut().enumerate() {
            *x = v[base + i * stride];
        }
        f(&line, &mut out);
        for (i, x) in out.iter().enumerate() {
            v[base + i * stride] = *x;
        }
    }
}

/// Box blur of radius `r` along `axis` (edges clamped), in place.
fn blur_axis(v: &mut [f32], shape: Shape3, axis: usize, r: usize) {
    map_lines(v, shape, axis, |line, out| {
        let n = line.len();
        for (i, o) in out.iter_mut().enumerate() {
            let lo = i.saturating_sub(r);
            let hi = (i + r).min(n - 1);
            let s: f32 = line[lo..=hi].iter().sum();
            *o = s / (hi - lo + 1) as f32;
        }
    });
}

/// Shift by `offset` voxels along `axis` (edges clamped), in place: the value at i becomes the
/// linear interpolation of the line at i − offset. A whole offset copies values exactly.
fn shift_axis(v: &mut [f32], shape: Shape3, axis: usize, offset: f64) {
    let (whole, frac) = (offset.floor() as i64, offset - offset.floor());
    let (w0, w1) = ((1.0 - frac) as f32, frac as f32);
    map_lines(v, shape, axis, |line, out| {
        let at = |i: i64| line[i.clamp(0, line.len() as i64 - 1) as usize];
        for (i, o) in out.iter_mut().enumerate() {
            let src = i as i64 - whole;
            *o = if frac == 0.0 { at(src) } else { w0 * at(src) + w1 * at(src - 1) };
        }
    });
}

/// The one-hot of `class` shifted by `offset` and blurred (box of radius `radius`, twice per
/// axis), B ∈ [0, 1].
fn score(labels: &[u8], shape: Shape3, class: u8, offset: [f64; 3], radius: usize) -> Vec<f32> {
    let mut b: Vec<f32> = labels.iter().map(|&l| f32::from(l == class)).collect();
    for (axis, &o) in offset.iter().enumerate() {
        if o != 0.0 {
            shift_axis(&mut b, shape, axis, o);
        }
    }
    for _ in 0..2 {
        for axis in 0..3 {
            if shape[axis] > 1 {
                blur_axis(&mut b, shape, axis, radius);
            }
        }
    }
    b
}

/// Generates a case.
pub fn generate(o: &SynthOptions) -> SynthCase {
    assert!(o.classes >= 2 && o.classes <= 255, "classes must be in 2..=255");
    let mut rng = Rng(o.seed);
    let labels = paint_labels(o.shape, o.classes, &mut rng);
    let span = 2 * o.shift as u64 + 1;
    let offset = [0; 3].map(|_: i64| ((rng.next_u64() % span) as i64 - o.shift) as f64);
    if o.trained {
        let z =
            trained::logits(&labels, o.shape, o.classes, offset.map(|v| v as i64), (o.sharpness, o.noise), &mut rng);
        let (mut logits, channels) = file_logits(z, o.classes);
        logits.iter_mut().for_each(|v| *v = trained::round_to_f16(*v));
        let probs = probabilities(&logits, channels);
        return SynthCase { labels, logits, probs, channels };
    }
    let logits = noisy_logits(o.classes, o.noise, &mut rng, |k| {
        score(&labels, o.shape, k as u8, offset, 2).iter().map(|&b| o.sharpness * (2.0 * b - 1.0)).collect()
    });
    let (logits, probs, channels) = activate(logits, o.classes);
    SynthCase { labels, logits, probs, channels }
}

/// Logits of every class, channel-major: `level(k)` (the noiseless logits of class k) plus
/// noise·ε, ε standard normal from `rng`, voxel by voxel, channel by channel.
fn noisy_logits(classes: usize, noise: f32, rng: &mut Rng, mut level: impl FnMut(usize) -> Vec<f32>) -> Vec<f32> {
    let mut logits: Vec<f32> = Vec::new();
    for k in 0..classes {
        let z = level(k);
        logits.reserve_exact(z.len() * (classes - k));
        logits.extend(z.iter().map(|&v| v + noise * rng.normal() as f32));
    }
    logits
}

/// The files' channels from the logits of every class: for two classes one channel (the
/// foreground logit z_1 − z_0 and its sigmoid), otherwise the logits and their softmax. Returns
/// (logits, probabilities, channels).
fn activate(logits: Vec<f32>, classes: usize) -> (Vec<f32>, Vec<f32>, usize) {
    let (logits, channels) = file_logits(logits, classes);
    let probs = probabilities(&logits, channels);
    (logits, probs, channels)
}

/// The logits the files hold: for two classes one channel, the foreground logit z_1 − z_0; the
/// C channels otherwise.
fn file_logits(logits: Vec<f32>, classes: usize) -> (Vec<f32>, usize) {
    if classes != 2 {
        return (logits, classes);
    }
    let n = logits.len() / 2;
    let (z0, z1) = logits.split_at(n);
    (z0.iter().zip(z1).map(|(a, b)| b - a).collect(), 1)
}

/// The probabilities of the files' logits: the sigmoid of one channel, the softmax of several.
fn probabilities(logits: &[f32], channels: usize) -> Vec<f32> {
    if channels == 1 {
        return logits.iter().map(|&z| sigmoid(z as f64) as f32).collect();
    }
    let n = logits.len() / channels;
    let mut probs = vec![0f32; n * channels];
    let (mut z, mut p) = (vec![0.0; channels], vec![0.0; channels]);
    for i in 0..n {
        for k in 0..channels {
            z[k] = logits[k * n + i] as f64;
        }
        crate::loss::activation::softmax(&z, &mut p);
        for k in 0..channels {
            probs[k * n + i] = p[k] as f32;
        }
    }
    probs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_shift_moves_values_and_repeats_the_edge() {
        let mut v = vec![1.0, 2.0, 3.0, 4.0, 5.0];
        shift_axis(&mut v, [5, 1, 1], 0, 2.0);
        assert_eq!(v, [1.0, 1.0, 1.0, 2.0, 3.0]);
        shift_axis(&mut v, [5, 1, 1], 0, -3.0);
        assert_eq!(v, [2.0, 3.0, 3.0, 3.0, 3.0]);
    }

    #[test]
    fn a_fractional_shift_interpolates_between_neighbours() {
        // along y of a 2×4×1 grid: the value at y is read at y − 1.25
        let mut v: Vec<f32> = (0..8).map(|i| (i / 2 * 4) as f32).collect();
        shift_axis(&mut v, [2, 4, 1], 1, 1.25);
        // y = 0, 1 read at or before the edge: 0; y = 2 reads 0.75 → 3; y = 3 reads 1.75 → 7
        assert_eq!(v, [0.0, 0.0, 0.0, 0.0, 3.0, 3.0, 7.0, 7.0]);
    }

    #[test]
    fn scores_of_all_classes_add_up_to_one() {
        let o = SynthOptions { shape: [9, 8, 7], classes: 4, seed: 3, ..SynthOptions::default() };
        let labels = paint_labels(o.shape, o.classes, &mut Rng(o.seed));
        let scores: Vec<Vec<f32>> = (0..4).map(|k| score(&labels, o.shape, k, [0.5, -1.25, 2.0], 2)).collect();
        for i in 0..labels.len() {
            let total: f32 = scores.iter().map(|s| s[i]).sum();
            assert!((total - 1.0).abs() < 1e-5, "voxel {i}: {total}");
        }
    }
}
