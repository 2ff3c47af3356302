//! `summary.json`: the data set seen from above — per channel, the distribution of every figure over
//! the cases; the pooled ("batch") loss computed from sums over all cases; counts; failures.
//! Built from the case records alone, in case order, so that a merged set of shards gives the
//! same bytes as one run.

use serde::{Deserialize, Serialize};

use super::paired::{cosine_tests, pair_summaries, PairSummary, PairTest};
use super::record::{CaseRecord, ChannelRow};
use super::Tool;
use crate::analysis::inference::mean_ci95;
use crate::analysis::precision::LossScale;
use crate::analysis::LogHistogram;
use crate::loss::{CaseSums, Evaluation, LossKind, LossRequest, LossSpec, MimicWeights};

/// What the run was asked to compute (kept in `run.json` and repeated in `summary.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunParameters {
    pub loss: LossRequest,
    pub compare: Vec<LossKind>,
    pub pred_suffix: String,
    pub affine_tol: f64,
    /// Files claiming more values (voxels × channels) are refused.
    pub max_values: u64,
    /// The activation is applied even to values that look like probabilities.
    #[serde(default)]
    pub force_activation: bool,
    /// A loss or gradient that is not finite is reported instead of failing the case.
    #[serde(default)]
    pub allow_non_finite: bool,
    /// The loss scale S of the mixed-precision figures.
    #[serde(default)]
    pub loss_scale: LossScale,
    /// What label values mean beyond one class each: the ignore label, regions, class names.
    #[serde(default)]
    pub classes: crate::case::labels::ClassSpec,
}

/// The losses as computed on predictions with `prediction_channels` channels, every parameter
/// resolved (the main loss, then each compared one): what `report.json` says of one case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResolvedLosses {
    pub prediction_channels: usize,
    pub losses: Vec<LossSpec>,
}

impl RunParameters {
    /// The resolved losses for each number of channels among the successful `records` (some
    /// defaults depend on it, e.g. smp's sigmoid for one channel), in increasing order.
    pub fn resolved(&self, records: &[CaseRecord]) -> Vec<ResolvedLosses> {
        let mut counts: Vec<usize> = records.iter().filter_map(|r| Some(r.sums.as_ref()?.channels.len())).collect();
        counts.sort_unstable();
        counts.dedup();
        counts
            .into_iter()
            .filter_map(|c| {
                let configs = self.loss.configs_for(&self.compare, c, self.classes.regions.is_some()).ok()?;
                Some(ResolvedLosses { prediction_channels: c, losses: configs.into_iter().map(|k| k.spec).collect() })
            })
            .collect()
    }
}

/// mean with its 95 % confidence interval, median, sample standard deviation (n − 1), min and max
/// of a figure over cases (in the figure's own unit).
#[derive(Clone, Debug, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Stats {
    /// Values (cases) with a finite figure.
    pub n: usize,
    pub mean: Option<f64>,
    /// The two-sided 95 % Student t confidence interval of the mean, mean ± t(0.975; n − 1)·std/√n
    /// ([`crate::analysis::inference`]); None for n < 2, the mean itself when std = 0.
    pub ci95_low: Option<f64>,
    pub ci95_high: Option<f64>,
    pub median: Option<f64>,
    pub std: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Stats {
    /// Of the finite values in `v` (summed in the given order).
    pub fn of(v: impl IntoIterator<Item = Option<f64>>) -> Stats {
        let mut x: Vec<f64> = v.into_iter().flatten().filter(|x| x.is_finite()).collect();
        let n = x.len();
        if n == 0 {
            return Stats::default();
        }
        let mean = x.iter().sum::<f64>() / n as f64;
        let std = (n > 1).then(|| (x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64).sqrt());
        let ci = std.and_then(|s| mean_ci95(n, mean, s));
        x.sort_by(f64::total_cmp);
        let median = if n % 2 == 1 { x[n / 2] } else { (x[n / 2 - 1] + x[n / 2]) / 2.0 };
        Stats {
            n,
            mean: Some(mean),
            ci95_low: ci.map(|c| c.0),
            ci95_high: ci.map(|c| c.1),
            median: Some(median),
            std,
            min: Some(x[0]),
            max: Some(x[n - 1]),
        }
    }
}

/// One channel over the data set.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ChannelSummary {
    pub channel: usize,
    pub label: i64,
    /// The channel's name, when the channels are named.
    pub name: Option<String>,
    /// Successful cases with this channel.
    pub cases: usize,
    /// Of those, cases where the class has no foreground voxel.
    pub empty_cases: usize,
    /// Cases where the gradient is exactly two-valued.
    pub two_level_cases: usize,
    pub soft_dice: Stats,
    pub hard_dice: Stats,
    pub loss_term: Stats,
    pub foreground_level: Stats,
    pub background_level: Stats,
    /// The mimic weight w_k over the cases where the class has a foreground voxel (0–1; see
    /// `ChannelReport`: elsewhere it has no ground-truth part to weigh), and the raw a_k over the
    /// same cases.
    pub mimic_weight: Stats,
    pub mimic_a: Stats,
    pub fit_r2: Stats,
    pub dynamic_range: Stats,
    /// log2 of the float16 loss-scale window's bounds: the scales that serve every case lie
    /// between the largest `float16_window_log2_min` and the smallest `float16_window_log2_max`.
    pub float16_window_log2_min: Stats,
    pub float16_window_log2_max: Stats,
    /// At the run's loss scale (see [`ChannelRow`]).
    pub float16_zero_share: Stats,
    pub float16_subnormal_share: Stats,
    pub float16_overflow_share: Stats,
    pub float16_l1_lost_share: Stats,
    pub bfloat16_zero_share: Stats,
    pub bfloat16_subnormal_share: Stats,
    pub bfloat16_overflow_share: Stats,
    pub bfloat16_l1_lost_share: Stats,
    /// |gradient| counts of all cases in binary orders of magnitude (see `LogHistogram`).
    pub pooled_histogram: LogHistogram,
    /// With compared losses: per pair of losses ("a vs b", the order of `cases.csv`), its figures
    /// over the cases.
    pub comparisons: Vec<PairSummary>,
    /// Between every two of those pairs, the paired test of their cosines over the cases
    /// (Wilcoxon signed-rank; see [`PairTest`]); empty with fewer than two pairs.
    pub cosine_tests: Vec<PairTest>,
}

/// The loss with sums pooled over all successful cases: the pooling of MONAI `batch=True` and
/// nnU-Net `batch_dice`, over the whole data set rather than a training mini-batch.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct BatchLoss {
    /// Cases pooled.
    pub cases: usize,
    /// The pooled loss.
    pub loss: f64,
    /// The mean of the per-case losses, for comparison.
    pub per_case_mean_loss: f64,
    pub channels: Vec<BatchChannel>,
    /// The pooled sums themselves.
    pub sums: CaseSums,
}

/// The pooled loss's closed form for one channel (dL/ds = P·g + R + T·s; the levels of the data
/// set's gradient when T = 0 and there is no cross-entropy).
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct BatchChannel {
    pub channel: usize,
    pub soft_dice: f64,
    pub foreground_level: f64,
    pub background_level: f64,
    pub p: f64,
    pub r: f64,
    pub t: f64,
    /// The pooled loss's mimic weight w_k (0–1; see `ChannelReport`); a_k = −p.
    pub mimic_weight: Option<f64>,
}

/// A failed case.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Failure {
    pub case: String,
    pub error: String,
}

/// Counts of cases.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Counts {
    pub total: usize,
    pub ok: usize,
    pub failed: usize,
}

/// Files that could not be paired.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Unpaired {
    pub labels: Vec<String>,
    pub predictions: Vec<String>,
    /// Every other file of the two input folders, and why it is not used.
    #[serde(default)]
    pub skipped: Vec<Skipped>,
}

/// A file of an input folder that is not used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Skipped {
    pub file: String,
    pub reason: String,
}

impl Skipped {
    pub fn new(file: &std::path::Path, reason: &str) -> Skipped {
        Skipped { file: file.display().to_string(), reason: reason.to_string() }
    }
}

/// The whole summary.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Summary {
    /// The layout version of this file ([`super::SCHEMA_VERSION`]).
    pub schema_version: u32,
    pub tool: Tool,
    pub parameters: RunParameters,
    /// The losses as computed, every parameter resolved.
    pub resolved: Vec<ResolvedLosses>,
    pub cases: Counts,
    pub unpaired: Unpaired,
    pub loss: Stats,
    pub channels: Vec<ChannelSummary>,
    /// None when no case succeeded, or cases differ in their number of channels.
    pub batch: Option<BatchLoss>,
    pub failed: Vec<Failure>,
}

impl Summary {
    /// `summary.json`: pretty-printed, newline-terminated.
    pub fn to_json(&self) -> Vec<u8> {
        let mut json = serde_json::to_vec_pretty(self).expect("the summary holds only serialisable data");
        json.push(b'\n');
        json
    }
}

fn pooled(params: &RunParameters, ok: &[&CaseRecord]) -> Option<BatchLoss> {
    let first = ok.first()?.sums.as_ref()?;
    let c = first.channels.len();
    if ok.iter().any(|r| r.sums.as_ref().is_none_or(|s| s.channels.len() != c)) {
        return None;
    }
    let mut total = CaseSums { voxels: 0, channels: vec![Default::default(); c], ce_sum: 0.0, ce_norm: 0.0 };
    for r in ok {
        total.pool(r.sums.as_ref()?);
    }
    let config = params.loss.configs_for(&params.compare, c, params.classes.regions.is_some()).ok()?.swap_remove(0);
    let eval = Evaluation::from_sums(config, total.clone());
    let mimic = MimicWeights::of(&eval);
    let channels = eval
        .config
        .reported_channels()
        .map(|k| {
            let c = eval.coefficients(k);
            BatchChannel {
                channel: k,
                soft_dice: eval.soft_dice(k),
                foreground_level: c.level(true),
                background_level: c.level(false),
                p: c.p,
                r: c.r,
                t: c.t,
                mimic_weight: mimic.as_ref().and_then(|m| m.weight(k)),
            }
        })
        .collect();
    let per_case_mean_loss = ok.iter().filter_map(|r| r.loss).sum::<f64>() / ok.len() as f64;
    Some(BatchLoss { cases: ok.len(), loss: eval.value, per_case_mean_loss, channels, sums: total })
}

impl Summary {
    /// The main loss.
    pub fn loss_kind(&self) -> LossKind {
        self.parameters.loss.kind()
    }

    /// The summary of `records` (in case order).
    pub fn build(params: &RunParameters, unpaired: Unpaired, records: &[CaseRecord]) -> Summary {
        let ok: Vec<&CaseRecord> = records.iter().filter(|r| r.is_ok()).collect();
        let mut channel_ids: Vec<(usize, i64)> =
            ok.iter().flat_map(|r| r.channels.iter().map(|c| (c.channel, c.label))).collect();
        channel_ids.sort();
        channel_ids.dedup_by_key(|c| c.0);
        let pair_names = super::csv::pair_names(params.loss.kind(), &params.compare);
        let channels = channel_ids
            .iter()
            .map(|&(k, label)| {
                let rows: Vec<_> = ok
                    .iter()
                    .flat_map(|r| r.channels.iter().zip(&r.log_histograms).filter(|(c, _)| c.channel == k))
                    .collect();
                let stat = |f: &dyn Fn(&ChannelRow) -> Option<f64>| Stats::of(rows.iter().map(|(c, _)| f(c)));
                let mut hist = LogHistogram::empty();
                for (_, h) in &rows {
                    hist.merge(h);
                }
                let row_refs: Vec<&ChannelRow> = rows.iter().map(|(c, _)| *c).collect();
                let comparisons = pair_summaries(&pair_names, &row_refs);
                ChannelSummary {
                    channel: k,
                    label,
                    name: rows.iter().find_map(|(c, _)| c.name.clone()),
                    cases: rows.len(),
                    empty_cases: rows.iter().filter(|(c, _)| c.foreground_voxels == 0).count(),
                    two_level_cases: rows.iter().filter(|(c, _)| c.two_level).count(),
                    soft_dice: stat(&|c| Some(c.soft_dice)),
                    hard_dice: stat(&|c| Some(c.hard_dice)),
                    loss_term: stat(&|c| c.loss_term),
                    foreground_level: stat(&|c| c.foreground_level),
                    background_level: stat(&|c| c.background_level),
                    mimic_weight: stat(&|c| c.mimic_weight.filter(|_| c.foreground_voxels > 0)),
                    mimic_a: stat(&|c| c.mimic_a.filter(|_| c.foreground_voxels > 0)),
                    fit_r2: stat(&|c| c.fit_r2),
                    dynamic_range: stat(&|c| c.dynamic_range),
                    float16_window_log2_min: stat(&|c| c.float16_window_log2_min),
                    float16_window_log2_max: stat(&|c| c.float16_window_log2_max),
                    float16_zero_share: stat(&|c| Some(c.float16_zero_share)),
                    float16_subnormal_share: stat(&|c| Some(c.float16_subnormal_share)),
                    float16_overflow_share: stat(&|c| Some(c.float16_overflow_share)),
                    float16_l1_lost_share: stat(&|c| Some(c.float16_l1_lost_share)),
                    bfloat16_zero_share: stat(&|c| Some(c.bfloat16_zero_share)),
                    bfloat16_subnormal_share: stat(&|c| Some(c.bfloat16_subnormal_share)),
                    bfloat16_overflow_share: stat(&|c| Some(c.bfloat16_overflow_share)),
                    bfloat16_l1_lost_share: stat(&|c| Some(c.bfloat16_l1_lost_share)),
                    pooled_histogram: hist,
                    cosine_tests: cosine_tests(&comparisons, &row_refs),
                    comparisons,
                }
            })
            .collect();
        Summary {
            schema_version: super::SCHEMA_VERSION,
            tool: Tool::this(),
            parameters: params.clone(),
            resolved: params.resolved(records),
            cases: Counts { total: records.len(), ok: ok.len(), failed: records.len() - ok.len() },
            unpaired,
            loss: Stats::of(ok.iter().map(|r| r.loss)),
            channels,
            batch: pooled(params, &ok),
            failed: records
                .iter()
                .filter(|r| !r.is_ok())
                .map(|r| Failure { case: r.case.clone(), error: r.error.clone().unwrap_or_default() })
                .collect(),
        }
    }
}
