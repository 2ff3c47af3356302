//! The one route from a case to its results: load it (from files, [`load`]; or take it from
//! arrays), check its values against the loss, evaluate the loss, measure its gradient, compare it
//! with other losses, assemble the report; and write the gradient. The command line's `analyze`
//! and `batch`, and the array functions of the library, all go through here.

pub mod load;
pub mod space;

use std::path::Path;

use crate::analysis::compare::compare;
use crate::analysis::precision::LossScale;
use crate::analysis::views::ViewRequest;
use crate::analysis::{measure, measure_with_views};
use crate::case::labels::ClassSpec;
use crate::case::scan::{voxels_not_summing_to_one, NEAR_UNIT};
use crate::case::Case;
use crate::error::{set, Error, Input, Msg, Naming, Param, Result};
use crate::loss::{
    Activation, CaseSums, Coefficients, Evaluation, GradientKernel, LossConfig, LossKind, LossRequest, WeightType,
};
use crate::msg;
use crate::nifti::{write_f32, WriteOptions};
use crate::report::comparison::{ComparedLoss, Comparison};
use crate::report::{Inputs, Report};
use crate::training::RegimeRequest;
use load::GradientLayout;

/// What to compute on a case.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Request {
    /// The loss.
    pub loss: LossRequest,
    /// Losses whose gradients are compared with the main one's (same activation and options).
    pub compare: Vec<LossKind>,
    /// The label value K when a single-channel prediction is one class of a multi-label map (used
    /// when the case is made from files or arrays; a case holds it from then on).
    pub label: Option<i64>,
    /// What label values mean beyond one class each: the ignore label, regions, the channels'
    /// names (used when the case is made from files).
    pub classes: ClassSpec,
    /// Apply the loss's activation even to values that look like probabilities (all in [0, 1],
    /// and for softmax, channels summing to 1); refused otherwise.
    pub force_activation: bool,
    /// Report a loss or gradient that is not finite instead of refusing it.
    pub allow_non_finite: bool,
    /// Also analyse the loss on patches in mini-batches, as the network is trained.
    pub regime: Option<RegimeRequest>,
    /// The loss scale S of the mixed-precision figures (default: GradScaler's initial 2^16).
    pub loss_scale: LossScale,
    /// Also measure what the pictures of the volume show (planes, densities; see
    /// [`crate::analysis::views`]).
    pub views: Option<ViewRequest>,
}

impl Request {
    /// The checked losses for a prediction of `channels` channels: the main one first, then the
    /// compared ones (see [`LossRequest::configs`]).
    pub fn configs(&self, channels: usize) -> Result<Vec<LossConfig>> {
        self.loss.configs_for(&self.compare, channels, self.classes.regions.is_some())
    }
}

/// The checked losses of `request` for `case`, whose prediction (from `inputs`) must have a
/// channel.
fn case_configs(case: &Case, inputs: &Inputs, request: &Request) -> Result<Vec<LossConfig>> {
    if case.prediction.channels == 0 {
        return Err(Error::BadValues {
            input: prediction_input(inputs),
            problem: msg!["the prediction has no channels; give at least one"],
        });
    }
    let regions = case.labels.rule.regions().is_some();
    request.loss.configs_for(&request.compare, case.prediction.channels, regions)
}

/// The results of one case: its report, the kernel of its main loss (to write the gradient
/// without another reduction pass), and the main loss's sums (for pooling over cases).
pub struct CaseResult<'a> {
    pub report: Report,
    pub kernel: GradientKernel<'a>,
    pub sums: CaseSums,
}

/// The input the prediction came from, for messages.
fn prediction_input(inputs: &Inputs) -> Input {
    match &inputs.prediction.file.path {
        Some(p) => Input::File(p.into()),
        None => Input::array("prediction array"),
    }
}

/// Largest deviation from 1 of a voxel's channel sum for which the voxel holds softmax
/// probabilities.
pub const SUM_TOLERANCE: f64 = 1e-3;

/// The share of voxels whose channels sum to 1 from which a prediction is taken for softmax
/// probabilities (a few voxels — padding set to 0, a corrupted region — do not make logits).
pub const PROBABILITY_SHARE: f64 = 0.99;

/// Refuses prediction values the loss cannot take: NaN or infinite ones, and values outside
/// [0, 1] when the loss reads probabilities (no activation). A prediction stored as integers is
/// probably a segmentation: the message says so. When the loss applies an activation to values
/// that already are probabilities — every value within [`NEAR_UNIT`] of [0, 1], and for softmax
/// the channels of at least [`PROBABILITY_SHARE`] of the voxels summing to 1 within
/// [`SUM_TOLERANCE`]; or any such values from an nnU-Net `.npz` or stored as integers (scaled),
/// which hold probabilities — it would activate them twice: refused unless
/// `request.force_activation`.
pub fn check_values(case: &Case, inputs: &Inputs, config: &LossConfig, request: &Request) -> Result<()> {
    let activation = config.spec.activation;
    let integers = inputs.prediction.holds_integers().then_some(inputs.prediction.file.datatype);
    let (grid, channels, scan) = (&case.grid, case.prediction.channels, &case.prediction.scan);
    // overlapping regions take a sigmoid each, as one channel does
    let channels = if config.regions { 1 } else { channels };
    let input = prediction_input(inputs);
    scan.check(&input, grid, channels, activation == Activation::None, integers)?;
    if activation == Activation::None || request.force_activation || !scan.nearly_probabilities() {
        return Ok(());
    }
    let npz = inputs.prediction.file.path.as_deref().is_some_and(|p| p.to_ascii_lowercase().ends_with(".npz"));
    // integers scaled into [0, 1] are stored probabilities: logits are never kept that way
    let stored = npz || inputs.prediction.holds_integers();
    let mut seen = match scan.outside_unit.count {
        0 => format!("every value lies in [0, 1] (range {} to {})", scan.min, scan.max),
        _ => format!("every value lies within {NEAR_UNIT} of [0, 1] (range {} to {})", scan.min, scan.max),
    };
    if inputs.prediction.holds_integers() {
        seen += &format!(", stored as {} scaled into it", inputs.prediction.file.datatype);
    }
    if activation == Activation::Softmax {
        let voxels = case.grid.voxels();
        let off = voxels_not_summing_to_one(&case.prediction.values, channels, SUM_TOLERANCE);
        if (voxels - off) as f64 <= PROBABILITY_SHARE * voxels as f64 && !stored {
            return Ok(());
        }
        seen += &match off {
            0 => format!(" and every voxel's {channels} channels sum to 1 (within {SUM_TOLERANCE:e})"),
            _ => format!(
                " and the {channels} channels of {} of {voxels} voxels sum to 1 (within {SUM_TOLERANCE:e})",
                voxels - off
            ),
        };
    }
    let from = match (request.loss.overrides.activation, request.loss.preset) {
        (None, Some(preset)) => msg![" of ", set(Param::PRESET, preset)],
        _ => msg![],
    };
    let mut m = msg![format!("{seen}: these are probabilities")];
    if npz {
        m.extend(msg![" (nnU-Net's .npz holds probabilities: the softmax is already applied)"]);
    }
    m.extend(msg![format!(", and the {activation}")]);
    m.extend(from);
    m.extend(msg![" would be applied to them a second time; "]);
    if scan.outside_unit.count > 0 {
        m.extend(msg!["clip them to [0, 1] and "]);
    }
    m.extend(msg![
        "pass ",
        set(Param::named("activation"), Activation::None),
        " to analyse them as probabilities, or ",
        set(Param::FORCE_ACTIVATION, true),
        " if they really are logits",
    ]);
    Err(Error::Reactivation { input, problem: m })
}

/// Refuses a loss or gradient that is not finite, of the main loss or a compared one (unless
/// `request.allow_non_finite`), naming the loss, the channels and why (see `non_finite`).
pub fn check_finite(evals: &[&Evaluation], inputs: &Inputs, request: &Request) -> Result<()> {
    if request.allow_non_finite {
        return Ok(());
    }
    match evals.iter().find_map(|e| non_finite(e)) {
        Some(problem) => Err(Error::NonFinite { input: prediction_input(inputs), problem }),
        None => Ok(()),
    }
}

/// Parameters this large overflow float64 once squared or multiplied by a sum.
const OVERFLOWING: f64 = 1e150;

/// What is not finite in `eval`, with the causes: a Dice ratio 0/0 (no foreground in labels or
/// prediction, no smoothing), a parameter so large that float64 overflows, another denominator
/// of 0 (e.g. Tversky α = β = 0), a cross-entropy normaliser of 0 (every class weight 0); None
/// when the loss and its gradient's coefficients are finite.
fn non_finite(eval: &Evaluation) -> Option<Msg> {
    let finite = |c: &Coefficients| c.p.is_finite() && c.r.is_finite() && c.t.is_finite();
    let bad: Vec<usize> = (0..eval.channels.len())
        .filter(|&k| !finite(&eval.coefficients(k)) || eval.channels[k].term.is_some_and(|t| !t.is_finite()))
        .collect();
    let ce_bad = eval.ce_value.is_some_and(|v| !v.is_finite()) || !eval.ce_scale.is_finite();
    if eval.value.is_finite() && bad.is_empty() && !ce_bad {
        return None;
    }
    let spec = &eval.config.spec;
    let mut params = vec![
        ("smooth_nr", spec.smooth_nr),
        ("smooth_dr", spec.smooth_dr),
        ("alpha", spec.alpha),
        ("beta", spec.beta),
        ("lambda_dice", spec.lambda_dice),
        ("lambda_ce", spec.lambda_ce),
    ];
    params.extend(spec.class_weights.iter().flatten().map(|&w| ("class_weights", w)));
    let huge = params.iter().find(|(_, v)| v.abs() > OVERFLOWING).copied();
    let mut smoothing = false;
    let mut why: Vec<String> = bad
        .iter()
        .map(|&k| {
            let s = &eval.sums.channels[k];
            let cause = if let Some((name, v)) = huge {
                format!("an overflow: {name} {v:e} is too large for float64 arithmetic")
            } else if s.label_count == 0 && s.pred_sum == 0.0 && spec.smooth_dr == 0.0 {
                smoothing = true;
                "no foreground in the labels or the prediction and smooth_dr 0: a Dice ratio 0/0".to_string()
            } else if s.label_count == 0
                && spec.loss == LossKind::GeneralizedDice
                && spec.w_type != WeightType::Uniform
                && spec.smooth_dr == 0.0
            {
                smoothing = true;
                format!(
                    "no foreground in the labels: its generalized Dice weight ({} of G = 0) is infinite",
                    spec.w_type
                )
            } else {
                "a denominator of 0 with the parameters given".to_string()
            };
            format!("channel {k} with Σs = {}, Σg = {}, Σs·g = {}: {cause}", s.pred_sum, s.label_count, s.intersection)
        })
        .collect();
    if ce_bad {
        why.push(if eval.sums.ce_norm == 0.0 {
            "the cross-entropy: its normaliser (the sum of the voxels' class weights) is 0, a ratio 0/0".to_string()
        } else {
            "the cross-entropy: not finite (a probability of 0 on a voxel's true class gives log 0)".to_string()
        });
    }
    let what = if eval.value.is_finite() {
        format!("the gradient of the {} loss is not finite", spec.loss)
    } else {
        format!("the {} loss is {}", spec.loss, eval.value)
    };
    let mut m = msg![format!("{what} ({}); ", why.join("; "))];
    if smoothing {
        m.extend(msg![
            "set ",
            Param::named("smooth_dr"),
            " and ",
            Param::named("smooth_nr"),
            " above 0 (MONAI's default is 1e-5), or pass ",
        ]);
    } else {
        m.extend(msg!["change the parameters named, or pass "]);
    }
    m.extend(msg![set(Param::ALLOW_NON_FINITE, true), " to report it anyway"]);
    Some(m)
}

/// Analyses `case` (whose inputs were `inputs`) with the losses of `request`, resolved for its
/// channels: checks the prediction's values against them (finite; within [0, 1] when they are
/// probabilities), evaluates the main loss, measures its gradient, and compares it with the
/// others. Notes in the report name parameters as `naming` does.
pub fn analyze<'a>(
    case: &'a Case<'a>,
    inputs: Inputs,
    request: &Request,
    naming: &dyn Naming,
) -> Result<CaseResult<'a>> {
    analyze_as(case, inputs, request, naming, Membership::Alone)
}

/// How a case's losses are evaluated.
#[derive(Clone, Copy, Debug)]
pub enum Membership<'b> {
    /// On the case alone.
    Alone,
    /// As a member of a mini-batch whose loss averages its members' (see
    /// [`Evaluation::member`]): `own` holds the case's sums and `pooled` the mini-batch's for
    /// each of the request's losses (in the order of [`Request::configs`]), `share` is 1/B.
    Member { own: &'b [CaseSums], pooled: &'b [CaseSums], share: f64 },
}

/// [`analyze`], with the losses evaluated as `membership` says.
pub fn analyze_as<'a>(
    case: &'a Case<'a>,
    inputs: Inputs,
    request: &Request,
    naming: &dyn Naming,
    membership: Membership,
) -> Result<CaseResult<'a>> {
    let configs = case_configs(case, &inputs, request)?;
    let config = &configs[0];
    check_values(case, &inputs, config, request)?;
    let evals: Vec<Evaluation> = match membership {
        Membership::Alone => configs.iter().map(|c| Evaluation::compute(case, c)).collect(),
        Membership::Member { own, pooled, share } => configs
            .iter()
            .zip(own.iter().zip(pooled))
            .map(|(c, (o, p))| Evaluation::member(c.clone(), o.clone(), p, share))
            .collect(),
    };
    check_finite(&evals.iter().collect::<Vec<_>>(), &inputs, request)?;
    let eval = &evals[0];
    let sums = eval.sums.clone();
    let kernel = GradientKernel::new(case, eval);
    let (stats, views) = match &request.views {
        Some(v) => {
            check_slice(case, &inputs, v)?;
            let (stats, views) = measure_with_views(&kernel, eval, request.loss_scale, v);
            (stats, Some(views))
        }
        None => (measure(&kernel, eval, request.loss_scale), None),
    };
    let overflows = stats.iter().any(|g| !g.dynamic_range.max_abs.is_finite());
    if overflows && !request.allow_non_finite {
        return Err(overflow(eval.config.spec.loss, &inputs));
    }
    let mut report = Report::build(case, inputs, eval, stats, request.loss_scale, naming);
    if overflows {
        report.warnings.push(format!(
            "the gradient of the {} loss overflows float32 (|g| beyond 3.4e38): its figures are those of a gradient \
             a training run could not use (reported as asked by {})",
            eval.config.spec.loss,
            naming.setting(Param::ALLOW_NON_FINITE, "true")
        ));
    }
    report.views = views;
    let main = evals[0].config.spec.loss;
    if request.compare.contains(&main) {
        report.warnings.push(
            msg![set(Param::COMPARE, main), format!(": {main} is the main loss, and is not compared with itself"),]
                .render(naming),
        );
    }
    for e in evals.iter().filter(|e| !e.value.is_finite()) {
        report.warnings.push(format!(
            "the {} loss is {}, not a number a training run could use (reported as asked by {})",
            e.config.spec.loss,
            e.value,
            naming.setting(Param::ALLOW_NON_FINITE, "true")
        ));
    }
    if let Some(r) = &request.regime {
        let training = crate::training::analyze(case, &eval.config, &r.resolve(eval.config.spec.preset))?;
        if let Some(first) = training.first_non_finite_batch {
            let what = format!(
                "{} of {} mini-batches have a loss or gradient that is not finite (the first: mini-batch {first}); a \
                 patch without a class and no smoothing gives a Dice ratio 0/0",
                training.non_finite_batches, training.regime.batches
            );
            if !request.allow_non_finite {
                return Err(Error::NonFinite {
                    input: prediction_input(&report.inputs),
                    problem: msg![
                        format!("{what}; set "),
                        Param::named("smooth_nr"),
                        " and ",
                        Param::named("smooth_dr"),
                        " above 0, or pass ",
                        set(Param::ALLOW_NON_FINITE, true),
                        " to report them anyway",
                    ],
                });
            }
            report.warnings.push(format!(
                "{what}; their figures are left out of the spreads (reported as asked by {})",
                naming.setting(Param::ALLOW_NON_FINITE, "true")
            ));
        }
        report.training = Some(training);
    }
    if evals.len() > 1 {
        let kernels: Vec<GradientKernel> = evals.iter().map(|e| GradientKernel::new(case, e)).collect();
        let losses = evals[1..]
            .iter()
            .zip(&kernels[1..])
            .map(|(e, k)| ComparedLoss::build(case, e, measure(k, e, request.loss_scale)))
            .collect();
        report.comparison = Some(Comparison { losses, pairs: compare(&kernels, &evals) });
    }
    Ok(CaseResult { report, kernel, sums })
}

/// The error for a gradient that overflows float32.
fn overflow(loss: LossKind, inputs: &Inputs) -> Error {
    Error::NonFinite {
        input: prediction_input(inputs),
        problem: msg![
            format!(
                "the gradient of the {loss} loss overflows float32 (|g| beyond 3.4e38): a parameter is too large (the \
                 loss weight, a class weight, a smoothing ε); lower it, or pass "
            ),
            set(Param::ALLOW_NON_FINITE, true),
            " to report it anyway",
        ],
    }
}

/// Refuses gradient `values` of `case` that are not finite (unless `request.allow_non_finite`):
/// the coefficients were finite, so a value overflowed float32 when it was rounded.
pub fn check_gradient(values: &[f32], eval: &Evaluation, inputs: &Inputs, request: &Request) -> Result<()> {
    use rayon::prelude::*;
    let finite = |c: &[f32]| c.iter().fold(true, |ok, v| ok & v.is_finite());
    if request.allow_non_finite || values.par_chunks(crate::parallel::CHUNK).all(finite) {
        return Ok(());
    }
    Err(overflow(eval.config.spec.loss, inputs))
}

/// Refuses a plane position outside the volume.
fn check_slice(case: &Case, inputs: &Inputs, v: &ViewRequest) -> Result<()> {
    for (a, (given, n)) in v.slice.iter().zip(case.grid.shape).enumerate() {
        if let Some(i) = *given {
            if i >= n {
                let axis = ["x", "y", "z"][a];
                return Err(Error::Usage(msg![
                    Param::SLICE,
                    format!(
                        ": the planes cannot pass through {axis} = {i}: {} has {n} voxels along {axis} (0 to {}); \
                         give a voxel index within them",
                        inputs.prediction.file.name(),
                        n - 1
                    ),
                ]));
            }
        }
    }
    Ok(())
}

/// The gradient of the main loss of `request` with respect to every value of the prediction, in
/// the order of its values (after the same check of the values as [`analyze`]).
pub fn gradient(case: &Case, inputs: &Inputs, request: &Request) -> Result<Vec<f32>> {
    let config = &case_configs(case, inputs, request)?[0];
    check_values(case, inputs, config, request)?;
    let eval = Evaluation::compute(case, config);
    check_finite(&[&eval], inputs, request)?;
    let mut values = vec![0f32; case.prediction.values.len()];
    GradientKernel::new(case, &eval).fill(0, &mut values);
    check_gradient(&values, &eval, inputs, request)?;
    Ok(values)
}

/// How the loss of a mini-batch of cases combines them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BatchReduction {
    /// Each case's loss, averaged over the cases (MONAI `batch=False`: the Dice terms averaged
    /// over samples and channels): the gradient of case b is its own gradient divided by B.
    #[default]
    PerCase,
    /// One loss of the sums pooled over the cases (MONAI `batch=True`, nnU-Net `batch_dice`):
    /// I = Σ_b I_b, S = Σ_b S_b, … and every case's gradient from the pooled coefficients.
    Pooled,
}

/// The main loss of `request` evaluated on a mini-batch of `cases` (each with its inputs; all
/// with the prediction's number of channels), reduced as `reduction` says: one evaluation per
/// case, whose gradient is that case's part of the mini-batch's gradient (per case: its share,
/// [`Evaluation::member`] — its own Dice-type part weighted 1/B, and its part of one
/// cross-entropy over the mini-batch; pooled: the coefficients of the sums pooled over the cases,
/// the same for every case). The values are checked as [`analyze`] checks them.
pub fn evaluate_batch(
    cases: &[(Case, Inputs)],
    request: &Request,
    reduction: BatchReduction,
) -> Result<Vec<Evaluation>> {
    let config = check_batch(cases, request)?.swap_remove(0);
    let first_inputs = &cases[0].1;
    match reduction {
        BatchReduction::PerCase => {
            let sums: Vec<CaseSums> = cases.iter().map(|(case, _)| CaseSums::compute(case, &config)).collect();
            let pooled = pool(&sums);
            let share = 1.0 / cases.len() as f64;
            let mut evals = Vec::with_capacity(cases.len());
            for (b, (own, (_, inputs))) in sums.into_iter().zip(cases).enumerate() {
                let eval = Evaluation::member(config.clone(), own, &pooled, share);
                check_finite(&[&eval], inputs, request).map_err(|e| in_sample(e, b, cases.len()))?;
                evals.push(eval);
            }
            Ok(evals)
        }
        BatchReduction::Pooled => {
            let sums: Vec<CaseSums> = cases.iter().map(|(case, _)| CaseSums::compute(case, &config)).collect();
            let eval = Evaluation::from_sums(config, pool(&sums));
            check_finite(&[&eval], first_inputs, request)?;
            Ok(vec![eval; cases.len()])
        }
    }
}

/// Checks a mini-batch of `cases` against `request` before anything is computed: at least one
/// case, every case with the first's channels, every case's values as [`analyze`] checks them
/// (an error of a case names its sample). The checked losses of the request.
pub fn check_batch(cases: &[(Case, Inputs)], request: &Request) -> Result<Vec<LossConfig>> {
    let Some((first, first_inputs)) = cases.first() else {
        return Err(Error::usage("a mini-batch needs at least one case"));
    };
    let configs = case_configs(first, first_inputs, request)?;
    let config = &configs[0];
    for (b, (case, inputs)) in cases.iter().enumerate() {
        if case.prediction.channels != config.channels {
            return Err(Error::BadValues {
                input: prediction_input(inputs),
                problem: msg![format!(
                    "sample {b} has {} channels, sample 0 has {}; every sample of a mini-batch has the same channels",
                    case.prediction.channels, config.channels
                )],
            });
        }
        check_values(case, inputs, config, request).map_err(|e| in_sample(e, b, cases.len()))?;
    }
    Ok(configs)
}

/// The sums of a mini-batch: those of its cases, pooled.
pub fn pool(sums: &[CaseSums]) -> CaseSums {
    let mut total = sums[0].clone();
    for s in &sums[1..] {
        total.pool(s);
    }
    total
}

/// An error of case `b` of a mini-batch of `n`, naming the sample when there are several.
fn in_sample(e: Error, b: usize, n: usize) -> Error {
    if n > 1 {
        e.in_sample(b)
    } else {
        e
    }
}

/// Writes the gradient of `kernel` to `path` (`.nii` or `.nii.gz`), float32, in the layout and
/// geometry of the prediction it was computed on.
pub fn write_gradient(path: &Path, layout: &GradientLayout, kernel: &GradientKernel, opts: WriteOptions) -> Result<()> {
    let header = layout.header.describing(&gradient_description(kernel.config()), GRADIENT_INTENT_NAME);
    write_f32(path, &header, &layout.dims, opts, |start, out| kernel.fill(start, out))
}

/// The intent name of a gradient volume (NIfTI `intent_name`, at most 15 bytes).
pub const GRADIENT_INTENT_NAME: &str = "gradient";

/// The NIfTI `descrip` of a gradient volume: `dicegrad gradient of <loss> w.r.t. <logits |
/// probabilities>`, with the preset the loss came from, if any (at most 79 bytes).
pub fn gradient_description(config: &LossConfig) -> String {
    let spec = &config.spec;
    let loss = match spec.preset {
        Some(p) => format!("{} ({p})", spec.loss),
        None => spec.loss.to_string(),
    };
    let of = if spec.activation == Activation::None { "probabilities" } else { "logits" };
    format!("dicegrad gradient of {loss} w.r.t. {of}")
}
