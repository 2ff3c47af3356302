//! Outputs checked from the outside: the JSON report against sums computed here from the input
//! files, the gradient volume read back with the independent `nifti` crate (geometry kept, values
//! equal to the closed form), the pictures, and unusual but valid inputs (datatypes, byte order,
//! scaling, 5D layout, `--label`).

mod common;

use std::path::Path;

use common::*;
use nifti::{IntoNdArray, NiftiObject, ReaderOptions};
use serde_json::Value;

/// Values of a NIfTI file in file (Fortran) order, and its header, read by the `nifti` crate.
fn read_back(path: &Path) -> (nifti::NiftiHeader, Vec<f32>) {
    let obj = ReaderOptions::new().read_file(path).unwrap();
    let header = obj.header().clone();
    let arr = obj.into_volume().into_ndarray::<f32>().unwrap();
    let values = arr.t().iter().copied().collect(); // transpose: C-order iteration = Fortran order
    (header, values)
}

/// Closed-form dL/ds levels of a channel from the raw data: (foreground, background).
fn levels(probs: &[f32], fg: &[bool], k_in_loss: usize) -> (f64, f64) {
    let (mut i, mut s, mut g) = (0.0, 0.0, 0.0);
    for (&p, &f) in probs.iter().zip(fg) {
        s += p as f64;
        if f {
            i += p as f64;
            g += 1.0;
        }
    }
    let (n, d) = (2.0 * i + 1e-5, s + g + 1e-5);
    let k = k_in_loss as f64;
    ((n - 2.0 * d) / (k * d * d), n / (k * d * d))
}

fn synth(dir: &tempfile::TempDir, classes: &str, shape: &str) {
    dicegrad()
        .args(["synth", "--seed", "3", "--classes", classes, "--shape", shape, "--out"])
        .arg(dir.path())
        .assert()
        .success();
}

#[test]
fn json_report_agrees_with_sums_computed_from_the_files() {
    let d = tmp();
    synth(&d, "3", "12,10,8");
    let (lp, pp) = (at(&d, "labels.nii.gz"), at(&d, "probs.nii.gz"));
    let r = json_of(dicegrad().args(["analyze", "--json", "--labels"]).arg(&lp).arg("--pred").arg(&pp));
    let (_, labels) = read_back(&lp);
    let (_, probs) = read_back(&pp);
    let n = labels.len();
    let mut loss = 0.0;
    for k in 0..3 {
        let fg: Vec<bool> = labels.iter().map(|&l| l as usize == k).collect();
        let (f, b) = levels(&probs[k * n..(k + 1) * n], &fg, 3);
        let ch = &r["channels"][k];
        assert_eq!(ch["channel"], k);
        assert_eq!(ch["label"], k);
        assert_eq!(ch["foreground_voxels"], fg.iter().filter(|&&x| x).count());
        let g = &ch["gradient"];
        for (side, level) in [("foreground", f), ("background", b)] {
            assert_eq!(g[side]["min"].as_f64().unwrap() as f32, level as f32, "{side}");
            assert_eq!(g[side]["max"].as_f64().unwrap() as f32, level as f32);
            assert_eq!(g[side]["distinct"], 1);
        }
        let rel = |a: &Value, b: f64| (a.as_f64().unwrap() - b).abs() <= 1e-6 * b.abs();
        assert!(rel(&g["fit"]["a"], b - f) && rel(&g["fit"]["c"], b), "fit {k}");
        assert_eq!(g["fit"]["r2"], 1.0);
        let soft = ch["soft_dice"].as_f64().unwrap();
        assert!(rel(&g["level_ratio"]["closed_form"], 1.0 - 2.0 / soft));
        assert!(rel(&g["level_ratio"]["measured"], f / b));
        loss += 1.0 - soft;
    }
    assert!((r["loss"]["value"].as_f64().unwrap() - loss / 3.0).abs() < 1e-12);
    assert_eq!(r["two_level_holds"], true);
    assert_eq!(r["parameters"]["smooth_nr"], 1e-5);
    assert_eq!(r["inputs"]["prediction"]["channels"], 3);
}

#[test]
fn gradient_volume_keeps_geometry_and_holds_the_closed_form() {
    let d = tmp();
    synth(&d, "2", "9,8,7");
    let (lp, pp) = (at(&d, "labels.nii.gz"), at(&d, "probs.nii.gz"));
    for name in ["g.nii", "g.nii.gz"] {
        let g = at(&d, name);
        dicegrad()
            .args(["analyze", "--labels"])
            .arg(&lp)
            .arg("--pred")
            .arg(&pp)
            .arg("--grad-out")
            .arg(&g)
            .assert()
            .success();
        let (hp, probs) = read_back(&pp);
        let (hg, grad) = read_back(&g);
        assert_eq!(hg.datatype, 16);
        assert_eq!((hg.dim, hg.pixdim, hg.xyzt_units), (hp.dim, hp.pixdim, hp.xyzt_units));
        assert_eq!((hg.sform_code, hg.qform_code), (hp.sform_code, hp.qform_code));
        assert_eq!((hg.srow_x, hg.srow_y, hg.srow_z), (hp.srow_x, hp.srow_y, hp.srow_z));
        assert_eq!([hg.quatern_b, hg.quatern_c, hg.quatern_d], [hp.quatern_b, hp.quatern_c, hp.quatern_d]);
        assert_eq!([hg.quatern_x, hg.quatern_y, hg.quatern_z], [hp.quatern_x, hp.quatern_y, hp.quatern_z]);
        let (_, labels) = read_back(&lp);
        let fg: Vec<bool> = labels.iter().map(|&l| l == 1.0).collect();
        let (f, b) = levels(&probs, &fg, 1);
        for (v, is_fg) in grad.iter().zip(&fg) {
            assert_eq!(*v, if *is_fg { f as f32 } else { b as f32 });
        }
    }
}

#[test]
fn gradient_volume_says_what_it_holds_in_descrip_and_intent() {
    let d = tmp();
    synth(&d, "3", "6,5,4");
    let lp = at(&d, "labels.nii.gz");
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim_end_matches('\0').to_string();
    let cases = [
        (vec!["--pred", "logits.nii.gz", "--preset", "nnunet"], "dicegrad gradient of dice+ce (nnunet) w.r.t. logits"),
        (
            vec!["--pred", "probs.nii.gz", "--loss", "generalized-dice"],
            "dicegrad gradient of generalized-dice w.r.t. probabilities",
        ),
    ];
    for (args, want) in cases {
        let g = at(&d, "g.nii.gz");
        let mut cmd = dicegrad();
        cmd.current_dir(d.path())
            .args(["analyze", "--force", "--labels"])
            .arg(&lp)
            .args(&args)
            .arg("--grad-out")
            .arg(&g);
        cmd.assert().success();
        let (hg, _) = read_back(&g);
        assert_eq!(text(&hg.descrip), want);
        assert!(hg.descrip.len() <= 80);
        assert_eq!(text(&hg.intent_name), "gradient");
        assert_eq!((hg.intent_code, hg.intent_p1, hg.intent_p2, hg.intent_p3), (0, 0.0, 0.0, 0.0));
    }
}

#[test]
fn reads_big_endian_scaled_integers_in_a_5d_layout_and_writes_the_gradient_back_in_it() {
    let d = tmp();
    let shape = [5, 4, 3];
    let n = 60;
    let mut r = Lcg(17);
    let labels: Vec<i16> = (0..n).map(|_| r.below(3) as i16).collect();
    // probabilities stored as uint8 with scl_slope 1/255 (a common way to save softmax maps)
    let mut stored = vec![0u8; 3 * n];
    for i in 0..n {
        let a = r.below(200) as u8;
        let b = r.below((255 - a as usize).max(1)) as u8;
        stored[i] = a;
        stored[n + i] = b;
        stored[2 * n + i] = 255 - a - b;
    }
    let mut lab = Nii::new(&shape, 4, 16, labels.iter().flat_map(|v| v.to_be_bytes()).collect());
    lab.big_endian = true;
    let mut pred = Nii::new(&[5, 4, 3, 1, 3], 2, 8, stored.clone());
    pred.big_endian = true;
    pred.slope = 1.0 / 255.0;
    let (lp, pp, gp) = (at(&d, "l.nii"), at(&d, "p.nii.gz"), at(&d, "g.nii"));
    lab.write(&lp);
    pred.write(&pp);
    let r = json_of(
        dicegrad().args(["analyze", "--json", "--labels"]).arg(&lp).arg("--pred").arg(&pp).arg("--grad-out").arg(&gp),
    );
    assert_eq!(r["inputs"]["prediction"]["layout"], "dim5");
    assert_eq!(r["inputs"]["labels"]["datatype"], "int16");
    let (hg, grad) = read_back(&gp);
    assert_eq!(&hg.dim[..6], &[5, 5, 4, 3, 1, 3]);
    assert_eq!(hg.endianness, nifti::Endianness::Big);
    for k in 0..3 {
        let probs: Vec<f32> = stored[k * n..(k + 1) * n].iter().map(|&v| (v as f64 / 255.0f32 as f64) as f32).collect();
        let fg: Vec<bool> = labels.iter().map(|&l| l as usize == k).collect();
        let (f, b) = levels(&probs, &fg, 3);
        for i in 0..n {
            let want = if fg[i] { f } else { b };
            assert!((grad[k * n + i] as f64 - want).abs() <= 1e-6 * want.abs(), "channel {k} voxel {i}");
        }
    }
}

#[test]
fn label_option_analyses_one_class_of_a_multilabel_map() {
    let d = tmp();
    let labels: Vec<f32> = vec![0.0, 7.0, 7.0, 42.0, 0.0, 7.0, 42.0, 0.0];
    let probs = [0.1f32, 0.8, 0.7, 0.2, 0.0, 0.9, 0.3, 0.1];
    let (lp, pp) = (at(&d, "l.nii"), at(&d, "p.nii"));
    Nii::f32(&[2, 2, 2], &labels).write(&lp);
    Nii::f32(&[2, 2, 2], &probs).write(&pp);
    let r = json_of(dicegrad().args(["analyze", "--json", "--label", "7", "--labels"]).arg(&lp).arg("--pred").arg(&pp));
    let ch = &r["channels"][0];
    assert_eq!(ch["label"], 7);
    assert_eq!(ch["foreground_voxels"], 3);
    // I = 0.8 + 0.7 + 0.9, S = 3.1, G = 3
    let (n, dd) = (2.0 * 2.4 + 1e-5, 6.1 + 1e-5);
    assert!((ch["soft_dice"].as_f64().unwrap() - n / dd).abs() < 1e-7);
}

#[test]
fn out_folder_holds_report_and_pictures_and_json_goes_to_stdout_alone() {
    let d = tmp();
    synth(&d, "4", "10,9,8");
    let out = at(&d, "out");
    let res = dicegrad()
        .args(["analyze", "--json", "--activation", "softmax", "--labels"])
        .arg(at(&d, "labels.nii.gz"))
        .arg("--pred")
        .arg(at(&d, "logits.nii.gz"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(res.status.success());
    let stdout: Value = serde_json::from_slice(&res.stdout).unwrap();
    let file: Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(stdout, file);
    assert_eq!(file["two_level_holds"], false);
    assert_eq!(file["parameters"]["gradient_wrt"], "logits (through softmax)");
    let png = std::fs::read(out.join("histogram.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let svg = std::fs::read_to_string(out.join("histogram.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("channel 3 (label 3)") && svg.contains("foreground (g = 1)"));
    let mut names: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    let want = [
        "density.png",
        "density.svg",
        "histogram.png",
        "histogram.svg",
        "report.html",
        "report.json",
        "slices.png",
        "slices.svg",
    ];
    assert_eq!(names, want, "every output, and no temporary file left");
}

#[test]
fn terminal_table_states_the_verdict() {
    let d = tmp();
    let (l, p) = binary_case(&d, [6, 5, 4], 9);
    let out = dicegrad().args(["analyze", "--labels"]).arg(&l).arg("--pred").arg(&p).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("two-level structure holds"), "{text}");
    assert!(text.contains("soft Dice") && text.contains("fit R²"));
}

#[test]
fn synth_is_reproducible_from_its_seed() {
    let (a, b) = (tmp(), tmp());
    synth(&a, "3", "8,8,8");
    synth(&b, "3", "8,8,8");
    for f in ["labels.nii.gz", "probs.nii.gz", "logits.nii.gz"] {
        assert_eq!(std::fs::read(at(&a, f)).unwrap(), std::fs::read(at(&b, f)).unwrap(), "{f}");
    }
}

#[test]
fn inputs_are_not_modified() {
    let d = tmp();
    let (l, p) = binary_case(&d, [6, 5, 4], 10);
    let before = (std::fs::read(&l).unwrap(), std::fs::read(&p).unwrap());
    dicegrad()
        .args(["analyze", "--labels"])
        .arg(&l)
        .arg("--pred")
        .arg(&p)
        .arg("--grad-out")
        .arg(at(&d, "g.nii"))
        .assert()
        .success();
    assert_eq!(before, (std::fs::read(&l).unwrap(), std::fs::read(&p).unwrap()));
}

#[test]
fn a_label_value_that_occurs_nowhere_is_noted() {
    let d = tmp();
    let (l, p) = binary_case(&d, [5, 4, 3], 2);
    let report =
        json_of(dicegrad().args(["analyze", "--json", "--label", "7", "--labels"]).arg(&l).arg("--pred").arg(&p));
    assert_eq!(report["channels"][0]["foreground_voxels"], 0);
    let note = report["warnings"][0].as_str().unwrap();
    assert!(note.starts_with("--label 7 selects no voxel"), "{note}");
    // the table says it too, and says nothing when the label occurs
    let table = |k: &str| {
        let out =
            dicegrad().args(["analyze", "--label", k, "--labels"]).arg(&l).arg("--pred").arg(&p).output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert!(table("7").contains("note: --label 7 selects no voxel"), "{}", table("7"));
    assert!(!table("1").contains("selects no voxel"), "label 1 occurs");
}
