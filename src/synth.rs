//! Seeded synthetic cases: a label map made of a few overlapping ellipsoids, and a prediction that
//! is a shifted, blurred and noisy version of it, as logits and as probabilities. No file I/O; the
//! same seed and options give the same bytes on every machine.
//!
//! Construction, for C classes on a grid of N voxels:
//! 1. labels: for each class 1..C−1 in turn, one or two ellipsoids (centres in the middle half of
//!    the grid, semi-axes 12–30 % of each side) are painted with the class; later classes overwrite
//!    earlier ones, so shapes overlap and touch.
//! 2. scores: the one-hot labels shifted by up to `shift` voxels along each axis, box-blurred
//!    (radius 2, applied twice per axis), B_k ∈ [0, 1].
//! 3. logits z_k = sharpness·(2·B_k − 1) + noise·ε with ε standard normal per voxel and channel;
//!    probabilities = softmax(z). For two classes the files hold one channel: the foreground logit
//!    z_1 − z_0 and its sigmoid (which equals softmax channel 1).

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
    /// Standard deviation of the logit noise.
    pub noise: f32,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions { shape: [64, 64, 48], classes: 2, seed: 0, shift: 2, sharpness: 4.0, noise: 1.0 }
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
    let [nx, ny, nz] = shape;
    let mut labels = vec![0u8; voxel_count(shape)];
    for class in 1..classes {
        let blobs = 1 + (rng.next_u64() % 2) as usize;
        for _ in 0..blobs {
            let c: Vec<f64> = shape.iter().map(|&n| rng.range(0.25, 0.75) * n as f64).collect();
            let r: Vec<f64> = shape.iter().map(|&n| (rng.range(0.12, 0.3) * n as f64).max(1.0)).collect();
            for z in 0..nz {
                for y in 0..ny {
                    for x in 0..nx {
                        let d = ((x as f64 - c[0]) / r[0]).powi(2)
                            + ((y as f64 - c[1]) / r[1]).powi(2)
                            + ((z as f64 - c[2]) / r[2]).powi(2);
                        if d <= 1.0 {
                            labels[x + nx * (y + ny * z)] = class as u8;
                        }
                    }
                }
            }
        }
    }
    labels
}

/// Box blur of radius `r` along `axis` (edges clamped), in place.
fn blur_axis(v: &mut [f32], shape: Shape3, axis: usize, r: usize) {
    let stride = [1, shape[0], shape[0] * shape[1]][axis];
    let n = shape[axis];
    let mut line = vec![0f32; n];
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
        for i in 0..n {
            let lo = i.saturating_sub(r);
            let hi = (i + r).min(n - 1);
            let s: f32 = line[lo..=hi].iter().sum();
            v[base + i * stride] = s / (hi - lo + 1) as f32;
        }
    }
}

/// Blurred, shifted one-hot of `class`.
fn score(labels: &[u8], shape: Shape3, class: u8, offset: [i64; 3]) -> Vec<f32> {
    let [nx, ny, nz] = shape;
    let mut b = vec![0f32; labels.len()];
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let src = [x as i64 - offset[0], y as i64 - offset[1], z as i64 - offset[2]];
                let [sx, sy, sz] = [0, 1, 2].map(|a| src[a].clamp(0, shape[a] as i64 - 1) as usize);
                b[x + nx * (y + ny * z)] = f32::from(labels[sx + nx * (sy + ny * sz)] == class);
            }
        }
    }
    for _ in 0..2 {
        for axis in 0..3 {
            if shape[axis] > 1 {
                blur_axis(&mut b, shape, axis, 2);
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
    let offset = [0; 3].map(|_: i64| (rng.next_u64() % span) as i64 - o.shift);
    let n = labels.len();
    let mut logits: Vec<f32> = Vec::with_capacity(n * o.classes);
    for k in 0..o.classes {
        let b = score(&labels, o.shape, k as u8, offset);
        logits.extend(b.iter().map(|&v| o.sharpness * (2.0 * v - 1.0) + o.noise * rng.normal() as f32));
    }
    if o.classes == 2 {
        let (z0, z1) = logits.split_at(n);
        let logit: Vec<f32> = z0.iter().zip(z1).map(|(a, b)| b - a).collect();
        let probs = logit.iter().map(|&z| sigmoid(z as f64) as f32).collect();
        return SynthCase { labels, logits: logit, probs, channels: 1 };
    }
    let mut probs = vec![0f32; n * o.classes];
    let (mut z, mut p) = (vec![0.0; o.classes], vec![0.0; o.classes]);
    for i in 0..n {
        for k in 0..o.classes {
            z[k] = logits[k * n + i] as f64;
        }
        crate::loss::activation::softmax(&z, &mut p);
        for k in 0..o.classes {
            probs[k * n + i] = p[k] as f32;
        }
    }
    SynthCase { labels, logits, probs, channels: o.classes }
}
