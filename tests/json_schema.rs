//! The JSON Schemas of docs/schema/ are the ones the types give (regenerate them with
//! `cargo run --example json_schema`), and every kind of output validates against them: reports of
//! probabilities and of logits, with pictures, comparisons, patches, an ignore label, regions and
//! names, a loss that is not finite; a batch's summary with a failed case; a track's series.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

fn schema(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema").join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn assert_valid(schema_name: &str, what: &str, instance: &Value) {
    let validator = jsonschema::validator_for(&schema(schema_name)).expect("a valid schema");
    let errors: Vec<String> =
        validator.iter_errors(instance).take(5).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{what} does not follow {schema_name}: {errors:#?}");
}

#[test]
fn the_schemas_in_docs_are_those_of_the_types_written() {
    for (name, schema) in dicegrad::report::schema::schemas() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema").join(name);
        let on_disk = std::fs::read(&path).unwrap_or_default();
        assert!(
            on_disk == dicegrad::report::schema::to_json(&schema),
            "docs/schema/{name} is out of date: run `cargo run --example json_schema`"
        );
    }
}

fn sample(dir: &str, name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples").join(dir).join(name).display().to_string()
}

#[test]
fn reports_of_every_kind_follow_the_report_schema() {
    let d = tmp();
    let out = at(&d, "out");
    let (l, p, z) = (
        sample("multiclass", "labels.nii.gz"),
        sample("multiclass", "probs.nii.gz"),
        sample("multiclass", "logits.nii.gz"),
    );
    // with the pictures' figures (views) and comparisons
    dicegrad()
        .args(["analyze", "--compare", "ce,mimic", "--labels", &l, "--pred", &p, "--out"])
        .arg(&out)
        .assert()
        .success();
    let written: Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(written["schema_version"], 1);
    assert_valid("report.schema.json", "report.json with views and comparisons", &written);
    // logits, nnU-Net's loss on patches
    let r = json_of(dicegrad().args([
        "analyze",
        "--json",
        "--preset",
        "nnunet",
        "--patch-size",
        "16,16,8",
        "--patches",
        "3",
        "--labels",
        &l,
        "--pred",
        &z,
    ]));
    assert_valid("report.schema.json", "a report with training figures", &r);
    // an ignore label, regions and names
    let labels: Vec<u8> = (0..64).map(|i| [0u8, 1, 2, 3, 4][i % 5]).collect();
    let logits: Vec<f32> = (0..3 * 64).map(|i| ((i * 7 % 11) as f32 - 5.0) / 2.0).collect();
    let (lp, zp, ds) = (at(&d, "l.nii"), at(&d, "z.nii"), at(&d, "dataset.json"));
    Nii::u8(&[4, 4, 4], &labels).write(&lp);
    Nii::f32(&[4, 4, 4, 3], &logits).write(&zp);
    std::fs::write(
        &ds,
        r#"{"labels": {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": 3, "ignore": 4},
            "regions_class_order": [1, 2, 3]}"#,
    )
    .unwrap();
    let r = json_of(
        dicegrad()
            .args(["analyze", "--json", "--preset", "nnunet", "--labels"])
            .arg(&lp)
            .arg("--pred")
            .arg(&zp)
            .arg("--dataset-json")
            .arg(&ds),
    );
    assert_eq!(r["parameters"]["channel_names"][0], "whole tumor");
    assert_valid("report.schema.json", "a report of regions with an ignore label", &r);
    // a loss that is not finite: 0/0 on a class absent from both, written as null
    let (bl, bp) = (at(&d, "bl.nii"), at(&d, "bp.nii"));
    Nii::u8(&[4, 4, 4], &[0u8; 64]).write(&bl);
    Nii::f32(&[4, 4, 4], &[0f32; 64]).write(&bp);
    let r = json_of(
        dicegrad()
            .args(["analyze", "--json", "--allow-non-finite", "--smooth-nr", "0", "--smooth-dr", "0", "--labels"])
            .arg(&bl)
            .arg("--pred")
            .arg(&bp),
    );
    assert!(r["loss"]["value"].is_null(), "{}", r["loss"]);
    assert_valid("report.schema.json", "a report of a loss that is not finite", &r);
}

#[test]
fn a_batch_summary_and_a_track_series_follow_their_schemas() {
    let d = tmp();
    let (labels, preds) = synth_dataset(&d, 3, |i| format!("case{i}"));
    std::fs::write(preds.join("case2.nii.gz"), b"broken").unwrap();
    let out = at(&d, "out");
    let run = batch_run(&labels, &preds, &out, &["--compare", "ce,mimic"]);
    assert_eq!(run.status.code(), Some(1), "one case fails");
    let summary: Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["cases"]["failed"], 1);
    assert_valid("summary.schema.json", "summary.json with a failed case and comparisons", &summary);
    let track = at(&d, "track");
    let steps: Vec<String> =
        ["case0", "case1"].iter().map(|c| preds.join(format!("{c}.nii.gz")).display().to_string()).collect();
    dicegrad()
        .args(["track", "--steps", "1,2", "--labels"])
        .arg(labels.join("case0.nii.gz"))
        .arg("--pred")
        .args(&steps)
        .arg("--out")
        .arg(&track)
        .assert()
        .success();
    let series: Value = serde_json::from_slice(&std::fs::read(track.join("series.json")).unwrap()).unwrap();
    assert_eq!(series["schema_version"], 1);
    assert_valid("series.schema.json", "series.json", &series);
}
