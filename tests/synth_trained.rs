//! `dicegrad synth --trained`: logits like a trained network's, checked on the files it writes,
//! read back by the `nifti` crate: float16 logits, probabilities that are their softmax, plateaus
//! far from the structures (the same values over the air around the body), and the options it
//! cannot be combined with.

mod common;

use std::path::Path;

use common::*;
use nifti::{IntoNdArray, NiftiObject, ReaderOptions};

/// Values of a NIfTI file in file (Fortran) order, read by the `nifti` crate.
fn read_back(path: &Path) -> Vec<f32> {
    let obj = ReaderOptions::new().read_file(path).unwrap();
    obj.into_volume().into_ndarray::<f32>().unwrap().t().iter().copied().collect()
}

#[test]
fn trained_logits_are_float16_plateaus_and_the_probabilities_their_softmax() {
    let d = tmp();
    let out = d.path().join("t");
    let shape = [40, 36, 30];
    let ok = dicegrad()
        .args(["synth", "--trained", "--classes", "3", "--shape", "40,36,30", "--seed", "4", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let n = shape.iter().product::<usize>();
    let (logits, probs) = (read_back(&out.join("logits.nii.gz")), read_back(&out.join("probs.nii.gz")));
    let labels: Vec<f32> = read_back(&out.join("labels.nii.gz"));
    assert_eq!((logits.len(), probs.len()), (3 * n, 3 * n));
    for i in 0..n {
        let z: Vec<f64> = (0..3).map(|k| f64::from(logits[k * n + i])).collect();
        let top = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - top).exp()).collect();
        let total: f64 = e.iter().sum();
        for k in 0..3 {
            let v = logits[k * n + i];
            assert_eq!(half::f16::from_f32(v).to_f32(), v, "logit {k} at {i} is a float16 value");
            let p = (e[k] / total) as f32;
            assert!((probs[k * n + i] - p).abs() <= 2.0 * f32::EPSILON * p.max(f32::MIN_POSITIVE), "softmax at {i}");
        }
    }
    // a corner is air: every corner voxel holds the same logits, the background high, the
    // others on their floor
    let at = |x: usize, y: usize, z: usize| x + shape[0] * (y + shape[1] * z);
    let corner: Vec<usize> =
        [(0, 0, 0), (1, 0, 0), (0, 1, 1), (2, 2, 1)].iter().map(|&(x, y, z)| at(x, y, z)).collect();
    assert!(corner.iter().all(|&i| labels[i] == 0.0));
    for k in 0..3 {
        let v = logits[k * n + corner[0]];
        assert!(corner.iter().all(|&i| logits[k * n + i] == v), "channel {k} is constant in the air");
        if k == 0 {
            assert!(v > 5.0, "background logit {v}");
        } else {
            assert!(v < -9.0, "logit {v} of class {k} away from it");
        }
    }
    // the probabilities compress as real ones do: far below their 4 bytes per value
    let size = std::fs::metadata(out.join("probs.nii.gz")).unwrap().len() as usize;
    assert!(size < 3 * n * 4 / 3, "{size} bytes for {} values", 3 * n);
}

#[test]
fn trained_logits_are_one_case_and_the_noise_a_level_from_0_to_1000() {
    let d = tmp();
    for (args, says) in [
        (&["--trained", "--steps", "3"][..], "cannot be used with"),
        (&["--trained", "--no-logits"], "cannot be used with"),
        (&["--noise", "-1"], "give a number from 0 to 1000"),
        (&["--noise", "nan"], "give a number from 0 to 1000"),
        (&["--trained", "--noise", "1e30"], "give a number from 0 to 1000"),
    ] {
        let out = dicegrad().args(["synth", "--shape", "8,8,8", "--out"]).arg(d.path().join("x")).args(args).output();
        let out = out.unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(!d.path().join("x").exists(), "nothing written");
}
