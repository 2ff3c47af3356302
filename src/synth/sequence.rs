//! A seeded training-like sequence of one case: the predictions a network could make at N
//! checkpoints, better from one to the next, so that the change of the Dice gradient over training
//! (the ratio of its two levels is 1 − 2/Dice) can be followed on data whose course is known. No
//! file I/O; the same seed and options give the same bytes, and a step generated alone is the same
//! as in the whole sequence.
//!
//! Construction, for C classes and N steps; step i = 0..N−1 is at progress t = i/(N−1) (a single
//! step is the last one, t = 1), and the network has learnt e = 1 − (1 − t)² by then (fast at
//! first, then slower, as training curves go):
//! 1. labels, the same at every step, from the case's stream (seeded with `seed`): classes
//!    1..C−2 painted as [`generate`](super::generate) paints them (one or two ellipsoids each,
//!    semi-axes 12–30 % of each side), then with C ≥ 3 the last class C−1 as one small ellipsoid
//!    (semi-axes 8–12 % of each side, at least 2 voxels: a lesion), painted last so that nothing
//!    covers it. With C = 2, class 1 is painted as `generate` paints it and there is no lesion.
//!    Then, from the same stream, the direction of the prediction's error: d = (±shift, ±shift,
//!    ±shift), a sign per axis.
//! 2. scores: the one-hot of each class shifted by (1 − e)·d voxels (a fraction of a voxel by
//!    linear interpolation), so the shift shrinks to 0, and blurred less as the network learns:
//!    B_k = (1 − e)·blur₂ + e·blur₁, blurᵣ the box blur of radius r applied twice per axis
//!    (`generate` uses blur₂ alone).
//! 3. logits as `generate` makes them, z_k = s_t·(2·B_k − 1) + σ_t·ε, with the sharpness growing,
//!    s_t = sharpness·(1 + e), and the noise shrinking, σ_t = noise·(1 − 0.8·e); ε standard normal
//!    from the step's own stream (seeded from `seed` and i, see [`step_seed`]), voxel by voxel,
//!    channel by channel: a step needs no other step's numbers.
//! 4. the lesion is missed early and learnt late, with its own progress a = clamp((t − 0.5)/0.5,
//!    0, 1) and learnt share e' = 1 − (1 − a)²: its logit is lowered by 1.5·(1 − e')·s_t. Up to
//!    t = 0.5 that is z_{C−1} = s_t·(2·B_{C−1} − 2.5) + σ_t·ε: noise aside, it is above class
//!    k's logit only where B_{C−1} − B_k > 0.75, so its probability stays near 0 and so does its
//!    soft Dice (where the ratio of the Dice gradient's levels, 1 − 2/Dice, is most extreme);
//!    from t = 0.5 the push fades, the lesion appears and improves, and at t = 1 it is scored like
//!    every other class.
//! 5. probabilities = softmax(z); for two classes one channel, z_1 − z_0 and its sigmoid — as
//!    `generate` writes them.

use super::{activate, noisy_logits, paint_ellipsoid, paint_labels, score, Rng, SynthOptions};
use crate::case::Shape3;

/// Share of the first step's noise left at the last step.
const FINAL_NOISE: f32 = 0.2;
/// Progress at which the lesion starts to appear.
const LESION_APPEARS: f64 = 0.5;
/// How far the lesion's logit is lowered before it appears, in units of the sharpness.
const LESION_PUSH: f32 = 1.5;
/// Semi-axes of the lesion: share of each side from, to, and the least in voxels.
const LESION_SIZE: (f64, f64, f64) = (0.08, 0.12, 2.0);

/// Options of a sequence: the case (grid, classes, seed; shift, sharpness and noise are those of
/// the first step) and the number of steps.
#[derive(Clone, Copy, Debug)]
pub struct SequenceOptions {
    pub case: SynthOptions,
    /// Number of steps N ≥ 1.
    pub steps: usize,
}

/// The prediction of one step, laid out as [`SynthCase`](super::SynthCase)'s.
pub struct StepPrediction {
    pub logits: Vec<f32>,
    pub probs: Vec<f32>,
    /// Channels in `logits` / `probs`: 1 for two classes, C otherwise.
    pub channels: usize,
}

/// A sequence: its labels and the direction of the error drawn once; each step computed on
/// demand.
pub struct Sequence {
    options: SequenceOptions,
    labels: Vec<u8>,
    direction: [i64; 3],
}

/// Share learnt at progress x ∈ [0, 1]: 1 − (1 − x)².
fn learnt(x: f64) -> f64 {
    1.0 - (1.0 - x) * (1.0 - x)
}

impl Sequence {
    /// Draws the labels and the direction of the error (step 1 of the construction).
    pub fn new(o: &SequenceOptions) -> Sequence {
        let c = &o.case;
        assert!(c.classes >= 2 && c.classes <= 255, "classes must be in 2..=255");
        assert!(o.steps >= 1, "a sequence has at least one step");
        let mut rng = Rng(c.seed);
        let labels = sequence_labels(c.shape, c.classes, &mut rng);
        let direction = [0; 3].map(|_: i64| if rng.next_u64() & 1 == 0 { c.shift } else { -c.shift });
        Sequence { options: *o, labels, direction }
    }

    /// The label map of every step.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Number of steps.
    pub fn steps(&self) -> usize {
        self.options.steps
    }

    /// Progress t of step `i`: i/(N−1), 1 for a single step.
    pub fn progress(&self, i: usize) -> f64 {
        match self.options.steps {
            1 => 1.0,
            n => i as f64 / (n - 1) as f64,
        }
    }

    /// The offset of the prediction against the labels at step `i`, voxels per axis: (1 − e)·d.
    pub fn offset(&self, i: usize) -> [f64; 3] {
        let e = learnt(self.progress(i));
        self.direction.map(|d| (1.0 - e) * d as f64)
    }

    /// The prediction of step `i` (steps 2–5 of the construction).
    ///
    /// Panics if `i` is not a step of the sequence.
    pub fn step(&self, i: usize) -> StepPrediction {
        assert!(i < self.options.steps, "step {i} of a sequence of {} steps", self.options.steps);
        let c = &self.options.case;
        let t = self.progress(i);
        let e = learnt(t) as f32;
        let s = c.sharpness * (1.0 + e);
        let noise = c.noise * (1.0 - (1.0 - FINAL_NOISE) * e);
        let lesion = (c.classes >= 3).then_some(c.classes - 1);
        let lesion_learnt = learnt(((t - LESION_APPEARS) / (1.0 - LESION_APPEARS)).clamp(0.0, 1.0)) as f32;
        let push = LESION_PUSH * (1.0 - lesion_learnt) * s;
        let offset = self.offset(i);
        let mut rng = Rng(step_seed(c.seed, i as u64));
        let logits = noisy_logits(c.classes, noise, &mut rng, |k| {
            let coarse = score(&self.labels, c.shape, k as u8, offset, 2);
            let fine = score(&self.labels, c.shape, k as u8, offset, 1);
            let lower = if Some(k) == lesion { push } else { 0.0 };
            coarse.iter().zip(&fine).map(|(&b2, &b1)| s * (2.0 * ((1.0 - e) * b2 + e * b1) - 1.0) - lower).collect()
        });
        let (logits, probs, channels) = activate(logits, c.classes);
        StepPrediction { logits, probs, channels }
    }
}

/// The seed of step `i`'s noise stream: `seed` mixed with a SplitMix64 draw of the step's number,
/// so that the streams of the steps, and the case's own stream (seeded with `seed`), start far
/// apart.
pub fn step_seed(seed: u64, i: u64) -> u64 {
    seed ^ Rng(i ^ 0x7374_6570_7365_6564).next_u64()
}

/// The labels of step 1: the large classes as [`paint_labels`] paints them, then the lesion.
fn sequence_labels(shape: Shape3, classes: usize, rng: &mut Rng) -> Vec<u8> {
    if classes == 2 {
        return paint_labels(shape, 2, rng);
    }
    let mut labels = paint_labels(shape, classes - 1, rng);
    paint_ellipsoid(&mut labels, shape, (classes - 1) as u8, LESION_SIZE, rng);
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(classes: usize, steps: usize) -> SequenceOptions {
        SequenceOptions {
            case: SynthOptions { shape: [16, 14, 10], classes, seed: 7, ..SynthOptions::default() },
            steps,
        }
    }

    #[test]
    fn the_shift_shrinks_to_zero_along_one_direction() {
        let s = Sequence::new(&options(3, 5));
        assert!(s.direction.iter().all(|d| d.abs() == 2));
        assert_eq!(s.offset(0), s.direction.map(|d| d as f64));
        assert_eq!(s.offset(2), s.direction.map(|d| d as f64 / 4.0));
        assert_eq!(s.offset(4), [0.0; 3]);
    }

    #[test]
    fn a_single_step_is_the_last_one() {
        let one = Sequence::new(&options(3, 1));
        let five = Sequence::new(&options(3, 5));
        assert_eq!(one.progress(0), 1.0);
        assert_eq!(one.offset(0), [0.0; 3]);
        assert_eq!(one.labels(), five.labels());
    }

    #[test]
    fn the_lesion_is_painted_last_over_the_classes_generate_paints() {
        let o = options(4, 2);
        let s = Sequence::new(&o);
        let large = paint_labels(o.case.shape, 3, &mut Rng(o.case.seed));
        let mut lesion = 0;
        for (&l, &g) in s.labels().iter().zip(&large) {
            if l == 3 {
                lesion += 1;
            } else {
                assert_eq!(l, g);
            }
        }
        // semi-axes of at least 2 voxels: the ellipsoid holds (4/3)·π·8 ≈ 33 voxels or more
        assert!(lesion >= 25, "{lesion} voxels");
        assert!(lesion < s.labels().len() / 20, "{lesion} voxels of {}", s.labels().len());
    }

    #[test]
    fn two_classes_have_the_labels_of_generate_and_one_channel() {
        let o = options(2, 3);
        let s = Sequence::new(&o);
        assert_eq!(s.labels(), super::super::generate(&o.case).labels);
        let step = s.step(1);
        assert_eq!((step.channels, step.probs.len()), (1, s.labels().len()));
    }

    #[test]
    fn step_streams_differ_from_each_other_and_from_the_case_stream() {
        let seeds: Vec<u64> = (0..4).map(|i| step_seed(7, i)).collect();
        for (a, x) in seeds.iter().enumerate() {
            assert_ne!(*x, 7);
            assert!(seeds[a + 1..].iter().all(|y| y != x));
        }
    }
}
