//! Before a batch writes anything: what its `out` folder holds and what the run will do there (a
//! fresh run, a resumed one, one that replaces an old run), the gradient files it may overwrite,
//! and input files that an output would reach through a symbolic link. Every check is made before
//! the first byte is written; [`commit`] then writes the run's first files.

use std::path::{Path, PathBuf};

use super::outputs::{self, read_meta, read_records, RunMeta, CASES_CSV, CASES_JSONL};
use super::pairing::{CasePair, Pairing};
use super::run::BatchOptions;
use crate::error::{set, Error, Param, Result};
use crate::msg;
use crate::output::{remove_stale, resolved, write_bytes, LOCK_FILE};
use crate::report::csv;
use crate::report::record::CaseRecord;

/// What a run will do in its `out` folder, decided before anything is written.
pub struct Plan {
    /// Complete records of the run being resumed.
    pub done: Vec<CaseRecord>,
    /// Continuing the run recorded in `out`: its gradient files may be rewritten.
    pub resuming: bool,
    /// `out` holds another run, which this one replaces (`force`).
    pub replacing: bool,
}

/// The gradient volume of case `id` in `dir`.
pub fn gradient_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.nii.gz"))
}

/// Decides what the run does in `out` (locked by this run, its stale temporary files removed),
/// or refuses: a run already there without `resume` or `force`; a resumed run whose folders or
/// options differ; gradient files of this run's cases already in `grad_out_dir` (unless resuming
/// the run that wrote them, or `force`).
pub fn plan(opts: &BatchOptions, meta: &RunMeta) -> Result<Plan> {
    remove_stale(&opts.out);
    // the `track.json` of a track's folder
    if opts.out.join("track.json").exists() {
        return Err(Error::parameter(
            Param::OUT,
            format!(
                "{}: holds a track (track.json); a batch needs a folder of its own: choose another folder",
                opts.out.display()
            ),
        ));
    }
    let previous = read_meta(&opts.out)?;
    let mut done = Vec::new();
    match (&previous, opts.resume, opts.force) {
        (Some(prev), true, _) => {
            let differ = outputs::differences(prev, meta);
            if !differ.is_empty() {
                return Err(Error::usage(msg![
                    Param::RESUME,
                    format!(
                        ": {} holds a run whose {} differ; use the same folders and options as that run, or ",
                        opts.out.display(),
                        differ.join(", ")
                    ),
                    set(Param::FORCE, true),
                    " to start over",
                ]));
            }
            done = read_records(&opts.out)?;
        }
        (Some(_), false, false) => {
            return Err(Error::usage(msg![
                format!("{} already holds a batch run; pass ", opts.out.display()),
                set(Param::RESUME, true),
                " to continue it or ",
                set(Param::FORCE, true),
                " to start over",
            ]))
        }
        _ => {}
    }
    let resuming = opts.resume && previous.is_some();
    if let (Some(dir), false, false) = (&opts.grad_out_dir, resuming, opts.force) {
        let existing: Vec<String> = meta
            .cases
            .iter()
            .map(|id| gradient_path(dir, id))
            .filter(|p| p.symlink_metadata().is_ok())
            .map(|p| p.display().to_string())
            .collect();
        if let Some(first) = existing.first() {
            return Err(Error::usage(msg![
                Param::GRAD_OUT_DIR,
                format!(
                    " {}: already holds the gradient files of {} of this run's cases ({first}{}); pass ",
                    dir.display(),
                    existing.len(),
                    if existing.len() > 1 { ", …" } else { "" }
                ),
                set(Param::FORCE, true),
                " to overwrite them, or choose another folder",
            ]));
        }
    }
    Ok(Plan { done, resuming, replacing: previous.is_some() && !opts.resume })
}

/// Writes the run's first files: removes the run it replaces (and, when starting over with
/// `force`, the gradient files of this run's cases other than those of `analysed`, just written),
/// then writes `run.json` and the records so far (which drops any line cut short by a killed run).
pub fn commit(opts: &BatchOptions, meta: &RunMeta, plan: &Plan, analysed: &[CaseRecord]) -> Result<()> {
    if plan.replacing {
        for f in outputs::all_files(&opts.out) {
            let _ = std::fs::remove_file(f);
        }
        // the case reports of the run replaced, but those of the cases just analysed
        let fresh: Vec<PathBuf> = analysed
            .iter()
            .filter(|r| opts.case_reports && r.is_ok())
            .map(|r| outputs::case_report_path(&opts.out, &r.case))
            .collect();
        remove_case_reports(&opts.out, &fresh);
    }
    if let (Some(dir), true, false) = (&opts.grad_out_dir, opts.force, plan.resuming) {
        let fresh: Vec<&str> = analysed.iter().filter(|r| r.is_ok()).map(|r| r.case.as_str()).collect();
        for id in meta.cases.iter().filter(|id| !fresh.contains(&id.as_str())) {
            let _ = std::fs::remove_file(gradient_path(dir, id));
        }
    }
    outputs::write_meta(&opts.out, meta)?;
    write_bytes(&opts.out.join(CASES_JSONL), true, outputs::jsonl_of(&plan.done).as_bytes())?;
    write_bytes(&opts.out.join(CASES_CSV), true, &csv::to_csv(&outputs::pair_names(&opts.params), &plan.done))
}

/// Removes the case reports in `dir/cases/` (each `<folder>/report.html`, then the folder if empty)
/// other than `keep`; the folder `cases/` goes when nothing is left in it.
pub fn remove_case_reports(dir: &Path, keep: &[PathBuf]) {
    let cases = dir.join(outputs::CASES_DIR);
    let Ok(entries) = std::fs::read_dir(&cases) else { return };
    for e in entries.flatten() {
        let report = e.path().join("report.html");
        if !keep.contains(&report) {
            let _ = std::fs::remove_file(&report);
            let _ = std::fs::remove_dir(e.path());
        }
    }
    let _ = std::fs::remove_dir(&cases);
}

/// Refuses input files that lie in an output folder through a symbolic link (a prediction folder
/// of links into `grad_out_dir`): the run would write over them.
pub fn check_files_outside(cases: &[CasePair], outputs: &[(&Path, Param)]) -> Result<()> {
    let outputs: Vec<(PathBuf, &Path, Param)> =
        outputs.iter().map(|(d, p)| Ok((resolved(d)?, *d, *p))).collect::<Result<_>>()?;
    for case in cases {
        for file in [&case.labels, &case.pred] {
            let Ok(real) = file.canonicalize() else { continue };
            if let Some((_, dir, param)) = outputs.iter().find(|(o, _, _)| real.starts_with(o)) {
                return Err(Error::parameter(
                    *param,
                    msg![format!(
                        "{}: holds the input file {} (through a symbolic link: {}); a run never writes among its \
                         inputs: choose another folder",
                        dir.display(),
                        real.display(),
                        file.display()
                    )],
                ));
            }
        }
    }
    Ok(())
}

/// Removes the folders a refused run created (when they hold nothing but its lock).
pub fn remove_created(created: &[&PathBuf]) {
    for dir in created {
        let _ = std::fs::remove_file(dir.join(LOCK_FILE));
        let _ = std::fs::remove_dir(dir);
    }
}

/// The error for two folders in which no case pairs, with the prediction suffix that would pair
/// them when there is one.
pub fn no_cases(opts: &BatchOptions, pairing: &Pairing) -> Error {
    let suffix = &opts.params.pred_suffix;
    if pairing.unpaired_labels.is_empty() {
        return Error::parameter(
            Param::LABELS_DIR,
            format!("{}: holds no label file (CASE.nii.gz or CASE.nii)", opts.labels_dir.display()),
        );
    }
    if pairing.unpaired_predictions.is_empty() {
        return Error::parameter(
            Param::PRED_DIR,
            format!(
                "{}: holds no prediction file (CASE.npz, CASE{suffix}.nii.gz, CASE{suffix}.nii or \
                 CASE/CASE{suffix}.nii.gz)",
                opts.pred_dir.display()
            ),
        );
    }
    let mut m = msg![format!(
        "no case to analyse: none of the {} label files of {} has a prediction in {} (looked for CASE.npz, \
         CASE{suffix}.nii.gz, CASE{suffix}.nii and CASE/CASE{suffix}.nii.gz; {} prediction files found)",
        pairing.unpaired_labels.len(),
        opts.labels_dir.display(),
        opts.pred_dir.display(),
        pairing.unpaired_predictions.len()
    )];
    match pairing.suffix_hint(suffix) {
        Some(hint) if hint.is_empty() => {
            m.extend(msg!["; the prediction files are named CASE.nii.gz: drop ", Param::PRED_SUFFIX])
        }
        Some(hint) => m.extend(msg!["; did you mean ", set(Param::PRED_SUFFIX, hint), "?"]),
        None => {}
    }
    Error::usage(m)
}
