//! The library on arrays a program already holds: the same results as the files route, any memory
//! layout of the arrays, the prediction used in place when its layout allows, and the same checks
//! and messages as for files.

mod common;

use common::*;
use dicegrad::case::{Buffer, Case};
use dicegrad::loss::{Activation, LossKind, LossParam, LossPatch, LossRequest};
use dicegrad::{Error, Request};
use ndarray::{s, Array3, Array4, ShapeBuilder};

/// A 4-class case: labels (X, Y, Z) and probabilities channel-major, Fortran order.
fn data(shape: [usize; 3], seed: u64) -> (Vec<u8>, Vec<f32>) {
    labels_and_probs(seed, shape.iter().product(), 4)
}

/// The case as Fortran-ordered arrays, the memory layout of a NIfTI file.
fn fortran(shape: [usize; 3], labels: &[u8], probs: &[f32]) -> (Array3<u8>, Array4<f32>) {
    let [x, y, z] = shape;
    let l = Array3::from_shape_vec((x, y, z).f(), labels.to_vec()).unwrap();
    let p = Array4::from_shape_vec((x, y, z, 4).f(), probs.to_vec()).unwrap().permuted_axes([3, 0, 1, 2]);
    (l, p)
}

fn request(patch: LossPatch) -> Request {
    Request { loss: LossRequest { preset: None, overrides: patch }, ..Request::default() }
}

#[test]
fn arrays_in_the_layout_of_a_file_give_the_report_the_command_line_gives() {
    let d = tmp();
    let shape = [7, 6, 5];
    let (labels, probs) = data(shape, 3);
    let (lp, pp) = (at(&d, "l.nii.gz"), at(&d, "p.nii.gz"));
    Nii::u8(&shape, &labels).write(&lp);
    Nii::f32(&[7, 6, 5, 4], &probs).write(&pp);
    let cli = json_of(
        dicegrad().args(["analyze", "--json", "--compare", "mimic", "--labels"]).arg(&lp).arg("--pred").arg(&pp),
    );
    let (l, p) = fortran(shape, &labels, &probs);
    let req = Request { compare: vec![LossKind::Mimic], ..Request::default() };
    let report = dicegrad::analyze(l.view(), p.view(), &req).unwrap();
    let lib: serde_json::Value = serde_json::from_slice(&dicegrad::report::json::to_json(&report)).unwrap();
    for key in ["parameters", "loss", "two_level_holds", "channels", "comparison", "warnings"] {
        assert_eq!(lib[key], cli[key], "{key}");
    }
    assert_eq!(lib["inputs"]["labels"]["path"], serde_json::Value::Null);
    assert_eq!(lib["inputs"]["prediction"]["layout"], "channels_first");
    assert_eq!(lib["inputs"]["prediction"]["dims"], serde_json::json!([4, 7, 6, 5]));
}

#[test]
fn the_prediction_is_used_in_place_when_each_channel_is_one_block() {
    let shape = [7, 6, 5];
    let (labels, probs) = data(shape, 4);
    let (l, p) = fortran(shape, &labels, &probs);
    let case = Case::from_arrays(l.view(), p.view(), None).unwrap();
    assert!(matches!(case.prediction.values, Buffer::Borrowed(v) if v.as_ptr() == probs_ptr(&p)));
    // C order: each channel is one block too
    let c = p.as_standard_layout().into_owned();
    let case = Case::from_arrays(l.view(), c.view(), None).unwrap();
    assert!(matches!(case.prediction.values, Buffer::Borrowed(v) if v.as_ptr() == c.as_ptr()));
    assert_eq!(case.grid.order, [2, 1, 0], "z fastest");
    // (X, Y, Z, C) in C order seen as (C, X, Y, Z): channels interleaved, so copied
    let interleaved = p.permuted_axes([1, 2, 3, 0]).as_standard_layout().into_owned();
    let view = interleaved.view().permuted_axes([3, 0, 1, 2]);
    assert!(matches!(Case::from_arrays(l.view(), view, None).unwrap().prediction.values, Buffer::Owned { .. }));
}

fn probs_ptr(p: &Array4<f32>) -> *const f32 {
    p.as_slice_memory_order().unwrap().as_ptr()
}

#[test]
fn every_memory_layout_gives_the_same_gradient_at_each_voxel() {
    let shape = [9, 4, 6];
    let (labels, probs) = data(shape, 5);
    let (l, p) = fortran(shape, &labels, &probs);
    let logits = p.mapv(|v| v.ln());
    let softmax = request(LossPatch { activation: Some(Activation::Softmax), ..LossPatch::default() });
    for (name, req, pred) in [("probabilities", Request::default(), &p), ("logits", softmax, &logits)] {
        let reference = dicegrad::gradient(l.view(), pred.view(), &req).unwrap();
        let c_order = pred.as_standard_layout().into_owned();
        let labels_c = l.as_standard_layout().into_owned();
        let strided = {
            // every other voxel along y of a twice-as-large array: not contiguous, copied
            let mut big = Array4::<f32>::zeros((4, 9, 8, 6));
            big.slice_mut(s![.., .., ..;2, ..]).assign(pred);
            big
        };
        let strided_view = strided.slice(s![.., .., ..;2, ..]);
        for (layout, g) in [
            ("C order", dicegrad::gradient(labels_c.view(), c_order.view(), &req).unwrap()),
            ("strided", dicegrad::gradient(l.view(), strided_view, &req).unwrap()),
        ] {
            assert_eq!(g.dim(), reference.dim());
            // the sums are added in another order: the last bits may differ
            for (a, b) in g.iter().zip(reference.iter()) {
                assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-12), "{name}, {layout}: {a} vs {b}");
            }
        }
    }
}

#[test]
fn the_gradient_of_dice_on_arrays_is_the_closed_form_at_every_voxel() {
    let shape = [5, 4, 3];
    let (labels, probs) = data(shape, 6);
    let (l, p) = fortran(shape, &labels, &probs);
    let req = Request::default();
    let report = dicegrad::analyze(l.view(), p.view(), &req).unwrap();
    let g = dicegrad::gradient(l.view(), p.view(), &req).unwrap();
    for ((k, x, y, z), &v) in g.indexed_iter() {
        let cf = &report.channels[k].closed_form;
        let level = if usize::from(l[[x, y, z]]) == k { cf.foreground_level } else { cf.background_level };
        assert_eq!(v, level as f32, "channel {k} voxel ({x}, {y}, {z})");
    }
}

#[test]
fn labels_of_any_integer_type_give_the_same_report() {
    let shape = [5, 4, 3];
    let (labels, probs) = data(shape, 7);
    let (l, p) = fortran(shape, &labels, &probs);
    let want = serde_json::to_value(dicegrad::analyze(l.view(), p.view(), &Request::default()).unwrap()).unwrap();
    let as_i64 = l.mapv(i64::from);
    let as_f32 = l.mapv(f32::from);
    for got in [
        dicegrad::analyze(as_i64.view(), p.view(), &Request::default()).unwrap(),
        dicegrad::analyze(as_f32.view(), p.view(), &Request::default()).unwrap(),
    ] {
        assert_eq!(serde_json::to_value(&got).unwrap()["channels"], want["channels"]);
    }
}

#[test]
fn bad_arrays_are_refused_with_the_messages_files_get() {
    let shape = [5, 4, 3];
    let (mut labels, probs) = data(shape, 8);
    let (l, p) = fortran(shape, &labels, &probs);
    let req = Request::default();
    let err = |r: dicegrad::Result<dicegrad::Report>| r.map(|_| ()).unwrap_err().to_string();

    let small = Array3::<u8>::zeros((5, 4, 2));
    let e = err(dicegrad::analyze(small.view(), p.view(), &req));
    assert!(e.contains("labels array has spatial shape [5, 4, 2]") && e.contains("[5, 4, 3]"), "{e}");

    labels[2 + 5 * (1 + 4 * 2)] = 9; // voxel (2, 1, 2)
    let (bad, _) = fortran(shape, &labels, &probs);
    let e = err(dicegrad::analyze(bad.view(), p.view(), &req));
    assert!(
        e.starts_with("labels array: 1 voxels hold label values out of range (first: 9 at voxel (2, 1, 2))"),
        "{e}"
    );

    let mut nan = p.clone();
    nan[[2, 1, 3, 0]] = f32::NAN;
    let e = err(dicegrad::analyze(l.view(), nan.view(), &req));
    assert!(e.contains("prediction array: 1 values are NaN") && e.contains("voxel (1, 3, 0) of channel 2"), "{e}");

    let logits = p.mapv(|v| v.ln());
    let e = err(dicegrad::analyze(l.view(), logits.view(), &req));
    assert!(e.contains("not probabilities; if the array holds logits pass activation=softmax"), "{e}");

    let e = err(dicegrad::analyze(l.view(), p.view(), &Request { label: Some(2), ..Request::default() }));
    assert!(e.starts_with("label applies to a single-channel"), "{e}");
}

#[test]
fn a_parameter_no_requested_loss_reads_is_refused_naming_it() {
    let shape = [5, 4, 3];
    let (labels, probs) = data(shape, 9);
    let (l, p) = fortran(shape, &labels, &probs);
    let alpha = LossPatch { alpha: Some(0.3), ..LossPatch::default() };
    let e = dicegrad::analyze(l.view(), p.view(), &request(alpha.clone())).unwrap_err();
    assert!(matches!(&e, Error::Parameter { param, .. } if *param == LossParam::Alpha.param()), "{e}");
    assert!(e.to_string().starts_with("alpha does not apply to loss=dice (it applies to tversky)"), "{e}");
    // compared with Tversky, the parameter is read by the compared loss
    let with_tversky = Request { compare: vec![LossKind::Tversky], ..request(alpha) };
    let r = dicegrad::analyze(l.view(), p.view(), &with_tversky).unwrap();
    assert_eq!(r.parameters.spec.alpha, 0.3);
}
