//! The library on arrays a program already holds: labels `(X, Y, Z)` of any integer type and a
//! prediction `(C, X, Y, Z)` of float32, analysed without files. The same route as the command
//! line ([`crate::pipeline`]).

use ndarray::{Array4, ArrayView3, ArrayView4, ShapeBuilder};

use crate::case::labels::LabelValue;
use crate::case::Case;
use crate::error::{FieldNames, Result};
use crate::pipeline::{self, Request};
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
