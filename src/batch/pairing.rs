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
//! Label files without a prediction, and prediction files that no label file claims, are listed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Param, Result};

/// One case: its id and its two files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CasePair {
    pub id: String,
    pub labels: PathBuf,
    pub pred: PathBuf,
}

/// The result of pairing two folders.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pairing {
    /// Paired cases, sorted by id.
    pub cases: Vec<CasePair>,
    /// Label files without a prediction.
    pub unpaired_labels: Vec<PathBuf>,
    /// Prediction files (NIfTI or .npz) that no label file claims.
    pub unpaired_predictions: Vec<PathBuf>,
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

fn is_prediction_file(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    p.is_file() && (nifti_stem(name).is_some() || name.ends_with(".npz"))
}

/// Pairs the label files of `labels_dir` with predictions in `pred_dir`. Folders listed in `skip`
/// (a run's own output folders, when they lie inside `pred_dir`) are not searched.
pub fn pair(labels_dir: &Path, pred_dir: &Path, suffix: &str, skip: &[&Path]) -> Result<Pairing> {
    let skip: Vec<PathBuf> = skip.iter().filter_map(|p| p.canonicalize().ok()).collect();
    if !pred_dir.is_dir() {
        return Err(Error::parameter(Param::PRED_DIR, format!("{}: not a folder", pred_dir.display())));
    }
    let mut claimed = BTreeSet::new();
    let mut pairing = Pairing::default();
    for path in list(labels_dir)? {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
        let Some(id) = nifti_stem(&name).filter(|_| path.is_file()) else { continue };
        let candidates = [
            pred_dir.join(format!("{id}.npz")),
            pred_dir.join(format!("{id}{suffix}.nii.gz")),
            pred_dir.join(format!("{id}{suffix}.nii")),
            pred_dir.join(id).join(format!("{id}{suffix}.nii.gz")),
            pred_dir.join(id).join(format!("{id}{suffix}.nii")),
        ];
        // a label file is never its own prediction (labels and predictions in one folder)
        let own = path.canonicalize().ok();
        match candidates.iter().find(|c| c.is_file() && c.canonicalize().ok() != own) {
            Some(pred) => {
                claimed.insert(pred.clone());
                // an nnU-Net segmentation beside the chosen .npz is part of the same case
                claimed.insert(pred_dir.join(format!("{id}.nii.gz")));
                pairing.cases.push(CasePair { id: id.to_string(), labels: path.clone(), pred: pred.clone() });
            }
            None => pairing.unpaired_labels.push(path.clone()),
        }
    }
    for path in list(pred_dir)? {
        if path.canonicalize().is_ok_and(|c| skip.contains(&c)) {
            continue;
        }
        let files = if path.is_dir() { list(&path)? } else { vec![path] };
        for f in files {
            if is_prediction_file(&f) && !claimed.contains(&f) {
                pairing.unpaired_predictions.push(f);
            }
        }
    }
    pairing.cases.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(pairing)
}

/// A share of the cases: those whose index in the sorted list is K modulo N (`K/N`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
