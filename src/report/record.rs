//! What a data set keeps of each case: one record (a JSON line of `cases.jsonl` in a batch folder)
//! with everything the summary and a merge need, including the sums for the pooled loss and the
//! log histograms; the rows of `cases.csv` are derived from it ([`super::csv`]).

use serde::{Deserialize, Serialize};

use super::Report;
use crate::analysis::LogHistogram;
use crate::loss::CaseSums;

/// Figures of one channel of one case (the analysis of `analyze`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChannelRow {
    pub channel: usize,
    pub label: i64,
    /// The channel's name, when the channels are named.
    #[serde(default)]
    pub name: Option<String>,
    /// The channel is in the loss's Dice-type part (false for the background left out of it
    /// while a cross-entropy part still reads it).
    #[serde(default = "yes")]
    pub in_dice_part: bool,
    pub foreground_voxels: u64,
    pub soft_dice: f64,
    pub hard_dice: f64,
    pub loss_term: Option<f64>,
    /// Mean gradient on foreground / background voxels.
    pub foreground_level: Option<f64>,
    pub background_level: Option<f64>,
    /// The mimic weight w_k (0–1, the channels' weights sum to 1; see `ChannelReport`).
    #[serde(default)]
    pub mimic_weight: Option<f64>,
    /// a_k = −P_k, the weight of the ground truth in dL/ds (2/(K·D) for Dice): the raw mimic
    /// weight (None for a loss without a Dice-type part).
    #[serde(default)]
    pub mimic_a: Option<f64>,
    pub fit_a: Option<f64>,
    pub fit_c: Option<f64>,
    pub fit_r2: Option<f64>,
    pub two_level: bool,
    /// Smallest and largest gradient value over the channel's voxels (None without voxels).
    #[serde(default)]
    pub gradient_min: Option<f64>,
    #[serde(default)]
    pub gradient_max: Option<f64>,
    /// Ratio of the closed-form levels of dL/ds, (c − a)/c (= 1 − 2 / soft Dice for Dice), also
    /// when the gradient is taken through an activation; None when the closed form with respect
    /// to probabilities is not two-valued (a Σs² term, a cross-entropy part).
    #[serde(default)]
    pub level_ratio_closed_form: Option<f64>,
    pub dynamic_range: Option<f64>,
    /// log2 of the bounds of the float16 loss-scale window (None when every value is 0).
    pub float16_window_log2_min: Option<f64>,
    pub float16_window_log2_max: Option<f64>,
    /// float16 at the run's loss scale: shares of the values flushed to zero, made subnormal, made
    /// infinite, and the share of the L1 mass flushed.
    pub float16_zero_share: f64,
    pub float16_subnormal_share: f64,
    pub float16_overflow_share: f64,
    pub float16_l1_lost_share: f64,
    /// The same for bfloat16.
    pub bfloat16_zero_share: f64,
    pub bfloat16_subnormal_share: f64,
    pub bfloat16_overflow_share: f64,
    pub bfloat16_l1_lost_share: f64,
    /// With compared losses: per pair, (cosine, scale, sign agreement).
    pub comparisons: Vec<PairFigures>,
}

fn yes() -> bool {
    true
}

/// Comparison figures of one pair on one channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PairFigures {
    /// "a vs b".
    pub pair: String,
    pub cosine: Option<f64>,
    pub scale: Option<f64>,
    pub sign_agreement: f64,
}

/// One case of a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CaseRecord {
    pub case: String,
    pub labels: String,
    pub pred: String,
    /// `ok` or `failed`.
    pub status: String,
    pub error: Option<String>,
    pub loss: Option<f64>,
    pub channels: Vec<ChannelRow>,
    /// The main loss's sums (None for a failed case).
    pub sums: Option<CaseSums>,
    /// Per reported channel, the |gradient| log histogram.
    pub log_histograms: Vec<LogHistogram>,
}

impl CaseRecord {
    /// A failed case.
    pub fn failed(case: &str, labels: &str, pred: &str, error: String) -> CaseRecord {
        CaseRecord {
            case: case.into(),
            labels: labels.into(),
            pred: pred.into(),
            status: "failed".into(),
            error: Some(error),
            loss: None,
            channels: Vec::new(),
            sums: None,
            log_histograms: Vec::new(),
        }
    }

    /// A case analysed successfully.
    pub fn ok(case: &str, report: &Report, sums: CaseSums) -> CaseRecord {
        let channels = report
            .channels
            .iter()
            .map(|c| {
                let g = &c.gradient;
                let (mp, bf) = (&g.mixed_precision, &g.mixed_precision.bfloat16.at_scale);
                let comparisons = report
                    .comparison
                    .iter()
                    .flat_map(|cmp| &cmp.pairs)
                    .filter_map(|p| {
                        p.channels.iter().find(|pc| pc.channel == c.channel).map(|pc| PairFigures {
                            pair: format!("{} vs {}", p.a, p.b),
                            cosine: pc.cosine,
                            scale: pc.scale,
                            sign_agreement: pc.sign_agreement,
                        })
                    })
                    .collect();
                ChannelRow {
                    channel: c.channel,
                    label: c.label,
                    name: c.name.clone(),
                    in_dice_part: report.parameters.channels_in_loss.contains(&c.channel),
                    foreground_voxels: c.foreground_voxels,
                    soft_dice: c.soft_dice,
                    hard_dice: c.hard_dice,
                    loss_term: c.loss_term,
                    foreground_level: g.foreground.mean,
                    background_level: g.background.mean,
                    mimic_weight: c.mimic_weight,
                    mimic_a: Some(c.closed_form.a).filter(|_| report.parameters.spec.loss.has_dice_part()),
                    fit_a: g.fit.a,
                    fit_c: g.fit.c,
                    fit_r2: g.fit.r2,
                    two_level: g.two_level,
                    gradient_min: [g.foreground.min, g.background.min]
                        .into_iter()
                        .flatten()
                        .reduce(f32::min)
                        .map(f64::from),
                    gradient_max: [g.foreground.max, g.background.max]
                        .into_iter()
                        .flatten()
                        .reduce(f32::max)
                        .map(f64::from),
                    level_ratio_closed_form: report
                        .two_valued_closed_form
                        .then(|| c.closed_form.foreground_level / c.closed_form.background_level)
                        .filter(|r| r.is_finite()),
                    dynamic_range: g.dynamic_range.ratio,
                    float16_window_log2_min: mp.loss_scale_window.log2_min,
                    float16_window_log2_max: mp.loss_scale_window.log2_max,
                    float16_zero_share: mp.at_scale.zero_share,
                    float16_subnormal_share: mp.at_scale.subnormal_share,
                    float16_overflow_share: mp.at_scale.overflow_share,
                    float16_l1_lost_share: mp.at_scale.l1_lost_share,
                    bfloat16_zero_share: bf.zero_share,
                    bfloat16_subnormal_share: bf.subnormal_share,
                    bfloat16_overflow_share: bf.overflow_share,
                    bfloat16_l1_lost_share: bf.l1_lost_share,
                    comparisons,
                }
            })
            .collect();
        CaseRecord {
            case: case.into(),
            labels: report.inputs.labels.name().to_string(),
            pred: report.inputs.prediction.file.name().to_string(),
            status: "ok".into(),
            error: None,
            loss: Some(report.loss.value),
            channels,
            sums: Some(sums),
            log_histograms: report.channels.iter().map(|c| c.gradient.log_histogram.clone()).collect(),
        }
    }

    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }
}
