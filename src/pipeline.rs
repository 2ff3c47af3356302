//! One case from loaded volumes to its report: evaluate the loss, measure its gradient, and (with
//! comparisons) do the same for the other losses and compare them pairwise. The gradient kernel is
//! handed back so that the caller can write the gradient volume without another reduction pass.

use crate::analysis::analyze;
use crate::analysis::compare::compare;
use crate::error::Result;
use crate::loss::{Evaluation, GradientKernel, LossConfig, LossKind};
use crate::report::comparison::{ComparedLoss, Comparison};
use crate::report::Report;
use crate::volume::Case;

/// The report of a case and the kernel of its main loss.
pub struct Analysis<'a> {
    pub report: Report,
    pub kernel: GradientKernel<'a>,
    /// The main loss's sums (for pooling over cases).
    pub sums: crate::loss::CaseSums,
}

/// Analyses `case` with the loss `config`, comparing it with the families in `compare` (each with
/// the main loss's options; the main family itself and repeats are skipped).
pub fn analyze_case<'a>(
    case: &'a Case,
    config: &LossConfig,
    compare_with: &[LossKind],
    label: Option<i64>,
) -> Result<Analysis<'a>> {
    let eval = Evaluation::compute(case, config);
    let sums = eval.sums.clone();
    let kernel = GradientKernel::new(case, &eval);
    let stats = analyze(&kernel, &eval);
    let mut report = Report::build(case, &eval, stats, label);
    let mut kinds: Vec<LossKind> = Vec::new();
    for &k in compare_with {
        if k != config.spec.kind && !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    if !kinds.is_empty() {
        let mut evals = vec![eval];
        for k in kinds {
            evals.push(Evaluation::compute(case, &config.with_kind(k)?));
        }
        let kernels: Vec<GradientKernel> = evals.iter().map(|e| GradientKernel::new(case, e)).collect();
        let losses =
            evals[1..].iter().zip(&kernels[1..]).map(|(e, k)| ComparedLoss::build(case, e, analyze(k, e))).collect();
        report.comparison = Some(Comparison { losses, pairs: compare(&kernels, &evals) });
    }
    Ok(Analysis { report, kernel, sums })
}
