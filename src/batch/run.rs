//! Running a batch: cases analysed by `jobs` workers, each holding one case in memory; records
//! appended to `cases.jsonl` and `cases.csv` in case order (so that the files are the same for any
//! number of workers, and always a complete prefix of the run); a failing case becomes a record
//! with its error and the run goes on.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use super::folders;
use super::outputs::{self, read_meta, read_records, RunMeta, CASES_CSV, CASES_JSONL};
use super::pairing::{pair, CasePair, Pairing, Shard};
use crate::error::{set, Error, Naming, Param, Result};
use crate::msg;
use crate::nifti::WriteOptions;
use crate::output::{remove_stale, write_bytes, FolderLock, LOCK_FILE};
use crate::pipeline::load::{load, LoadOptions};
use crate::pipeline::{self, write_gradient, Request};
use crate::report::csv;
use crate::report::record::CaseRecord;
use crate::report::summary::{RunParameters, Summary, Unpaired};

/// How to run a batch.
#[derive(Clone, Debug)]
pub struct BatchOptions {
    pub labels_dir: PathBuf,
    pub pred_dir: PathBuf,
    pub out: PathBuf,
    pub params: RunParameters,
    pub shard: Option<Shard>,
    /// Cases analysed at once.
    pub jobs: usize,
    /// Continue the run recorded in `out`.
    pub resume: bool,
    /// Start over in an `out` that holds a run.
    pub force: bool,
    /// Write every case's gradient volume here.
    pub grad_out_dir: Option<PathBuf>,
    pub compression: u32,
}

/// What a finished batch did.
pub struct Outcome {
    pub summary: Summary,
    /// Cases analysed by this invocation (not skipped when resuming).
    pub analysed: usize,
}

fn write_error(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Write { path: path.to_path_buf(), source: e }
}

/// What a run asks of each case.
fn request(params: &RunParameters) -> Request {
    Request {
        loss: params.loss.clone(),
        compare: params.compare.clone(),
        label: None,
        force_activation: params.force_activation,
        allow_non_finite: params.allow_non_finite,
    }
}

/// How a run loads each case.
fn load_options(params: &RunParameters) -> LoadOptions {
    LoadOptions { max_values: params.max_values, affine_tol: params.affine_tol }
}

/// Analyses one case through the pipeline, and writes its gradient when asked.
fn run_case(pair: &CasePair, opts: &BatchOptions, naming: &dyn Naming) -> Result<CaseRecord> {
    let request = request(&opts.params);
    let loaded = load(&pair.labels, &pair.pred, load_options(&opts.params), &request)?;
    let result = pipeline::analyze(&loaded.case, loaded.inputs, &request, naming)?;
    if let Some(dir) = &opts.grad_out_dir {
        let w = WriteOptions { compression: opts.compression, force: true };
        write_gradient(&gradient_path(dir, &pair.id), &loaded.layout, &result.kernel, w)?;
    }
    Ok(CaseRecord::ok(&pair.id, &result.report, result.sums))
}

/// Analyses one case; an error (or a panic) becomes a failed record, its message naming
/// parameters as `naming` does — except an error of the run's configuration (probabilities that
/// the loss would activate again), which is returned: it stops the run.
pub fn process(pair: &CasePair, opts: &BatchOptions, naming: &dyn Naming) -> Result<CaseRecord> {
    let labels = pair.labels.display().to_string();
    let pred = pair.pred.display().to_string();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_case(pair, opts, naming))) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e @ Error::Reactivation { .. })) => Err(e),
        Ok(Err(e)) => Ok(CaseRecord::failed(&pair.id, &labels, &pred, e.render(naming))),
        Err(_) => Ok(CaseRecord::failed(&pair.id, &labels, &pred, "internal error while analysing this case".into())),
    }
}

/// The error that stopped a run at case `id`, `kept` cases being recorded in `out`.
fn stopped(e: Error, id: &str, kept: usize, out: &Path) -> Error {
    let mut m = msg![format!("case {id}: ")];
    m.extend(e.message());
    if kept == 0 {
        m.extend(msg!["; the run stopped before its first case and wrote nothing"]);
    } else {
        m.extend(msg![format!(
            "; the run stopped ({kept} finished case{} kept in {}; with other options, start over with ",
            if kept == 1 { "" } else { "s" },
            out.display()
        )]);
        m.extend(msg![set(Param::FORCE, true), ")"]);
    }
    Error::usage(m)
}

/// Prepares `out` (locked by this run): a fresh run, a resumed one (returning its records), or an
/// error. Nothing is written before every check has passed.
fn prepare(opts: &BatchOptions, meta: &RunMeta) -> Result<Vec<CaseRecord>> {
    // temporary files of a run killed while writing an output
    remove_stale(&opts.out);
    if let Some(g) = &opts.grad_out_dir {
        remove_stale(g);
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
    // gradient files of this run's cases may be overwritten only when resuming this run, or asked
    let resuming = opts.resume && previous.is_some();
    if let (Some(dir), false, false) = (&opts.grad_out_dir, resuming, opts.force) {
        let existing: Vec<String> = meta
            .cases
            .iter()
            .map(|id| gradient_path(dir, id))
            .filter(|p| p.exists())
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
    if previous.is_some() && !opts.resume {
        for f in outputs::all_files(&opts.out) {
            let _ = std::fs::remove_file(f);
        }
    }
    outputs::write_meta(&opts.out, meta)?;
    // rewrite both files from the complete records: drops any line cut short by a killed run
    write_bytes(&opts.out.join(CASES_JSONL), true, outputs::jsonl_of(&done).as_bytes())?;
    write_bytes(&opts.out.join(CASES_CSV), true, &csv::to_csv(&outputs::pair_names(&opts.params), &done))?;
    Ok(done)
}

/// Removes the folders a refused run created (when they hold nothing but its lock).
fn remove_created(created: &[&PathBuf]) {
    for dir in created {
        let _ = std::fs::remove_file(dir.join(LOCK_FILE));
        let _ = std::fs::remove_dir(dir);
    }
}

/// The gradient volume of case `id` in `dir`.
fn gradient_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.nii.gz"))
}

/// The error for two folders in which no case pairs, with the prediction suffix that would pair
/// them when there is one.
fn no_cases(opts: &BatchOptions, pairing: &Pairing) -> Error {
    let suffix = &opts.params.pred_suffix;
    if pairing.unpaired_labels.is_empty() {
        return Error::parameter(
            Param::LABELS_DIR,
            format!("{}: holds no label file (CASE.nii.gz or CASE.nii)", opts.labels_dir.display()),
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

/// Runs a batch. `progress(done, total, failed)` is called after each case; the messages of failed
/// cases name parameters as `naming` does.
pub fn run(
    opts: &BatchOptions,
    naming: &(dyn Naming + Sync),
    progress: &mut dyn FnMut(usize, usize, usize),
) -> Result<Outcome> {
    load_options(&opts.params).check()?;
    opts.params.loss.check_applies(&opts.params.compare)?;
    let inputs = folders::check(&opts.labels_dir, &opts.pred_dir, &opts.out, opts.grad_out_dir.as_deref())?;
    let pairing = pair(&opts.labels_dir, &opts.pred_dir, &opts.params.pred_suffix)?;
    if pairing.cases.is_empty() {
        return Err(no_cases(opts, &pairing));
    }
    let unpaired = Unpaired {
        labels: pairing.unpaired_labels.iter().map(|p| p.display().to_string()).collect(),
        predictions: pairing.unpaired_predictions.iter().map(|p| p.display().to_string()).collect(),
        skipped: pairing.skipped.clone(),
    };
    let all_cases: Vec<String> = pairing.cases.iter().map(|c| c.id.clone()).collect();
    let cases = match opts.shard {
        Some(s) => s.select(pairing.cases),
        None => pairing.cases,
    };
    let meta = RunMeta {
        tool: crate::report::Tool::this().version.to_string(),
        inputs,
        parameters: opts.params.clone(),
        unpaired: unpaired.clone(),
        shard: opts.shard,
        all_cases,
        cases: cases.iter().map(|c| c.id.clone()).collect(),
        resolved: Vec::new(),
    };
    // each folder the run writes into is locked for the run
    let (mut locks, mut locked, mut created) = (Vec::new(), Vec::new(), Vec::new());
    for dir in std::iter::once(&opts.out).chain(&opts.grad_out_dir) {
        if !dir.exists() {
            created.push(dir);
        }
        std::fs::create_dir_all(dir).map_err(write_error(dir))?;
        let resolved = folders::resolved(dir)?;
        if !locked.contains(&resolved) {
            locks.push(FolderLock::acquire(dir)?);
            locked.push(resolved);
        }
    }
    let mut records = prepare(opts, &meta).inspect_err(|_| remove_created(&created))?;
    let done: std::collections::HashSet<String> = records.iter().map(|r| r.case.clone()).collect();
    let todo: Vec<&CasePair> = cases.iter().filter(|c| !done.contains(&c.id)).collect();
    let (total, mut failed) = (cases.len(), records.iter().filter(|r| !r.is_ok()).count());
    let jsonl_path = opts.out.join(CASES_JSONL);
    let csv_path = opts.out.join(CASES_CSV);
    let append = |p: &Path| OpenOptions::new().append(true).open(p).map_err(write_error(p));
    let (mut jsonl, mut csv_file) = (append(&jsonl_path)?, append(&csv_path)?);
    let pairs = outputs::pair_names(&opts.params);
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, Result<CaseRecord>)>();
    let mut new_records = Vec::with_capacity(todo.len());
    let ran = std::thread::scope(|s| -> Result<()> {
        for _ in 0..opts.jobs.max(1).min(todo.len().max(1)) {
            let tx = tx.clone();
            let (next, todo) = (&next, &todo);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(pair) = todo.get(i) else { break };
                if tx.send((i, process(pair, opts, naming))).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut pending = BTreeMap::new();
        let mut want = 0;
        for (i, record) in rx {
            pending.insert(i, record);
            while let Some(r) = pending.remove(&want) {
                let r = match r {
                    Ok(r) => r,
                    Err(e) => {
                        // no worker takes another case
                        next.store(todo.len(), Ordering::SeqCst);
                        return Err(stopped(e, &todo[want].id, done.len() + want, &opts.out));
                    }
                };
                let line = serde_json::to_string(&r).expect("records serialise") + "\n";
                jsonl.write_all(line.as_bytes()).and_then(|_| jsonl.flush()).map_err(write_error(&jsonl_path))?;
                csv_file
                    .write_all(&csv::rows(&r, &pairs))
                    .and_then(|_| csv_file.flush())
                    .map_err(write_error(&csv_path))?;
                failed += usize::from(!r.is_ok());
                new_records.push(r);
                want += 1;
                progress(done.len() + want, total, failed);
            }
        }
        Ok(())
    });
    if let Err(e) = ran {
        if records.is_empty() && new_records.is_empty() {
            // a run stopped before its first case leaves nothing: the corrected run starts afresh
            for f in outputs::all_files(&opts.out) {
                let _ = std::fs::remove_file(f);
            }
            remove_created(&created);
        }
        return Err(e);
    }
    let analysed = new_records.len();
    records.extend(new_records);
    records.sort_by(|a, b| a.case.cmp(&b.case));
    let summary = outputs::finalize(&opts.out, &meta, &records)?;
    drop(locks);
    Ok(Outcome { summary, analysed })
}
