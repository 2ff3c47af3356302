//! `batch --case-reports`: one report per successful case in `cases/<folder>/report.html`, kept in
//! step with the records through a resumed run, a forced restart, shards and their merge.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// A data set of `n` small synthetic 3-class cases, plus one whose prediction is unreadable.
fn dataset(dir: &tempfile::TempDir, n: usize) -> (PathBuf, PathBuf) {
    let (labels, preds) = synth_dataset(dir, n, |i| format!("case {i}"));
    std::fs::copy(labels.join("case 0.nii.gz"), labels.join("broken.nii.gz")).unwrap();
    std::fs::write(preds.join("broken.nii.gz"), b"not a NIfTI file").unwrap();
    (labels, preds)
}

fn batch(labels: &Path, preds: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    dicegrad()
        .args(["batch", "--quiet", "--labels-dir"])
        .arg(labels)
        .arg("--pred-dir")
        .arg(preds)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

/// The case folders under `out/cases`, sorted.
fn case_folders(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(out.join("cases"))
        .map(|d| d.map(|e| e.unwrap().file_name().into_string().unwrap()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Every folder holds exactly its report, and the index links to each of them.
fn assert_reports_complete(out: &Path, want: &[&str]) {
    assert_eq!(case_folders(out), want, "in {}", out.display());
    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    for folder in want {
        let files: Vec<_> = std::fs::read_dir(out.join("cases").join(folder)).unwrap().collect();
        assert_eq!(files.len(), 1, "{folder}: {files:?}");
        let report = out.join("cases").join(folder).join("report.html");
        let page = std::fs::read_to_string(&report).unwrap();
        assert!(page.starts_with("<!DOCTYPE html>"));
        // the way back to the data set's page, which is there
        assert!(page.contains("href=\"../../index.html\""), "{folder}: no link back to the index");
        assert!(report.parent().unwrap().join("../../index.html").is_file());
        // the pictures of the volume are measured for a case report
        assert!(page.contains("Three orthogonal planes"), "{folder}: no slices picture");
        let link = format!("href=\"cases/{}/report.html\"", folder.replace('%', "%25"));
        assert!(index.contains(&link), "the index does not link {link}");
    }
    assert_eq!(index.matches("href=\"cases/").count(), want.len(), "one link per report");
}

const FOLDERS: [&str; 3] = ["case%200", "case%201", "case%202"];

#[test]
fn case_reports_follow_the_records_through_resume_and_force() {
    let d = tmp();
    let (l, p) = dataset(&d, 3);
    let out = at(&d, "out");
    assert_eq!(batch(&l, &p, &out, &["--case-reports"]).status.code(), Some(1), "one case fails");
    assert_reports_complete(&out, &FOLDERS);
    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(index.contains("Failed cases") && index.contains("broken"));

    // killed after two records: the third case is analysed again, its report written once more
    let jsonl = std::fs::read_to_string(out.join("cases.jsonl")).unwrap();
    let lines: Vec<&str> = jsonl.lines().collect();
    std::fs::write(out.join("cases.jsonl"), format!("{}\n{}\n", lines[0], lines[1])).unwrap();
    std::fs::remove_file(out.join("index.html")).unwrap();
    std::fs::remove_dir_all(out.join("cases").join(FOLDERS[2])).unwrap();
    let resumed = batch(&l, &p, &out, &["--case-reports", "--resume"]);
    assert_eq!(resumed.status.code(), Some(1));
    assert_reports_complete(&out, &FOLDERS);

    // resuming without them is another run
    let other = batch(&l, &p, &out, &["--resume"]);
    assert_eq!(other.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("case_reports"),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );

    // starting over on fewer cases leaves no report of the run it replaces
    std::fs::remove_file(l.join("case 2.nii.gz")).unwrap();
    std::fs::remove_file(p.join("case 2.nii.gz")).unwrap();
    assert_eq!(batch(&l, &p, &out, &["--case-reports", "--force"]).status.code(), Some(1));
    assert_reports_complete(&out, &FOLDERS[..2]);
    assert!(batch(&l, &p, &out, &["--force"]).status.code() == Some(1));
    assert!(!out.join("cases").exists(), "a run without case reports keeps none of the old ones");
}

#[test]
fn merged_shards_carry_their_case_reports() {
    let d = tmp();
    let (l, p) = dataset(&d, 3);
    let single = at(&d, "single");
    assert_eq!(batch(&l, &p, &single, &["--case-reports"]).status.code(), Some(1));
    let shards: Vec<PathBuf> = (0..2).map(|k| at(&d, &format!("shard{k}"))).collect();
    for (k, s) in shards.iter().enumerate() {
        assert_eq!(
            batch(&l, &p, s, &["--case-reports", "--shard", &format!("{k}/2")]).status.code().map(|c| c <= 1),
            Some(true)
        );
    }
    let merged = at(&d, "merged");
    let res = dicegrad().arg("merge").arg("--out").arg(&merged).args(&shards).output().unwrap();
    assert_eq!(res.status.code(), Some(1), "{}", String::from_utf8_lossy(&res.stderr));
    assert_reports_complete(&merged, &FOLDERS);
    let read = |p: PathBuf| std::fs::read(p).unwrap();
    assert_eq!(read(merged.join("index.html")), read(single.join("index.html")), "merged index = one run's");
    for f in FOLDERS {
        let from = shards.iter().map(|s| s.join("cases").join(f).join("report.html")).find(|p| p.exists()).unwrap();
        assert_eq!(read(merged.join("cases").join(f).join("report.html")), read(from));
    }

    // merged again over it without case reports: none of the old ones stays
    let plain: Vec<PathBuf> = (0..2).map(|k| at(&d, &format!("plain{k}"))).collect();
    for (k, s) in plain.iter().enumerate() {
        batch(&l, &p, s, &["--shard", &format!("{k}/2")]);
    }
    let res = dicegrad().arg("merge").arg("--force").arg("--out").arg(&merged).args(&plain).output().unwrap();
    assert_eq!(res.status.code(), Some(1), "{}", String::from_utf8_lossy(&res.stderr));
    assert!(!merged.join("cases").exists());
    assert!(!std::fs::read_to_string(merged.join("index.html")).unwrap().contains("href=\"cases/"));

    // a shard that lost a report cannot be merged
    std::fs::remove_dir_all(shards[0].join("cases")).unwrap();
    let again = dicegrad().arg("merge").arg("--force").arg("--out").arg(at(&d, "m2")).args(&shards).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("report.html"));
}
