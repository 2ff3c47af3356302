//! The files of a batch folder: `run.json` (what was asked), `cases.jsonl` (one complete record per
//! line, appended and flushed per case), and the outputs derived from the records — `cases.csv`,
//! `summary.json`, the pictures and `index.html` — which a resumed run or a merge rebuilds from the
//! records. With case reports, `cases/<folder>/report.html` is written by the worker that analysed
//! the case, before its record: a record never names a report that is not there.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::pairing::Shard;
use crate::error::{Error, Result};
use crate::output::write_bytes;
use crate::report::csv;
use crate::report::html::dataset::{case_folder, index, RunInfo};
use crate::report::record::CaseRecord;
use crate::report::summary::{ResolvedLosses, RunParameters, Summary, Unpaired};

pub const RUN: &str = "run.json";
pub const CASES_JSONL: &str = "cases.jsonl";
pub const CASES_CSV: &str = "cases.csv";
pub const SUMMARY: &str = "summary.json";
pub const INDEX: &str = "index.html";
/// The folder of the cases' own reports.
pub const CASES_DIR: &str = "cases";

/// The report of case `id` in the batch folder `dir`: `cases/<folder>/report.html`, the id made
/// safe as a folder name ([`case_folder`]).
pub fn case_report_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(CASES_DIR).join(case_folder(id)).join("report.html")
}

/// The folders a run reads and writes gradients into, resolved (absolute, symbolic links
/// followed).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunInputs {
    pub labels_dir: PathBuf,
    pub pred_dir: PathBuf,
    pub grad_out_dir: Option<PathBuf>,
    /// The gzip level of the gradient volumes (with `grad_out_dir`).
    #[serde(default)]
    pub compression: Option<u32>,
    /// Every successful case has its own report, `cases/<folder>/report.html` ([`case_report_path`]).
    #[serde(default)]
    pub case_reports: bool,
}

/// `run.json`: what a batch folder holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunMeta {
    pub tool: String,
    #[serde(default)]
    pub inputs: RunInputs,
    pub parameters: RunParameters,
    pub unpaired: Unpaired,
    /// This run's share of the data set; none = all of it.
    pub shard: Option<Shard>,
    /// Every case id of the data set (of all shards), in order.
    #[serde(default)]
    pub all_cases: Vec<String>,
    /// The case ids of this run (after sharding), in order.
    pub cases: Vec<String>,
    /// The losses as computed (written when the run is complete).
    #[serde(default)]
    pub resolved: Vec<ResolvedLosses>,
}

/// The fields of `run.json` that say what a run computes, for `fields` of: "inputs", "parameters",
/// "shard", "all_cases", "cases", "unpaired".
fn identity(m: &RunMeta, fields: &[&str]) -> serde_json::Value {
    let all = serde_json::to_value(m).expect("run metadata serialises");
    let mut out = serde_json::Map::new();
    for f in fields {
        out.insert(f.to_string(), all.get(*f).cloned().unwrap_or(serde_json::Value::Null));
    }
    serde_json::Value::Object(out)
}

/// What differs between the `run.json` of a run (`a`) and that of another one (`b`): the paths of
/// the fields (`parameters.loss.overrides.smooth_dr`, `inputs.pred_dir`, `shard`, `cases`), in
/// order, each with both values when they are short (`smooth_dr (0.5 in the run, 0.25 now)`);
/// empty when `b` may continue `a`.
pub fn differences(a: &RunMeta, b: &RunMeta) -> Vec<String> {
    described(differences_in(a, b, &["inputs", "parameters", "shard", "all_cases", "cases"]))
}

/// What differs between two records of what a run computes (`a` of the run, `b` now), described
/// as [`differences`] describes it.
pub fn value_differences(a: &serde_json::Value, b: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(a, b, "", &mut out);
    described(out)
}

fn described(d: Vec<(String, Option<(String, String)>)>) -> Vec<String> {
    d.into_iter()
        .map(|(path, values)| values.map_or(path.clone(), |(x, y)| format!("{path} ({x} in the run, {y} now)")))
        .collect()
}

/// What differs between two shards' `run.json` that must be equal for them to be merged.
pub fn shard_differences(a: &RunMeta, b: &RunMeta) -> Vec<String> {
    let d = differences_in(a, b, &["inputs", "parameters", "all_cases", "unpaired"]);
    // each shard may write its gradients where and how it likes
    d.into_iter().map(|(path, _)| path).filter(|f| f != "inputs.grad_out_dir" && f != "inputs.compression").collect()
}

/// A value written out when it is short enough for a message: null as "not given", a list as
/// its items joined by commas, a shard as K/N.
fn short(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    let item = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let text = match v {
        Value::Null => "not given".to_string(),
        Value::Array(a) if a.is_empty() => "none".to_string(),
        Value::Array(a) => a.iter().map(item).collect::<Vec<_>>().join(","),
        Value::Object(o) => match (o.get("index"), o.get("count")) {
            (Some(k), Some(n)) if o.len() == 2 => format!("{k}/{n}"),
            _ => return None,
        },
        other => item(other),
    };
    (text.chars().count() <= 80).then_some(text)
}

type Found = Vec<(String, Option<(String, String)>)>;

/// The paths at which `x` and `y` differ, below `path`, with both values when they are short.
fn walk(x: &serde_json::Value, y: &serde_json::Value, path: &str, out: &mut Found) {
    match (x, y) {
        (serde_json::Value::Object(p), serde_json::Value::Object(q)) => {
            for (k, v) in p {
                let sub = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                walk(v, q.get(k).unwrap_or(&serde_json::Value::Null), &sub, out);
            }
        }
        _ if x != y => out.push((path.to_string(), short(x).zip(short(y)))),
        _ => {}
    }
}

/// The paths that differ, with both values when they are short.
fn differences_in(a: &RunMeta, b: &RunMeta, fields: &[&str]) -> Found {
    let mut out = Vec::new();
    walk(&identity(a, fields), &identity(b, fields), "", &mut out);
    out
}

/// Reads `run.json` of `dir`, if there is one.
pub fn read_meta(dir: &Path) -> Result<Option<RunMeta>> {
    let path = dir.join(RUN);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read(&path).map_err(|e| Error::Open { path: path.clone(), source: e })?;
    serde_json::from_slice(&text).map(Some).map_err(|e| Error::BadValues {
        input: path.into(),
        problem: format!("not a dicegrad run.json ({e}); is this a batch output folder?").into(),
    })
}

/// The complete records of `dir/cases.jsonl` (a line cut short by an interrupted run is dropped).
pub fn read_records(dir: &Path) -> Result<Vec<CaseRecord>> {
    let path = dir.join(CASES_JSONL);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::Open { path, source: e }),
    };
    let mut records = Vec::new();
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).map_err(|e| Error::Open { path: path.clone(), source: e })?;
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        match serde_json::from_str(&line) {
            Ok(r) => records.push(r),
            Err(_) => {
                if let Some(found) = stale_histograms(&line) {
                    return Err(Error::usage(crate::msg![
                        format!(
                            "{}: record {} (case {}): {}; run this batch again into a new folder, or over this one \
                             with ",
                            path.display(),
                            records.len() + 1,
                            found.0,
                            crate::analysis::stale_bins_message(found.1)
                        ),
                        crate::error::set(crate::error::Param::FORCE, true),
                    ]));
                }
                break;
            }
        }
    }
    Ok(records)
}

/// When `line` is a case record whose |gradient| histograms have other bins than this version's:
/// its case id, and their bins per factor 2 (None for the first records, which do not say).
fn stale_histograms(line: &str) -> Option<(String, Option<usize>)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let case = v.get("case")?.as_str()?.to_string();
    v.get("log_histograms")?.as_array()?.iter().find_map(|h| {
        let bins = h.get("bins_per_octave").map(|b| b.as_u64().map(|b| b as usize));
        match bins {
            None => Some((case.clone(), None)),
            Some(Some(b)) if b != crate::analysis::LogHistogram::BINS_PER_OCTAVE => Some((case.clone(), Some(b))),
            _ => None,
        }
    })
}

/// The comparison pairs ("a vs b") of a run's CSV columns.
pub fn pair_names(params: &RunParameters) -> Vec<String> {
    csv::pair_names(params.loss.kind(), &params.compare)
}

/// The whole `cases.jsonl` for `records`.
pub fn jsonl_of(records: &[CaseRecord]) -> String {
    records.iter().map(|r| serde_json::to_string(r).expect("records serialise") + "\n").collect()
}

/// Writes `run.json`.
pub fn write_meta(dir: &Path, meta: &RunMeta) -> Result<()> {
    let mut json = serde_json::to_vec_pretty(meta).expect("run metadata serialises");
    json.push(b'\n');
    write_bytes(&dir.join(RUN), true, &json)
}

/// Writes every output of a complete run from `records` (sorted by case): `run.json` with the
/// resolved losses, `cases.csv`, `cases.jsonl`, `summary.json`, the pictures and `index.html`.
pub fn finalize(dir: &Path, meta: &RunMeta, records: &[CaseRecord]) -> Result<Summary> {
    let params = &meta.parameters;
    write_meta(dir, &RunMeta { resolved: params.resolved(records), ..meta.clone() })?;
    write_bytes(&dir.join(CASES_JSONL), true, jsonl_of(records).as_bytes())?;
    write_bytes(&dir.join(CASES_CSV), true, &csv::to_csv(&pair_names(params), records))?;
    let summary = Summary::build(params, meta.unpaired.clone(), records);
    write_bytes(&dir.join(SUMMARY), true, &summary.to_json())?;
    crate::plot::dataset::write_pictures(&summary, records, dir)?;
    let page = dir.join(INDEX);
    let run = RunInfo {
        labels_dir: meta.inputs.labels_dir.display().to_string(),
        pred_dir: meta.inputs.pred_dir.display().to_string(),
        case_reports: meta.inputs.case_reports,
    };
    let figures = crate::plot::dataset::figures(&summary, records, &page)?;
    write_bytes(&page, true, index(&summary, records, &run, &figures).as_bytes())?;
    Ok(summary)
}

/// Paths of every file a batch writes into `dir`.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = [RUN, CASES_JSONL, CASES_CSV, SUMMARY, INDEX].iter().map(|f| dir.join(f)).collect();
    v.extend(crate::plot::dataset::PICTURES.iter().map(|f| dir.join(f)));
    v
}
