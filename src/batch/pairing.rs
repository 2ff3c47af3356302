//! Pairing label files with prediction files by case id.
//!
//! The case id of a label file is its name without `.nii.gz` / `.nii`. For each id the prediction
//! is looked for, in this order, in the prediction folder:
//! 1. `ID.npz` — nnU-Net probabilities (`--save_probabilities`); preferred because nnU-Net writes
//!    its hard segmentation as `ID.nii.gz` beside it;
//! 2. `ID{SUFFIX}.nii.gz`, `ID{SUFFIX}.nii` — same file name (SUFFIX chosen by the user, default
//!    empty);
//! 3. `ID/ID{SUFFIX}.nii.gz`, `ID/ID{SUFFIX}.nii` — MONAI's per-case folders (e.g. suffix `_seg`).
//!
//! Label files without a prediction, prediction files that no label file claims, and every other
//! file of the two folders (with the reason it was skipped) are listed. Two label files of one
//! case id (`a.nii` and `a.nii.gz`) are refused, as is a name that is not UTF-8 (it cannot be a
//! case id) — listed as skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Param, Result};
use crate::msg;
use crate::report::summary::Skipped;

/// One case: its id and its two files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CasePair {
    pub id: String,
    pub labels: PathBuf,
    pub pred: PathBuf,
}

/// The result of pairing two folders.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Pairing {
    /// Paired cases, sorted by id.
    pub cases: Vec<CasePair>,
    /// Label files without a prediction.
    pub unpaired_labels: Vec<PathBuf>,
    /// Prediction files (NIfTI or .npz) that no label file claims.
    pub unpaired_predictions: Vec<PathBuf>,
    /// Every other file of the two folders, and why it is not used.
    pub skipped: Vec<Skipped>,
}

/// The case id of a NIfTI file name, or None if it is not one.
pub fn nifti_stem(name: &str) -> Option<&str> {
    name.strip_suffix(".nii.gz").or_else(|| name.strip_suffix(".nii")).filter(|s| !s.is_empty())
}

fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::Open { path: dir.to_path_buf(), source: e })?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::Open { path: dir.to_path_buf(), source: e })?;
        out.push(entry.path());
    }
    out.sort();
    Ok(out)
}

const NOT_UTF8: &str = "its name is not valid UTF-8; rename it";
const HIDDEN: &str = "a hidden file (its name starts with a dot)";

/// Why a file of the prediction folder is not a prediction, if it is not.
fn not_a_prediction(p: &Path) -> Option<&'static str> {
    match p.file_name().and_then(|n| n.to_str()) {
        None => Some(NOT_UTF8),
        Some(name) if name.starts_with('.') => Some(HIDDEN),
        Some(name) if nifti_stem(name).is_some() || name.ends_with(".npz") => None,
        Some(_) => Some("not a NIfTI (.nii, .nii.gz) or .npz file"),
    }
}

/// Pairs the label files of `labels_dir` with predictions in `pred_dir`.
pub fn pair(labels_dir: &Path, pred_dir: &Path, suffix: &str) -> Result<Pairing> {
    for (dir, param) in [(labels_dir, Param::LABELS_DIR), (pred_dir, Param::PRED_DIR)] {
        if let Some(e) = Error::input_path(param, dir, true) {
            return Err(e);
        }
    }
    let mut claimed = BTreeSet::new();
    let mut pairing = Pairing::default();
    let mut ids: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in list(labels_dir)? {
        if path.is_dir() {
            pairing.skipped.push(Skipped::new(&path, "a folder: label files are read from the top level only"));
            continue;
        }
        if !path.is_file() {
            pairing.skipped.push(Skipped::new(&path, "not a regular file"));
            continue;
        }
        if path.file_name().is_some_and(|n| n.as_encoded_bytes().starts_with(b".")) {
            pairing.skipped.push(Skipped::new(&path, HIDDEN));
            continue;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            pairing.skipped.push(Skipped::new(&path, NOT_UTF8));
            continue;
        };
        let Some(id) = nifti_stem(name).map(str::to_string) else {
            pairing.skipped.push(Skipped::new(&path, "not a NIfTI file name (.nii, .nii.gz)"));
            continue;
        };
        if let Some(first) = ids.insert(id.clone(), path.clone()) {
            return Err(Error::parameter(
                Param::LABELS_DIR,
                msg![format!("{} and {} are both case '{id}'; keep one of them", first.display(), path.display())],
            ));
        }
        let id = id.as_str();
        let candidates = [
            pred_dir.join(format!("{id}.npz")),
            pred_dir.join(format!("{id}{suffix}.nii.gz")),
            pred_dir.join(format!("{id}{suffix}.nii")),
            pred_dir.join(id).join(format!("{id}{suffix}.nii.gz")),
            pred_dir.join(id).join(format!("{id}{suffix}.nii")),
        ];
        // a label file is never its own prediction (labels and predictions in one folder)
        let own = path.canonicalize().ok();
        let found: Vec<&PathBuf> = candidates.iter().filter(|c| c.is_file() && c.canonicalize().ok() != own).collect();
        // nnU-Net's probabilities are preferred to its segmentation beside them; two NIfTI
        // predictions of one case are ambiguous
        if let [a, b, ..] = found.as_slice() {
            if a.extension().is_none_or(|e| e != "npz") {
                return Err(Error::parameter(
                    Param::PRED_DIR,
                    msg![format!(
                        "{} and {} are both predictions of case '{id}'; keep one of them",
                        a.display(),
                        b.display()
                    )],
                ));
            }
        }
        match found.first() {
            Some(&pred) => {
                claimed.insert(pred.clone());
                // an nnU-Net segmentation beside the chosen .npz is part of the same case
                claimed.insert(pred_dir.join(format!("{id}.nii.gz")));
                pairing.cases.push(CasePair { id: id.to_string(), labels: path.clone(), pred: pred.clone() });
            }
            None => pairing.unpaired_labels.push(path.clone()),
        }
    }
    for path in list(pred_dir)? {
        let files = if path.is_dir() { list(&path)? } else { vec![path] };
        for f in files.into_iter().filter(|f| !claimed.contains(f)) {
            match not_a_prediction(&f) {
                _ if f.is_dir() => {}
                None if f.is_file() => pairing.unpaired_predictions.push(f),
                None => pairing.skipped.push(Skipped::new(&f, "not a regular file")),
                Some(reason) => pairing.skipped.push(Skipped::new(&f, reason)),
            }
        }
    }
    pairing.cases.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(pairing)
}

impl Pairing {
    /// For a pairing that found no case: the prediction suffix under which every unpaired
    /// prediction would pair with an unpaired label file (`Some("")` when the suffix given should
    /// be dropped), if there is one.
    pub fn suffix_hint(&self, suffix: &str) -> Option<String> {
        let ids: Vec<&str> =
            self.unpaired_labels.iter().filter_map(|p| p.file_name()?.to_str()).filter_map(nifti_stem).collect();
        let mut found: Option<String> = None;
        for p in &self.unpaired_predictions {
            let name = p.file_name()?.to_str()?;
            let stem = nifti_stem(name).or_else(|| name.strip_suffix(".npz"))?;
            // the longest case id the name starts with
            let id = ids.iter().filter(|id| stem.starts_with(**id)).max_by_key(|id| id.len())?;
            let rest = &stem[id.len()..];
            match &found {
                Some(s) if s != rest => return None,
                _ => found = Some(rest.to_string()),
            }
        }
        found.filter(|s| s != suffix)
    }
}

/// A share of the cases: those whose index in the sorted list is K modulo N (`K/N`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (k, n) = s.split_once('/').ok_or_else(|| format!("expected K/N (e.g. 0/4), got '{s}'"))?;
        let (index, count): (usize, usize) = (
            k.trim().parse().map_err(|_| format!("'{k}' is not a whole number"))?,
            n.trim().parse().map_err(|_| format!("'{n}' is not a whole number"))?,
        );
        if count == 0 || index >= count {
            return Err(format!("need 0 ≤ K < N, got {index}/{count}"));
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Keeps this shard's share of `cases` (sorted by id).
    pub fn select(self, cases: Vec<CasePair>) -> Vec<CasePair> {
        cases.into_iter().enumerate().filter(|(i, _)| i % self.count == self.index).map(|(_, c)| c).collect()
    }
}
