//! The loss and its gradient as a network meets them in training: on patches, in mini-batches
//! (nnU-Net v2 and MONAI train so), rather than on one whole volume.
//!
//! **Patches.** N mini-batches of B patches of size P are drawn as nnU-Net draws them
//! ([`sampling`]): seeded, reproducible. A patch is a view of the volume ([`patch`]); where it
//! sticks out, it is padded as nnU-Net pads: label 0 (nnU-Net pads the segmentation with −1 and
//! its training transforms turn −1 into 0), and — the network's output there being unknown — the
//! prediction of one real background voxel: the first voxel of label 0 in memory order (the
//! volume's corner in most scans), reported as `padding.prediction_voxel`.
//!
//! **The loss on a mini-batch** of patches b = 1..B, with per-patch sums I_bk, S_bk, Q_bk, G_bk
//! and the family's loss L(sums) of docs/math.md, loss weight w:
//!
//! ```text
//!   per patch (default; MONAI batch=False, nnU-Net batch_dice=False):
//!     loss = w·(λ_sum·(1/B)·Σ_b L(sums_b) + λ_ce·CE),   dL/ds on patch b: (1/B)·w·coefficients(sums_b)
//!   pooled (batch_dice; MONAI batch=True, nnU-Net batch_dice=True, smp):
//!     loss = w·(λ_sum·L(Σ_b sums_b) + λ_ce·CE),          dL/ds on every patch: w·coefficients(Σ_b sums_b)
//!   CE = Σ over every voxel of the mini-batch of its (weighted) cross-entropy / Σ of its weights
//! ```
//!
//! (torch's `CrossEntropyLoss` averages over the whole mini-batch in both modes.) A patch without
//! a class has G = 0 for it: with Dice its term is set by ε alone (Tilborghs et al., MICCAI 2022),
//! and through probabilities its per-voxel gradient can be far larger than the others'.
//!
//! **Measured per mini-batch**: the loss; per channel whether the class is absent from the
//! mini-batch and from each patch, the two levels of dL/ds per patch (when the gradient is
//! two-valued with respect to probabilities, from the sums alone), and max |g| and min non-zero |g|
//! over the mini-batch's voxels (from the levels, or from every voxel of every patch otherwise);
//! the float16 loss-scale window 2^−14/min|g| ≤ S ≤ 65504/max|g|. Every mini-batch is computed on
//! its own, in parallel; results are gathered in mini-batch order, so they do not depend on the
//! number of threads.

pub mod patch;
pub mod sampling;

use rayon::prelude::*;
use serde::Serialize;

use crate::analysis::precision::ScaleWindow;
use crate::case::Case;
use crate::error::{Error, Param, Result};
use crate::loss::{CaseSums, Evaluation, GradientKernel, LossConfig, MimicWeights, Preset};
use patch::{gradient_extremes, patch_sums, PatchView};
use sampling::{draw, foreground_patches, ClassLocations, PatchPlace, Rng};

/// How the network is trained: patches in mini-batches.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Regime {
    /// Patch size in voxels, on the volume's axes (x, y, z).
    pub patch_size: [usize; 3],
    /// Patches per mini-batch, B.
    pub batch_size: usize,
    /// Mini-batches drawn, N.
    pub batches: usize,
    /// Share F of foreground patches (nnU-Net's `oversample_foreground_percent`).
    pub fg_oversample: f64,
    /// Seed of the generator.
    pub seed: u64,
    /// Whether the Dice sums are pooled over the mini-batch.
    pub batch_dice: bool,
    /// Why `batch_dice` has its value.
    pub batch_dice_source: String,
}

impl Regime {
    /// nnU-Net's defaults for 3d_fullres: 2 patches per mini-batch, a third of them foreground
    /// patches, 250 mini-batches (one epoch).
    pub const BATCH_SIZE: usize = 2;
    pub const BATCHES: usize = 250;
    pub const FG_OVERSAMPLE: f64 = 0.33;
    pub const SEED: u64 = 0;

    /// Checks the numbers.
    pub fn check(&self) -> Result<()> {
        if self.patch_size.contains(&0) {
            return Err(Error::parameter(Param::PATCH_SIZE, format!("{:?} has no voxel", self.patch_size)));
        }
        if self.batch_size == 0 {
            return Err(Error::parameter(Param::BATCH_SIZE, "must be at least 1"));
        }
        if self.batches == 0 {
            return Err(Error::parameter(Param::PATCHES, "must be at least 1 mini-batch"));
        }
        if !(0.0..=1.0).contains(&self.fg_oversample) {
            return Err(Error::parameter(
                Param::FG_OVERSAMPLE,
                format!("is a share and must lie in [0, 1], got {}", self.fg_oversample),
            ));
        }
        if self.patch_size.iter().any(|&p| p > Self::MAX_PATCH_SIDE) {
            return Err(Error::parameter(
                Param::PATCH_SIZE,
                format!("{:?}: a side of at most {} voxels, please", self.patch_size, Self::MAX_PATCH_SIDE),
            ));
        }
        if self.batches.saturating_mul(self.batch_size) > Self::MAX_PATCHES {
            return Err(Error::parameter(
                Param::PATCHES,
                format!(
                    "{} mini-batches of {} patches: at most {} patches in all (every mini-batch is kept in the report)",
                    self.batches,
                    self.batch_size,
                    Self::MAX_PATCHES
                ),
            ));
        }
        Ok(())
    }

    /// The largest side of a patch: 2^20 voxels (beyond any scanner's volume; keeps corners and
    /// voxel counts far from overflow).
    pub const MAX_PATCH_SIDE: usize = 1 << 20;
    /// The most patches drawn in one analysis.
    pub const MAX_PATCHES: usize = 10_000_000;
}

/// A training regime as asked for: `batch_dice` None takes the preset's (nnU-Net's 3d_fullres
/// default pools, [`RegimeRequest::resolve`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RegimeRequest {
    pub patch_size: [usize; 3],
    pub batch_size: usize,
    pub batches: usize,
    pub fg_oversample: f64,
    pub seed: u64,
    pub batch_dice: Option<bool>,
}

impl RegimeRequest {
    /// The regime for a loss of preset `preset`.
    pub fn resolve(&self, preset: Option<Preset>) -> Regime {
        let (batch_dice, source) = match self.batch_dice {
            Some(b) => (b, "given"),
            None => crate::loss::preset::batch_dice(preset),
        };
        Regime {
            patch_size: self.patch_size,
            batch_size: self.batch_size,
            batches: self.batches,
            fg_oversample: self.fg_oversample,
            seed: self.seed,
            batch_dice,
            batch_dice_source: source.to_string(),
        }
    }
}

/// The spread of one figure over mini-batches (or patches): nearest-rank quantiles of its finite
/// values.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Spread {
    /// Values it was taken over (finite ones).
    pub count: usize,
    pub min: Option<f64>,
    pub p05: Option<f64>,
    pub median: Option<f64>,
    pub p95: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
}

impl Spread {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Spread {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        let q = |p: f64| (!v.is_empty()).then(|| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]);
        Spread {
            count: v.len(),
            min: v.first().copied(),
            p05: q(0.05),
            median: q(0.5),
            p95: q(0.95),
            max: v.last().copied(),
            mean: (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64),
        }
    }
}

/// Windows over mini-batches: their spread and the scales that serve every mini-batch.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct WindowSpread {
    pub log2_min: Spread,
    pub log2_max: Spread,
    /// Mini-batches whose own window is empty (share 0–1).
    pub empty_share: f64,
    /// The scales at which every mini-batch's gradient is normal and finite in float16 (None
    /// when every mini-batch's gradient is 0).
    pub every_batch: Option<ScaleWindow>,
}

impl WindowSpread {
    fn of(windows: &[ScaleWindow]) -> WindowSpread {
        WindowSpread {
            log2_min: Spread::of(windows.iter().filter_map(|w| w.log2_min)),
            log2_max: Spread::of(windows.iter().filter_map(|w| w.log2_max)),
            empty_share: windows.iter().filter(|w| w.empty).count() as f64 / windows.len().max(1) as f64,
            every_batch: ScaleWindow::intersection(windows),
        }
    }
}

/// The float16 window of magnitudes from `min_nonzero_abs` (+∞: every value is 0) to `max_abs`.
pub fn window(max_abs: f32, min_nonzero_abs: f32) -> ScaleWindow {
    ScaleWindow::float16(min_nonzero_abs.is_finite().then_some(f64::from(min_nonzero_abs)), f64::from(max_abs))
}

/// One channel over the mini-batches.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ChannelRegime {
    pub channel: usize,
    pub label: i64,
    /// Patches without a voxel of the class (share 0–1 of all N·B patches).
    pub absent_patch_share: f64,
    /// Mini-batches without a voxel of the class in any patch (share 0–1).
    pub absent_batch_share: f64,
    /// dL/ds on the class's voxels of a patch (per patch; per mini-batch when pooled), when the
    /// gradient is two-valued with respect to probabilities; patches without the class left out.
    pub foreground_level: Option<Spread>,
    /// dL/ds on the other voxels of a patch, likewise.
    pub background_level: Option<Spread>,
    /// The mimic weight w_k (0–1; see report.json's channels) of each patch's Dice (of each
    /// mini-batch's when pooled), patches without the class left out; None for a loss without a
    /// Dice-type part.
    pub mimic_weight: Option<Spread>,
    /// max |g| per mini-batch.
    pub max_abs: Spread,
    /// min non-zero |g| per mini-batch.
    pub min_nonzero_abs: Spread,
    pub loss_scale_window: WindowSpread,
}

/// Where the largest per-voxel gradient over all mini-batches is.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Largest {
    pub value: f64,
    /// Mini-batch (0-based), patch in it (0-based), channel.
    pub batch: usize,
    pub patch: usize,
    pub channel: usize,
    pub label: i64,
    /// The patch's lower corner on the volume's axes (negative: sticks out).
    pub corner: [i64; 3],
    /// Whether the patch (or, pooled, the mini-batch) holds no voxel of the channel's class.
    pub class_absent: bool,
    /// In words.
    pub cause: String,
}

/// The training-regime analysis of a case.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RegimeReport {
    pub regime: Regime,
    /// Foreground patches in each mini-batch.
    pub foreground_patches_per_batch: usize,
    /// Patches that stick out of the volume (share 0–1).
    pub padded_patch_share: f64,
    /// The voxel whose prediction fills the padding (label 0 there), when a patch needs padding.
    pub padding_voxel: Option<[usize; 3]>,
    /// The loss per mini-batch.
    pub loss: Spread,
    pub channels: Vec<ChannelRegime>,
    /// The window of the whole prediction (every channel, one scale) per mini-batch.
    pub loss_scale_window: WindowSpread,
    pub largest: Option<Largest>,
    /// Mini-batches whose loss or gradient is not finite (reported only when asked for; left out
    /// of the spreads), and the first of them.
    pub non_finite_batches: usize,
    pub first_non_finite_batch: Option<usize>,
    /// The loss of every mini-batch, in order (for pictures and checks).
    pub batch_losses: Vec<f64>,
    /// max |g| of every mini-batch over the reported channels, in order.
    pub batch_max_abs: Vec<f64>,
    /// min non-zero |g| of every mini-batch over the reported channels, in order (null when
    /// every value is 0).
    pub batch_min_nonzero_abs: Vec<Option<f64>>,
}

/// What one mini-batch gives.
struct BatchResult {
    loss: f64,
    /// The loss, a coefficient of its gradient or a gradient value is not finite.
    non_finite: bool,
    /// Per channel: (max |g|, min non-zero |g|).
    extremes: Vec<(f32, f32)>,
    /// Per channel: absent from the mini-batch.
    absent: Vec<bool>,
    /// Per patch, per channel: absent from the patch.
    absent_in_patch: Vec<Vec<bool>>,
    /// Per patch (or once when pooled), per channel: the levels (foreground, background) present.
    levels: Vec<Vec<(Option<f64>, Option<f64>)>>,
    /// Per patch (or once when pooled), per channel: the mimic weight, where the class is present.
    mimic: Vec<Vec<Option<f64>>>,
    /// (value, patch, channel) of the largest |g|.
    largest: Option<(f32, usize, usize)>,
}

/// The evaluation a patch's voxels see: the loss on the patch's sums `sums` (the pooled sums when
/// the Dice is pooled) with the cross-entropy of the whole mini-batch `pooled`, its sum-based
/// coefficients scaled by `scale` (1/B for one Dice per patch, averaged).
fn one_batch(
    case: &Case,
    config: &LossConfig,
    regime: &Regime,
    places: &[PatchPlace],
    pad: Option<usize>,
) -> BatchResult {
    let c = config.channels;
    let views: Vec<PatchView> =
        places.iter().map(|p| PatchView::new(&case.grid, p.corner, regime.patch_size)).collect();
    let sums: Vec<CaseSums> = views.iter().map(|v| patch_sums(case, config, v, pad)).collect();
    let mut pooled = CaseSums { channels: vec![Default::default(); c], ..CaseSums::default() };
    for s in &sums {
        pooled.pool(s);
    }
    let absent_in_patch: Vec<Vec<bool>> =
        sums.iter().map(|s| s.channels.iter().map(|ch| ch.label_count == 0).collect()).collect();
    let absent: Vec<bool> = pooled.channels.iter().map(|ch| ch.label_count == 0).collect();
    let b = places.len() as f64;
    // the evaluation each patch sees: its share of the mini-batch's loss (its Dice-type part over
    // B, its part of the mini-batch's cross-entropy), whose values add up to the loss; or the
    // pooled one
    let evals: Vec<Evaluation> = if regime.batch_dice {
        vec![Evaluation::from_sums(config.clone(), pooled.clone())]
    } else {
        sums.iter().map(|s| Evaluation::member(config.clone(), s.clone(), &pooled, 1.0 / b)).collect()
    };
    let loss = evals.iter().map(|e| e.value).sum::<f64>();
    let finite = |e: &Evaluation| {
        e.channels
            .iter()
            .all(|c| c.coefficients.p.is_finite() && c.coefficients.r.is_finite() && c.coefficients.t.is_finite())
            && e.ce_scale.is_finite()
    };
    let reported: Vec<usize> = config.reported_channels().collect();
    let two_valued = evals[0].levels_describe_gradient();
    // the levels (foreground, background) of each channel on sums `s` seen with `eval`, for the
    // sides that hold voxels
    let levels_of = |s: &CaseSums, eval: &Evaluation| -> Vec<(Option<f64>, Option<f64>)> {
        (0..c)
            .map(|k| {
                let fg = s.channels[k].label_count;
                let side = |foreground: bool, count: u64| {
                    (count > 0 && config.in_loss().contains(&k)).then(|| eval.level(k, foreground))
                };
                (side(true, fg), side(false, s.voxels - fg))
            })
            .collect()
    };
    let levels: Vec<Vec<(Option<f64>, Option<f64>)>> = match (two_valued, regime.batch_dice) {
        (false, _) => Vec::new(),
        (true, true) => vec![levels_of(&pooled, &evals[0])],
        (true, false) => sums.iter().zip(&evals).map(|(s, e)| levels_of(s, e)).collect(),
    };
    let mimic = evals
        .iter()
        .map(|e| {
            let m = MimicWeights::of(e);
            let weight = |k: usize| m.as_ref()?.weight(k).filter(|_| e.sums.channels[k].label_count > 0);
            (0..c).map(weight).collect()
        })
        .collect();
    let mut extremes = vec![(0f32, f32::INFINITY); c];
    let mut largest: Option<(f32, usize, usize)> = None;
    for (j, view) in views.iter().enumerate() {
        let eval = &evals[if regime.batch_dice { 0 } else { j }];
        let patch_ext: Vec<(f32, f32)> = if two_valued {
            // every voxel of a side holds that side's level, rounded once to float32
            levels_of(&sums[j], eval)
                .iter()
                .map(|(f, bg)| {
                    let mags: Vec<f32> = [f, bg].into_iter().flatten().map(|&v| (v as f32).abs()).collect();
                    let mx = mags.iter().copied().fold(0f32, f32::max);
                    let mn = mags.iter().copied().filter(|&a| a > 0.0).fold(f32::INFINITY, f32::min);
                    (mx, mn)
                })
                .collect()
        } else {
            gradient_extremes(&GradientKernel::new(case, eval), view, pad)
        };
        for (k, &(mx, mn)) in patch_ext.iter().enumerate() {
            extremes[k].0 = extremes[k].0.max(mx);
            extremes[k].1 = extremes[k].1.min(mn);
            if reported.contains(&k) && largest.is_none_or(|(v, _, _)| mx > v) {
                largest = Some((mx, j, k));
            }
        }
    }
    let non_finite = !loss.is_finite() || !evals.iter().all(finite) || extremes.iter().any(|e| !e.0.is_finite());
    BatchResult { loss, non_finite, extremes, absent, absent_in_patch, levels, mimic, largest }
}

/// How many patches stick out, and the voxel whose prediction fills them.
struct Padding {
    patches: usize,
    voxel: Option<usize>,
}

/// The first voxel of label 0 in memory order: the prediction the padding takes.
fn padding_voxel(case: &Case) -> Option<usize> {
    case.labels.class.iter().position(|&c| c == 0)
}

/// Draws the mini-batches of `regime` on `case` and measures the loss of `config` on each.
pub fn analyze(case: &Case, config: &LossConfig, regime: &Regime) -> Result<RegimeReport> {
    regime.check()?;
    let grid = case.grid;
    let mut rng = Rng::new(regime.seed);
    let locations = ClassLocations::of(&case.labels, &mut rng);
    let places = draw(grid.shape, regime, &locations, |i| grid.coords(i), &mut rng);
    let padded = places.iter().filter(|p| p.sticks_out(grid.shape, regime.patch_size)).count();
    let pad = padding_voxel(case);
    if padded > 0 && pad.is_none() {
        let fits = (0..3).all(|d| regime.patch_size[d] <= grid.shape[d]);
        let why = if fits {
            "foreground patches are centred on their voxel and not bounded on the far side (as in nnU-Net), so \
             some stick out"
        } else {
            "patches larger than the volume stick out"
        };
        return Err(Error::parameter(
            Param::PATCH_SIZE,
            format!(
                "{:?} on the {:?} volume: {why}, and the labels hold no voxel of label 0 whose prediction could fill \
                 the padding; choose {}",
                regime.patch_size,
                grid.shape,
                if fits { "no foreground patches (a share of 0)" } else { "a patch size within the volume" }
            ),
        ));
    }
    if regime.batch_dice && !config.spec.loss.has_dice_part() {
        return Err(Error::parameter(
            Param::BATCH_DICE,
            format!(
                "the {} loss has no Dice sums to pool: its mean runs over every voxel of the mini-batch",
                config.spec.loss
            ),
        ));
    }
    let pad = pad.filter(|_| padded > 0);
    let results: Vec<BatchResult> =
        places.par_chunks(regime.batch_size).map(|batch| one_batch(case, config, regime, batch, pad)).collect();
    let padding = Padding { patches: padded, voxel: pad };
    Ok(summarise(case, config, regime, &places, padding, locations.classes.len(), &results))
}

fn summarise(
    case: &Case,
    config: &LossConfig,
    regime: &Regime,
    places: &[PatchPlace],
    padding: Padding,
    foreground_classes: usize,
    results: &[BatchResult],
) -> RegimeReport {
    let n = results.len() as f64;
    let patches = places.len() as f64;
    let channels = config
        .reported_channels()
        .map(|k| {
            let levels = |foreground: bool| {
                let v: Vec<f64> = results
                    .iter()
                    .flat_map(|r| r.levels.iter().filter_map(move |lv| if foreground { lv[k].0 } else { lv[k].1 }))
                    .collect();
                (!results.iter().all(|r| r.levels.is_empty())).then(|| Spread::of(v))
            };
            let windows: Vec<ScaleWindow> = results.iter().map(|r| window(r.extremes[k].0, r.extremes[k].1)).collect();
            ChannelRegime {
                channel: k,
                label: case.labels.label_of(k),
                absent_patch_share: results.iter().flat_map(|r| r.absent_in_patch.iter().filter(|a| a[k])).count()
                    as f64
                    / patches,
                absent_batch_share: results.iter().filter(|r| r.absent[k]).count() as f64 / n,
                foreground_level: levels(true),
                background_level: levels(false),
                mimic_weight: config
                    .spec
                    .loss
                    .has_dice_part()
                    .then(|| Spread::of(results.iter().flat_map(|r| r.mimic.iter().filter_map(|m| m[k])))),
                max_abs: Spread::of(results.iter().map(|r| f64::from(r.extremes[k].0))),
                min_nonzero_abs: Spread::of(results.iter().map(|r| f64::from(r.extremes[k].1))),
                loss_scale_window: WindowSpread::of(&windows),
            }
        })
        .collect();
    let reported: Vec<usize> = config.reported_channels().collect();
    let whole = |r: &BatchResult| {
        let mx = reported.iter().map(|&k| r.extremes[k].0).fold(0f32, f32::max);
        let mn = reported.iter().map(|&k| r.extremes[k].1).fold(f32::INFINITY, f32::min);
        (mx, mn)
    };
    let windows: Vec<ScaleWindow> = results.iter().map(&whole).map(|(mx, mn)| window(mx, mn)).collect();
    let mut largest: Option<Largest> = None;
    for (i, r) in results.iter().enumerate() {
        if let Some((v, j, k)) = r.largest {
            if largest.as_ref().is_none_or(|l| f64::from(v) > l.value) {
                let absent = if regime.batch_dice { r.absent[k] } else { r.absent_in_patch[j][k] };
                let place = places[i * regime.batch_size + j];
                let whose = if regime.batch_dice { "mini-batch" } else { "patch" };
                largest = Some(Largest {
                    value: f64::from(v),
                    batch: i,
                    patch: j,
                    channel: k,
                    label: case.labels.label_of(k),
                    corner: place.corner,
                    class_absent: absent,
                    cause: if absent {
                        format!(
                            "the class is absent from the {whose} (G = 0): its Dice term is set by the smoothing ε alone"
                        )
                    } else {
                        format!("the class is present in the {whose}")
                    },
                });
            }
        }
    }
    RegimeReport {
        regime: regime.clone(),
        foreground_patches_per_batch: if foreground_classes > 0 {
            foreground_patches(regime.batch_size, regime.fg_oversample)
        } else {
            0
        },
        padded_patch_share: padding.patches as f64 / patches,
        padding_voxel: padding.voxel.map(|i| case.grid.coords(i)),
        loss: Spread::of(results.iter().map(|r| r.loss)),
        channels,
        loss_scale_window: WindowSpread::of(&windows),
        largest,
        non_finite_batches: results.iter().filter(|r| r.non_finite).count(),
        first_non_finite_batch: results.iter().position(|r| r.non_finite),
        batch_losses: results.iter().map(|r| r.loss).collect(),
        batch_max_abs: results.iter().map(|r| f64::from(whole(r).0)).collect(),
        batch_min_nonzero_abs: results.iter().map(|r| Some(f64::from(whole(r).1)).filter(|v| v.is_finite())).collect(),
    }
}
