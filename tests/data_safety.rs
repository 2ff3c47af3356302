//! A run never damages data and never passes off a partial or wrong analysis as complete: output
//! folders among the inputs, existing gradient files, interruptions, concurrent runs, stale
//! temporary files, incomplete or foreign shards, folders where nothing pairs, duplicate case
//! ids, and skipped files.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A data set of `n` synthetic 3-class cases: L/CASE.nii.gz and P/CASE{suffix}.nii.gz
/// (probabilities).
fn dataset(d: &tempfile::TempDir, n: usize, suffix: &str) -> (PathBuf, PathBuf) {
    let (l, p) = (at(d, "L"), at(d, "P"));
    std::fs::create_dir_all(&l).unwrap();
    std::fs::create_dir_all(&p).unwrap();
    for i in 0..n {
        let s = at(d, &format!("s{i}"));
        dicegrad()
            .args(["synth", "--classes", "3", "--shape", "9,8,7", "--seed", &i.to_string(), "--out"])
            .arg(&s)
            .assert()
            .success();
        std::fs::rename(s.join("labels.nii.gz"), l.join(format!("c{i}.nii.gz"))).unwrap();
        std::fs::rename(s.join("probs.nii.gz"), p.join(format!("c{i}{suffix}.nii.gz"))).unwrap();
    }
    (l, p)
}

fn batch(l: &Path, p: &Path, out: &Path, extra: &[&str]) -> Output {
    dicegrad()
        .args(["batch", "--quiet", "--labels-dir"])
        .arg(l)
        .arg("--pred-dir")
        .arg(p)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Every file under `dir` but a run's lock file (relative path → size and CRC-32 of the bytes).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (usize, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if e.file_name() != ".dicegrad.lock" {
                let bytes = std::fs::read(&p).unwrap_or_default();
                out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), (bytes.len(), crc32fast::hash(&bytes)));
            }
        }
    }
    out
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.starts_with(".dicegrad-"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn output_folders_among_the_inputs_are_refused_and_the_inputs_stay_as_they_were() {
    let d = tmp();
    let (l, p) = dataset(&d, 2, "");
    let before = (snapshot(&l), snapshot(&p));
    std::fs::create_dir(at(&d, "elsewhere")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&p, at(&d, "link_to_P")).unwrap();
    let o = at(&d, "o");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--out".into(), o.display().to_string(), "--grad-out-dir".into(), p.display().to_string()],
            "is the input folder",
        ),
        (
            vec!["--out".into(), o.display().to_string(), "--grad-out-dir".into(), l.display().to_string()],
            "is the input folder",
        ),
        (
            vec!["--out".into(), o.display().to_string(), "--grad-out-dir".into(), p.join("g").display().to_string()],
            "lies inside",
        ),
        (vec!["--out".into(), p.join("o").display().to_string()], "lies inside"),
        (vec!["--out".into(), d.path().display().to_string()], "contains"),
        #[cfg(unix)]
        (
            vec![
                "--out".into(),
                o.display().to_string(),
                "--grad-out-dir".into(),
                at(&d, "link_to_P").join("g").display().to_string(),
            ],
            "lies inside",
        ),
    ];
    for (args, how) in cases {
        let e = fails_with_2(
            dicegrad().args(["batch", "--quiet", "--labels-dir"]).arg(&l).arg("--pred-dir").arg(&p).args(&args),
        );
        assert!(e.contains(how) && e.contains("a run never writes among its inputs"), "{args:?}: {e}");
        assert_eq!((snapshot(&l), snapshot(&p)), before, "{args:?} changed an input");
        assert!(!o.exists() && !p.join("g").exists() && !p.join("o").exists(), "{args:?} created a folder");
    }
}

#[test]
fn existing_gradient_files_are_overwritten_only_with_force_or_by_the_same_run() {
    let d = tmp();
    let (l, p) = dataset(&d, 3, "");
    let g = at(&d, "g");
    let g_arg = g.display().to_string();
    assert!(batch(&l, &p, &at(&d, "o1"), &["--grad-out-dir", &g_arg]).status.success());
    let written = snapshot(&g);
    assert_eq!(written.len(), 3);
    // another run into the same gradient folder
    let o2 = at(&d, "o2");
    let out = batch(&l, &p, &o2, &["--grad-out-dir", &g_arg, "--smooth-dr", "0.5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("already holds the gradient files of 3 of this run's cases"), "{}", stderr(&out));
    assert_eq!(snapshot(&g), written);
    assert!(!o2.exists(), "a refused run leaves no folder behind");
    // the same run resumed may rewrite them (a case killed after its gradient, before its record)
    let o1 = at(&d, "o1");
    let jsonl = std::fs::read_to_string(o1.join("cases.jsonl")).unwrap();
    let first_line = jsonl.lines().next().unwrap().to_string() + "\n";
    std::fs::write(o1.join("cases.jsonl"), first_line).unwrap();
    let resumed = batch(&l, &p, &o1, &["--grad-out-dir", &g_arg, "--resume"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_eq!(snapshot(&g), written, "the resumed run writes the same gradients");
    // with --force, a new run overwrites them
    let forced = batch(&l, &p, &o2, &["--grad-out-dir", &g_arg, "--smooth-dr", "0.5", "--force"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert_ne!(snapshot(&g), written);
}

#[test]
fn resume_removes_stale_temporary_files_wherever_the_run_writes() {
    let d = tmp();
    let (l, p) = dataset(&d, 2, "");
    let (o, g) = (at(&d, "o"), at(&d, "g"));
    let g_arg = g.display().to_string();
    assert!(batch(&l, &p, &o, &["--grad-out-dir", &g_arg]).status.success());
    for dir in [&o, &g] {
        std::fs::write(dir.join(".dicegrad-Xy12ab.part"), vec![0u8; 1000]).unwrap();
    }
    let out = batch(&l, &p, &o, &["--grad-out-dir", &g_arg, "--resume"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(temporaries(&o), Vec::<String>::new());
    assert_eq!(temporaries(&g), Vec::<String>::new());
}

#[test]
fn a_folder_in_use_by_another_run_is_refused_naming_its_pid() {
    let d = tmp();
    let (l, p) = dataset(&d, 1, "");
    let o = at(&d, "o");
    assert!(batch(&l, &p, &o, &[]).status.success());
    let before = snapshot(&o);
    // the folder's advisory lock held (here, by this process), with the holder's pid in it
    let mut lock = std::fs::OpenOptions::new().write(true).open(o.join(".dicegrad.lock")).unwrap();
    lock.lock().unwrap();
    lock.set_len(0).unwrap();
    std::io::Write::write_all(&mut lock, b"4242\n").unwrap();
    let out = batch(&l, &p, &o, &["--force", "--loss", "jaccard"]);
    drop(lock);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("in use by another dicegrad run (pid 4242)"), "{}", stderr(&out));
    assert_eq!(snapshot(&o), before, "the folder of the running run is untouched");
    // once released, the folder can be used
    assert!(batch(&l, &p, &o, &["--force", "--loss", "jaccard"]).status.success());
}

/// Starts `dicegrad analyze` writing a gradient volume big enough to be caught while it writes,
/// sends `signal` once its temporary file exists, and returns the output.
fn interrupted(signal: &str) -> (Output, PathBuf, tempfile::TempDir) {
    let d = tmp();
    let s = at(&d, "s");
    dicegrad()
        .args(["synth", "--classes", "4", "--shape", "96,96,64", "--compression", "1", "--out"])
        .arg(&s)
        .assert()
        .success();
    let g = at(&d, "g");
    std::fs::create_dir(&g).unwrap();
    let child = Command::new(assert_cmd::cargo::cargo_bin("dicegrad"))
        .args(["analyze", "--activation", "softmax", "--compression", "9", "--labels"])
        .arg(s.join("labels.nii.gz"))
        .arg("--pred")
        .arg(s.join("logits.nii.gz"))
        .arg("--grad-out")
        .arg(g.join("grad.nii.gz"))
        .arg("--out")
        .arg(g.join("report"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while temporaries(&g).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(120), "the gradient file was never started");
        std::thread::sleep(Duration::from_millis(2));
    }
    Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    (child.wait_with_output().unwrap(), g, d)
}

#[cfg(unix)]
#[test]
fn an_interrupted_analysis_removes_its_unfinished_files_and_says_so() {
    for (signal, code) in [("-INT", 130), ("-TERM", 143)] {
        let (out, g, _d) = interrupted(signal);
        assert_eq!(out.status.code(), Some(code), "{signal}: {}", stderr(&out));
        assert_eq!(stderr(&out).trim(), "interrupted: nothing was written (1 unfinished file removed)");
        assert_eq!(temporaries(&g), Vec::<String>::new(), "{signal}");
        assert!(!g.join("grad.nii.gz").exists());
        assert!(!g.join("report").exists(), "the --out folder created for the report is removed again");
    }
}

#[test]
fn shards_record_what_they_ran_on_and_merge_refuses_partial_duplicate_or_foreign_sets() {
    let d = tmp();
    let (l, p) = dataset(&d, 3, "");
    let shard = |k: &str, dir: &str, pred: &Path| {
        let o = at(&d, dir);
        let out = batch(&l, pred, &o, &["--shard", k]);
        assert!(out.status.success(), "{}", stderr(&out));
        o
    };
    let (s0, s1, s2) = (shard("0/3", "s0", &p), shard("1/3", "s1", &p), shard("2/3", "s2", &p));
    let meta = json(&s1.join("run.json"));
    assert_eq!(meta["all_cases"], serde_json::json!(["c0", "c1", "c2"]));
    assert_eq!(meta["cases"], serde_json::json!(["c1"]));
    assert_eq!(meta["shard"], serde_json::json!({"index": 1, "count": 3}));
    assert_eq!(meta["inputs"]["pred_dir"].as_str().unwrap(), p.canonicalize().unwrap().to_str().unwrap());
    let merge =
        |shards: &[&PathBuf]| dicegrad().args(["merge", "--out"]).arg(at(&d, "m")).args(shards).output().unwrap();
    let refused = |shards: &[&PathBuf], says: &str| {
        let out = merge(shards);
        assert_eq!(out.status.code(), Some(2), "{shards:?}");
        assert!(stderr(&out).contains(says), "{shards:?}: {}", stderr(&out));
        assert!(!at(&d, "m").join("summary.json").exists());
    };
    refused(&[&s0, &s1], "shard 2/3 of the run missing");
    refused(&[&s0, &s1, &s1], "are both shard 1 of 3");
    // a shard of another split
    let t = at(&d, "t0");
    assert!(batch(&l, &p, &t, &["--shard", "0/2"]).status.success());
    refused(&[&s0, &t, &s1, &s2], "is shard 0 of 2");
    // the same case names from another prediction folder
    let q = at(&d, "Q");
    std::fs::create_dir(&q).unwrap();
    for f in std::fs::read_dir(&p).unwrap().flatten() {
        std::fs::copy(f.path(), q.join(f.file_name())).unwrap();
    }
    let f2 = shard("2/3", "f2", &q);
    refused(&[&s0, &s1, &f2], "inputs.pred_dir");
    // resume refuses other inputs
    let out = batch(&l, &q, &s1, &["--shard", "1/3", "--resume"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("inputs.pred_dir"), "{}", stderr(&out));
    // the complete set merges, to the bytes of one unsharded run
    let out = merge(&[&s2, &s0, &s1]);
    assert!(out.status.success(), "{}", stderr(&out));
    let whole = at(&d, "whole");
    assert!(batch(&l, &p, &whole, &[]).status.success());
    for f in ["cases.csv", "cases.jsonl", "summary.json"] {
        assert_eq!(std::fs::read(at(&d, "m").join(f)).unwrap(), std::fs::read(whole.join(f)).unwrap(), "{f}");
    }
}

#[test]
fn folders_where_nothing_pairs_are_an_error_with_the_suffix_to_use_and_nothing_is_written() {
    let d = tmp();
    let (l, p) = dataset(&d, 2, "_seg");
    let o = at(&d, "o");
    let out = batch(&l, &p, &o, &[]);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(
        e.contains("no case to analyse: none of the 2 label files") && e.contains("did you mean --pred-suffix _seg?"),
        "{e}"
    );
    assert!(!o.exists());
    // the corrected command runs without --force
    assert!(batch(&l, &p, &o, &["--pred-suffix", "_seg"]).status.success());
    // and a suffix given where there is none is named too
    let (l2, p2) = (at(&d, "L2"), at(&d, "P2"));
    std::fs::create_dir(&l2).unwrap();
    std::fs::create_dir(&p2).unwrap();
    std::fs::copy(l.join("c0.nii.gz"), l2.join("c0.nii.gz")).unwrap();
    std::fs::copy(p.join("c0_seg.nii.gz"), p2.join("c0.nii.gz")).unwrap();
    let out = batch(&l2, &p2, &at(&d, "o2"), &["--pred-suffix", "_x"]);
    assert!(
        stderr(&out).contains("the prediction files are named CASE.nii.gz: drop --pred-suffix"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn two_label_files_of_one_case_are_refused_and_skipped_files_are_listed() {
    let d = tmp();
    let (l, p) = dataset(&d, 2, "");
    // c0.nii beside c0.nii.gz
    let bytes = std::fs::read(l.join("c0.nii.gz")).unwrap();
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut raw).unwrap();
    std::fs::write(l.join("c0.nii"), raw).unwrap();
    let e = fails_with_2(
        dicegrad()
            .args(["batch", "--quiet", "--out"])
            .arg(at(&d, "o"))
            .arg("--labels-dir")
            .arg(&l)
            .arg("--pred-dir")
            .arg(&p),
    );
    assert!(e.contains("are both case 'c0'; keep one of them"), "{e}");
    std::fs::remove_file(l.join("c0.nii")).unwrap();
    std::fs::write(l.join("notes.txt"), b"x").unwrap();
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        std::fs::write(l.join(std::ffi::OsStr::from_bytes(b"bad\xffname.nii.gz")), &bytes).unwrap();
    }
    let o = at(&d, "o");
    let out = batch(&l, &p, &o, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let skipped = json(&o.join("summary.json"))["unpaired"]["skipped"].clone();
    let reasons: Vec<String> =
        skipped.as_array().unwrap().iter().map(|s| s["reason"].as_str().unwrap().to_string()).collect();
    assert!(reasons.contains(&"not a NIfTI file name (.nii, .nii.gz)".to_string()), "{skipped}");
    assert!(stderr(&out).contains("notes.txt: not a NIfTI file name"), "{}", stderr(&out));
    #[cfg(target_os = "linux")]
    {
        assert!(reasons.contains(&"its name is not valid UTF-8; rename it".to_string()), "{skipped}");
        assert!(stderr(&out).contains("its name is not valid UTF-8"), "{}", stderr(&out));
    }
}

#[cfg(unix)]
#[test]
fn prediction_files_that_are_links_into_an_output_folder_are_refused() {
    let d = tmp();
    let (l, p) = dataset(&d, 2, "");
    let links = at(&d, "links");
    std::fs::create_dir(&links).unwrap();
    for i in 0..2 {
        std::os::unix::fs::symlink(p.join(format!("c{i}.nii.gz")), links.join(format!("c{i}.nii.gz"))).unwrap();
    }
    let before = snapshot(&p);
    for extra in [vec![], vec!["--force"]] {
        let mut args = vec!["--grad-out-dir", p.to_str().unwrap()];
        args.extend(extra);
        let out = batch(&l, &links, &at(&d, "o"), &args);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("(through a symbolic link: "), "{}", stderr(&out));
        assert_eq!(snapshot(&p), before);
    }
}

#[test]
fn a_forced_run_refused_at_its_first_case_leaves_the_previous_run_as_it_was() {
    let d = tmp();
    let (l, p) = dataset(&d, 2, "");
    let (o, g) = (at(&d, "o"), at(&d, "g"));
    let g_arg = g.display().to_string();
    assert!(batch(&l, &p, &o, &["--grad-out-dir", &g_arg]).status.success());
    let (run, grads) = (snapshot(&o), snapshot(&g));
    // probabilities with a softmax: refused at the first case
    let out = batch(&l, &p, &o, &["--grad-out-dir", &g_arg, "--force", "--activation", "softmax"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("the run stopped before writing anything"), "{}", stderr(&out));
    assert_eq!((snapshot(&o), snapshot(&g)), (run.clone(), grads.clone()));
    // the same when the first case fails on its own (a truncated file) and the second is refused
    let q = at(&d, "Q");
    std::fs::create_dir(&q).unwrap();
    let whole = std::fs::read(p.join("c0.nii.gz")).unwrap();
    std::fs::write(q.join("c0.nii.gz"), &whole[..whole.len() / 2]).unwrap();
    std::fs::copy(p.join("c1.nii.gz"), q.join("c1.nii.gz")).unwrap();
    let out = batch(&l, &q, &o, &["--force", "--activation", "softmax"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("case c1: "), "{}", stderr(&out));
    assert_eq!((snapshot(&o), snapshot(&g)), (run, grads));
}

#[test]
fn two_predictions_of_one_case_are_refused_and_hidden_files_and_folders_are_listed() {
    let d = tmp();
    let (l, p) = dataset(&d, 2, "");
    std::fs::create_dir(p.join("c0")).unwrap();
    std::fs::copy(p.join("c0.nii.gz"), p.join("c0").join("c0.nii.gz")).unwrap();
    let out = batch(&l, &p, &at(&d, "o"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("are both predictions of case 'c0'; keep one of them"), "{}", stderr(&out));
    std::fs::remove_dir_all(p.join("c0")).unwrap();
    // macOS metadata beside the files, a folder among the labels
    std::fs::write(l.join("._c0.nii.gz"), b"x").unwrap();
    std::fs::write(p.join("._c0.nii.gz"), b"x").unwrap();
    std::fs::create_dir(l.join("nested")).unwrap();
    let o = at(&d, "o");
    let out = batch(&l, &p, &o, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary = json(&o.join("summary.json"));
    assert_eq!(summary["cases"]["total"], 2);
    let skipped = summary["unpaired"]["skipped"].to_string();
    assert_eq!(summary["unpaired"]["skipped"].as_array().unwrap().len(), 3, "{skipped}");
    assert!(skipped.contains("a hidden file") && skipped.contains("label files are read from the top level only"));
}

#[test]
fn resume_refuses_another_gzip_level_for_the_gradients() {
    let d = tmp();
    let (l, p) = dataset(&d, 2, "");
    let (o, g) = (at(&d, "o"), at(&d, "g"));
    let g_arg = g.display().to_string();
    assert!(batch(&l, &p, &o, &["--grad-out-dir", &g_arg, "--compression", "9"]).status.success());
    let out = batch(&l, &p, &o, &["--grad-out-dir", &g_arg, "--compression", "0", "--resume"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("inputs.compression"), "{}", stderr(&out));
}

#[test]
fn shards_may_share_a_gradient_folder_whose_temporary_files_stay_while_another_run_holds_it() {
    let d = tmp();
    let (l, p) = dataset(&d, 2, "");
    let g = at(&d, "g");
    std::fs::create_dir(&g).unwrap();
    let g_arg = g.display().to_string();
    // another shard's run holds the gradient folder (shared) and is writing a file
    let lock = std::fs::File::create(g.join(".dicegrad.lock")).unwrap();
    lock.lock_shared().unwrap();
    std::fs::write(g.join(".dicegrad-other.part"), b"being written").unwrap();
    let out = batch(&l, &p, &at(&d, "s0"), &["--grad-out-dir", &g_arg, "--shard", "0/2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(g.join("c0.nii.gz").exists());
    assert_eq!(temporaries(&g), vec![".dicegrad-other.part".to_string()], "another run's file is kept");
    drop(lock);
    // alone, a run removes stale temporary files
    let out = batch(&l, &p, &at(&d, "s1"), &["--grad-out-dir", &g_arg, "--shard", "1/2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(temporaries(&g), Vec::<String>::new());
}

#[test]
fn a_run_stopped_midway_leaves_gradient_files_only_for_the_cases_it_recorded() {
    let d = tmp();
    let (l, p) = dataset(&d, 4, "");
    // logits for c0, c2, c3 and probabilities for c1: the run stops at c1
    let q = at(&d, "Q");
    std::fs::create_dir(&q).unwrap();
    for i in 0..4 {
        let s = at(&d, &format!("s{i}"));
        let src = if i == 1 { p.join("c1.nii.gz") } else { s.join("logits.nii.gz") };
        std::fs::copy(src, q.join(format!("c{i}.nii.gz"))).unwrap();
    }
    for jobs in ["1", "2"] {
        let (o, g) = (at(&d, &format!("o{jobs}")), at(&d, &format!("g{jobs}")));
        let g_arg = g.display().to_string();
        let out = batch(&l, &q, &o, &["--grad-out-dir", &g_arg, "--activation", "softmax", "--jobs", jobs]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("case c1: "), "{}", stderr(&out));
        let recorded: Vec<String> = std::fs::read_to_string(o.join("cases.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["case"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(recorded, vec!["c0".to_string()], "jobs {jobs}");
        let mut grads: Vec<String> = snapshot(&g).keys().map(|k| k.display().to_string()).collect();
        grads.sort();
        assert_eq!(grads, vec!["c0.nii.gz".to_string()], "jobs {jobs}: only recorded cases keep a gradient");
    }
}
