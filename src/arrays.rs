//! The library on arrays a program already holds: labels `(X, Y, Z)` of any integer type and a
//! prediction `(C, X, Y, Z)` of float32, analysed without files; or a mini-batch of them, labels
//! `(B, X, Y, Z)` and predictions `(B, C, X, Y, Z)`, as a training loop holds it. The same route as
//! the command line ([`crate::pipeline`]).

use ndarray::{Array4, Array5, ArrayView3, ArrayView4, ArrayView5, ShapeBuilder};

use crate::case::labels::LabelValue;
use crate::case::Case;
use crate::error::{Error, FieldNames, Result};
use crate::minibatch::MiniBatch;
use crate::pipeline::{self, BatchReduction, Request};
use crate::report::{Inputs, Report};

/// The case of the arrays, and what the report says about them.
fn prepare<'a, L: LabelValue>(
    labels: ArrayView3<'_, L>,
    prediction: ArrayView4<'a, f32>,
    request: &Request,
) -> Result<(Case<'a>, Inputs)> {
    let case = Case::from_arrays(labels, prediction, request.label)?;
    let inputs = Inputs::arrays(L::NAME, case.grid.shape, case.prediction.channels, &case.geometry);
    Ok((case, inputs))
}

/// The report of a case given as arrays: labels `(X, Y, Z)` (label values 0..C−1, or 0/1 for a
/// single channel) and a prediction `(C, X, Y, Z)` of probabilities, or logits with an activation.
/// The same report the command line writes as report.json.
pub fn analyze<L: LabelValue>(
    labels: ArrayView3<'_, L>,
    prediction: ArrayView4<'_, f32>,
    request: &Request,
) -> Result<Report> {
    let (case, inputs) = prepare(labels, prediction, request)?;
    Ok(pipeline::analyze(&case, inputs, request, &FieldNames)?.report)
}

/// The gradient of the loss with respect to every value of `prediction`, in its shape `(C, X, Y,
/// Z)`: float32, each value computed in f64 and rounded once.
pub fn gradient<L: LabelValue>(
    labels: ArrayView3<'_, L>,
    prediction: ArrayView4<'_, f32>,
    request: &Request,
) -> Result<Array4<f32>> {
    let (case, inputs) = prepare(labels, prediction, request)?;
    let values = pipeline::gradient(&case, &inputs, request)?;
    let [x, y, z] = case.grid.shape;
    let [sx, sy, sz] = case.grid.strides();
    let shape = (case.prediction.channels, x, y, z).strides((case.voxels(), sx, sy, sz));
    Ok(Array4::from_shape_vec(shape, values).expect("the strides describe the values' layout"))
}

/// The gradient of the loss of a mini-batch with respect to every value of `prediction`, in its
/// shape `(B, C, X, Y, Z)`: labels `(B, X, Y, Z)`, one case per sample, the loss of the samples
/// combined as `reduction` says (each sample's loss averaged over the samples, or one loss of the
/// sums pooled over them). Float32, each value computed in f64 and rounded once.
pub fn batch_gradient<L: LabelValue>(
    labels: ndarray::ArrayView4<'_, L>,
    prediction: ArrayView5<'_, f32>,
    request: &Request,
    reduction: BatchReduction,
) -> Result<Array5<f32>> {
    let b = prediction.dim().0;
    if labels.dim().0 != b {
        return Err(Error::usage(format!(
            "the labels hold {} samples and the prediction {b}; give one label map per sample (B, X, Y, Z) for a \
             prediction (B, C, X, Y, Z)",
            labels.dim().0
        )));
    }
    let batch = MiniBatch::new(prediction.into_dyn(), labels.into_dyn(), None, request.label)?;
    let g = batch.gradient(request, reduction)?;
    Ok(g.into_dimensionality().expect("the input's five axes"))
}
