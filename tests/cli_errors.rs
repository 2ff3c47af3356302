//! Bad input and bad output paths: exit code 2, one line naming the file and the problem, no panic,
//! and no output file left behind.

mod common;

use std::path::Path;

use common::*;

/// Runs `analyze` with `--out` and `--grad-out` in a fresh folder; asserts exit 2 and that neither
/// output appeared. Returns stderr.
fn refused(labels: &Path, pred: &Path, extra: &[&str]) -> String {
    let out = tmp();
    let (dir, grad) = (at(&out, "out"), at(&out, "grad.nii.gz"));
    let err = fails_with_2(
        dicegrad()
            .arg("analyze")
            .arg("--labels")
            .arg(labels)
            .arg("--pred")
            .arg(pred)
            .arg("--out")
            .arg(&dir)
            .arg("--grad-out")
            .arg(&grad)
            .args(extra),
    );
    assert!(!dir.join("report.json").exists() && !grad.exists(), "an output was written: {err}");
    let leftovers: Vec<_> = std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(leftovers.iter().all(|n| n == "out"), "stray files: {leftovers:?}");
    err
}

/// Writes the two volumes to a fresh folder and runs [`refused`] on them.
fn refused_nii(labels: &Nii, pred: &Nii, extra: &[&str]) -> String {
    let d = tmp();
    let (l, p) = (at(&d, "l.nii"), at(&d, "p.nii"));
    labels.write(&l);
    pred.write(&p);
    refused(&l, &p, extra)
}

#[test]
fn rejects_a_missing_file() {
    let d = tmp();
    let (l, _) = binary_case(&d, [4, 4, 4], 1);
    let err = refused(&l, &at(&d, "nope.nii.gz"), &[]);
    assert!(err.contains("nope.nii.gz: does not exist; check the path"), "{err}");
}

#[test]
fn rejects_a_file_that_is_not_nifti() {
    let d = tmp();
    let (l, _) = binary_case(&d, [4, 4, 4], 1);
    let junk = at(&d, "junk.nii");
    std::fs::write(&junk, vec![b'x'; 2000]).unwrap();
    let err = refused(&l, &junk, &[]);
    assert!(err.contains("junk.nii") && err.contains("not a NIfTI volume"), "{err}");
    std::fs::write(&junk, b"").unwrap();
    assert!(refused(&l, &junk, &[]).contains("empty"));
}

#[test]
fn rejects_a_directory_given_as_a_file() {
    let d = tmp();
    let (l, _) = binary_case(&d, [4, 4, 4], 1);
    let err = refused(&l, d.path(), &[]);
    assert!(err.contains(&format!("--pred {}: is a folder, not a file; give a file", d.path().display())), "{err}");
}

#[test]
fn rejects_truncated_raw_and_gzip_files() {
    let d = tmp();
    let probs: Vec<f32> = (0..4096).map(|i| (i % 7) as f32 / 7.0).collect();
    let labels = at(&d, "l.nii");
    Nii::u8(&[16, 16, 16], &vec![0; 4096]).write(&labels);
    let full = Nii::f32(&[16, 16, 16], &probs).bytes();
    let raw = at(&d, "cut.nii");
    std::fs::write(&raw, &full[..full.len() - 100]).unwrap();
    let err = refused(&labels, &raw, &[]);
    assert!(err.contains("cut.nii") && err.contains("truncated") && err.contains("16384 bytes"), "{err}");

    let gz = at(&d, "cut.nii.gz");
    write_maybe_gz(&gz, &full);
    let bytes = std::fs::read(&gz).unwrap();
    std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
    let err = refused(&labels, &gz, &[]);
    assert!(err.contains("cut.nii.gz") && err.contains("truncated"), "{err}");
}

#[test]
fn rejects_gzip_with_a_bad_checksum() {
    let d = tmp();
    let (l, p) = binary_case(&d, [8, 8, 8], 2);
    let mut bytes = std::fs::read(&p).unwrap();
    let n = bytes.len();
    bytes[n - 6] ^= 0xff; // inside the CRC32 of the trailer
    std::fs::write(&p, bytes).unwrap();
    let err = refused(&l, &p, &[]);
    assert!(err.contains("corrupt gzip"), "{err}");
}

#[test]
fn rejects_labels_and_prediction_of_different_shape() {
    let err = refused_nii(&Nii::u8(&[4, 4, 4], &[0; 64]), &Nii::f32(&[4, 4, 5], &[0.5; 80]), &[]);
    assert!(err.contains("[4, 4, 4]") && err.contains("[4, 4, 5]"), "{err}");
}

#[test]
fn rejects_label_values_out_of_range_naming_the_first_voxel() {
    let mut labels = vec![0u8; 27];
    labels[1 + 3 * 2 + 9] = 3; // voxel (1, 2, 1): x + 3·y + 9·z
    labels[26] = 5;
    let err = refused_nii(&Nii::u8(&[3, 3, 3], &labels), &Nii::f32(&[3, 3, 3, 3], &[1.0 / 3.0; 81]), &[]);
    assert!(err.contains("2 voxels") && err.contains("(1, 2, 1)") && err.contains("0..2"), "{err}");
    // binary prediction: labels must be 0/1
    let err = refused_nii(&Nii::u8(&[3, 3, 3], &labels), &Nii::f32(&[3, 3, 3], &[0.5; 27]), &[]);
    assert!(err.contains("--label"), "{err}");
}

#[test]
fn rejects_labels_that_are_not_whole_numbers() {
    let mut labels = vec![1.0f32; 8];
    labels[3] = 0.5;
    let err = refused_nii(&Nii::f32(&[2, 2, 2], &labels), &Nii::f32(&[2, 2, 2], &[0.5; 8]), &[]);
    assert!(err.contains("not whole numbers") && err.contains("(1, 1, 0)"), "{err}");
}

#[test]
fn rejects_probabilities_outside_the_unit_interval_and_suggests_an_activation() {
    let err = refused_nii(
        &Nii::u8(&[2, 2, 2], &[0, 1, 0, 1, 0, 1, 0, 1]),
        &Nii::f32(&[2, 2, 2], &[0.1, 2.5, -1.0, 0.3, 0.2, 0.9, 0.4, 0.5]),
        &[],
    );
    assert!(err.contains("2 values") && err.contains("--activation sigmoid"), "{err}");
}

#[test]
fn rejects_nan_and_infinite_values_saying_how_many_and_where() {
    let d = tmp();
    let l = at(&d, "l.nii");
    let p = at(&d, "p.nii");
    Nii::u8(&[2, 2, 2], &[0; 8]).write(&l);
    let mut v = vec![0.5f32; 16];
    v[8 + 5] = f32::NAN; // channel 1, voxel (1, 0, 1)
    v[15] = f32::INFINITY;
    Nii::f32(&[2, 2, 2, 2], &v).write(&p);
    let err = refused(&l, &p, &["--activation", "softmax"]);
    assert!(err.contains("2 values are NaN or infinite") && err.contains("(1, 0, 1) of channel 1"), "{err}");
}

#[test]
fn rejects_softmax_on_a_single_channel() {
    let d = tmp();
    let (l, p) = binary_case(&d, [3, 3, 3], 4);
    let err = refused(&l, &p, &["--activation", "softmax"]);
    assert!(err.contains("softmax needs at least two channels"), "{err}");
}

#[test]
fn refuses_a_header_claiming_more_voxels_than_the_limit_before_reading_data() {
    let d = tmp();
    let l = at(&d, "l.nii");
    Nii::u8(&[4, 4, 4], &[0; 64]).write(&l);
    // claims 30000³ float32 values but holds 16 bytes
    let mut huge = Nii::f32(&[30000, 30000, 30000], &[0.5; 4]);
    huge.data.truncate(16);
    let p = at(&d, "huge.nii.gz");
    huge.write(&p);
    let err = refused(&l, &p, &[]);
    assert!(err.contains("huge.nii.gz") && err.contains("--max-voxels"), "{err}");
    let l2 = at(&d, "l2.nii");
    std::fs::copy(&l, &l2).unwrap();
    let err = refused(&l, &l2, &["--max-voxels", "10"]);
    assert!(err.contains("above the limit of 10"), "{err}");
}

#[test]
fn refuses_to_overwrite_an_existing_output_without_force() {
    let d = tmp();
    let (l, p) = binary_case(&d, [4, 4, 4], 5);
    let g = at(&d, "g.nii");
    std::fs::write(&g, b"keep me").unwrap();
    let err =
        fails_with_2(dicegrad().args(["analyze", "--labels"]).arg(&l).arg("--pred").arg(&p).arg("--grad-out").arg(&g));
    assert!(err.contains("already exists") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(&g).unwrap(), b"keep me");
    dicegrad()
        .args(["analyze", "--force", "--labels"])
        .arg(&l)
        .arg("--pred")
        .arg(&p)
        .arg("--grad-out")
        .arg(&g)
        .assert()
        .success();
    assert_ne!(std::fs::read(&g).unwrap(), b"keep me");
}

#[test]
fn refuses_an_output_path_equal_to_an_input_even_with_force() {
    let d = tmp();
    let (l, p) = binary_case(&d, [4, 4, 4], 6);
    let before = std::fs::read(&p).unwrap();
    let err = fails_with_2(
        dicegrad().args(["analyze", "--force", "--labels"]).arg(&l).arg("--pred").arg(&p).arg("--grad-out").arg(&p),
    );
    assert!(err.contains("one of the inputs"), "{err}");
    assert_eq!(std::fs::read(&p).unwrap(), before);
}

#[test]
fn rejects_label_option_with_a_multichannel_prediction() {
    let err = refused_nii(&Nii::u8(&[2, 2, 2], &[0; 8]), &Nii::f32(&[2, 2, 2, 2], &[0.5; 16]), &["--label", "1"]);
    assert!(err.contains("drop --label"), "{err}");
}

#[test]
fn usage_errors_exit_with_2() {
    let out = dicegrad().args(["analyze", "--labels", "x.nii"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = dicegrad().args(["analyze", "--labels", "a", "--pred", "b", "--activation", "relu"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn refuses_a_gradient_path_in_a_missing_folder_before_writing_anything() {
    let d = tmp();
    let (l, p) = binary_case(&d, [4, 4, 4], 7);
    let out = at(&d, "out");
    let err = fails_with_2(
        dicegrad()
            .args(["analyze", "--labels"])
            .arg(&l)
            .arg("--pred")
            .arg(&p)
            .arg("--out")
            .arg(&out)
            .arg("--grad-out")
            .arg(at(&d, "missing/g.nii")),
    );
    assert!(err.contains("does not exist"), "{err}");
    assert!(!out.exists());
}

#[test]
fn refuses_a_gzip_stream_that_goes_on_far_beyond_the_data_its_header_describes() {
    let d = tmp();
    let l = at(&d, "l.nii");
    Nii::u8(&[2, 2, 2], &[0; 8]).write(&l);
    let mut pred = Nii::f32(&[2, 2, 2], &[0.5; 8]);
    pred.data.extend(std::iter::repeat_n(0u8, 65 << 20)); // compresses to about 64 KB
    let p = at(&d, "bomb.nii.gz");
    pred.write(&p);
    assert!(std::fs::metadata(&p).unwrap().len() < 1 << 20);
    let err = refused(&l, &p, &[]);
    assert!(err.contains("beyond") && err.contains("bomb.nii.gz"), "{err}");
}

#[test]
fn a_small_gzip_claiming_a_huge_volume_costs_no_more_memory_than_it_holds() {
    let d = tmp();
    // headers claim 1000³ values (1 GB of labels, 4 GB of float32) but the files hold a few bytes
    let mut l = Nii::u8(&[1000, 1000, 1000], &[0; 64]);
    l.data.truncate(64);
    let mut p = Nii::f32(&[1000, 1000, 1000], &[0.5; 16]);
    p.data.truncate(64);
    let (lp, pp) = (at(&d, "l.nii.gz"), at(&d, "p.nii.gz"));
    l.write(&lp);
    p.write(&pp);
    // with 600 MB of address space, reserving either volume up front would abort the process
    let out = analyze_in_600_mb(&lp, &pp);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("truncated"), "{stderr}");
}

#[test]
fn refuses_nifti2_dimensions_whose_product_overflows() {
    // found by fuzzing: seven 64-bit dimensions of 2^62 multiply past u128
    let d = tmp();
    let l = at(&d, "l.nii");
    Nii::u8(&[2, 2, 2], &[0; 8]).write(&l);
    let mut h = Nii::f32(&[2, 2, 2], &[0.5; 8]).bytes_v2();
    for i in 0..8 {
        let v: i64 = if i == 0 { 7 } else { 1 << 62 };
        h[16 + 8 * i..24 + 8 * i].copy_from_slice(&v.to_le_bytes());
    }
    let p = at(&d, "huge2.nii");
    std::fs::write(&p, h).unwrap();
    let err = refused(&l, &p, &[]);
    assert!(err.contains("huge2.nii") && err.contains("--max-voxels"), "{err}");
}

#[test]
fn a_misspelt_simd_switch_is_refused() {
    let d = tmp();
    let (l, p) = binary_case(&d, [4, 4, 4], 1);
    let mut c = dicegrad();
    c.env("DICEGRAD_SIMD", "portabel").args(["analyze", "--labels"]).arg(&l).arg("--pred").arg(&p);
    let err = fails_with_2(&mut c);
    assert!(err.contains("DICEGRAD_SIMD=portabel: unknown value; set it to portable"), "{err}");
}

#[test]
fn the_same_file_as_labels_and_prediction_is_refused() {
    let d = tmp();
    let (l, _) = binary_case(&d, [4, 4, 4], 1);
    let err = refused(&l, &l, &[]);
    assert!(err.contains("is given as both the labels and the prediction"), "{err}");
}

#[test]
fn a_segmentation_given_as_the_prediction_is_named_as_such() {
    let d = tmp();
    let labels: Vec<u8> = (0..64).map(|i| (i % 3) as u8).collect();
    let (l, p) = (at(&d, "l.nii"), at(&d, "seg.nii"));
    Nii::u8(&[4, 4, 4], &labels).write(&l);
    Nii::u8(&[4, 4, 4, 3], &(0..192).map(|i| (i % 3) as u8).collect::<Vec<_>>()).write(&p);
    let err = refused(&l, &p, &[]);
    assert!(err.contains("outside [0, 1]") && err.contains("stored as uint8: is it a segmentation"), "{err}");
    // a binary mask is read as probabilities 0 and 1, with a note
    let (bl, bp) = (at(&d, "bl.nii"), at(&d, "mask.nii"));
    let mask: Vec<u8> = (0..64).map(|i| u8::from(i % 2 == 0)).collect();
    Nii::u8(&[4, 4, 4], &mask).write(&bl);
    Nii::u8(&[4, 4, 4], &mask).write(&bp);
    let r = json_of(dicegrad().args(["analyze", "--json", "--labels"]).arg(&bl).arg("--pred").arg(&bp));
    assert!(r["warnings"][0].as_str().unwrap().contains("stored as uint8: whole numbers are a hard segmentation"));
}

#[test]
fn a_probability_map_stored_as_uint8_0_to_255_gets_a_scaling_hint() {
    let d = tmp();
    let labels: Vec<u8> = (0..64).map(|i| (i % 2) as u8).collect();
    let (l, p) = (at(&d, "l.nii"), at(&d, "probs255.nii"));
    Nii::u8(&[4, 4, 4], &labels).write(&l);
    // probabilities × 255 of two channels that sum to 255
    let fg: Vec<u8> = (0..64).map(|i| (i * 4) as u8).collect();
    let values: Vec<u8> = fg.iter().map(|&v| 255 - v).chain(fg.iter().copied()).collect();
    Nii::u8(&[4, 4, 4, 2], &values).write(&p);
    let err = refused(&l, &p, &[]);
    assert!(err.contains("stored as uint8 with values up to 255: probabilities scaled to 0–255?"), "{err}");
    assert!(err.contains("scl_slope to 1/255"), "{err}");
    assert!(!err.contains("--activation"), "{err}");
}

#[test]
fn a_missing_or_wrong_kind_of_input_path_reads_the_same_for_every_flag() {
    let d = tmp();
    let (l, p) = binary_case(&d, [4, 4, 4], 1);
    let dir = d.path().to_path_buf();
    let missing = at(&d, "nowhere");
    let out = at(&d, "out");
    let runs: Vec<(Vec<std::ffi::OsString>, String)> = vec![
        (
            vec!["analyze".into(), "--labels".into(), missing.clone().into(), "--pred".into(), p.clone().into()],
            format!("--labels {}: does not exist; check the path", missing.display()),
        ),
        (
            vec!["analyze".into(), "--labels".into(), l.clone().into(), "--pred".into(), missing.clone().into()],
            format!("--pred {}: does not exist; check the path", missing.display()),
        ),
        (
            vec!["analyze".into(), "--labels".into(), dir.clone().into(), "--pred".into(), p.clone().into()],
            format!("--labels {}: is a folder, not a file; give a file", dir.display()),
        ),
        (
            vec![
                "batch".into(),
                "--labels-dir".into(),
                missing.clone().into(),
                "--pred-dir".into(),
                dir.clone().into(),
                "--out".into(),
                out.clone().into(),
            ],
            format!("--labels-dir {}: does not exist; check the path", missing.display()),
        ),
        (
            vec![
                "batch".into(),
                "--labels-dir".into(),
                dir.clone().into(),
                "--pred-dir".into(),
                missing.clone().into(),
                "--out".into(),
                out.clone().into(),
            ],
            format!("--pred-dir {}: does not exist; check the path", missing.display()),
        ),
        (
            vec![
                "batch".into(),
                "--labels-dir".into(),
                dir.clone().into(),
                "--pred-dir".into(),
                p.clone().into(),
                "--out".into(),
                out.clone().into(),
            ],
            format!("--pred-dir {}: is a file, not a folder; give a folder", p.display()),
        ),
        (
            vec![
                "track".into(),
                "--labels-dir".into(),
                missing.clone().into(),
                "--pred-dirs".into(),
                dir.clone().into(),
                "--steps".into(),
                "1".into(),
                "--out".into(),
                out.clone().into(),
            ],
            format!("--labels-dir {}: does not exist; check the path", missing.display()),
        ),
        (
            vec![
                "track".into(),
                "--labels".into(),
                l.clone().into(),
                "--pred".into(),
                missing.clone().into(),
                "--out".into(),
                out.clone().into(),
            ],
            format!("--pred {}: does not exist; check the path", missing.display()),
        ),
    ];
    for (args, want) in runs {
        let err = fails_with_2(dicegrad().args(&args));
        assert!(err.contains(&want), "{args:?}: {err}");
    }
    assert!(!out.exists(), "nothing is written for a refused run");
}

#[test]
fn an_empty_prediction_folder_is_named_as_the_empty_label_folder_is() {
    let d = tmp();
    let (labels, preds) = (at(&d, "labels"), at(&d, "preds"));
    std::fs::create_dir_all(&labels).unwrap();
    std::fs::create_dir_all(&preds).unwrap();
    let (l, _) = binary_case(&d, [4, 4, 4], 1);
    std::fs::copy(&l, labels.join("case1.nii.gz")).unwrap();
    let err = fails_with_2(
        dicegrad()
            .args(["batch", "--labels-dir"])
            .arg(&labels)
            .arg("--pred-dir")
            .arg(&preds)
            .arg("--out")
            .arg(at(&d, "o")),
    );
    assert!(err.contains(&format!("--pred-dir {}: holds no prediction file (CASE.npz", preds.display())), "{err}");
}

#[test]
fn two_outputs_of_one_run_at_one_path_are_refused_before_anything_is_written() {
    let d = tmp();
    let (l, p) = binary_case(&d, [4, 4, 4], 1);
    let (same, g, out) = (at(&d, "same.txt"), at(&d, "g.nii"), at(&d, "out"));
    let cases: Vec<(Vec<std::ffi::OsString>, String)> = vec![
        (
            vec!["--export-csv".into(), same.clone().into(), "--export-markdown".into(), same.clone().into()],
            format!("--export-csv {}: is also the path of --export-markdown", same.display()),
        ),
        (
            vec!["--grad-out".into(), g.clone().into(), "--export-csv".into(), g.clone().into()],
            format!("--export-csv {}: is also the path of --grad-out", g.display()),
        ),
        (
            vec!["--out".into(), out.clone().into(), "--export-markdown".into(), out.join("report.json").into()],
            "is also the path of --out (report.json)".to_string(),
        ),
        (
            vec!["--out".into(), out.clone().into(), "--export-csv".into(), out.clone().into()],
            format!("--export-csv {}: is also the path of --out", out.display()),
        ),
    ];
    for (extra, want) in cases {
        for force in [false, true] {
            let mut c = dicegrad();
            c.args(["analyze", "--labels"]).arg(&l).arg("--pred").arg(&p).args(&extra);
            if force {
                c.arg("--force");
            }
            let err = fails_with_2(&mut c);
            assert!(err.contains(&want), "{extra:?}: {err}");
            assert!(!same.exists() && !g.exists() && !out.exists(), "{extra:?}: something was written");
        }
    }
}

#[cfg(unix)]
#[test]
fn an_output_never_replaces_a_pipe_or_a_folder_even_with_force() {
    let d = tmp();
    let (l, p) = binary_case(&d, [4, 4, 4], 1);
    let fifo = at(&d, "fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let folder = at(&d, "folder");
    std::fs::create_dir(&folder).unwrap();
    for (path, want) in
        [(&fifo, "is not a regular file (a device, a pipe or a socket)"), (&folder, "is a folder, not a file")]
    {
        let mut c = dicegrad();
        c.args(["analyze", "--force", "--labels"]).arg(&l).arg("--pred").arg(&p).arg("--export-csv").arg(path);
        let err = fails_with_2(&mut c);
        assert!(err.contains(want), "{err}");
    }
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the pipe is still a pipe");
    assert!(folder.is_dir());
}

#[test]
fn float_probabilities_scaled_to_0_100_get_a_scaling_hint_beside_the_logits_one() {
    let d = tmp();
    let labels: Vec<u8> = (0..64).map(|i| (i % 2) as u8).collect();
    let (l, p) = (at(&d, "l.nii"), at(&d, "percent.nii"));
    Nii::u8(&[4, 4, 4], &labels).write(&l);
    let fg: Vec<f32> = (0..64).map(|i| i as f32 * 1.5).collect();
    let values: Vec<f32> = fg.iter().map(|v| 100.0 - v).chain(fg.iter().copied()).collect();
    Nii::f32(&[4, 4, 4, 2], &values).write(&p);
    let err = refused(&l, &p, &[]);
    assert!(err.contains("probabilities scaled to 0–100? divide them by 100"), "{err}");
    assert!(err.contains("if the file holds logits pass --activation softmax"), "{err}");
}
