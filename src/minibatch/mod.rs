//! A mini-batch as a training loop holds it: an input `(B, C, *spatial)` of probabilities or
//! logits, channel-first as PyTorch lays it out (or `(B, *spatial)`, one foreground channel), and a
//! target of labels `(B, *spatial)`, `(B, 1, *spatial)` or one-hot `(B, C, *spatial)` (MONAI's two
//! conventions; [`shape`], [`target`]). One to three spatial axes.
//!
//! **The loss of a mini-batch** (MONAI `reduction="mean"`; docs/math.md, "A mini-batch from
//! arrays"), with L(sums) the family's loss of one set of sums and w the loss weight:
//!
//! ```text
//!   per sample (MONAI batch=False, nnU-Net batch_dice=False):
//!     loss = w·(λ_sum·(1/B)·Σ_b L(sums_b) + λ_ce·CE),   dL/ds on sample b: (1/B)·w·coefficients(sums_b)
//!   pooled (MONAI batch=True, nnU-Net batch_dice, smp):
//!     loss = w·(λ_sum·L(Σ_b sums_b) + λ_ce·CE),          dL/ds on every sample: w·coefficients(Σ_b sums_b)
//!   CE = Σ over every voxel of the mini-batch of its class-weighted cross-entropy / Σ of its weights
//! ```
//!
//! (torch's `CrossEntropyLoss` and MONAI's `DiceCELoss` take the cross-entropy over the whole
//! mini-batch in both modes; with class weights that is not the mean of the samples' own.)
//!
//! **Its report.** Pooled, the mini-batch has one set of sums: it is analysed as one case, its
//! samples side by side along the first spatial axis ([`Case::side_by_side`]), every sum and so
//! every figure being the pooled one's. Per sample, each sample is analysed as a member of the
//! mini-batch ([`crate::loss::Evaluation::member`]: its Dice-type part weighted 1/B, its part of
//! the mini-batch's cross-entropy) — its figures (levels, dynamic range, float16 window) are those
//! of its part of the mini-batch's gradient, its loss its share of the mini-batch's — and the
//! mini-batch's loss and mixed-precision figures are gathered over all of them. The prediction is used in place (no copy) when it is float32 in C order,
//! except for the pooled report of several samples, which copies the values side by side.

pub mod shape;
pub mod target;

use ndarray::{ArrayD, ArrayView4, ArrayView5, ArrayViewD, Axis, IxDyn, ShapeBuilder};
use serde::Serialize;

use crate::analysis::precision::{MixedPrecision, PrecisionSums};
use crate::case::labels::LabelValue;
use crate::case::Case;
use crate::error::{Error, Naming, Param, Result};
use crate::loss::{CaseSums, GradientKernel, MimicWeights};
use crate::pipeline::{self, BatchReduction, Membership, Request};
use crate::report::{Inputs, Report};
use shape::{BatchShape, TargetForm};

/// A mini-batch's arrays, read: one case per sample.
pub struct MiniBatch<'a> {
    /// How the arrays were read.
    pub shape: BatchShape,
    /// The shape of the target, as given.
    pub target_shape: Vec<usize>,
    cases: Vec<(Case<'a>, Inputs)>,
}

/// An array `view` of `n` axes given more axes of length 1 at the end.
fn padded<T>(mut view: ArrayViewD<'_, T>, n: usize) -> ArrayViewD<'_, T> {
    while view.ndim() < n {
        let end = view.ndim();
        view = view.insert_axis(Axis(end));
    }
    view
}

impl<'a> MiniBatch<'a> {
    /// Reads `input` (float32) and `target` (labels, or one-hot) as a mini-batch (see [`shape`]):
    /// `spatial_dims` says how many of their axes are spatial (needed when their shapes leave it
    /// open);
    /// `label` picks label K of multi-label maps for a single-channel prediction. Each sample's
    /// labels are checked (whole, in range) and its prediction measured.
    pub fn new<L: LabelValue>(
        input: ArrayViewD<'a, f32>,
        target: ArrayViewD<'_, L>,
        spatial_dims: Option<usize>,
        label: Option<i64>,
    ) -> Result<MiniBatch<'a>> {
        let target_shape = target.shape().to_vec();
        let shape = shape::layout(input.shape(), target.shape(), spatial_dims)?;
        let mut input = input;
        if !shape.channel_axis {
            input = input.insert_axis(Axis(1));
        }
        let input = five(padded(input, 5));
        let cases = match shape.target {
            TargetForm::Labels { channel_axis } => {
                let labels = if channel_axis { target.index_axis_move(Axis(1), 0) } else { target };
                cases(input, four(padded(labels, 4)), &shape, label)?
            }
            TargetForm::OneHot => {
                let class = target::decode(five(padded(target, 5)))?;
                cases(input, class.view(), &shape, label)?
            }
        };
        Ok(MiniBatch { shape, target_shape, cases })
    }

    /// The mini-batch with its voxels `spacing` apart along its spatial axes (one size per axis,
    /// usually millimetres; the grid's axes taken as RAS at the origin): what the report's voxel
    /// size and the pictures' aspect read. The gradient does not depend on it.
    pub fn with_spacing(mut self, spacing: &[f64]) -> Result<MiniBatch<'a>> {
        let axes = self.shape.spatial.len();
        if spacing.len() != axes || !spacing.iter().all(|v| v.is_finite() && *v > 0.0) {
            return Err(Error::parameter(
                Param::SPACING,
                format!(
                    "must be {axes} positive voxel sizes, one per spatial axis of the input {:?}, got {spacing:?}",
                    self.shape.input
                ),
            ));
        }
        let mut geometry = crate::case::Geometry::default();
        for (a, &v) in spacing.iter().enumerate() {
            geometry.voxel_size[a] = v;
            geometry.affine[a][a] = v;
        }
        for (case, inputs) in &mut self.cases {
            case.geometry = geometry;
            let v = geometry.voxel_size.map(|v| v as f32);
            inputs.labels.voxel_size = v;
            inputs.prediction.file.voxel_size = v;
            inputs.labels.affine = geometry.affine;
            inputs.prediction.file.affine = geometry.affine;
        }
        Ok(self)
    }

    /// One case per sample, with what its report says of its arrays.
    pub fn cases(&self) -> &[(Case<'a>, Inputs)] {
        &self.cases
    }

    /// Samples, B.
    pub fn len(&self) -> usize {
        self.cases.len()
    }

    /// Whether there are no samples (never: a mini-batch is read with at least one).
    pub fn is_empty(&self) -> bool {
        self.cases.is_empty()
    }

    /// The gradient of the main loss of `request` over the mini-batch, reduced as `reduction`
    /// says, with respect to every value of the input, in the input's shape (C order): float32,
    /// each value computed in f64 and rounded once.
    pub fn gradient(&self, request: &Request, reduction: BatchReduction) -> Result<ArrayD<f32>> {
        let mut out = vec![0f32; self.shape.sample_values() * self.len()];
        self.gradient_into(request, reduction, &mut out)?;
        Ok(ArrayD::from_shape_vec(IxDyn(&self.shape.input), out).expect("B samples of C·N values"))
    }

    /// [`gradient`](Self::gradient) into `out`, the values of an array of the input's shape in C
    /// order (a buffer the caller holds: a numpy array, one reused from step to step).
    pub fn gradient_into(&self, request: &Request, reduction: BatchReduction, out: &mut [f32]) -> Result<()> {
        let per = self.shape.sample_values();
        if out.len() != per * self.len() {
            return Err(Error::usage(format!(
                "the output holds {} values; the gradient of an input {:?} has {}",
                out.len(),
                self.shape.input,
                per * self.len()
            )));
        }
        let evals = pipeline::evaluate_batch(&self.cases, request, reduction)?;
        for ((chunk, (case, _)), eval) in out.chunks_mut(per).zip(&self.cases).zip(&evals) {
            let kernel = GradientKernel::new(case, eval);
            let [x, y, z] = case.grid.shape;
            if case.grid.order == crate::case::Grid::c_order(case.grid.shape).order {
                kernel.fill(0, chunk);
            } else {
                let mut values = vec![0f32; per];
                kernel.fill(0, &mut values);
                let [sx, sy, sz] = case.grid.strides();
                let strides = (case.prediction.channels, x, y, z).strides((case.voxels(), sx, sy, sz));
                let from = ArrayView4::from_shape(strides, &values).expect("the grid's strides");
                let dims = (case.prediction.channels, x, y, z);
                let mut to = ndarray::ArrayViewMut4::from_shape(dims, chunk).expect("C order");
                to.assign(&from);
            }
        }
        for (b, ((chunk, (_, inputs)), eval)) in out.chunks(per).zip(&self.cases).zip(&evals).enumerate() {
            pipeline::check_gradient(chunk, eval, inputs, request).map_err(|e| in_sample(e, b, self.len()))?;
        }
        Ok(())
    }

    /// The mimic weights of the main loss of `request` on the mini-batch
    /// ([`crate::loss::mimic_weights`]): pooled, one set, of the pooled sums; per sample, one set
    /// per sample, of its part of the mini-batch's loss (its own sums; the raw a_k include 1/B).
    /// The values are checked as for the gradient. A loss without a Dice-type part has none: an
    /// error that says so.
    pub fn mimic_weights(&self, request: &Request, reduction: BatchReduction) -> Result<Vec<MimicWeights>> {
        let kind = request.loss.kind();
        if !kind.has_dice_part() {
            return Err(Error::usage(format!(
                "the {kind} loss has no Dice-type part: its gradient −g/(N·s) weighs the ground truth per voxel, so \
                 no per-class weight mimics it; give a Dice-type loss"
            )));
        }
        let evals = pipeline::evaluate_batch(&self.cases, request, reduction)?;
        let n = if reduction == BatchReduction::Pooled { 1 } else { evals.len() };
        Ok(evals[..n].iter().filter_map(MimicWeights::of).collect())
    }

    /// The report of the mini-batch's loss (see the module's doc): pooled, one report of the
    /// pooled sums; per sample, one report per sample as part of the mini-batch (with one sample,
    /// its own). Notes in the reports name parameters as `naming` does.
    pub fn analyze(&self, request: &Request, reduction: BatchReduction, naming: &dyn Naming) -> Result<BatchReport> {
        let n = self.len();
        if reduction == BatchReduction::Pooled {
            let whole;
            let (case, mut inputs) = if n == 1 {
                (&self.cases[0].0, self.cases[0].1.clone())
            } else {
                // every sample checked on its own first: a sample's error names it
                pipeline::check_batch(&self.cases, request)?;
                let cases: Vec<&Case> = self.cases.iter().map(|(c, _)| c).collect();
                whole = Case::side_by_side(&cases).expect("the samples of a mini-batch share their grid");
                let mut inputs = self.cases[0].1.clone();
                inputs.labels.dims = whole.grid.shape.to_vec();
                (&whole, inputs)
            };
            inputs.labels.dims = self.target_shape.clone();
            inputs.prediction.file.dims = self.shape.input.clone();
            let report = pipeline::analyze(case, inputs, request, naming)?.report;
            let batch = BatchInfo::of(reduction, n, report.loss.value, &[&report], request);
            return Ok(BatchReport { batch, report: Some(report), samples: Vec::new() });
        }
        // every sample checked on its own first (a sample's error names it); then each sample's
        // sums of each loss, one pass per loss, and the mini-batch's
        let configs = pipeline::check_batch(&self.cases, request)?;
        let own: Vec<Vec<CaseSums>> = self
            .cases
            .iter()
            .map(|(case, _)| configs.iter().map(|config| CaseSums::compute(case, config)).collect())
            .collect();
        let pooled: Vec<CaseSums> =
            (0..configs.len()).map(|k| pipeline::pool(&own.iter().map(|o| o[k].clone()).collect::<Vec<_>>())).collect();
        let mut samples = Vec::with_capacity(n);
        for (b, ((case, inputs), own)) in self.cases.iter().zip(&own).enumerate() {
            let member = Membership::Member { own, pooled: &pooled, share: 1.0 / n as f64 };
            let mut inputs = inputs.clone();
            inputs.prediction.file.dims = self.shape.input[1..].to_vec();
            let report =
                pipeline::analyze_as(case, inputs, request, naming, member).map_err(|e| in_sample(e, b, n))?.report;
            samples.push(report);
        }
        let loss = samples.iter().map(|r| r.loss.value).sum();
        let batch = BatchInfo::of(reduction, n, loss, &samples.iter().collect::<Vec<_>>(), request);
        Ok(BatchReport { batch, report: None, samples })
    }
}

/// An error of sample `b` of `n`, naming the sample when there are several.
fn in_sample(e: crate::Error, b: usize, n: usize) -> crate::Error {
    if n > 1 {
        e.in_sample(b)
    } else {
        e
    }
}

fn five<T>(v: ArrayViewD<'_, T>) -> ArrayView5<'_, T> {
    v.into_dimensionality().expect("five axes")
}

fn four<T>(v: ArrayViewD<'_, T>) -> ArrayView4<'_, T> {
    v.into_dimensionality().expect("four axes")
}

/// One case per sample of `input` `(B, C, X, Y, Z)` and `labels` `(B, X, Y, Z)`.
fn cases<'a, L: LabelValue>(
    input: ArrayView5<'a, f32>,
    labels: ArrayView4<'_, L>,
    shape: &BatchShape,
    label: Option<i64>,
) -> Result<Vec<(Case<'a>, Inputs)>> {
    let n = shape.batch;
    (0..n)
        .map(|b| {
            let case = Case::from_arrays(labels.index_axis(Axis(0), b), input.index_axis_move(Axis(0), b), label)
                .map_err(|e| in_sample(e, b, n))?;
            let inputs = Inputs::arrays(L::NAME, case.grid.shape, case.prediction.channels, &case.geometry);
            Ok((case, inputs))
        })
        .collect()
}

/// How a mini-batch's loss combines its samples, as a report says it.
fn reduction_name(r: BatchReduction) -> &'static str {
    match r {
        BatchReduction::PerCase => "per_sample",
        BatchReduction::Pooled => "pooled",
    }
}

/// The reduction of a mini-batch: pooled when `batch` says so, or, when it says nothing, when
/// the loss's preset pools (nnU-Net's `batch_dice`, smp); and why. A loss without Dice sums
/// (cross-entropy alone) has nothing to pool: asking for it is refused, and a preset's pooling
/// does not apply.
pub fn reduction(batch: Option<bool>, request: &Request) -> Result<(BatchReduction, &'static str)> {
    let sums = request.loss.kind().has_dice_part();
    let (pooled, why) = match batch {
        Some(true) if !sums => {
            return Err(Error::parameter(
                Param::BATCH_DICE,
                format!(
                    "cannot pool: the {} loss has no Dice sums, its mean runs over every voxel of the mini-batch",
                    request.loss.kind()
                ),
            ))
        }
        Some(b) => (b, "given"),
        None if !sums => (false, "the loss has no Dice sums to pool"),
        None => crate::loss::preset::batch_dice(request.loss.preset),
    };
    Ok((if pooled { BatchReduction::Pooled } else { BatchReduction::PerCase }, why))
}

/// The mini-batch as a whole.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct BatchInfo {
    /// Samples, B.
    pub size: usize,
    /// How the loss combines them: `per_sample` (each sample's loss, averaged) or `pooled` (one
    /// loss of the sums over the mini-batch).
    pub reduction: &'static str,
    /// The mini-batch's loss (unitless): the mean of the samples' losses, or the pooled loss.
    pub loss: f64,
    /// The mixed-precision figures of the mini-batch's whole gradient: the float16 loss-scale
    /// window over every value of every sample, the shares at the loss scale over all of them.
    pub mixed_precision: MixedPrecision,
}

impl BatchInfo {
    fn of(reduction: BatchReduction, size: usize, loss: f64, reports: &[&Report], request: &Request) -> BatchInfo {
        let mut sums = PrecisionSums::empty(request.loss_scale);
        for r in reports {
            for c in &r.channels {
                sums.merge(&c.gradient.precision_sums);
            }
        }
        BatchInfo { size, reduction: reduction_name(reduction), loss, mixed_precision: sums.figures() }
    }
}

/// The report of a mini-batch.
#[derive(Clone, Debug)]
pub struct BatchReport {
    pub batch: BatchInfo,
    /// Pooled: the report of the mini-batch as one case.
    pub report: Option<Report>,
    /// Per sample: each sample's report as part of the mini-batch (its Dice-type part weighted
    /// 1/B, its share of the cross-entropy).
    pub samples: Vec<Report>,
}

impl BatchReport {
    /// As JSON: pooled, the report's keys (those of report.json, in their order) and `batch`; per
    /// sample, `batch` and `samples`.
    pub fn to_json(&self) -> Vec<u8> {
        #[derive(Serialize, schemars::JsonSchema)]
        struct One<'r> {
            #[serde(flatten)]
            report: &'r Report,
            batch: &'r BatchInfo,
        }
        #[derive(Serialize, schemars::JsonSchema)]
        struct Samples<'r> {
            batch: &'r BatchInfo,
            samples: &'r [Report],
        }
        let mut out = match &self.report {
            Some(report) => serde_json::to_vec_pretty(&One { report, batch: &self.batch }),
            None => serde_json::to_vec_pretty(&Samples { batch: &self.batch, samples: &self.samples }),
        }
        .expect("the report holds only serialisable data");
        out.push(b'\n');
        out
    }
}
