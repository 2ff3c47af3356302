//! What the pictures of a case's volume show, measured: per channel, three orthogonal planes of
//! the ground truth, the probability and the gradient ([`slices`]), the joint distribution of the
//! gradient and the probability ([`density`]), and — with an activation — the gradient with
//! respect to the probabilities beside the one with respect to the logits.
//!
//! With an activation the file holds logits z and the loss's gradient is dL/dz. The gradient with
//! respect to the probabilities s is that of the sum-based (Dice-type) part,
//! u = dL/ds = P·g + R + T·s (−a·g + c for Dice: two values); a cross-entropy part, when the loss
//! has one, is left out of it (its dL/ds, −w/s on the true class, is not bounded), and the
//! pictures say so. Without an activation the file's values are the probabilities and the two
//! gradients are one.
//!
//! The densities and the histogram of u are filled while the gradient's histograms are (one pass,
//! integer counts: any order of the chunks gives the same result); the planes are gathered after.

pub mod density;
pub mod orientation;
pub mod slices;

use rayon::prelude::*;
use serde::Serialize;

use super::histogram::{padded, Bins, Histogram};
use super::GradientStats;
use crate::case::labels::{gather, kept};
use crate::case::Case;
use crate::loss::{Activation, Evaluation, GradientKernel};
use crate::parallel::CHUNK;
use density::{count_side_columns, Density, X_BINS};
use orientation::{Orientation, CONVENTION};
use slices::{centre, planes, Centroids, ChannelSlices};

/// What the pictures of the volume are asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViewRequest {
    /// Voxel indices `[x, y, z]` the planes must pass through (any of them); the
    /// coordinates not given are the channel's foreground centroid's.
    pub slice: [Option<usize>; 3],
}

/// A gradient as the pictures show it.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct GradientView {
    /// max |gradient| over the volume: the colour scale runs from −scale to +scale.
    pub scale: f64,
    /// The closed-form levels `[background, foreground]` when the gradient is exactly two-valued.
    pub levels: Option<[f64; 2]>,
    /// Gradient against probability.
    pub density: Density,
}

/// The gradient with respect to the probabilities, with an activation.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ProbabilityView {
    #[serde(flatten)]
    pub view: GradientView,
    /// True when the loss has a cross-entropy part, which this leaves out.
    pub dice_part_only: bool,
    /// Its histogram (as the gradient's own).
    pub histogram: Histogram,
}

/// The pictures' figures of one reported channel.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ChannelView {
    pub channel: usize,
    pub label: i64,
    pub slices: ChannelSlices,
    /// The gradient with respect to the file's values.
    pub gradient: GradientView,
    /// With an activation and a Dice-type part: the gradient with respect to the probabilities.
    pub probability: Option<ProbabilityView>,
}

/// The pictures' figures of a case.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Views {
    /// The letters the voxel axes point to (`RAS`, `LPS`...).
    pub orientation: String,
    /// How the planes are shown.
    pub convention: &'static str,
    /// The largest angle (degrees) between a voxel axis and the world axis it is shown along: 0
    /// for a grid aligned with the world; above a degree or so, the planes are the grid's, the
    /// nearest to the anatomical ones.
    pub obliquity_degrees: f64,
    pub channels: Vec<ChannelView>,
}

/// The range of u = P·g + R + T·s over s in [0, 1] on both sides of channel `k`.
fn probability_range(kernel: &GradientKernel, k: usize) -> (f64, f64) {
    let v = [(false, 0.0), (false, 1.0), (true, 0.0), (true, 1.0)].map(|(fg, s)| kernel.probability_gradient(k, fg, s));
    v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

/// Whether the pictures show a gradient with respect to probabilities apart from the file's: an
/// activation, and a sum-based part (a pure cross-entropy has none).
fn shows_probability(eval: &Evaluation) -> bool {
    eval.config.spec.activation != Activation::None && eval.dice_value.is_some()
}

/// The counts of one reported channel, being filled.
pub(super) struct ViewAcc {
    density: Density,
    /// The density's rows `[background, foreground]` when the gradient is one value per side.
    rows: Option<[usize; 2]>,
    probability: Option<ProbabilityAcc>,
}

/// The counts of dL/ds of one channel.
struct ProbabilityAcc {
    /// The range of dL/ds over s in [0, 1] (see `probability_range`).
    range: (f64, f64),
    bins: Bins,
    density: Density,
    /// dL/ds `[background, foreground]` and their density rows, when it is one value per side
    /// (T = 0).
    sides: Option<([f64; 2], [usize; 2])>,
}

impl ViewAcc {
    /// Fresh counts for the reported channels of `eval`, over the gradient ranges `ranges`
    /// (`[lo, hi]` of each channel's gradient, as measured).
    pub(super) fn fresh(kernel: &GradientKernel, eval: &Evaluation, ranges: &[(f64, f64)]) -> Vec<ViewAcc> {
        eval.config
            .reported_channels()
            .zip(ranges)
            .map(|(k, &(lo, hi))| {
                let density = Density::new(lo, hi);
                let side = |fg| kernel.side_value(k, fg).map(|v| density.row(f64::from(v)));
                let rows = side(false).zip(side(true)).map(|(b, f)| [b, f]);
                let probability = shows_probability(eval).then(|| {
                    let (plo, phi) = probability_range(kernel, k);
                    let density = Density::new(plo, phi);
                    let sides = (eval.coefficients(k).t == 0.0).then(|| {
                        let u = [false, true].map(|fg| kernel.probability_gradient(k, fg, 0.0));
                        (u, u.map(|v| density.row(v)))
                    });
                    ProbabilityAcc { range: (plo, phi), bins: Bins::new(padded(plo, phi)), density, sides }
                });
                ViewAcc { density, rows, probability }
            })
            .collect()
    }

    /// Adds a block of channel `k`'s voxels: targets (foreground where `fg`), probabilities,
    /// gradient.
    pub(super) fn add(&mut self, kernel: &GradientKernel, k: usize, class: &[u8], fg: u8, s: &[f64], g: &[f32]) {
        let sides = class.iter().map(|&c| c == fg);
        match self.rows {
            Some(rows) => self.density.add_rows(rows, s, sides.clone()),
            None => self.density.add_block(s, g, class, fg),
        }
        let Some(pr) = &mut self.probability else { return };
        match pr.sides {
            Some((u, rows)) => {
                pr.density.add_rows(rows, s, sides.clone());
                let n_fg = sides.filter(|&f| f).count() as u64;
                pr.bins.add_run(u[1] as f32, true, n_fg);
                pr.bins.add_run(u[0] as f32, false, class.len() as u64 - n_fg);
            }
            None => {
                for (f, &p) in sides.zip(s) {
                    let u = kernel.probability_gradient(k, f, p);
                    pr.bins.add_run(u as f32, f, 1);
                    pr.density.add(p, u, f);
                }
            }
        }
    }

    /// Fills the density of channel `k` of a gradient that is one value per side (its rows
    /// known), from the probabilities as stored: one pass over the channel, per side a histogram
    /// of the probabilities (integer counts: the same whatever the threads).
    pub(super) fn add_sides(&mut self, kernel: &GradientKernel, k: usize) {
        use rayon::prelude::*;
        let Some(rows) = self.rows else { return };
        let case = kernel.case();
        let values = case.prediction.channel(k);
        let (class, fg) = case.labels.target(k);
        let ignores = case.labels.ignores();
        let empty = || [0u64; 2 * X_BINS];
        let counts = values
            .par_chunks(CHUNK)
            .zip(class.par_chunks(CHUNK))
            .with_min_len(16)
            .fold(empty, |mut total, (v, c)| {
                // voxels of the ignore label are on neither side
                match ignores.then(|| kept(c)).flatten() {
                    None => count_side_columns(v, c, fg, &mut total),
                    Some(at) => count_side_columns(&gather(v, &at), &gather(c, &at), fg, &mut total),
                }
                total
            })
            .reduce(empty, |mut a, b| {
                for (p, q) in a.iter_mut().zip(&b) {
                    *p += q;
                }
                a
            });
        let counts = [&counts[..X_BINS], &counts[X_BINS..]];
        let (bg, fg) = (rows[0] * X_BINS, rows[1] * X_BINS);
        for (t, &n) in self.density.background[bg..bg + X_BINS].iter_mut().zip(counts[0]) {
            *t += n;
        }
        for (t, &n) in self.density.foreground[fg..fg + X_BINS].iter_mut().zip(counts[1]) {
            *t += n;
        }
    }

    pub(super) fn merge(&mut self, o: &ViewAcc) {
        self.density.merge(&o.density);
        if let (Some(a), Some(b)) = (&mut self.probability, &o.probability) {
            a.bins.merge(&b.bins);
            a.density.merge(&b.density);
        }
    }
}

/// The closed-form levels `[background, foreground]` of dL/ds of channel `k`, when it is
/// two-valued (T = 0).
fn levels(eval: &Evaluation, k: usize) -> Option<[f64; 2]> {
    (eval.coefficients(k).t == 0.0).then(|| [eval.level(k, false), eval.level(k, true)])
}

/// The views of a case from the counts filled with its gradient's (`accs`, one per reported
/// channel, with `stats`), and the planes through each channel's centre.
pub(super) fn finish(
    kernel: &GradientKernel,
    eval: &Evaluation,
    stats: &[GradientStats],
    accs: Vec<ViewAcc>,
    request: &ViewRequest,
) -> Views {
    let case: &Case = kernel.case();
    let centroids = Centroids::of(case);
    let probability = shows_probability(eval);
    let work: Vec<((usize, &GradientStats), ViewAcc)> = eval.config.reported_channels().zip(stats).zip(accs).collect();
    let channels = work
        .into_par_iter()
        .map(|((k, st), acc)| {
            let (c, source) = centre(case, &centroids, k, request.slice);
            let has_foreground = centroids.centroid(&case.labels, k).is_some();
            let slices = ChannelSlices {
                centre: c,
                source,
                given: request.slice.map(|g| g.is_some()),
                has_foreground,
                planes: planes(case, eval, k, c, probability),
            };
            let gradient = GradientView {
                scale: f64::from(st.dynamic_range.max_abs),
                levels: eval.levels_describe_gradient().then(|| levels(eval, k)).flatten(),
                density: acc.density,
            };
            let probability =
                acc.probability.map(|ProbabilityAcc { range: (plo, phi), bins, density, .. }| ProbabilityView {
                    view: GradientView { scale: plo.abs().max(phi.abs()), levels: levels(eval, k), density },
                    dice_part_only: eval.config.has_ce(),
                    histogram: bins.into_histograms().0,
                });
            ChannelView { channel: k, label: case.labels.label_of(k), slices, gradient, probability }
        })
        .collect();
    Views {
        orientation: Orientation::of_affine(&case.geometry.affine).code(),
        convention: CONVENTION,
        obliquity_degrees: Orientation::obliquity_degrees(&case.geometry.affine),
        channels,
    }
}
