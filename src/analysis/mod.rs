//! Measures of a gradient field, per channel in the loss and split by ground truth: levels,
//! distinct values, the least-squares fit to −a·g + c, the ratio of the two levels, dynamic range,
//! the mixed-precision figures (the loss-scale window, and what a 16-bit cast at a loss scale
//! does: [`precision`]), and histograms. Pure: it reads the gradient from a
//! [`GradientKernel`] and knows nothing of files or formats.
//!
//! Fit: with g ∈ {0, 1}, the least-squares line v ≈ c − a·g through a channel's gradient values
//! has c = mean of v on background voxels and c − a = mean on foreground voxels; R² = 1 −
//! SS_res / SS_tot with SS_res the spread of each side around its mean and
//! SS_tot = SS_res + n_fg·n_bg/n·(mean_fg − mean_bg)².

pub mod compare;
pub mod histogram;
pub mod inference;
pub mod log_histogram;
pub mod precision;
pub mod stats;
pub mod views;

use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use crate::case::labels::{gather, kept};
use crate::loss::sums::probabilities;
use crate::loss::{Evaluation, GradientKernel};
use crate::parallel::{fold_chunks, with_buffer, CHUNK};
use histogram::{histogram_range, Bins};
pub use histogram::{Histogram, HISTOGRAM_BINS};
pub use log_histogram::{stale_bins_message, LogHistogram};
use precision::{LossScale, MixedPrecision, PrecisionSums};
use stats::ChannelAcc;
use views::{ViewAcc, ViewRequest, Views};

/// Gradient values on one side (foreground g = 1, or background g = 0) of a channel.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct SideStats {
    /// Voxels on this side.
    pub count: u64,
    /// Smallest gradient value (None without voxels).
    pub min: Option<f32>,
    /// Largest gradient value.
    pub max: Option<f32>,
    /// Mean gradient value (f64 sum of the float32 values).
    pub mean: Option<f64>,
    /// Number of distinct float32 values, counted exactly up to 1024.
    pub distinct: u64,
    /// True when there are more than `distinct` (= 1024) distinct values.
    pub distinct_capped: bool,
}

/// Least-squares fit of the gradient to −a·g + c, beside the closed-form a and c (of dL/ds:
/// a = −P, c = R).
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Fit {
    /// Fitted a: mean on background minus mean on foreground (None if a side is empty).
    pub a: Option<f64>,
    /// Fitted c: mean on background (None if there is no background).
    pub c: Option<f64>,
    /// Coefficient of determination (None when all values are equal).
    pub r2: Option<f64>,
    /// Closed-form a of dL/ds (2 / (K·D) for Dice); None when the closed form is not two-valued.
    pub closed_form_a: Option<f64>,
    /// Closed-form c of dL/ds (N / (K·D²) for Dice); None when the closed form is not two-valued.
    pub closed_form_c: Option<f64>,
}

/// Ratio of the foreground level to the background level.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct LevelRatio {
    /// mean on foreground / mean on background (None if a side is empty or the background mean is 0).
    pub measured: Option<f64>,
    /// Ratio of the closed-form levels of dL/ds, (c − a)/c (= 1 − 2 / soft Dice for Dice); None
    /// when the closed form is not two-valued or c = 0.
    pub closed_form: Option<f64>,
}

/// Spread of the gradient magnitudes.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct DynamicRange {
    /// max |gradient|.
    pub max_abs: f32,
    /// min non-zero |gradient| (None if all are zero).
    pub min_nonzero_abs: Option<f32>,
    /// max_abs / min_nonzero_abs.
    pub ratio: Option<f64>,
    /// log10 of the ratio (decades).
    pub log10: Option<f64>,
}

/// Everything measured on one channel's gradient.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct GradientStats {
    pub foreground: SideStats,
    pub background: SideStats,
    pub fit: Fit,
    /// True when each side holds a single float32 value: the gradient is exactly −a·g + c.
    pub two_level: bool,
    pub level_ratio: LevelRatio,
    pub dynamic_range: DynamicRange,
    /// The loss-scale window and what a cast of the gradient times the loss scale does.
    pub mixed_precision: MixedPrecision,
    pub histogram: Histogram,
    /// |gradient| in fixed log bins (for pooling over cases; not written to report.json).
    #[serde(skip)]
    pub log_histogram: LogHistogram,
    /// What `mixed_precision` is made of (for the figures of several channels together; not
    /// written to report.json).
    #[serde(skip)]
    pub precision_sums: PrecisionSums,
}

fn side_stats(s: &stats::SideAcc) -> SideStats {
    let (distinct, distinct_capped) = s.distinct.count();
    let some = s.count > 0;
    SideStats {
        count: s.count,
        min: some.then_some(s.min),
        max: some.then_some(s.max),
        mean: s.mean(),
        distinct,
        distinct_capped,
    }
}

fn fit(acc: &ChannelAcc, eval: &Evaluation, k: usize) -> Fit {
    let [bg, fg] = &acc.side;
    let a = match (bg.mean(), fg.mean()) {
        (Some(b), Some(f)) => Some(b - f),
        _ => None,
    };
    let n = (bg.count + fg.count) as f64;
    let ss_res = bg.sum_sq_dev() + fg.sum_sq_dev();
    let between = a.map_or(0.0, |a| bg.count as f64 * fg.count as f64 / n * a * a);
    let ss_tot = ss_res + between;
    Fit {
        a,
        c: bg.mean(),
        r2: (ss_tot > 0.0).then(|| 1.0 - ss_res / ss_tot),
        closed_form_a: eval.levels_describe_gradient().then(|| -eval.coefficients(k).p),
        closed_form_c: eval.levels_describe_gradient().then(|| eval.coefficients(k).r),
    }
}

fn finish(
    acc: &ChannelAcc,
    hist: Histogram,
    log_histogram: LogHistogram,
    eval: &Evaluation,
    k: usize,
) -> GradientStats {
    let foreground = side_stats(&acc.side[1]);
    let background = side_stats(&acc.side[0]);
    // two finite levels: a NaN or infinite gradient (reported only when asked for) has no structure
    let finite = |m: Option<f64>| m.is_none_or(f64::is_finite);
    let two_level =
        foreground.distinct <= 1 && background.distinct <= 1 && finite(foreground.mean) && finite(background.mean);
    let measured = match (foreground.mean, background.mean) {
        (Some(f), Some(b)) if b != 0.0 => Some(f / b),
        _ => None,
    };
    let min_nz = (acc.min_nonzero_abs.is_finite()).then_some(acc.min_nonzero_abs);
    let ratio = min_nz.map(|m| acc.max_abs as f64 / m as f64);
    let precision_sums = acc.precision_sums();
    GradientStats {
        fit: fit(acc, eval, k),
        foreground,
        background,
        two_level,
        level_ratio: LevelRatio {
            measured,
            closed_form: (eval.levels_describe_gradient() && eval.level(k, false) != 0.0)
                .then(|| eval.level(k, true) / eval.level(k, false)),
        },
        dynamic_range: DynamicRange {
            max_abs: acc.max_abs,
            min_nonzero_abs: min_nz,
            ratio,
            log10: ratio.map(f64::log10),
        },
        mixed_precision: precision_sums.figures(),
        histogram: hist,
        log_histogram,
        precision_sums,
    }
}

/// Calls `f(acc, k, target, fg, gradient)` for each channel on each chunk — channel k's target
/// per voxel (foreground where it is `fg`) and its gradient — with a fresh `acc` per chunk, and
/// `merge(acc)` in chunk order. Voxels of the ignore label are left out.
fn for_blocks<T: Send>(
    kernel: &GradientKernel,
    init: impl Fn() -> T + Sync + Send,
    f: impl Fn(&mut T, usize, &[u8], u8, &[f32]) + Sync + Send,
    merge: impl FnMut(T),
) {
    let case = kernel.case();
    let c = case.prediction.channels;
    let act = kernel.config().spec.activation;
    let chunk = |r: std::ops::Range<usize>| {
        let len = r.len();
        with_buffer(c * len, |s: &mut [f64]| {
            with_buffer(c * len, |g: &mut [f32]| {
                probabilities(case, act, r.clone(), s);
                kernel.gradient(r.clone(), s, g);
                let mut acc = init();
                each_channel(case, r.clone(), s, g, |k, target, fg, _, gk| f(&mut acc, k, target, fg, gk));
                acc
            })
        })
    };
    fold_chunks(case.voxels(), chunk, merge);
}

/// Calls `f(k, target, fg, probabilities, gradient)` for every channel of the voxels in `r`
/// (`s`, `g`: channel-major, as [`GradientKernel::gradient`] fills them), the voxels of the
/// ignore label left out (the others gathered, in order, when the range holds some).
fn each_channel(
    case: &crate::case::Case,
    r: std::ops::Range<usize>,
    s: &[f64],
    g: &[f32],
    mut f: impl FnMut(usize, &[u8], u8, &[f64], &[f32]),
) {
    let labels = &case.labels;
    let len = r.len();
    let kept = if labels.ignores() { kept(&labels.class[r.clone()]) } else { None };
    for k in 0..case.prediction.channels {
        let b = k * len..(k + 1) * len;
        let (target, fg) = labels.target(k);
        let target = &target[r.clone()];
        match &kept {
            None => f(k, target, fg, &s[b.clone()], &g[b]),
            Some(at) => f(k, &gather(target, at), fg, &gather(&s[b.clone()], at), &gather(&g[b], at)),
        }
    }
}

/// As [`for_blocks`], for counts: `f(acc, k, target, fg, probabilities, gradient)` of channel k
/// on each chunk, accumulated per thread and merged with `merge` in any order — which is exact
/// for integer counts, whatever the number of threads.
fn count_blocks<T: Send>(
    kernel: &GradientKernel,
    init: impl Fn() -> T + Sync + Send,
    f: impl Fn(&mut T, usize, &[u8], u8, &[f64], &[f32]) + Sync + Send,
    merge: impl Fn(&mut T, T) + Sync + Send,
) -> T {
    use rayon::prelude::*;
    let case = kernel.case();
    let (c, n) = (case.prediction.channels, case.voxels());
    let act = kernel.config().spec.activation;
    // runs of at least 16 chunks: few accumulators to make and merge
    (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .with_min_len(16)
        .fold(&init, |mut acc, i| {
            let r = i * CHUNK..((i + 1) * CHUNK).min(n);
            let len = r.len();
            with_buffer(c * len, |s: &mut [f64]| {
                with_buffer(c * len, |g: &mut [f32]| {
                    probabilities(case, act, r.clone(), s);
                    kernel.gradient(r.clone(), s, g);
                    each_channel(case, r.clone(), s, g, |k, target, fg, sk, gk| f(&mut acc, k, target, fg, sk, gk));
                })
            });
            acc
        })
        .reduce(&init, |mut a, b| {
            merge(&mut a, b);
            a
        })
}

/// Measures as [`measure`], and fills the figures the pictures of the volume show (see
/// [`views`]): the densities and the histogram of the gradient with respect to the probabilities
/// with the gradient's own histograms, then the planes.
pub fn measure_with_views(
    kernel: &GradientKernel,
    eval: &Evaluation,
    scale: LossScale,
    request: &ViewRequest,
) -> (Vec<GradientStats>, Views) {
    let (channels, refs) = reported(eval);
    let (stats, accs) = match by_sides(kernel, eval, &channels, &refs, scale) {
        Some(stats) => {
            // one value per side: the densities are each side's histogram of the probabilities,
            // which are the file's values
            let ranges: Vec<(f64, f64)> = stats.iter().map(value_range).collect();
            let mut accs = ViewAcc::fresh(kernel, eval, &ranges);
            for (acc, &k) in accs.iter_mut().zip(&channels) {
                acc.add_sides(kernel, k);
            }
            (stats, accs)
        }
        None => {
            let (stats, accs) = each_voxel_counted(kernel, eval, &channels, &refs, scale, true);
            (stats, accs)
        }
    };
    let views = views::finish(kernel, eval, &stats, accs, request);
    (stats, views)
}

fn merge_views(a: &mut [ViewAcc], b: Vec<ViewAcc>) {
    for (x, y) in a.iter_mut().zip(&b) {
        x.merge(y);
    }
}

/// The smallest and largest gradient value of a channel (0, 0 without voxels).
fn value_range(s: &GradientStats) -> (f64, f64) {
    let lo = [s.foreground.min, s.background.min].into_iter().flatten().fold(f32::INFINITY, f32::min);
    let hi = [s.foreground.max, s.background.max].into_iter().flatten().fold(f32::NEG_INFINITY, f32::max);
    if lo > hi {
        (0.0, 0.0)
    } else {
        (f64::from(lo), f64::from(hi))
    }
}

/// Measures the gradient of every reported channel: statistics (the mixed-precision figures at the
/// loss scale `scale`), then histograms over the range the statistics found. Results are in the
/// order of `config.reported_channels()`.
///
/// When the gradient of each channel takes one value per side whatever the voxel's value (see
/// [`GradientKernel::side_value`]: a two-valued loss with respect to probabilities), every voxel
/// of a side has exactly the kernel's value for that side, so the statistics are those of that
/// many copies of it — the side's voxel count from the loss sums — with no pass over the volume.
/// Otherwise the gradient is evaluated on every voxel, in two passes (the histogram's range is
/// the one the first pass found).
pub fn measure(kernel: &GradientKernel, eval: &Evaluation, scale: LossScale) -> Vec<GradientStats> {
    let (channels, refs) = reported(eval);
    match by_sides(kernel, eval, &channels, &refs, scale) {
        Some(stats) => stats,
        None => each_voxel(kernel, eval, &channels, &refs, scale),
    }
}

/// [`measure`] with the gradient evaluated on every voxel, whatever its form (the route `measure`
/// takes unless the gradient is one value per side).
pub fn measure_each_voxel(kernel: &GradientKernel, eval: &Evaluation, scale: LossScale) -> Vec<GradientStats> {
    let (channels, refs) = reported(eval);
    each_voxel(kernel, eval, &channels, &refs, scale)
}

/// The mixed-precision figures of the gradients `stats` together (one loss scale serves every
/// channel of a prediction): the window from the smallest non-zero and the largest magnitude of
/// all, the shares over all values.
pub fn mixed_precision_of(stats: &[GradientStats], scale: LossScale) -> MixedPrecision {
    let mut all = PrecisionSums::empty(scale);
    for s in stats {
        all.merge(&s.precision_sums);
    }
    all.figures()
}

/// The reported channels, and for each its closed-form levels `[background, foreground]` (the
/// reference values of its statistics).
fn reported(eval: &Evaluation) -> (Vec<usize>, Vec<[f64; 2]>) {
    let channels: Vec<usize> = eval.config.reported_channels().collect();
    let refs = channels.iter().map(|&k| [eval.level(k, false), eval.level(k, true)]).collect();
    (channels, refs)
}

/// Statistics in one pass over the gradient of every voxel, then histograms in a second.
fn each_voxel(
    kernel: &GradientKernel,
    eval: &Evaluation,
    channels: &[usize],
    refs: &[[f64; 2]],
    scale: LossScale,
) -> Vec<GradientStats> {
    each_voxel_counted(kernel, eval, channels, refs, scale, false).0
}

/// [`each_voxel`], and with `with_views` the pictures' counts filled in its second pass.
fn each_voxel_counted(
    kernel: &GradientKernel,
    eval: &Evaluation,
    channels: &[usize],
    refs: &[[f64; 2]],
    scale: LossScale,
    with_views: bool,
) -> (Vec<GradientStats>, Vec<ViewAcc>) {
    let first = channels.first().copied().unwrap_or(0);
    // Once the merged total of a side has more distinct values than are counted, it stays so
    // whatever later chunks hold: those chunks start capped and skip the counting.
    let capped: Vec<[AtomicBool; 2]> = refs.iter().map(|_| Default::default()).collect();
    let fresh = || -> Vec<ChannelAcc> {
        refs.iter()
            .zip(&capped)
            .map(|(r, cap)| {
                let mut acc = ChannelAcc::new(*r, scale);
                for (side, c) in acc.side.iter_mut().zip(cap) {
                    if c.load(Ordering::Relaxed) {
                        side.distinct.saturate();
                    }
                }
                acc
            })
            .collect()
    };
    let mut accs: Vec<ChannelAcc> = refs.iter().map(|r| ChannelAcc::new(*r, scale)).collect();
    for_blocks(
        kernel,
        fresh,
        |accs, k, target, fg, g| {
            if k >= first {
                accs[k - first].add_values(g, target, fg);
            }
        },
        |part| {
            for ((a, p), cap) in accs.iter_mut().zip(&part).zip(&capped) {
                a.merge(p);
                for (side, c) in a.side.iter().zip(cap) {
                    if side.distinct.count().1 {
                        c.store(true, Ordering::Relaxed);
                    }
                }
            }
        },
    );
    let ranges: Vec<(f64, f64)> = accs.iter().map(histogram_range).collect();
    let value_ranges: Vec<(f64, f64)> = accs
        .iter()
        .map(|a| (f64::from(a.side[0].min.min(a.side[1].min)), f64::from(a.side[0].max.max(a.side[1].max))))
        .collect();
    let (bins, views) = count_blocks(
        kernel,
        || {
            let bins: Vec<Bins> = ranges.iter().map(|r| Bins::new(*r)).collect();
            let views = if with_views { ViewAcc::fresh(kernel, eval, &value_ranges) } else { Vec::new() };
            (bins, views)
        },
        |(bins, views), k, target, fg, s, g| {
            if k >= first {
                bins[k - first].add_values(g, target, fg);
                if let Some(v) = views.get_mut(k - first) {
                    v.add(kernel, k, target, fg, s, g);
                }
            }
        },
        |(bins, views), (b, v)| {
            for (t, p) in bins.iter_mut().zip(&b) {
                t.merge(p);
            }
            merge_views(views, v);
        },
    );
    let stats = channels
        .iter()
        .zip(accs.iter().zip(bins))
        .map(|(&k, (acc, b))| {
            let (hist, log) = b.into_histograms();
            finish(acc, hist, log, eval, k)
        })
        .collect();
    (stats, views)
}

/// The statistics of a gradient that takes one value per side of every channel (None when one
/// does not): per side, the kernel's value times the side's voxel count.
fn by_sides(
    kernel: &GradientKernel,
    eval: &Evaluation,
    channels: &[usize],
    refs: &[[f64; 2]],
    scale: LossScale,
) -> Option<Vec<GradientStats>> {
    let n = eval.sums.voxels;
    channels
        .iter()
        .zip(refs)
        .map(|(&k, r)| {
            let fg = eval.sums.channels[k].label_count;
            let mut sides = Vec::with_capacity(2);
            for (foreground, count) in [(false, n - fg), (true, fg)] {
                if count > 0 {
                    sides.push((kernel.side_value(k, foreground)?, foreground, count));
                }
            }
            let mut acc = ChannelAcc::new(*r, scale);
            for &(v, foreground, count) in &sides {
                acc.add_run(v, foreground, count);
            }
            let mut bins = Bins::new(histogram_range(&acc));
            for &(v, foreground, count) in &sides {
                bins.add_run(v, foreground, count);
            }
            let (hist, log) = bins.into_histograms();
            Some(finish(&acc, hist, log, eval, k))
        })
        .collect()
}
