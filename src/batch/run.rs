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
use super::outputs::{self, RunMeta, CASES_CSV, CASES_JSONL};
use super::pairing::{pair, CasePair, Shard};
use super::prepare::{check_files_outside, commit, gradient_path, no_cases, plan, remove_created};
use crate::error::{set, Error, Naming, Param, Result};
use crate::msg;
use crate::nifti::WriteOptions;
use crate::output::{remove_stale, resolved, write_bytes, FolderLock};
use crate::pipeline::load::{load, LoadOptions};
use crate::pipeline::{self, write_gradient, Request};
use crate::report::csv;
use crate::report::html::case::{case_report, Provenance};
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
    /// Write each successful case's own report, `cases/<folder>/report.html`.
    pub case_reports: bool,
    /// The command line that started the run, for the case reports.
    pub command: String,
}

/// What a finished batch did.
pub struct Outcome {
    pub summary: Summary,
    /// Cases analysed by this invocation (not skipped when resuming).
    pub analysed: usize,
    /// Every case's record, in case order (what `cases.jsonl` holds).
    pub records: Vec<CaseRecord>,
}

fn write_error(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Write { path: path.to_path_buf(), source: e }
}

/// What a run asks of each case: with case reports, the figures of their pictures of the volume.
fn request(params: &RunParameters, case_reports: bool) -> Request {
    Request {
        loss: params.loss.clone(),
        compare: params.compare.clone(),
        label: None,
        classes: params.classes.clone(),
        force_activation: params.force_activation,
        allow_non_finite: params.allow_non_finite,
        regime: None,
        loss_scale: params.loss_scale,
        views: case_reports.then(crate::analysis::views::ViewRequest::default),
    }
}

/// How a run loads each case.
fn load_options(params: &RunParameters) -> LoadOptions {
    LoadOptions { max_values: params.max_values, affine_tol: params.affine_tol }
}

/// Analyses one case through the pipeline, and writes its gradient when asked.
fn run_case(pair: &CasePair, opts: &BatchOptions, replace: bool, naming: &dyn Naming) -> Result<CaseRecord> {
    let request = request(&opts.params, opts.case_reports);
    let loaded = load(&pair.labels, &pair.pred, load_options(&opts.params), &request)?;
    let record = {
        let result = pipeline::analyze(&loaded.case, loaded.inputs, &request, naming)?;
        if let Some(dir) = &opts.grad_out_dir {
            let w = WriteOptions { compression: opts.compression, force: replace };
            write_gradient(&gradient_path(dir, &pair.id), &loaded.layout, &result.kernel, w)?;
        }
        if opts.case_reports {
            write_case_report(opts, &pair.id, &result.report)?;
        }
        CaseRecord::ok(&pair.id, &result.report, result.sums)
    };
    loaded.case.recycle();
    Ok(record)
}

/// Writes the report of case `id` into `cases/<folder>/` of the run's folder (atomically).
fn write_case_report(opts: &BatchOptions, id: &str, report: &crate::report::Report) -> Result<()> {
    let path = outputs::case_report_path(&opts.out, id);
    let dir = path.parent().expect("a case report lies in a folder");
    std::fs::create_dir_all(dir).map_err(write_error(dir))?;
    let how = Provenance {
        command: opts.command.clone(),
        note: Some(format!(
            "Case {id} of a batch run (labels {}, prediction {}), written by this command:",
            report.inputs.labels.name(),
            report.inputs.prediction.file.name()
        )),
        // cases/<case>/report.html
        index: Some("../../index.html".to_string()),
    };
    let html = case_report(report, &crate::plot::figures(report, &path)?, &how);
    write_bytes(&path, true, html.as_bytes())
}

/// The files a case analysed but never recorded leaves: its gradient volume and its report.
fn unrecorded_files(opts: &BatchOptions, id: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = opts.grad_out_dir.iter().map(|d| gradient_path(d, id)).collect();
    if opts.case_reports {
        v.push(outputs::case_report_path(&opts.out, id));
    }
    v
}

/// Analyses one case (its gradient file replacing an existing one only if `replace`); an error
/// (or a panic) becomes a failed record, its message naming parameters as `naming` does — except
/// an error of the run's configuration (probabilities that the loss would activate again), which
/// is returned: it stops the run.
pub fn process(pair: &CasePair, opts: &BatchOptions, replace: bool, naming: &dyn Naming) -> Result<CaseRecord> {
    isolated(pair, naming, || run_case(pair, opts, replace, naming))
}

/// The record of case `pair` that `analyse` makes, with an error (or a panic) turned into a failed
/// record whose message names parameters as `naming` does — except an error of the run's
/// configuration (probabilities that the loss would activate again), which is returned.
pub fn isolated(
    pair: &CasePair,
    naming: &dyn Naming,
    analyse: impl FnOnce() -> Result<CaseRecord>,
) -> Result<CaseRecord> {
    let labels = pair.labels.display().to_string();
    let pred = pair.pred.display().to_string();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(analyse)) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e @ Error::Reactivation { .. })) => Err(e),
        Ok(Err(e)) => Ok(CaseRecord::failed(&pair.id, &labels, &pred, e.render(naming))),
        Err(_) => Ok(CaseRecord::failed(&pair.id, &labels, &pred, "internal error while analysing this case".into())),
    }
}

/// The error that stopped a run at case `id`: before anything was written (`kept` None), or with
/// `kept` cases recorded in `out`.
fn stopped(e: Error, id: &str, kept: Option<usize>, out: &Path) -> Error {
    let mut m = msg![format!("case {id}: ")];
    m.extend(e.message());
    if let Some(kept) = kept {
        m.extend(msg![format!(
            "; the run stopped ({kept} finished case{} kept in {}; with other options, start over with ",
            if kept == 1 { "" } else { "s" },
            out.display()
        )]);
        m.extend(msg![set(Param::FORCE, true), ")"]);
    } else {
        m.extend(msg!["; the run stopped before writing anything"]);
    }
    Error::usage(m)
}

/// Runs a batch. `progress(done, total, failed)` is called after each case; the messages of failed
/// cases name parameters as `naming` does.
///
/// Order: every check that needs no case (options, folders, pairing, what `out` holds, files an
/// output would reach); then the cases up to the first that succeeds, before anything is written
/// in `out`, so that an error of the run's configuration (probabilities the loss would activate
/// again) leaves a previous run there as it was; then the run's files, and the other cases.
pub fn run(
    opts: &BatchOptions,
    naming: &(dyn Naming + Sync),
    progress: &mut dyn FnMut(usize, usize, usize),
) -> Result<Outcome> {
    load_options(&opts.params).check()?;
    opts.params.loss.check_applies(&opts.params.compare)?;
    let mut inputs = folders::check(&opts.labels_dir, &opts.pred_dir, &opts.out, opts.grad_out_dir.as_deref())?;
    inputs.compression = opts.grad_out_dir.as_ref().map(|_| opts.compression);
    inputs.case_reports = opts.case_reports;
    let pairing = pair(&opts.labels_dir, &opts.pred_dir, &opts.params.pred_suffix)?;
    if pairing.cases.is_empty() {
        return Err(no_cases(opts, &pairing));
    }
    let mut outputs_dirs = vec![(opts.out.as_path(), Param::OUT)];
    outputs_dirs.extend(opts.grad_out_dir.as_deref().map(|g| (g, Param::GRAD_OUT_DIR)));
    check_files_outside(&pairing.cases, &outputs_dirs)?;
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
        unpaired,
        shard: opts.shard,
        all_cases,
        cases: cases.iter().map(|c| c.id.clone()).collect(),
        resolved: Vec::new(),
    };
    // `out` is this run's alone; a gradient folder may be shared with other shards of the run
    let created: Vec<&PathBuf> = std::iter::once(&opts.out).chain(&opts.grad_out_dir).filter(|d| !d.exists()).collect();
    let locks = lock_folders(opts).inspect_err(|_| remove_created(&created))?;
    let plan = plan(opts, &meta).inspect_err(|_| remove_created(&created))?;
    let done: std::collections::HashSet<String> = plan.done.iter().map(|r| r.case.clone()).collect();
    let todo: Vec<&CasePair> = cases.iter().filter(|c| !done.contains(&c.id)).collect();
    // gradient files: this run's own (resumed) or any (forced) may be replaced, no one else's
    let replace = opts.force || plan.resuming;
    let mut head = Vec::new();
    for pair in &todo {
        match process(pair, opts, replace, naming) {
            Err(e) => {
                remove_created(&created);
                return Err(stopped(e, &pair.id, None, &opts.out));
            }
            Ok(r) => {
                let ok = r.is_ok();
                head.push(r);
                if ok {
                    break;
                }
            }
        }
    }
    commit(opts, &meta, &plan, &head)?;
    let mut records = plan.done;
    let (total, mut failed) = (cases.len(), records.iter().filter(|r| !r.is_ok()).count());
    let jsonl_path = opts.out.join(CASES_JSONL);
    let csv_path = opts.out.join(CASES_CSV);
    let append = |p: &Path| OpenOptions::new().append(true).open(p).map_err(write_error(p));
    let (mut jsonl, mut csv_file) = (append(&jsonl_path)?, append(&csv_path)?);
    let pairs = outputs::pair_names(&opts.params);
    let next = AtomicUsize::new(head.len());
    let (tx, rx) = mpsc::channel::<(usize, Result<CaseRecord>)>();
    let analysed_first = head.len();
    for (i, r) in head.into_iter().enumerate() {
        tx.send((i, Ok(r))).expect("the receiver is alive");
    }
    let mut new_records = Vec::with_capacity(todo.len());
    let mut unrecorded = Vec::new();
    let ran = std::thread::scope(|s| -> Result<()> {
        for _ in 0..opts.jobs.max(1).min(todo.len().saturating_sub(analysed_first)) {
            let tx = tx.clone();
            let (next, todo) = (&next, &todo);
            // a worker reads case after case into the same memory
            s.spawn(move || {
                crate::memory::keeping_spares(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(pair) = todo.get(i) else { break };
                    if tx.send((i, process(pair, opts, replace, naming))).is_err() {
                        break;
                    }
                })
            });
        }
        drop(tx);
        let mut pending = BTreeMap::new();
        let mut want = 0;
        let mut stop: Option<Error> = None;
        for (i, record) in rx {
            if stop.is_some() {
                // analysed after the stop, never recorded: its gradient file and report go
                if let Ok(r) = &record {
                    unrecorded.extend(unrecorded_files(opts, &r.case));
                }
                continue;
            }
            pending.insert(i, record);
            while let Some(r) = pending.remove(&want) {
                let r = match r {
                    Ok(r) => r,
                    Err(e) => {
                        // no worker takes another case; those analysed meanwhile are not recorded
                        next.store(todo.len(), Ordering::SeqCst);
                        stop = Some(stopped(e, &todo[want].id, Some(done.len() + want), &opts.out));
                        for r in pending.values().filter_map(|r| r.as_ref().ok()) {
                            unrecorded.extend(unrecorded_files(opts, &r.case));
                        }
                        break;
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
        stop.map_or(Ok(()), Err)
    });
    if let Err(e) = ran {
        for f in &unrecorded {
            let _ = std::fs::remove_file(f);
        }
        return Err(e);
    }
    let analysed = new_records.len();
    records.extend(new_records);
    records.sort_by(|a, b| a.case.cmp(&b.case));
    let summary = outputs::finalize(&opts.out, &meta, &records)?;
    drop(locks);
    Ok(Outcome { summary, analysed, records })
}

/// Creates and locks the folders a run writes into: `out` for this run alone; a separate gradient
/// folder shared with other runs (the shards of one run), its stale temporary files removed when
/// no other run holds it.
fn lock_folders(opts: &BatchOptions) -> Result<Vec<FolderLock>> {
    std::fs::create_dir_all(&opts.out).map_err(write_error(&opts.out))?;
    let mut locks = vec![FolderLock::acquire(&opts.out)?];
    if let Some(g) = &opts.grad_out_dir {
        std::fs::create_dir_all(g).map_err(write_error(g))?;
        if resolved(g)? != resolved(&opts.out)? {
            locks.push(FolderLock::shared(g, || {
                remove_stale(g);
            })?);
        }
    }
    Ok(locks)
}
