//! The HTML reports in a real browser: headless Chromium opens `report.html` and `index.html`
//! from disk with the network blocked, and a script injected at the top of the page records
//! errors (script errors, `console.error`, resources that failed to load), then checks after load
//! that every image decoded and that no request left the file. The test fails on any of them; it
//! is shown to fail on a page built to break each rule.
//!
//! Without Chromium the browser checks print a note and pass — unless `DICEGRAD_REQUIRE_BROWSER=1`
//! (set by `.ci/run`), when they fail. `DICEGRAD_CHROMIUM=PATH` names the browser;
//! `DICEGRAD_KEEP_SCREENSHOTS=1` keeps each test's folder with its screenshots (paths printed). The other checks (escaping, the sort script, outliers
//! against a modified z-score computed here, links to case reports) need no browser.

#[path = "html_report/browser.rs"]
mod browser;
mod common;

use std::path::{Path, PathBuf};

use browser::{assert_nothing_external, check_in_browser, chromium, verdict, Work};
use common::*;
use serde_json::Value;

#[test]
fn the_verdict_parser_reads_pass_fail_and_silence() {
    assert_eq!(verdict("<body><pre id=\"dicegrad-verdict\">PASS 3 images 2 sorted</pre></body>"), Ok((3, 2)));
    let fail = verdict("<pre id=\"dicegrad-verdict\">FAIL\nimage 0 did not decode</pre>").unwrap_err();
    assert!(fail.contains("image 0 did not decode"));
    assert!(verdict("<body>nothing</body>").unwrap_err().contains("did not run"));
}

#[test]
fn the_browser_check_fails_on_a_broken_image_a_request_a_console_error_and_no_sorting() {
    let Some(browser) = chromium() else { return };
    let work = tmp();
    let page = "<!DOCTYPE html><html lang=\"en\"><head><title>t</title></head><body>\
                <img alt=\"broken\" src=\"data:image/svg+xml;base64,AAAA\">\
                <img alt=\"remote\" src=\"http://example.invalid/x.png\">\
                <table class=\"sortable\"><thead><tr><th><button>n</button></th></tr></thead><tbody>\
                <tr><td data-v=\"2\">2</td></tr><tr><td data-v=\"1\">1</td></tr></tbody></table>\
                <script>console.error('boom');</script></body></html>";
    let problems = check_in_browser(&browser, work.path(), page, "broken", false).unwrap_err();
    assert!(problems.contains("image 0 did not decode"), "{problems}");
    assert!(problems.contains("image 1 did not decode"), "{problems}");
    assert!(problems.contains("example.invalid"), "the request is not reported: {problems}");
    assert!(problems.contains("console.error: boom"), "{problems}");
    assert!(problems.contains("column 0 is not sorted"), "a table that does not sort passes: {problems}");
}

fn samples(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples").join(name)
}

#[test]
fn a_case_report_is_self_contained_and_opens_cleanly() {
    let work = Work::new();
    let runs: [(&str, &str, &[&str]); 2] = [
        ("probs", "probs.nii.gz", &["--compare", "ce,mimic"]),
        ("logits", "logits.nii.gz", &["--activation", "softmax"]),
    ];
    let browser = chromium();
    for (stem, pred, extra) in runs {
        let out = work.path().join(stem);
        dicegrad()
            .args(["analyze", "--labels"])
            .arg(samples("multiclass/labels.nii.gz"))
            .arg("--pred")
            .arg(samples("multiclass").join(pred))
            .args(extra)
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        let html = std::fs::read_to_string(out.join("report.html")).unwrap();
        assert_nothing_external(&html);
        assert!(html.contains("two-level structure") && html.contains("1 − 2/Dice"), "the reading is missing");
        assert!(html.contains("dicegrad") && html.contains(" analyze --labels "), "the command line is missing");
        let images = html.matches("<img ").count();
        let Some(browser) = &browser else { continue };
        let seen = check_in_browser(browser, work.path(), &html, stem, true).unwrap_or_else(|e| panic!("{stem}: {e}"));
        assert_eq!(seen, (images, 0));
    }
}

/// A data set of seven 3-class cases: six alike, one (with a hostile id) predicted far worse.
fn planted_dataset(dir: &Path) -> (PathBuf, PathBuf, String) {
    let (labels, preds) = (dir.join("labels"), dir.join("preds"));
    std::fs::create_dir_all(&labels).unwrap();
    std::fs::create_dir_all(&preds).unwrap();
    let planted = r#"x<b>&"q'"#.to_string();
    for seed in 1..=7 {
        let case = dir.join(format!("synth{seed}"));
        let (shift, noise) = if seed == 7 { ("6", "4") } else { ("1", "0.5") };
        dicegrad()
            .args(["synth", "--classes", "3", "--shape", "16,16,10", "--shift", shift, "--noise", noise, "--seed"])
            .arg(seed.to_string())
            .arg("--out")
            .arg(&case)
            .assert()
            .success();
        let id = if seed == 7 { planted.clone() } else { format!("case{seed}") };
        std::fs::rename(case.join("labels.nii.gz"), labels.join(format!("{id}.nii.gz"))).unwrap();
        std::fs::rename(case.join("probs.nii.gz"), preds.join(format!("{id}.nii.gz"))).unwrap();
    }
    (labels, preds, planted)
}

/// The modified z-scores of `v` (Iglewicz & Hoaglin), written here from the definition: 0.6745 ·
/// (x − median) / MAD, or (x − median) / (1.2533 · mean |x − median|) when the MAD is 0.
fn modified_z(v: &[f64]) -> Vec<f64> {
    let median = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let n = s.len();
        if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        }
    };
    let m = median(v);
    let dev: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
    let mad = median(&dev);
    let mean_ad = dev.iter().sum::<f64>() / dev.len() as f64;
    v.iter()
        .map(|x| {
            if mad > 0.0 {
                0.6745 * (x - m) / mad
            } else if mean_ad > 0.0 {
                (x - m) / (1.2533 * mean_ad)
            } else {
                0.0
            }
        })
        .collect()
}

/// The cases an index must flag, from the records of `cases.jsonl`: per channel, level ratio
/// (log10 |fg/bg|) and the float16 window's bounds (log2), |z| > 3.5.
fn expected_flags(records: &[Value]) -> Vec<(String, u64, f64)> {
    let mut out = Vec::new();
    let channels: Vec<u64> =
        records[0]["channels"].as_array().unwrap().iter().map(|c| c["channel"].as_u64().unwrap()).collect();
    for ch in channels {
        type Measure<'a> = &'a dyn Fn(&Value) -> Option<f64>;
        let measures: [Measure; 3] = [
            &|c| Some((c["foreground_level"].as_f64()? / c["background_level"].as_f64()?).abs().log10()),
            &|c| c["float16_window_log2_min"].as_f64(),
            &|c| c["float16_window_log2_max"].as_f64(),
        ];
        for m in measures {
            let points: Vec<(String, f64)> = records
                .iter()
                .filter_map(|r| {
                    let c = r["channels"].as_array()?.iter().find(|c| c["channel"] == ch)?;
                    Some((r["case"].as_str()?.to_string(), m(c)?))
                })
                .collect();
            let z = modified_z(&points.iter().map(|p| p.1).collect::<Vec<_>>());
            for ((case, _), z) in points.into_iter().zip(z) {
                if z.abs() > 3.5 {
                    out.push((case, ch, z));
                }
            }
        }
    }
    out
}

fn escaped(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn a_data_set_index_flags_the_planted_outlier_escapes_ids_and_links_case_reports() {
    let work = Work::new();
    let (labels, preds, planted) = planted_dataset(work.path());
    let out = work.path().join("out");
    dicegrad()
        .args(["batch", "--quiet", "--case-reports", "--labels-dir"])
        .arg(&labels)
        .arg("--pred-dir")
        .arg(&preds)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert_nothing_external(&html);

    // the hostile id appears escaped, never as markup
    assert!(!html.contains(&planted) && !html.contains("<b>&"), "an id reached the page unescaped");
    assert!(html.contains(&escaped(&planted)));

    // the sort script and its sortable table
    assert!(html.contains("<table class=\"sortable\">") && html.contains("querySelectorAll('table.sortable')"));
    assert!(html.contains("<th scope=\"col\"><button type=\"button\">"));

    // the flagged rows are exactly the cases whose modified z, computed here, exceeds 3.5
    let records: Vec<Value> = std::fs::read_to_string(out.join("cases.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expected = expected_flags(&records);
    assert!(expected.iter().any(|(case, ch, _)| *case == planted && *ch == 0), "the planted case is not an outlier");
    let mut flagged_rows: Vec<&str> = html.lines().filter(|l| l.starts_with("<tr class=\"flag\">")).collect();
    let mut want: Vec<String> = expected.iter().map(|e| e.0.clone()).collect();
    want.sort();
    want.dedup();
    assert_eq!(flagged_rows.len(), want.len(), "flagged rows: {flagged_rows:#?}, expected {want:?}");
    for (case, ch, z) in &expected {
        let row = flagged_rows.iter().find(|l| l.contains(&format!(">{}</a>", escaped(case)))).unwrap();
        assert!(row.contains(&format!("channel {ch}: ")) && row.contains(&format!("z = {z:.1}")), "{row}");
        assert!(row.contains("⚑ outlier"), "a flag must not be colour alone: {row}");
    }
    flagged_rows.clear();

    // every link to a case report resolves, one per successful case
    let links: Vec<String> = html
        .match_indices("<a href=\"")
        .map(|(at, _)| {
            let v = &html[at + 9..];
            v[..v.find('"').unwrap()].to_string()
        })
        .collect();
    assert_eq!(links.len(), records.len());
    for link in &links {
        let path = out.join(percent_decoded(link));
        assert!(path.is_file(), "{link} -> {} does not exist", path.display());
        assert!(path.starts_with(out.join("cases")));
    }

    let Some(browser) = chromium() else { return };
    let seen = check_in_browser(&browser, work.path(), &html, "index", true).unwrap_or_else(|e| panic!("index: {e}"));
    // two pictures; flags, loss and four columns per channel sort as numbers
    assert_eq!(seen, (2, 2 + 4 * 3));
    let planted_page = out.join(percent_decoded(links.iter().find(|l| l.contains("x%25")).unwrap()));
    let page = std::fs::read_to_string(planted_page).unwrap();
    assert!(!page.contains(&planted));
    check_in_browser(&browser, work.path(), &page, "case", false).unwrap_or_else(|e| panic!("case report: {e}"));
}
