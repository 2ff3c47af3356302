//! `analyze` and `batch` load a case the same way: labels and prediction must lie in the same
//! place in the world (affines equal within `--affine-tol`, NaN never equal), and an nnU-Net `.npz`
//! prediction takes its geometry from the labels.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// A binary case whose prediction has the labels' header but for `change` to it; (labels, pred).
fn pair(d: &tempfile::TempDir, change: impl Fn(&mut Nii)) -> (PathBuf, PathBuf) {
    let shape = [6, 5, 4];
    let n = 120;
    let labels: Vec<u8> = (0..n).map(|i| u8::from(i % 3 == 0)).collect();
    let probs: Vec<f32> = labels.iter().map(|&l| 0.2 + 0.6 * f32::from(l)).collect();
    let (lp, pp) = (at(d, "labels.nii.gz"), at(d, "pred.nii.gz"));
    Nii::u8(&shape, &labels).write(&lp);
    let mut p = Nii::f32(&shape, &probs);
    change(&mut p);
    p.write(&pp);
    (lp, pp)
}

fn analyze(l: &Path, p: &Path, extra: &[&str]) -> assert_cmd::Command {
    let mut c = dicegrad();
    c.args(["analyze", "--labels"]).arg(l).arg("--pred").arg(p).args(extra);
    c
}

#[test]
fn analyze_refuses_a_prediction_flipped_in_x_and_names_the_flip() {
    let d = tmp();
    // the test writer's sform has −1.5 along x; a flipped prediction has +1.5
    let (l, p) = pair(&d, |n| {
        n.srow[0][0] = 1.5;
        n.srow[0][3] = 90.0 - 1.5 * 5.0;
    });
    let err = fails_with_2(&mut analyze(&l, &p, &[]));
    assert!(err.contains("labels.nii.gz and") && err.contains("pred.nii.gz are not in the same space"), "{err}");
    assert!(err.contains("voxel axis x is flipped"), "{err}");
    assert!(err.contains("origin differs by (-7.5, 0, 0)"), "{err}");
    assert!(err.contains("labels [-1.5 0 0 90;") && err.contains("prediction [1.5 0 0 82.5;"), "{err}");
    assert!(err.contains("--affine-tol 0.001"), "{err}");
}

#[test]
fn analyze_refuses_a_shift_and_another_voxel_size_and_accepts_rounding() {
    let d = tmp();
    let (l, p) = pair(&d, |n| n.srow[1][3] += 50.0);
    let err = fails_with_2(&mut analyze(&l, &p, &[]));
    assert!(err.contains("the origin differs by (0, 50, 0)") && err.contains("up to 50"), "{err}");
    // a larger tolerance lets it through
    assert!(analyze(&l, &p, &["--affine-tol", "60"]).output().unwrap().status.success());

    let (l, p) = pair(&d, |n| n.srow[2][2] = 2.0);
    let err = fails_with_2(&mut analyze(&l, &p, &[]));
    assert!(err.contains("the voxel size along z differs (3 in the labels, 2 in the prediction)"), "{err}");

    let (l, p) = pair(&d, |n| n.srow[0][3] += 4e-4);
    let out = analyze(&l, &p, &["--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_nan_in_an_affine_is_a_mismatch_in_analyze_and_in_batch() {
    let d = tmp();
    let (l, p) = pair(&d, |n| n.srow[1][1] = f32::NAN);
    let err = fails_with_2(&mut analyze(&l, &p, &["--affine-tol", "1e9"]));
    assert!(err.contains("the prediction's affine holds a NaN or infinite entry"), "{err}");
    assert!(err.contains("fix the header's sform or qform") && !err.contains("raise --affine-tol"), "{err}");

    let (ld, pd, o) = (at(&d, "L"), at(&d, "P"), at(&d, "O"));
    std::fs::create_dir_all(&ld).unwrap();
    std::fs::create_dir_all(&pd).unwrap();
    std::fs::copy(&l, ld.join("c1.nii.gz")).unwrap();
    std::fs::copy(&p, pd.join("c1.nii.gz")).unwrap();
    let out = dicegrad()
        .args(["batch", "--quiet", "--labels-dir"])
        .arg(&ld)
        .arg("--pred-dir")
        .arg(&pd)
        .arg("--out")
        .arg(&o)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "the case fails, the run goes on");
    let line = std::fs::read_to_string(o.join("cases.jsonl")).unwrap();
    assert!(
        line.contains("\"failed\"") && line.contains("cannot be placed in the world") && line.contains("NaN"),
        "{line}"
    );
}

#[test]
fn analyze_reads_nnunet_npz_with_the_geometry_of_the_labels() {
    let d = tmp();
    let (x, y, z, c) = (5, 4, 3, 3);
    let (labels, probs) = labels_and_probs(9, x * y * z, c);
    let (l, npz, nii) = (at(&d, "case.nii.gz"), at(&d, "case.npz"), at(&d, "probs.nii.gz"));
    Nii::u8(&[x, y, z], &labels).write(&l);
    write_npz(&npz, [c, z, y, x], &probs, false);
    Nii::f32(&[x, y, z, c], &probs).write(&nii);
    let (g1, g2) = (at(&d, "g1.nii"), at(&d, "g2.nii"));
    let a = json_of(analyze(&l, &npz, &["--json", "--grad-out"]).arg(&g1));
    let b = json_of(analyze(&l, &nii, &["--json", "--grad-out"]).arg(&g2));
    assert_eq!(a["loss"], b["loss"]);
    assert_eq!(a["channels"], b["channels"]);
    assert_eq!(a["inputs"]["prediction"]["datatype"], "float32 (npz)");
    assert_eq!(a["inputs"]["prediction"]["dims"], serde_json::json!([c, z, y, x]));
    assert_eq!(a["inputs"]["prediction"]["affine"], b["inputs"]["labels"]["affine"], "geometry of the labels");
    // the gradient volume: the same values, (X, Y, Z, C), with the labels' header geometry
    let (ga, gb) = (std::fs::read(&g1).unwrap(), std::fs::read(&g2).unwrap());
    assert_eq!(ga.len(), 352 + 4 * x * y * z * c);
    assert_eq!(ga[352..], gb[352..]);
    assert_eq!(ga[280..328], gb[280..328], "sform rows");
}

#[test]
fn analyze_refuses_an_npz_on_another_grid_naming_both_shapes() {
    let d = tmp();
    let (l, npz) = (at(&d, "case.nii.gz"), at(&d, "case.npz"));
    Nii::u8(&[5, 4, 3], &[0; 60]).write(&l);
    write_npz(&npz, [2, 3, 5, 4], &[0.5; 120], false);
    let err = fails_with_2(&mut analyze(&l, &npz, &[]));
    assert!(err.contains("[5, 4, 3]") && err.contains("[4, 5, 3]") && err.contains("case.npz"), "{err}");
}

#[test]
fn an_affine_tolerance_that_is_not_a_finite_number_is_refused() {
    let d = tmp();
    let (l, p) = pair(&d, |_| {});
    for tol in ["nan", "-1", "inf"] {
        let err = fails_with_2(&mut analyze(&l, &p, &[&format!("--affine-tol={tol}")]));
        assert!(err.contains("--affine-tol must be a finite number ≥ 0"), "{tol}: {err}");
    }
    let (ld, pd, o) = (at(&d, "L"), at(&d, "P"), at(&d, "O"));
    std::fs::create_dir_all(&ld).unwrap();
    std::fs::create_dir_all(&pd).unwrap();
    std::fs::copy(&l, ld.join("c1.nii.gz")).unwrap();
    std::fs::copy(&p, pd.join("c1.nii.gz")).unwrap();
    let mut batch = dicegrad();
    batch.args(["batch", "--quiet", "--affine-tol", "nan", "--labels-dir"]).arg(&ld).arg("--pred-dir").arg(&pd);
    let err = fails_with_2(batch.arg("--out").arg(&o));
    assert!(err.contains("--affine-tol must be a finite number"), "{err}");
    assert!(!o.join("run.json").exists(), "refused before the run starts");
}

/// A 1-channel .npz on the grid (5, 4, 3) of `case.nii.gz`, written by `dict` and `data`.
fn npz_case(d: &tempfile::TempDir, dict: &str, data: &[u8]) -> (PathBuf, PathBuf) {
    let (l, npz) = (at(d, "case.nii.gz"), at(d, "case.npz"));
    Nii::u8(&[5, 4, 3], &[0; 60]).write(&l);
    write_npy_zip(&npz, dict, data);
    (l, npz)
}

#[test]
fn a_fortran_ordered_npz_is_refused_even_with_one_channel() {
    let d = tmp();
    let data: Vec<u8> = (0..60).flat_map(|i| (i as f32 / 60.0).to_le_bytes()).collect();
    let (l, npz) = npz_case(&d, "'descr': '<f4', 'fortran_order': True, 'shape': (1, 3, 4, 5)", &data);
    let err = fails_with_2(&mut analyze(&l, &npz, &[]));
    assert!(err.contains("case.npz") && err.contains("Fortran-ordered") && err.contains("C order"), "{err}");
}

#[test]
fn broken_npz_files_are_refused_saying_what_is_wrong() {
    let d = tmp();
    let f4 = "'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 4, 5)";
    let full: Vec<u8> = (0..60).flat_map(|i| (i as f32 / 60.0).to_le_bytes()).collect();
    let (l, npz) = npz_case(&d, f4, &full[..100]);
    let err = fails_with_2(&mut analyze(&l, &npz, &[]));
    assert!(err.contains("truncated") && err.contains("240 bytes") && err.contains("only 100 could be read"), "{err}");

    let (l, npz) = npz_case(&d, "'descr': '<i4', 'fortran_order': False, 'shape': (1, 3, 4, 5)", &full);
    let err = fails_with_2(&mut analyze(&l, &npz, &[]));
    assert!(err.contains("has dtype '<i4'; only float16/32/64"), "{err}");

    let (l, npz) = npz_case(&d, "'descr': '<f4', 'fortran_order': False, 'shape': (0, 3, 4, 5)", &[]);
    let err = fails_with_2(&mut analyze(&l, &npz, &[]));
    assert!(err.contains("case.npz") && err.contains("empty axis"), "{err}");

    std::fs::write(&npz, b"not a zip at all").unwrap();
    let err = fails_with_2(&mut analyze(&l, &npz, &[]));
    assert!(err.contains("case.npz: not a readable .npz archive") && !err.contains("NIfTI volume"), "{err}");
}

#[test]
fn a_prediction_without_sform_or_qform_is_named_as_such() {
    let d = tmp();
    let (l, p) = pair(&d, |n| {
        n.sform_code = 0;
        n.qform_code = 0;
    });
    let err = fails_with_2(&mut analyze(&l, &p, &[]));
    assert!(err.contains("the prediction's header sets neither sform nor qform"), "{err}");
    assert!(!err.contains("the labels' header"), "{err}");
}

#[test]
fn labels_without_sform_or_qform_are_named_as_such() {
    let d = tmp();
    let (l, p) = pair(&d, |_| {});
    let mut labels = Nii::u8(&[6, 5, 4], &[0; 120]);
    labels.sform_code = 0;
    labels.qform_code = 0;
    labels.write(&l);
    let err = fails_with_2(&mut analyze(&l, &p, &[]));
    assert!(err.contains("the labels' header sets neither sform nor qform"), "{err}");
    assert!(!err.contains("the prediction's header"), "{err}");
}
