//! File steps: each step's prediction is one case, analysed through the pipeline as `analyze`
//! analyses it, by `jobs` workers; the records are appended to `steps.jsonl` in step order.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use super::outputs::STEPS_JSONL;
use super::run::{write_error, Halt, Progress, TrackOptions};
use super::steps::Step;
use crate::batch::pairing::CasePair;
use crate::batch::run::isolated;
use crate::error::{Naming, Result};
use crate::pipeline::load::{load, LoadOptions};
use crate::pipeline::{self, Request};
use crate::report::record::CaseRecord;
use crate::report::summary::RunParameters;

/// The request of every step.
pub fn request(params: &RunParameters, label: Option<i64>) -> Request {
    Request {
        loss: params.loss.clone(),
        compare: params.compare.clone(),
        label,
        classes: params.classes.clone(),
        force_activation: params.force_activation,
        allow_non_finite: params.allow_non_finite,
        regime: None,
        loss_scale: params.loss_scale,
        views: None,
    }
}

/// The record of one case (`id`, its two files) analysed through the pipeline: a failed record
/// for an error of the case, an error for one of the track's configuration (probabilities the
/// loss would activate again).
pub fn analyse(
    id: &str,
    labels: &Path,
    pred: &Path,
    params: &RunParameters,
    label: Option<i64>,
    naming: &dyn Naming,
) -> Result<CaseRecord> {
    let pair = CasePair { id: id.to_string(), labels: labels.to_path_buf(), pred: pred.to_path_buf() };
    isolated(&pair, naming, || {
        let request = request(params, label);
        let options = LoadOptions { max_values: params.max_values, affine_tol: params.affine_tol };
        let loaded = load(labels, pred, options, &request)?;
        let record = {
            let result = pipeline::analyze(&loaded.case, loaded.inputs, &request, naming)?;
            CaseRecord::ok(&pair.id, &result.report, result.sums)
        };
        loaded.case.recycle();
        Ok(record)
    })
}

/// The record of one file step (its id: the step number).
pub fn file_step(
    labels: &Path,
    step: &Step,
    params: &RunParameters,
    label: Option<i64>,
    naming: &dyn Naming,
) -> Result<CaseRecord> {
    analyse(&step.step.to_string(), labels, &step.source, params, label, naming)
}

/// The record of every file step, in step order, and how many this invocation analysed.
pub type FileSteps<'s> = (Vec<(&'s Step, CaseRecord)>, usize);

/// What a run of the file steps starts from: the records kept (of a track being continued, whose
/// steps' files have not changed since), and the record of the first step to analyse when it was
/// analysed already (before anything was written).
pub struct Start {
    pub kept: Vec<CaseRecord>,
    pub head: Option<CaseRecord>,
    /// Records were kept or written before this run: a stop leaves them.
    pub recorded_before: bool,
}

/// Analyses the file steps without a kept record with `jobs` workers, appending each record to
/// `steps.jsonl` in step order (the kept ones rewritten first, which drops a line cut short);
/// the records of every step.
#[allow(clippy::too_many_arguments)]
pub fn run_files<'s>(
    opts: &TrackOptions,
    start: Start,
    labels: &Path,
    label: Option<i64>,
    steps: &'s [Step],
    naming: &(dyn Naming + Sync),
    progress: &mut dyn FnMut(Progress),
) -> std::result::Result<FileSteps<'s>, Halt<'s>> {
    let mut have: BTreeMap<String, CaseRecord> = start.kept.into_iter().map(|r| (r.case.clone(), r)).collect();
    let mut kept: Vec<(&Step, CaseRecord)> =
        steps.iter().filter_map(|s| Some((s, have.remove(&s.step.to_string())?))).collect();
    let path = opts.out.join(STEPS_JSONL);
    let lines: String = kept.iter().map(|(_, r)| serde_json::to_string(r).expect("records serialise") + "\n").collect();
    crate::output::write_bytes(&path, true, lines.as_bytes())?;
    let mut jsonl = OpenOptions::new().append(true).open(&path).map_err(write_error(&path))?;
    let todo: Vec<&Step> = steps.iter().filter(|s| !kept.iter().any(|(k, _)| k.step == s.step)).collect();
    let total = steps.len();
    let mut head = start.head;
    let next = AtomicUsize::new(usize::from(head.is_some()));
    let (tx, rx) = mpsc::channel::<(usize, Result<CaseRecord>)>();
    if let Some(r) = head.take() {
        tx.send((0, Ok(r))).expect("the receiver is alive");
    }
    let mut fresh = Vec::new();
    let recorded_before = start.recorded_before;
    std::thread::scope(|s| -> std::result::Result<(), Halt<'s>> {
        let first = next.load(Ordering::SeqCst);
        for _ in 0..opts.jobs.max(1).min(todo.len().saturating_sub(first)) {
            let (tx, next, todo) = (tx.clone(), &next, &todo);
            // a worker reads step after step into the same memory
            s.spawn(move || {
                crate::memory::keeping_spares(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(step) = todo.get(i) else { break };
                    if tx.send((i, file_step(labels, step, &opts.params, label, naming))).is_err() {
                        break;
                    }
                })
            });
        }
        drop(tx);
        let mut pending = BTreeMap::new();
        for (i, record) in rx {
            pending.insert(i, record);
            while let Some(r) = pending.remove(&fresh.len()) {
                let step = todo[fresh.len()];
                let r = match r {
                    Ok(r) => r,
                    Err(e) => {
                        next.store(todo.len(), Ordering::SeqCst);
                        let n = kept.len() + fresh.len();
                        return Err(Halt::Step {
                            error: Box::new(e),
                            step,
                            kept: (n > 0 || recorded_before).then_some(n),
                        });
                    }
                };
                let line = serde_json::to_string(&r).expect("records serialise") + "\n";
                jsonl.write_all(line.as_bytes()).and_then(|_| jsonl.flush()).map_err(write_error(&path))?;
                fresh.push((step, r));
                progress(Progress { steps_done: kept.len() + fresh.len(), steps: total, step: step.step, cases: None });
            }
        }
        Ok(())
    })?;
    let analysed = fresh.len();
    kept.extend(fresh);
    kept.sort_by_key(|(s, _)| s.step);
    // in step order, as an uninterrupted track writes them (steps analysed again came last)
    let lines: String = kept.iter().map(|(_, r)| serde_json::to_string(r).expect("records serialise") + "\n").collect();
    crate::output::write_bytes(&path, true, lines.as_bytes())?;
    Ok((kept, analysed))
}
