//! `dicegrad synth --steps`, a seeded training-like sequence of one case, checked from the outside:
//! the bytes fixed by the seed; every file read back with the independent `nifti` crate equal to
//! its step generated alone by the library; predictions that improve from step to step and a
//! lesion missed early and learnt late, by the soft Dice `dicegrad analyze` reports; epoch file
//! names that sort as epochs; bad values refused; an earlier sequence replaced only with --force;
//! and the bundled sample, with the figures its README states, rewritten by its documented command.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use dicegrad::synth::{Sequence, SequenceOptions, SynthOptions};
use nifti::{IntoNdArray, NiftiObject, ReaderOptions};

/// Runs `dicegrad synth --out DIR ARGS`.
fn synth(out: &Path, args: &[&str]) -> Output {
    dicegrad().arg("synth").arg("--out").arg(out).args(args).output().unwrap()
}

fn synth_ok(out: &Path, args: &[&str]) -> Output {
    let res = synth(out, args);
    assert!(res.status.success(), "stderr: {}", String::from_utf8_lossy(&res.stderr));
    res
}

/// Every file under `dir`, by path relative to `dir`, with its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(path.strip_prefix(root).unwrap().to_path_buf(), std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The file names in `dir`, sorted as strings.
fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    n.sort();
    n
}

/// The first run of digits in `name`, as a number.
fn first_integer(name: &str) -> u64 {
    let digits: String = name.chars().skip_while(|c| !c.is_ascii_digit()).take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().unwrap()
}

/// Values of a NIfTI file in file (Fortran) order, and its dimensions, read by the `nifti` crate.
fn read_back(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let obj = ReaderOptions::new().read_file(path).unwrap();
    let header = obj.header().clone();
    let dims = header.dim[1..=header.dim[0] as usize].iter().map(|&d| d as usize).collect();
    let values = obj.into_volume().into_ndarray::<f32>().unwrap().t().iter().copied().collect();
    (dims, values)
}

/// Soft Dice per channel, as `dicegrad analyze --json` reports it.
fn soft_dice(labels: &Path, pred: &Path) -> Vec<f64> {
    let r = json_of(dicegrad().args(["analyze", "--json", "--labels"]).arg(labels).arg("--pred").arg(pred));
    r["channels"].as_array().unwrap().iter().map(|c| c["soft_dice"].as_f64().unwrap()).collect()
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_another_seed_other_predictions() {
    let (a, b, c) = (tmp(), tmp(), tmp());
    let args = |seed: &'static str| ["--seed", seed, "--classes", "3", "--shape", "12,10,8", "--steps", "3"];
    synth_ok(a.path(), &args("4"));
    synth_ok(b.path(), &args("4"));
    synth_ok(c.path(), &args("5"));
    let (ta, tb, tc) = (tree(a.path()), tree(b.path()), tree(c.path()));
    assert_eq!(ta.len(), 7, "labels and three steps of probabilities and logits: {:?}", ta.keys());
    assert_eq!(ta, tb);
    let step = Path::new("probs/epoch_020.nii.gz");
    assert_ne!(ta[step], tc[step], "another seed, another prediction");
}

#[test]
fn every_file_holds_its_step_generated_alone() {
    for classes in [2usize, 3] {
        let d = tmp();
        let c = classes.to_string();
        synth_ok(
            d.path(),
            &["--seed", "6", "--classes", &c, "--shape", "12,10,8", "--steps", "4", "--epochs-per-step", "5"],
        );
        let case = SynthOptions { shape: [12, 10, 8], classes, seed: 6, ..SynthOptions::default() };
        let options = SequenceOptions { case, steps: 4 };
        let (dims, labels) = read_back(&at(&d, "labels.nii.gz"));
        assert_eq!(dims, [12, 10, 8]);
        let expected: Vec<f32> = Sequence::new(&options).labels().iter().map(|&l| l as f32).collect();
        assert_eq!(labels, expected);
        // last step first, each from a fresh sequence: no step needs another's numbers
        for i in (0..4).rev() {
            let step = Sequence::new(&options).step(i);
            let name = format!("epoch_{:03}.nii.gz", 5 * (i + 1));
            for (folder, values) in [("probs", &step.probs), ("logits", &step.logits)] {
                let (dims, read) = read_back(&d.path().join(folder).join(&name));
                let channels = if classes == 2 { vec![] } else { vec![classes] };
                assert_eq!(dims, [vec![12, 10, 8], channels].concat(), "{folder}/{name}");
                assert!(read == *values, "{folder}/{name} differs from step {i} generated alone");
            }
        }
    }
}

#[test]
fn predictions_improve_and_the_lesion_is_missed_early_and_learnt_late() {
    let d = tmp();
    synth_ok(d.path(), &["--seed", "1", "--classes", "3", "--shape", "20,20,12", "--steps", "6", "--no-logits"]);
    let labels = at(&d, "labels.nii.gz");
    let dice: Vec<Vec<f64>> =
        names(&d.path().join("probs")).iter().map(|n| soft_dice(&labels, &d.path().join("probs").join(n))).collect();
    assert_eq!(dice.len(), 6);
    let class = |k: usize| dice.iter().map(|s| s[k]).collect::<Vec<f64>>();
    let (background, main, lesion) = (class(0), class(1), class(2));
    for w in main.windows(2) {
        assert!(w[1] > w[0], "the main class improves at every step: {main:?}");
    }
    assert!(main[5] > main[0] + 0.3, "{main:?}");
    assert!(background.windows(2).all(|w| w[1] >= w[0]), "{background:?}");
    // steps 0–2 are at t = 0, 0.2, 0.4: before the lesion appears
    assert!(lesion[..3].iter().all(|&s| s < 0.01), "missed early: {lesion:?}");
    assert!(lesion[5] > 0.4 && lesion[5] > lesion[4] && lesion[4] > lesion[3], "learnt late: {lesion:?}");
}

#[test]
fn file_names_carry_increasing_epochs_and_sort_as_epochs() {
    let d = tmp();
    synth_ok(d.path(), &["--shape", "6,5,4", "--steps", "12", "--epochs-per-step", "100", "--no-logits"]);
    let probs = names(&d.path().join("probs"));
    assert_eq!(probs.first().map(String::as_str), Some("epoch_0100.nii.gz"), "padded to the widest epoch");
    let epochs: Vec<u64> = probs.iter().map(|n| first_integer(n)).collect();
    assert_eq!(epochs, (1..=12).map(|i| 100 * i).collect::<Vec<u64>>(), "{probs:?}");
    assert!(!d.path().join("logits").exists(), "no logits asked for");

    let e = tmp();
    let res = synth_ok(e.path(), &["--shape", "6,5,4", "--steps", "2"]);
    for folder in ["probs", "logits"] {
        assert_eq!(names(&e.path().join(folder)), ["epoch_010.nii.gz", "epoch_020.nii.gz"], "default: 10 per step");
    }
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(stderr.lines().filter(|l| l.starts_with("wrote ")).count(), 5, "{stderr}");
}

#[test]
fn a_single_step_is_fine() {
    let d = tmp();
    synth_ok(d.path(), &["--shape", "6,5,4", "--classes", "3", "--steps", "1"]);
    assert_eq!(tree(d.path()).len(), 3);
    assert_eq!(names(&d.path().join("probs")), ["epoch_010.nii.gz"]);
}

#[test]
fn bad_values_exit_with_2_naming_the_flag_and_write_nothing() {
    let cases: [(&[&str], &str); 7] = [
        (&["--steps", "0"], "--steps"),
        (&["--steps", "1001"], "--steps"),
        (&["--steps", "-3"], "--steps"),
        (&["--steps", "2", "--epochs-per-step", "0"], "--epochs-per-step"),
        (&["--steps", "2", "--epochs-per-step", "10001"], "--epochs-per-step"),
        (&["--epochs-per-step", "5"], "--steps"),
        (&["--no-logits"], "--steps"),
    ];
    for (args, flag) in cases {
        let d = tmp();
        let out = d.path().join("out");
        let res = synth(&out, &[&["--shape", "6,5,4"], args].concat());
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: ") && stderr.contains(flag), "{args:?} should name {flag}: {stderr}");
        assert!(!out.exists(), "{args:?} wrote something");
    }
}

#[test]
fn an_earlier_sequence_is_kept_without_force_and_replaced_with_force() {
    let d = tmp();
    let args = ["--shape", "6,5,4", "--classes", "3"];
    synth_ok(d.path(), &[&args[..], &["--steps", "3"]].concat());
    let before = tree(d.path());

    let res = synth(d.path(), &[&args[..], &["--steps", "2"]].concat());
    assert_eq!(res.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&res.stderr).contains("already exists"));
    assert_eq!(tree(d.path()), before);

    // no file of the new sequence is in the way, but the folders hold another sequence's epochs
    std::fs::remove_file(at(&d, "labels.nii.gz")).unwrap();
    let res = synth(d.path(), &[&args[..], &["--steps", "2", "--epochs-per-step", "7"]].concat());
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("earlier sequence") && stderr.contains("--force"), "{stderr}");
    assert!(!at(&d, "labels.nii.gz").exists() && !d.path().join("probs/epoch_007.nii.gz").exists());

    let res = synth_ok(d.path(), &[&args[..], &["--steps", "2", "--epochs-per-step", "7", "--force"]].concat());
    for folder in ["probs", "logits"] {
        assert_eq!(names(&d.path().join(folder)), ["epoch_007.nii.gz", "epoch_014.nii.gz"]);
    }
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(stderr.matches("removed ").count(), 6, "three epochs of probabilities and logits: {stderr}");

    synth_ok(d.path(), &[&args[..], &["--steps", "1", "--no-logits", "--force"]].concat());
    assert_eq!(
        tree(d.path()).keys().cloned().collect::<Vec<_>>(),
        ["labels.nii.gz", "probs/epoch_010.nii.gz"].map(PathBuf::from)
    );
    assert!(!d.path().join("logits").exists(), "the earlier sequence's empty logits folder is gone");
}

fn samples_readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/README.md")).unwrap()
}

fn sample(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples").join(rel)
}

/// The commands samples/README.md gives, with the folder each writes: every
/// `dicegrad synth --out samples/NAME …`, on a line of its own or between backquotes.
fn documented_commands() -> Vec<(String, Vec<String>)> {
    let readme = samples_readme();
    let mut found = Vec::new();
    for part in readme.lines().flat_map(|l| l.split('`')) {
        if let Some(rest) = part.trim().strip_prefix("dicegrad synth --out samples/") {
            let mut words = rest.split_whitespace();
            let folder = words.next().unwrap().to_string();
            found.push((folder, words.map(str::to_string).collect()));
        }
    }
    found
}

#[test]
fn every_bundled_sample_is_what_its_documented_command_writes() {
    let commands = documented_commands();
    let folders: Vec<&str> = commands.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(folders, ["binary", "multiclass", "training"]);
    for (folder, args) in &commands {
        let d = tmp();
        synth_ok(d.path(), &args.iter().map(String::as_str).collect::<Vec<_>>());
        let (made, bundled) = (tree(d.path()), tree(&sample(folder)));
        assert_eq!(made.keys().collect::<Vec<_>>(), bundled.keys().collect::<Vec<_>>(), "samples/{folder}");
        for (name, bytes) in &made {
            assert!(
                *bytes == bundled[name],
                "samples/{folder}/{} differs from what its command writes",
                name.display()
            );
        }
    }
}

#[test]
fn the_bundled_sequence_has_eight_steps_or_more_in_little_space() {
    let bundled = tree(&sample("training"));
    let steps = bundled.keys().filter(|k| k.starts_with("probs")).count();
    assert!(steps >= 8, "{steps} steps");
    let size: usize = bundled.values().map(Vec::len).sum();
    assert!(size <= 1_100_000, "samples/training holds {size} bytes");
}

#[test]
fn the_samples_readme_states_the_soft_dice_of_each_step() {
    let readme = samples_readme();
    let labels = sample("training/labels.nii.gz");
    for name in names(&sample("training/probs")) {
        let dice = soft_dice(&labels, &sample("training/probs").join(&name));
        let cells: Vec<String> = dice.iter().map(|s| format!("{s:.3}")).collect();
        let row = format!("| {} | {} |", first_integer(&name), cells.join(" | "));
        assert!(readme.contains(&row), "samples/README.md does not state \"{row}\"");
    }
}
