//! What the program does on a terminal and off it: progress only on a terminal (and never with
//! `--quiet`), the table fitted to the terminal's width with colour (none in a pipe or with
//! `NO_COLOR`), the exports of the table, the end-of-run table of a batch and its `--json`, shell
//! completions and the manual page. A terminal is made with util-linux `script` (a
//! pseudo-terminal, on every Debian machine). Where `script` is missing those tests skip, unless
//! `DICEGRAD_REQUIRE_TERMINAL=1` (set by `.ci/run`) makes that a failure.

mod common;

use std::path::Path;
use std::process::Command as Std;

use common::*;
use serde_json::Value;

/// Whether a pseudo-terminal can be made here (util-linux `script`); without one a test skips,
/// or fails when `DICEGRAD_REQUIRE_TERMINAL=1`.
fn terminal_available() -> bool {
    let found = Std::new("script").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("DICEGRAD_REQUIRE_TERMINAL").is_none(),
            "util-linux script is needed for the terminal tests (DICEGRAD_REQUIRE_TERMINAL is set)"
        );
        eprintln!("skipped: util-linux script is not installed");
    }
    found
}

/// Runs `dicegrad ARGS` in a pseudo-terminal `cols` wide (stdout and stderr both on it, as in
/// an interactive shell), with `env`; what the terminal showed.
fn on_terminal(args: &[&str], cols: usize, env: &[(&str, &str)]) -> String {
    let bin = assert_cmd::cargo::cargo_bin("dicegrad");
    let quoted: Vec<String> = args.iter().map(|a| format!("'{}'", a.replace('\'', "'\\''"))).collect();
    let inner = format!("stty cols {cols} rows 50; '{}' {}", bin.display(), quoted.join(" "));
    let mut cmd = Std::new("script");
    cmd.args(["-qec", &inner, "/dev/null"]).env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("util-linux script runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
}

fn sample(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/multiclass").join(name).display().to_string()
}

#[test]
fn the_table_fits_a_narrow_terminal_and_says_what_it_left_out() {
    if !terminal_available() {
        return;
    }
    let (l, p) = (sample("labels.nii.gz"), sample("probs.nii.gz"));
    let shown = on_terminal(&["analyze", "--labels", &l, "--pred", &p], 72, &[]);
    for line in shown.lines() {
        let plain = strip_ansi(line);
        // a word longer than the width (a path) may stay whole; nothing else passes the edge
        let longest_word = plain.split(' ').map(|w| w.chars().count()).max().unwrap_or(0);
        assert!(plain.chars().count() <= 72 || longest_word > 40, "{plain}");
    }
    assert!(shown.contains("columns left out to fit 72 characters"), "{shown}");
    assert!(shown.contains("--wide shows every column"), "{shown}");
    // the columns always shown are there, with the numbers of the JSON report
    let r = json_of(dicegrad().args(["analyze", "--json", "--labels", &l, "--pred", &p]));
    let dice = format!("{:.5}", r["channels"][2]["soft_dice"].as_f64().unwrap());
    assert!(shown.lines().any(|x| x.trim_start().starts_with("2 ") && x.contains(&dice)), "{shown}");
    // --wide: every column, whatever the width
    let wide = on_terminal(&["analyze", "--wide", "--labels", &l, "--pred", &p], 72, &[]);
    assert!(!wide.contains("left out to fit"), "{wide}");
    assert!(wide.contains("fit R²") && wide.contains("dyn. range"), "{wide}");
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn colour_marks_the_verdict_on_a_terminal_and_never_in_a_pipe_or_with_no_color() {
    if !terminal_available() {
        return;
    }
    let (l, p) = (sample("labels.nii.gz"), sample("probs.nii.gz"));
    let args = ["analyze", "--labels", l.as_str(), "--pred", p.as_str()];
    let coloured = on_terminal(&args, 200, &[]);
    assert!(coloured.contains("\x1b[1;32mtwo-level structure holds"), "{coloured}");
    let no_color = on_terminal(&args, 200, &[("NO_COLOR", "1")]);
    assert!(!no_color.contains('\x1b'), "{no_color}");
    let piped = dicegrad().args(args).output().unwrap();
    let text = String::from_utf8(piped.stdout).unwrap();
    assert!(!text.contains('\x1b') && text.contains("two-level structure holds"), "{text}");
    // in a pipe, the table keeps every column and lines are not broken
    assert!(text.contains("fit R²") && !text.contains("left out to fit"), "{text}");
}

#[test]
fn progress_shows_on_a_terminal_only_and_never_with_quiet() {
    let d = tmp();
    let (labels, preds) = synth_dataset(&d, 3, |i| format!("case{i}"));
    let (l, p) = (labels.display().to_string(), preds.display().to_string());
    let run = |extra: &[&str], out: &str| {
        let o = at(&d, out).display().to_string();
        let mut args = vec!["batch", "--labels-dir", &l, "--pred-dir", &p, "--out", &o];
        args.extend(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<String>>()
    };
    // not a terminal: no progress, no control characters on stderr
    let piped = dicegrad().args(run(&[], "o1")).output().unwrap();
    assert!(piped.status.success());
    let err = String::from_utf8(piped.stderr).unwrap();
    assert!(!err.contains('\r') && !err.contains('\x1b') && !err.contains("ETA"), "{err:?}");
    assert!(err.contains("3 cases: 3 ok, 0 failed"), "{err}");
    if !terminal_available() {
        return;
    }
    // a terminal: the bar with its count, rate and ETA
    let args = run(&[], "o2");
    let shown = on_terminal(&args.iter().map(String::as_str).collect::<Vec<_>>(), 120, &[]);
    assert!(shown.contains("3/3 cases") && shown.contains("ETA"), "{shown:?}");
    let args = run(&["--quiet"], "o3");
    let quiet = on_terminal(&args.iter().map(String::as_str).collect::<Vec<_>>(), 120, &[]);
    assert!(!quiet.contains("ETA") && quiet.contains("3 cases: 3 ok"), "{quiet:?}");
}

#[test]
fn batch_ends_with_means_per_channel_and_the_foreground_mean_or_its_summary_as_json() {
    let d = tmp();
    let (labels, preds) = synth_dataset(&d, 3, |i| format!("case{i}"));
    let out = at(&d, "out");
    let table = batch_run(&labels, &preds, &out, &[]);
    assert!(table.status.success());
    let text = String::from_utf8(table.stdout).unwrap();
    let summary: Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["schema_version"], 1);
    let channels = summary["channels"].as_array().unwrap();
    // each channel's row holds the mean soft Dice over the cases, recomputed here from the cases
    let cases: Vec<Value> = std::fs::read_to_string(out.join("cases.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut class_means = Vec::new();
    for (k, ch) in channels.iter().enumerate() {
        let dice: Vec<f64> = cases.iter().map(|c| c["channels"][k]["soft_dice"].as_f64().unwrap()).collect();
        let mean = dice.iter().sum::<f64>() / dice.len() as f64;
        assert!((mean - ch["soft_dice"]["mean"].as_f64().unwrap()).abs() < 1e-12);
        let row = text.lines().find(|l| l.starts_with(&format!("{k} "))).unwrap_or_else(|| panic!("{text}"));
        assert!(row.contains(&format!("{mean:.5}")), "{row}");
        class_means.push(mean);
    }
    // the foreground mean: of the classes but label 0, as nnU-Net's foreground_mean
    let fg = (class_means[1] + class_means[2]) / 2.0;
    let row = text.lines().find(|l| l.starts_with("foreground mean")).unwrap_or_else(|| panic!("{text}"));
    assert!(row.contains(&format!("{fg:.5}")), "{row}");
    // --json: summary.json on stdout, nothing else there
    let json = batch_run(&labels, &preds, &out, &["--json", "--force"]);
    assert!(json.status.success());
    let printed: Value = serde_json::from_slice(&json.stdout).unwrap();
    let written: Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(printed, written);
}

#[test]
fn exports_hold_the_table_in_markdown_and_its_numbers_in_csv() {
    let d = tmp();
    let (l, p) = (sample("labels.nii.gz"), sample("logits.nii.gz"));
    let (md, csv) = (at(&d, "table.md"), at(&d, "table.csv"));
    let r = json_of(
        dicegrad()
            .args(["analyze", "--json", "--preset", "nnunet", "--labels", &l, "--pred", &p, "--export-markdown"])
            .arg(&md)
            .arg("--export-csv")
            .arg(&csv),
    );
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.contains("| ch | label | fg voxels | soft Dice |"), "{md}");
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| 1 |")).collect();
    assert!(!rows.is_empty(), "{md}");
    let cells: Vec<&str> = rows[0].trim_matches('|').split('|').map(str::trim).collect();
    assert_eq!(cells[2], r["channels"][1]["foreground_voxels"].to_string());
    // CSV: a header, then one row per reported channel, every digit of the JSON report
    let mut reader = csv::Reader::from_path(&csv).unwrap();
    let head: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(head[..4], ["ch", "label", "fg voxels", "soft Dice"]);
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let channels = r["channels"].as_array().unwrap();
    assert_eq!(records.len(), channels.len());
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    for (row, ch) in records.iter().zip(channels) {
        assert_eq!(row[col("ch")].parse::<u64>().unwrap(), ch["channel"].as_u64().unwrap());
        assert_eq!(row[col("soft Dice")].parse::<f64>().unwrap(), ch["soft_dice"].as_f64().unwrap());
        let fg_mean = ch["gradient"]["foreground"]["mean"].as_f64().unwrap();
        assert_eq!(row[col("mean grad fg")].parse::<f64>().unwrap(), fg_mean);
    }
    // an export never overwrites a file without --force
    let again = fails_with_2(
        dicegrad().args(["analyze", "--labels", &l, "--pred", &p, "--export-csv"]).arg(at(&d, "table.csv")),
    );
    assert!(again.contains("table.csv"), "{again}");
}

#[test]
fn completions_and_the_manual_page_are_made_from_the_command_line() {
    for (shell, mark) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef dicegrad"),
        ("fish", "complete -c dicegrad"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = dicegrad().args(["completions", shell]).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(mark), "{shell}");
        // every subcommand and a flag of each are offered
        for word in ["analyze", "batch", "track", "synth", "merge", "labels-dir", "export-markdown"] {
            assert!(text.contains(word), "{shell}: {word}");
        }
    }
    let bad = dicegrad().args(["completions", "tcsh"]).output().unwrap();
    let err = String::from_utf8(bad.stderr).unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(err.contains("'tcsh'") && err.contains("bash, zsh, fish, powershell"), "{err}");
    let man = dicegrad().arg("man").output().unwrap();
    assert!(man.status.success());
    let page = String::from_utf8(man.stdout).unwrap();
    assert!(page.starts_with(".ie") || page.contains(".TH dicegrad"), "{}", &page[..200.min(page.len())]);
    for section in [".SH \"DICEGRAD ANALYZE\"", ".SH \"DICEGRAD BATCH\"", ".SH \"DICEGRAD TRACK\""] {
        assert!(page.contains(section), "{section}");
    }
    assert!(page.contains("export\\-markdown"), "the options of analyze are in the page");
}

#[test]
fn a_batch_where_every_case_fails_says_so_on_stdout() {
    let d = tmp();
    let (labels, preds) = synth_dataset(&d, 2, |i| format!("case{i}"));
    for f in std::fs::read_dir(&preds).unwrap() {
        std::fs::write(f.unwrap().path(), b"not a volume").unwrap();
    }
    let out = batch_run(&labels, &preds, &at(&d, "o"), &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text, "no case succeeded: 2 of 2 failed (see summary.json)\n");
}
