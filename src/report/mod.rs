//! The one report of an analysis. Every output (JSON, terminal table, pictures) reads this struct
//! and nothing else; every field has its unit in `docs/outputs.md`.
//!
//! Gradient values are per voxel, in units of loss per unit of the prediction value (per unit of
//! probability, or per unit of logit with an activation).

pub mod comparison;
pub mod csv;
pub mod html;
pub mod inputs;
pub mod json;
pub mod layout;
pub mod outliers;
pub mod paired;
pub mod reading;
pub mod record;
pub mod schema;
pub mod series;
pub mod series_csv;
pub mod summary;
pub mod summary_table;
pub mod table;
pub mod wording;

use serde::Serialize;

use crate::analysis::precision::{LossScale, MixedPrecision};
use crate::analysis::{mixed_precision_of, GradientStats};
use crate::case::Case;
use crate::error::{set, Naming, Param};
use crate::loss::{Evaluation, LossKind, LossParam, LossSpec, MimicWeights, Reduction};
use crate::msg;
pub use inputs::{ChannelLayout, InputInfo, Inputs, PredictionInfo};

/// The version of the layout of report.json, summary.json and series.json: raised whenever a field
/// is renamed, removed or changes meaning (added fields keep it). The layout of each version is in
/// docs/schema/.
pub const SCHEMA_VERSION: u32 = 1;

/// Name and version of the tool that wrote the report.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

impl Tool {
    /// This build of dicegrad.
    pub fn this() -> Tool {
        Tool { name: env!("CARGO_PKG_NAME"), version: env!("CARGO_PKG_VERSION") }
    }
}

/// The loss as it was computed, every parameter resolved.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Parameters {
    /// Family, preset, activation, smoothing, weights... as resolved from the preset and flags.
    #[serde(flatten)]
    pub spec: LossSpec,
    /// How the channels in the loss are combined: `mean` of their terms, `sum` (mimic), `pooled`
    /// (one ratio of sums over the channels: generalized Dice), `voxels` (cross-entropy: a mean
    /// over voxels of a term that reads every channel).
    pub reduction: Reduction,
    /// Channels in the Dice-type part (indices into the prediction).
    pub channels_in_loss: Vec<usize>,
    /// The label value K of a single-channel prediction of one class of a multi-label map.
    pub label: Option<i64>,
    /// The ignore label: its voxels take no part in the loss or the statistics, and get gradient
    /// 0.
    pub ignore_label: Option<i64>,
    /// Voxels of the ignore label in the case.
    pub ignored_voxels: u64,
    /// For a region-based prediction: per channel, the label values of its region.
    pub regions: Option<Vec<Vec<i64>>>,
    /// A name per channel, when known (an nnU-Net dataset.json).
    pub channel_names: Option<Vec<String>>,
    /// What the gradient is taken with respect to.
    pub gradient_wrt: &'static str,
    /// What the cross-entropy part computes, when there is one.
    pub cross_entropy: Option<String>,
    /// The loss scale S of the mixed-precision figures (as float32).
    pub loss_scale: LossScale,
}

/// The loss value and its parts.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct LossValue {
    pub name: LossKind,
    /// The loss (dimensionless).
    pub value: f64,
    /// The Dice-type part before λ_dice (None without one).
    pub dice_part: Option<f64>,
    /// The cross-entropy part before λ_ce (None without one).
    pub ce_part: Option<f64>,
}

/// The sums the loss is made of, for one channel.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Sums {
    /// I = Σ s·g (probability × voxels).
    pub intersection: f64,
    /// S = Σ s.
    pub prediction_sum: f64,
    /// Q = Σ s².
    pub prediction_sq_sum: f64,
    /// G = Σ g (voxels).
    pub label_sum: f64,
    /// N = 2I + ε_nr of the soft Dice.
    pub numerator: f64,
    /// D = S + G + ε_dr of the soft Dice.
    pub denominator: f64,
}

/// The closed-form gradient with respect to probabilities, dL/ds = P·g + R + T·s.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ClosedForm {
    /// P = ∂L/∂I.
    pub p: f64,
    /// R = ∂L/∂S.
    pub r: f64,
    /// T = 2·∂L/∂Q (0 unless the loss uses Σs²).
    pub t: f64,
    /// a = −P: the weight of the ground truth (2 / (K·D) for Dice).
    pub a: f64,
    /// c = R: the constant (N / (K·D²) for Dice).
    pub c: f64,
    /// P + R: dL/ds on foreground voxels (when T = 0 and there is no cross-entropy).
    pub foreground_level: f64,
    /// R: dL/ds on background voxels (same condition).
    pub background_level: f64,
}

impl ClosedForm {
    /// The closed form of channel `k` of an evaluated loss.
    pub fn of(eval: &Evaluation, k: usize) -> ClosedForm {
        let c = eval.coefficients(k);
        ClosedForm {
            p: c.p,
            r: c.r,
            t: c.t,
            a: 0.0 - c.p,
            c: c.r,
            foreground_level: c.level(true),
            background_level: c.level(false),
        }
    }
}

/// Everything about one channel in the loss.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ChannelReport {
    /// Index of the channel in the prediction.
    pub channel: usize,
    /// Label value whose voxels are this channel's foreground (for a region, the label it stands
    /// for in a label map).
    pub label: i64,
    /// The channel's name (class or region, from an nnU-Net dataset.json), when known.
    pub name: Option<String>,
    /// For a region-based prediction, the label values of this channel's region.
    pub region: Option<Vec<i64>>,
    /// Voxels of the channel's foreground, and of its background (voxels of the ignore label are
    /// in neither).
    pub foreground_voxels: u64,
    pub background_voxels: u64,
    /// N / D (dimensionless, 0–1).
    pub soft_dice: f64,
    /// Dice of the argmax (or ≥ 0.5) prediction; 1 when the class is absent from both.
    pub hard_dice: f64,
    /// This channel's term of the loss before the reduction over channels (1 − soft Dice for
    /// Dice); None when the loss has no per-channel term.
    pub loss_term: Option<f64>,
    pub sums: Sums,
    pub closed_form: ClosedForm,
    /// The mimic weight w_k = a_k / Σ_j a_j (dimensionless, the channels' weights sum to 1): the
    /// mimic loss −Σ_k w_k·Σ_i s_ki·g_ki has the ground-truth part −a_k·g of this loss's gradient
    /// with respect to probabilities, up to the one factor Σ_j a_j (`mimic_weight_total`); a_k is
    /// `closed_form.a`. 0 for a channel without foreground voxels (nothing to mimic) or outside
    /// the Dice-type part; None when no weight is determined (a loss without a Dice-type part, or
    /// no weight of the ground truth on any channel in it with foreground: none has foreground
    /// voxels, or their class weights are 0).
    pub mimic_weight: Option<f64>,
    pub gradient: GradientStats,
}

/// The report of one analysed case.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Report {
    /// The layout version of this file ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    pub tool: Tool,
    pub inputs: Inputs,
    pub parameters: Parameters,
    pub loss: LossValue,
    /// True when every channel's gradient takes exactly one value on foreground and one on
    /// background voxels (measured).
    pub two_level_holds: bool,
    /// True when the loss's closed form is two-valued with respect to probabilities (no Σs²
    /// term, no cross-entropy).
    pub two_valued_closed_form: bool,
    pub channels: Vec<ChannelReport>,
    /// Σ_j a_j over the channels whose mimic weights are determined (loss per unit of I = Σ s·g,
    /// as a): the loss's ground-truth part is −total·w_k·g. None when the weights are not
    /// determined.
    pub mimic_weight_total: Option<f64>,
    /// The mixed-precision figures of all reported channels together (one loss scale serves the
    /// whole prediction): the loss-scale window over all their values, the shares at the scale.
    pub mixed_precision: MixedPrecision,
    /// With compared losses: the other losses and the pairwise figures.
    pub comparison: Option<comparison::Comparison>,
    /// With a training regime: the loss and gradient over sampled mini-batches of patches.
    pub training: Option<crate::training::RegimeReport>,
    /// With pictures of the volume asked for: where the planes of each channel lie, how they are
    /// oriented, and the ranges of the gradient's colour scales and densities (the pictures'
    /// pixels are not written to report.json).
    pub views: Option<crate::analysis::views::Views>,
    /// Notes on how the options were applied, naming parameters as the caller does (on the command
    /// line: its flags).
    pub warnings: Vec<String>,
}

impl Report {
    /// Assembles the report from a case (and what its inputs were), its evaluated loss and the
    /// gradient statistics (one per reported channel, in order, measured at the loss scale
    /// `scale`).
    pub fn build(
        case: &Case,
        inputs: Inputs,
        eval: &Evaluation,
        stats: Vec<GradientStats>,
        scale: LossScale,
        naming: &dyn Naming,
    ) -> Report {
        let mixed_precision = mixed_precision_of(&stats, scale);
        let label = case.labels.selected();
        let cfg = &eval.config;
        let n = eval.sums.voxels;
        let mimic = MimicWeights::of(eval);
        let channels: Vec<ChannelReport> = cfg
            .reported_channels()
            .zip(stats)
            .map(|(k, gradient)| {
                let s = &eval.sums.channels[k];
                let spec = &cfg.spec;
                ChannelReport {
                    channel: k,
                    label: case.labels.label_of(k),
                    name: case.labels.name_of(k).map(str::to_string),
                    region: case.labels.region(k).map(<[i64]>::to_vec),
                    foreground_voxels: s.label_count,
                    background_voxels: n - s.label_count,
                    soft_dice: eval.soft_dice(k),
                    hard_dice: s.hard_dice(),
                    loss_term: eval.channels[k].term,
                    sums: Sums {
                        intersection: s.intersection,
                        prediction_sum: s.pred_sum,
                        prediction_sq_sum: s.pred_sq_sum,
                        label_sum: s.label_count as f64,
                        numerator: 2.0 * s.intersection + spec.smooth_nr,
                        denominator: s.pred_sum + s.label_count as f64 + spec.smooth_dr,
                    },
                    closed_form: ClosedForm::of(eval, k),
                    mimic_weight: mimic.as_ref().and_then(|m| m.weight(k)),
                    gradient,
                }
            })
            .collect();
        let mut warnings = Vec::new();
        if cfg.background_ignored {
            let m = msg![
                set(LossParam::IncludeBackground.param(), false),
                " ignored: a single-channel prediction has no background channel (as in MONAI)",
            ];
            warnings.push(m.render(naming));
        }
        if let Some(w) = wording::nnunet_loss_weight(&cfg.spec) {
            warnings.push(w.render(naming));
        }
        if let Some(w) = eval.ce_form().and_then(|f| wording::cross_entropy_warning(f, cfg.spec.activation)) {
            warnings.push(w);
        }
        if inputs.prediction.holds_integers() {
            warnings.push(format!(
                "the prediction is stored as {}: whole numbers are a hard segmentation rather than the network's \
                 probabilities, and the gradient of a hard mask says little about training",
                inputs.prediction.file.datatype
            ));
        }
        if let (Some(k), Some(s)) = (label, eval.sums.channels.first()) {
            if s.label_count == 0 {
                let m = msg![
                    set(Param::LABEL, k),
                    " selects no voxel: the labels hold no voxel with this value, so the channel has no \
                     foreground; check the label value",
                ];
                warnings.push(m.render(naming));
            }
        }
        // the voxels the sums did not keep are those of the ignore label
        let ignored_voxels = (case.voxels() as u64).saturating_sub(eval.sums.voxels);
        if let Some(k) = case.labels.ignore {
            if ignored_voxels == 0 {
                let m = msg![
                    set(Param::IGNORE_LABEL, k),
                    " selects no voxel: the labels hold no voxel with this value, so nothing is ignored; check the \
                     label value",
                ];
                warnings.push(m.render(naming));
            }
        }
        // what was computed: leaving the background out, when ignored, leaves it in
        let mut spec = cfg.spec.clone();
        spec.include_background |= cfg.background_ignored;
        Report {
            schema_version: SCHEMA_VERSION,
            tool: Tool::this(),
            inputs,
            parameters: Parameters {
                reduction: spec.loss.family().reduction(),
                channels_in_loss: cfg.in_loss().collect(),
                label,
                ignore_label: case.labels.ignore,
                ignored_voxels,
                regions: case.labels.rule.regions().map(|r| r.sets.clone()),
                channel_names: case.labels.names.clone(),
                gradient_wrt: wording::gradient_wrt(spec.activation),
                cross_entropy: eval.ce_form().map(|f| wording::cross_entropy_of(f, case.labels.ignores(), cfg.regions)),
                loss_scale: scale,
                spec,
            },
            loss: LossValue {
                name: cfg.spec.loss,
                value: eval.value,
                dice_part: eval.dice_value,
                ce_part: eval.ce_value,
            },
            two_level_holds: channels.iter().all(|c| c.gradient.two_level),
            two_valued_closed_form: eval.two_valued(),
            channels,
            mimic_weight_total: mimic.as_ref().and_then(MimicWeights::determined_total),
            mixed_precision,
            comparison: None,
            training: None,
            views: None,
            warnings,
        }
    }
}
