//! The one route from a case to its results: load it (from files, [`load`]; or take it from
//! arrays), check its values against the loss, evaluate the loss, measure its gradient, compare it
//! with other losses, assemble the report; and write the gradient. The command line's `analyze`
//! and `batch`, and the array functions of the library, all go through here.

pub mod load;
pub mod space;

use std::path::Path;

use crate::analysis::compare::compare;
use crate::analysis::measure;
use crate::case::Case;
use crate::error::{Input, Naming, Result};
use crate::loss::{Activation, CaseSums, Evaluation, GradientKernel, LossConfig, LossKind, LossRequest};
use crate::nifti::{write_f32, WriteOptions};
use crate::report::comparison::{ComparedLoss, Comparison};
use crate::report::{Inputs, Report};
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
}

impl Request {
    /// The checked losses for a prediction of `channels` channels: the main one first, then the
    /// compared ones (see [`LossRequest::configs`]).
    pub fn configs(&self, channels: usize) -> Result<Vec<LossConfig>> {
        self.loss.configs(&self.compare, channels)
    }
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
        None => Input::Array("prediction array"),
    }
}

/// Refuses prediction values the loss cannot take: NaN or infinite ones, and values outside
/// [0, 1] when the loss reads probabilities (no activation). A prediction stored as integers is
/// probably a segmentation: the message says so.
pub fn check_values(case: &Case, inputs: &Inputs, config: &LossConfig) -> Result<()> {
    let probabilities = config.spec.activation == Activation::None;
    let integers = inputs.prediction.holds_integers().then_some(inputs.prediction.file.datatype);
    let (grid, channels) = (&case.grid, case.prediction.channels);
    case.prediction.scan.check(&prediction_input(inputs), grid, channels, probabilities, integers)
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
    let configs = request.configs(case.prediction.channels)?;
    let config = &configs[0];
    check_values(case, &inputs, config)?;
    let eval = Evaluation::compute(case, config);
    let sums = eval.sums.clone();
    let kernel = GradientKernel::new(case, &eval);
    let stats = measure(&kernel, &eval);
    let mut report = Report::build(case, inputs, &eval, stats, naming);
    if configs.len() > 1 {
        let mut evals = vec![eval];
        evals.extend(configs[1..].iter().map(|c| Evaluation::compute(case, c)));
        let kernels: Vec<GradientKernel> = evals.iter().map(|e| GradientKernel::new(case, e)).collect();
        let losses =
            evals[1..].iter().zip(&kernels[1..]).map(|(e, k)| ComparedLoss::build(case, e, measure(k, e))).collect();
        report.comparison = Some(Comparison { losses, pairs: compare(&kernels, &evals) });
    }
    Ok(CaseResult { report, kernel, sums })
}

/// The gradient of the main loss of `request` with respect to every value of the prediction, in
/// the order of its values (after the same check of the values as [`analyze`]).
pub fn gradient(case: &Case, inputs: &Inputs, request: &Request) -> Result<Vec<f32>> {
    let config = &request.configs(case.prediction.channels)?[0];
    check_values(case, inputs, config)?;
    let eval = Evaluation::compute(case, config);
    let mut values = vec![0f32; case.prediction.values.len()];
    GradientKernel::new(case, &eval).fill(0, &mut values);
    Ok(values)
}

/// Writes the gradient of `kernel` to `path` (`.nii` or `.nii.gz`), float32, in the layout and
/// geometry of the prediction it was computed on.
pub fn write_gradient(path: &Path, layout: &GradientLayout, kernel: &GradientKernel, opts: WriteOptions) -> Result<()> {
    write_f32(path, &layout.header, &layout.dims, opts, |start, out| kernel.fill(start, out))
}
