//! The one report of an analysis. Every output (JSON, terminal table, pictures) reads this struct
//! and nothing else; every field has its unit in `docs/outputs.md`.
//!
//! Gradient values are per voxel, in units of loss per unit of the prediction value (per unit of
//! probability, or per unit of logit with an activation).

pub mod json;
pub mod table;

use serde::Serialize;

use crate::analysis::GradientStats;
use crate::loss::{Activation, Dice};
use crate::volume::{Case, ChannelLayout, InputInfo};

/// Name and version of the tool that wrote the report.
#[derive(Clone, Debug, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

/// The prediction file, with its channel interpretation.
#[derive(Clone, Debug, Serialize)]
pub struct PredictionInfo {
    #[serde(flatten)]
    pub file: InputInfo,
    /// Number of channels C.
    pub channels: usize,
    /// Where the channels are in the file.
    pub layout: ChannelLayout,
}

/// Both inputs.
#[derive(Clone, Debug, Serialize)]
pub struct Inputs {
    pub labels: InputInfo,
    pub prediction: PredictionInfo,
}

/// The loss as it was computed, every parameter resolved.
#[derive(Clone, Debug, Serialize)]
pub struct Parameters {
    /// Loss family (`dice`).
    pub loss: &'static str,
    /// Activation applied inside the loss.
    pub activation: Activation,
    /// ε_nr.
    pub smooth_nr: f64,
    /// ε_dr.
    pub smooth_dr: f64,
    /// Whether channel 0 is in the loss.
    pub include_background: bool,
    /// Reduction over channels.
    pub reduction: &'static str,
    /// Channels in the loss (indices into the prediction).
    pub channels_in_loss: Vec<usize>,
    /// `--label K` for a single-channel prediction of one class.
    pub label: Option<i64>,
    /// What the gradient is taken with respect to.
    pub gradient_wrt: &'static str,
}

/// The loss value.
#[derive(Clone, Debug, Serialize)]
pub struct LossValue {
    pub name: &'static str,
    /// Mean over the channels in the loss of 1 − soft Dice (dimensionless).
    pub value: f64,
}

/// The sums the loss is made of, for one channel.
#[derive(Clone, Debug, Serialize)]
pub struct Sums {
    /// I = Σ s·g (probability × voxels).
    pub intersection: f64,
    /// S = Σ s.
    pub prediction_sum: f64,
    /// G = Σ g (voxels).
    pub label_sum: f64,
    /// N = 2I + ε_nr.
    pub numerator: f64,
    /// D = S + G + ε_dr.
    pub denominator: f64,
}

/// The closed-form gradient with respect to probabilities, dL/ds = −a·g + c.
#[derive(Clone, Debug, Serialize)]
pub struct ClosedForm {
    /// a = 2 / (K·D).
    pub a: f64,
    /// c = N / (K·D²).
    pub c: f64,
    /// c − a: dL/ds on foreground voxels.
    pub foreground_level: f64,
    /// c: dL/ds on background voxels.
    pub background_level: f64,
}

/// Everything about one channel in the loss.
#[derive(Clone, Debug, Serialize)]
pub struct ChannelReport {
    /// Index of the channel in the prediction.
    pub channel: usize,
    /// Label value whose voxels are this channel's foreground.
    pub label: i64,
    pub foreground_voxels: u64,
    pub background_voxels: u64,
    /// N / D (dimensionless, 0–1).
    pub soft_dice: f64,
    /// Dice of the argmax (or ≥ 0.5) prediction; 1 when the class is absent from both.
    pub hard_dice: f64,
    /// 1 − soft Dice: this channel's term before the mean.
    pub loss_term: f64,
    pub sums: Sums,
    pub closed_form: ClosedForm,
    pub gradient: GradientStats,
}

/// The report of one analysed case.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub tool: Tool,
    pub inputs: Inputs,
    pub parameters: Parameters,
    pub loss: LossValue,
    /// True when every channel's gradient takes exactly one value on foreground and one on
    /// background voxels.
    pub two_level_holds: bool,
    pub channels: Vec<ChannelReport>,
    /// Notes on how the options were applied.
    pub warnings: Vec<String>,
}

impl Report {
    /// Assembles the report from a loaded case, its loss and the gradient statistics (one per
    /// channel in the loss, in order).
    pub fn build(
        case: &Case,
        dice: &Dice,
        stats: Vec<GradientStats>,
        label: Option<i64>,
    ) -> Report {
        let cfg = dice.config;
        let n = case.voxels() as u64;
        let channels: Vec<ChannelReport> = cfg
            .in_loss()
            .zip(stats)
            .map(|(k, gradient)| {
                let s = &dice.sums[k];
                ChannelReport {
                    channel: k,
                    label: case.labels.label_of[k],
                    foreground_voxels: s.label_count,
                    background_voxels: n - s.label_count,
                    soft_dice: dice.soft_dice(k),
                    hard_dice: dice.hard_dice(k),
                    loss_term: dice.term(k),
                    sums: Sums {
                        intersection: s.intersection,
                        prediction_sum: s.pred_sum,
                        label_sum: s.label_count as f64,
                        numerator: dice.numerator(k),
                        denominator: dice.denominator(k),
                    },
                    closed_form: ClosedForm {
                        a: dice.slope(k),
                        c: dice.offset(k),
                        foreground_level: dice.level(k, true),
                        background_level: dice.level(k, false),
                    },
                    gradient,
                }
            })
            .collect();
        let mut warnings = Vec::new();
        if cfg.background_ignored {
            warnings.push(
                "--no-background ignored: a single-channel prediction has no background channel \
                 (as in MONAI)"
                    .to_string(),
            );
        }
        let o = cfg.options;
        Report {
            tool: Tool {
                name: env!("CARGO_PKG_NAME"),
                version: env!("CARGO_PKG_VERSION"),
            },
            inputs: Inputs {
                labels: case.labels.geometry.info.clone(),
                prediction: PredictionInfo {
                    file: case.prediction.geometry.info.clone(),
                    channels: case.prediction.channels,
                    layout: case.prediction.layout,
                },
            },
            parameters: Parameters {
                loss: "dice",
                activation: o.activation,
                smooth_nr: o.smooth_nr,
                smooth_dr: o.smooth_dr,
                include_background: o.include_background,
                reduction: "mean",
                channels_in_loss: cfg.in_loss().collect(),
                label,
                gradient_wrt: o.activation.wrt(),
            },
            loss: LossValue {
                name: "dice",
                value: dice.value(),
            },
            two_level_holds: channels.iter().all(|c| c.gradient.two_level),
            channels,
            warnings,
        }
    }
}
