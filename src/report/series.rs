//! `series.json` and `series.csv` of `dicegrad track`: the figures of each training step, per
//! reported channel, in step order. Every output of a track (the CSV, the pictures over steps,
//! `track.html`) reads this model and nothing else.
//!
//! A step is one prediction file (one case, analysed as `analyze` analyses it) or one folder of
//! cases (analysed as `batch` analyses it, into `steps/<step>/`). For a folder the headline figures
//! are those of the loss with its sums pooled over the cases (as `batch` pools them, `summary.json`
//! `batch`), and the per-case spread of every figure is kept beside them (`spread`).
//!
//! The Dice identity that a track shows: with respect to probabilities the Dice gradient takes
//! two values per channel, c − a on foreground and c on background voxels, a = 2/(K·D),
//! c = N/(K·D²), so their ratio is (c − a)/c = 1 − 2D/N = 1 − 2/soft Dice. As a network improves
//! (soft Dice → 1) the ratio goes to −1: the foreground push and the background pull become equal
//! and opposite; early (soft Dice → 0) the foreground push dominates without bound.

use serde::Serialize;

use super::record::{CaseRecord, ChannelRow};
use super::summary::{ChannelSummary, Counts, ResolvedLosses, RunParameters, Stats, Summary};
use super::Tool;
use crate::loss::{Evaluation, MimicWeights};

/// One channel at one step.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct StepChannel {
    pub channel: usize,
    pub label: i64,
    /// The channel's name, when the channels are named.
    pub name: Option<String>,
    /// Foreground voxels (over all cases of a folder).
    pub foreground_voxels: u64,
    /// Soft Dice N / D (pooled over a folder's cases).
    pub soft_dice: f64,
    /// Dice of the thresholded prediction (pooled counts over a folder's cases).
    pub hard_dice: f64,
    /// This channel's term of the loss (pooled over a folder's cases).
    pub loss_term: Option<f64>,
    /// The gradient's level on foreground voxels (per unit of the prediction's values), when the
    /// gradient is two-valued (None otherwise: see the range): for a file its one value on the
    /// foreground voxels; for a folder the pooled loss's closed-form level.
    pub foreground_level: Option<f64>,
    /// The same on background voxels.
    pub background_level: Option<f64>,
    /// The mimic weight w_k (0–1, the channels' weights sum to 1; see report.json's channels; a
    /// folder: of the pooled loss), and the raw a_k = −P_k.
    pub mimic_weight: Option<f64>,
    pub mimic_a: Option<f64>,
    /// Smallest and largest gradient value (over every case of a folder).
    pub gradient_min: Option<f64>,
    pub gradient_max: Option<f64>,
    /// The gradient takes one value on foreground and one on background voxels (for a folder:
    /// in every case).
    pub two_level: bool,
    /// foreground_level / background_level (measured for a file).
    pub level_ratio: Option<f64>,
    /// The ratio of the closed-form levels of dL/ds, (c − a)/c; None when the closed form is not
    /// two-valued.
    pub level_ratio_closed_form: Option<f64>,
    /// 1 − 2 / soft Dice: what the ratio is for Dice (None when the soft Dice is 0, or the
    /// channel is not in the loss's Dice-type part).
    pub dice_ratio: Option<f64>,
    /// max |g| / min non-zero |g| (a folder: the mean over its cases).
    pub dynamic_range: Option<f64>,
    /// log2 of the float16 loss-scale window: scales S from 2^min to 2^max keep every value of
    /// the gradient × S a normal float16 number (a folder: the scales that serve every case).
    pub float16_window_log2_min: Option<f64>,
    pub float16_window_log2_max: Option<f64>,
    /// No scale keeps every value normal (the window's lower bound lies above its upper bound):
    /// the values span more than float16's normal range.
    pub float16_window_empty: bool,
    /// At the run's loss scale, the shares (0–1) of the values a float16 cast flushes to zero,
    /// makes subnormal or infinite, and of the L1 mass flushed (a folder: means over its cases).
    pub float16_zero_share: Option<f64>,
    pub float16_subnormal_share: Option<f64>,
    pub float16_overflow_share: Option<f64>,
    pub float16_l1_lost_share: Option<f64>,
    /// The same for bfloat16.
    pub bfloat16_zero_share: Option<f64>,
    pub bfloat16_subnormal_share: Option<f64>,
    pub bfloat16_overflow_share: Option<f64>,
    pub bfloat16_l1_lost_share: Option<f64>,
    /// With compared losses: per pair ("a vs b"), the cosine of the two gradients (a folder: the
    /// mean over its cases).
    pub cosines: Vec<PairCosine>,
    /// A folder's figures over its cases (mean with its 95 % confidence interval, median, spread).
    pub spread: Option<ChannelSummary>,
}

/// The cosine of one compared pair.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PairCosine {
    pub pair: String,
    pub cosine: Option<f64>,
}

/// One step of a track.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct StepRecord {
    /// The training step (epoch, iteration) the prediction was saved at.
    pub step: u64,
    /// The prediction file or folder, as given.
    pub source: String,
    /// `file` or `folder`.
    pub kind: &'static str,
    /// `ok`; `partial` for a folder some of whose cases failed or have no prediction (its pooled
    /// figures are over fewer cases); `failed` when no case of the step could be analysed.
    pub status: &'static str,
    /// Why the step failed (a file), or the failures of a folder's cases.
    pub errors: Vec<String>,
    /// Cases of the step (1 for a file).
    pub cases: Counts,
    /// A folder: label files without a prediction in it (cases left out of the step).
    pub missing: Vec<String>,
    /// The loss (a folder: with its sums pooled over the cases).
    pub loss: Option<f64>,
    /// A folder's per-case losses.
    pub case_loss: Option<Stats>,
    /// A folder's batch outputs (`index.html`, `summary.json`, `cases.csv`), relative to the track's
    /// folder.
    pub folder: Option<String>,
    pub channels: Vec<StepChannel>,
}

/// The whole series.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Series {
    /// The layout version of this file ([`super::SCHEMA_VERSION`]).
    pub schema_version: u32,
    pub tool: Tool,
    pub parameters: RunParameters,
    /// The losses as computed, every parameter resolved.
    pub resolved: Vec<ResolvedLosses>,
    /// The ground truth: a label file, or a folder of label files.
    pub labels: String,
    /// The label value K of single-channel predictions of one class of a multi-label map.
    pub label: Option<i64>,
    /// The compared pairs, "a vs b", in order.
    pub pairs: Vec<String>,
    pub steps: Vec<StepRecord>,
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

/// 1 − 2 / soft Dice.
pub fn dice_ratio(soft_dice: f64) -> Option<f64> {
    (soft_dice > 0.0).then(|| 1.0 - 2.0 / soft_dice)
}

/// Whether the window from 2^lo to 2^hi holds no scale.
fn empty(lo: Option<f64>, hi: Option<f64>) -> bool {
    matches!((lo, hi), (Some(a), Some(b)) if a > b)
}

impl StepChannel {
    /// A channel of one analysed case.
    fn of_row(c: &ChannelRow) -> StepChannel {
        let two = c.two_level;
        let (fg, bg) = if two { (c.foreground_level, c.background_level) } else { (None, None) };
        StepChannel {
            channel: c.channel,
            label: c.label,
            name: c.name.clone(),
            foreground_voxels: c.foreground_voxels,
            soft_dice: c.soft_dice,
            hard_dice: c.hard_dice,
            loss_term: c.loss_term,
            foreground_level: fg,
            background_level: bg,
            mimic_weight: c.mimic_weight,
            mimic_a: c.mimic_a,
            gradient_min: c.gradient_min,
            gradient_max: c.gradient_max,
            two_level: two,
            level_ratio: ratio(fg, bg),
            level_ratio_closed_form: c.level_ratio_closed_form,
            dice_ratio: dice_ratio(c.soft_dice).filter(|_| c.in_dice_part),
            dynamic_range: c.dynamic_range,
            float16_window_log2_min: c.float16_window_log2_min,
            float16_window_log2_max: c.float16_window_log2_max,
            float16_window_empty: empty(c.float16_window_log2_min, c.float16_window_log2_max),
            float16_zero_share: Some(c.float16_zero_share),
            float16_subnormal_share: Some(c.float16_subnormal_share),
            float16_overflow_share: Some(c.float16_overflow_share),
            float16_l1_lost_share: Some(c.float16_l1_lost_share),
            bfloat16_zero_share: Some(c.bfloat16_zero_share),
            bfloat16_subnormal_share: Some(c.bfloat16_subnormal_share),
            bfloat16_overflow_share: Some(c.bfloat16_overflow_share),
            bfloat16_l1_lost_share: Some(c.bfloat16_l1_lost_share),
            cosines: c.comparisons.iter().map(|p| PairCosine { pair: p.pair.clone(), cosine: p.cosine }).collect(),
            spread: None,
        }
    }
}

impl StepRecord {
    /// The step of one prediction file, from its case record.
    pub fn of_file(step: u64, source: &str, r: &CaseRecord) -> StepRecord {
        let ok = r.is_ok();
        StepRecord {
            step,
            source: source.to_string(),
            kind: "file",
            status: if ok { "ok" } else { "failed" },
            errors: r.error.iter().cloned().collect(),
            cases: Counts { total: 1, ok: usize::from(ok), failed: usize::from(!ok) },
            missing: Vec::new(),
            loss: r.loss,
            case_loss: None,
            folder: None,
            channels: r.channels.iter().map(StepChannel::of_row).collect(),
        }
    }

    /// The step of one folder of cases, from its batch records and summary (outputs in `folder`).
    pub fn of_folder(
        step: u64,
        source: &str,
        folder: &str,
        params: &RunParameters,
        summary: &Summary,
        records: &[CaseRecord],
    ) -> StepRecord {
        let ok: Vec<&CaseRecord> = records.iter().filter(|r| r.is_ok()).collect();
        let pooled = summary.batch.as_ref().and_then(|b| {
            let regions = params.classes.regions.is_some();
            let config = params.loss.configs_for(&params.compare, b.sums.channels.len(), regions).ok()?.swap_remove(0);
            Some(Evaluation::from_sums(config, b.sums.clone()))
        });
        let channels = summary.channels.iter().map(|s| folder_channel(s, &ok, pooled.as_ref())).collect();
        StepRecord {
            step,
            source: source.to_string(),
            kind: "folder",
            status: match (ok.len(), summary.cases.failed + summary.unpaired.labels.len()) {
                (0, _) => "failed",
                (_, 0) => "ok",
                _ => "partial",
            },
            errors: summary.failed.iter().map(|f| format!("{}: {}", f.case, f.error)).collect(),
            cases: summary.cases.clone(),
            missing: summary.unpaired.labels.clone(),
            loss: pooled.as_ref().map(|e| e.value),
            case_loss: Some(summary.loss.clone()),
            folder: Some(folder.to_string()),
            channels,
        }
    }

    /// Whether the step has figures (`ok` or `partial`).
    pub fn is_ok(&self) -> bool {
        self.status != "failed"
    }
}

/// A channel of a folder: pooled figures from `pooled` (None when the cases differ in their
/// channels), the others over the cases `ok`.
fn folder_channel(s: &ChannelSummary, ok: &[&CaseRecord], pooled: Option<&Evaluation>) -> StepChannel {
    let k = s.channel;
    let rows: Vec<&ChannelRow> = ok.iter().flat_map(|r| r.channels.iter().filter(|c| c.channel == k)).collect();
    let fold =
        |f: fn(&ChannelRow) -> Option<f64>, pick: fn(f64, f64) -> f64| rows.iter().filter_map(|c| f(c)).reduce(pick);
    let mean = |st: &Stats| st.mean;
    let sums = pooled.map(|e| &e.sums.channels[k]);
    let levels = pooled.filter(|e| e.levels_describe_gradient()).map(|e| (e.level(k, true), e.level(k, false)));
    let closed = pooled.filter(|e| e.two_valued()).map(|e| {
        let c = e.coefficients(k);
        (c.level(true), c.level(false))
    });
    let soft_dice = pooled.map_or(f64::NAN, |e| e.soft_dice(k));
    let mimic = pooled.and_then(MimicWeights::of);
    let (lo, hi) = (fold(|c| c.float16_window_log2_min, f64::max), fold(|c| c.float16_window_log2_max, f64::min));
    let pairs: Vec<String> =
        rows.first().map(|c| c.comparisons.iter().map(|p| p.pair.clone()).collect()).unwrap_or_default();
    StepChannel {
        channel: k,
        label: s.label,
        name: s.name.clone(),
        foreground_voxels: rows.iter().map(|c| c.foreground_voxels).sum(),
        soft_dice,
        hard_dice: sums.map_or(f64::NAN, |c| c.hard_dice()),
        loss_term: pooled.and_then(|e| e.channels[k].term),
        foreground_level: levels.map(|l| l.0),
        background_level: levels.map(|l| l.1),
        mimic_weight: mimic.as_ref().and_then(|m| m.weight(k)),
        mimic_a: mimic.as_ref().map(|m| m.a[k]),
        gradient_min: fold(|c| c.gradient_min, f64::min),
        gradient_max: fold(|c| c.gradient_max, f64::max),
        two_level: !rows.is_empty() && rows.iter().all(|c| c.two_level),
        level_ratio: levels.and_then(|(f, b)| ratio(Some(f), Some(b))),
        level_ratio_closed_form: closed.and_then(|(f, b)| ratio(Some(f), Some(b))),
        dice_ratio: dice_ratio(soft_dice).filter(|_| pooled.is_none_or(|e| e.config.in_loss().contains(&k))),
        dynamic_range: mean(&s.dynamic_range),
        float16_window_log2_min: lo,
        float16_window_log2_max: hi,
        float16_window_empty: empty(lo, hi),
        float16_zero_share: mean(&s.float16_zero_share),
        float16_subnormal_share: mean(&s.float16_subnormal_share),
        float16_overflow_share: mean(&s.float16_overflow_share),
        float16_l1_lost_share: mean(&s.float16_l1_lost_share),
        bfloat16_zero_share: mean(&s.bfloat16_zero_share),
        bfloat16_subnormal_share: mean(&s.bfloat16_subnormal_share),
        bfloat16_overflow_share: mean(&s.bfloat16_overflow_share),
        bfloat16_l1_lost_share: mean(&s.bfloat16_l1_lost_share),
        cosines: pairs
            .into_iter()
            .map(|pair| {
                let cos = Stats::of(rows.iter().map(|c| c.comparisons.iter().find(|p| p.pair == pair)?.cosine));
                PairCosine { pair, cosine: cos.mean }
            })
            .collect(),
        spread: Some(s.clone()),
    }
}

impl Series {
    /// The series of `steps` (in step order), computed with `params` (`resolved`: the losses as
    /// computed, for each count of prediction channels met).
    pub fn build(
        params: &RunParameters,
        resolved: Vec<ResolvedLosses>,
        labels: String,
        label: Option<i64>,
        steps: Vec<StepRecord>,
    ) -> Series {
        Series {
            schema_version: super::SCHEMA_VERSION,
            tool: Tool::this(),
            parameters: params.clone(),
            resolved,
            labels,
            label,
            pairs: super::csv::pair_names(params.loss.kind(), &params.compare),
            steps,
        }
    }

    /// The steps that succeeded.
    pub fn ok_steps(&self) -> impl Iterator<Item = &StepRecord> {
        self.steps.iter().filter(|s| s.is_ok())
    }

    /// The channels reported at some step, (channel, label), in order.
    pub fn channels(&self) -> Vec<(usize, i64)> {
        let mut v: Vec<(usize, i64)> =
            self.ok_steps().flat_map(|s| s.channels.iter().map(|c| (c.channel, c.label))).collect();
        v.sort();
        v.dedup_by_key(|c| c.0);
        v
    }
}
