//! The files of a track's folder: `track.json`, the records of file steps (`steps.jsonl`), the
//! batch folders of folder steps (`steps/<step>/`), and the outputs written from them at the end.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::output::write_bytes;
use crate::report::html::track::track_page;
use crate::report::record::CaseRecord;
use crate::report::series::Series;
use crate::report::summary::RunParameters;

pub const META: &str = "track.json";
pub const STEPS_JSONL: &str = "steps.jsonl";
/// The folder of the batch folders of folder steps.
pub const STEPS_DIR: &str = "steps";
pub const SERIES_JSON: &str = "series.json";
pub const SERIES_CSV: &str = "series.csv";
pub const TRACK_HTML: &str = "track.html";

/// The batch folder of step `step`, relative to the track's folder.
pub fn step_folder(step: u64) -> String {
    format!("{STEPS_DIR}/{step}")
}

/// One step as `track.json` keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MetaStep {
    pub step: u64,
    /// The prediction file or folder, resolved (absolute, symbolic links followed).
    pub source: PathBuf,
    /// As given.
    pub given: String,
    /// A prediction file's size and modification time when the track started (None for a
    /// folder): a continued track analyses again the steps whose file changed since.
    #[serde(default)]
    pub file: Option<Fingerprint>,
}

/// What tells that a file changed: its size and its modification time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Fingerprint {
    pub bytes: u64,
    /// Nanoseconds since the Unix epoch.
    pub modified_ns: Option<u128>,
}

impl Fingerprint {
    /// Of the file at `path` (None when it cannot be read).
    pub fn of(path: &Path) -> Option<Fingerprint> {
        let m = std::fs::metadata(path).ok()?;
        let modified_ns =
            m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_nanos());
        Some(Fingerprint { bytes: m.len(), modified_ns })
    }
}

/// `track.json`: what a track folder holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TrackMeta {
    pub tool: String,
    /// `files` (one prediction file per step) or `folders` (one folder of cases per step).
    pub kind: String,
    /// The label file, or the folder of label files, resolved.
    pub labels: PathBuf,
    /// The label value K of single-channel predictions of one class.
    pub label: Option<i64>,
    pub steps: Vec<MetaStep>,
    pub parameters: RunParameters,
}

impl TrackMeta {
    /// What differs from `now`, in what a run computes (empty when `now` may continue this one).
    pub fn differences(&self, now: &TrackMeta) -> Vec<String> {
        // what a track computes: not the version, nor the files' fingerprints (a changed file is
        // analysed again)
        let identity = |m: &TrackMeta| {
            let mut v = serde_json::to_value(m).expect("track metadata serialises");
            v.as_object_mut().expect("an object").remove("tool");
            for s in v["steps"].as_array_mut().into_iter().flatten() {
                s.as_object_mut().expect("an object").remove("file");
            }
            v
        };
        crate::batch::outputs::value_differences(&identity(self), &identity(now))
    }
}

/// Reads `track.json` of `dir`, if there is one.
pub fn read_meta(dir: &Path) -> Result<Option<TrackMeta>> {
    let path = dir.join(META);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read(&path).map_err(|e| Error::Open { path: path.clone(), source: e })?;
    serde_json::from_slice(&text).map(Some).map_err(|e| Error::BadValues {
        input: path.into(),
        problem: format!("not a dicegrad track.json ({e}); is this a track output folder?").into(),
    })
}

/// Writes `track.json`.
pub fn write_meta(dir: &Path, meta: &TrackMeta) -> Result<()> {
    let mut json = serde_json::to_vec_pretty(meta).expect("track metadata serialises");
    json.push(b'\n');
    write_bytes(&dir.join(META), true, &json)
}

/// The complete records of `dir/steps.jsonl` (a line cut short by an interrupted run is dropped;
/// so is everything after a line this version cannot read).
pub fn read_step_records(dir: &Path) -> Result<Vec<CaseRecord>> {
    let path = dir.join(STEPS_JSONL);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::Open { path, source: e }),
    };
    let mut records = Vec::new();
    for line in BufReader::new(file).split(b'\n') {
        let line = line.map_err(|e| Error::Open { path: path.clone(), source: e })?;
        match serde_json::from_slice(&line) {
            Ok(r) => records.push(r),
            Err(_) => break,
        }
    }
    Ok(records)
}

/// Every file a track writes into `dir` (but the lock and the folder `steps/`).
pub fn own_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        [META, STEPS_JSONL, SERIES_JSON, SERIES_CSV, TRACK_HTML].iter().map(|f| dir.join(f)).collect();
    v.extend(crate::plot::series::PICTURES.iter().map(|f| dir.join(f)));
    v
}

/// Removes the files a track writes from `dir` (files of that name, without a track to say whose
/// they are: the folder `steps/`, which would be a track's only beside its `track.json`, stays).
pub fn remove_own_files(dir: &Path) -> Result<()> {
    remove(own_files(dir))
}

/// Removes what a track wrote into `dir` (an earlier track that this one replaces): its files,
/// and in `steps/` the batch folders of its steps (each holding a `run.json`); anything else in
/// `steps/` stays, and so does `steps/` itself unless it is left empty.
pub fn remove_outputs(dir: &Path) -> Result<()> {
    remove(own_files(dir))?;
    let steps = dir.join(STEPS_DIR);
    let batches: Vec<PathBuf> = std::fs::read_dir(&steps)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.join(crate::batch::outputs::RUN).is_file())
        .collect();
    remove(batches)?;
    let _ = std::fs::remove_dir(&steps);
    Ok(())
}

fn remove(paths: Vec<PathBuf>) -> Result<()> {
    for p in paths {
        let r = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
        match r {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::Write { path: p, source: e }),
        }
    }
    Ok(())
}

/// Writes the outputs of a finished track: `series.json`, `series.csv`, the pictures and
/// `track.html` (`command`: the command line that made it, shown on the page).
pub fn finalize(dir: &Path, series: &Series, command: &str) -> Result<()> {
    let mut json = serde_json::to_vec_pretty(series).expect("the series serialises");
    json.push(b'\n');
    write_bytes(&dir.join(SERIES_JSON), true, &json)?;
    write_bytes(&dir.join(SERIES_CSV), true, &crate::report::series_csv::to_csv(series))?;
    let figures = crate::plot::series::write_pictures(series, dir)?;
    write_bytes(&dir.join(TRACK_HTML), true, track_page(series, &figures, command).as_bytes())
}
