//! Folder steps: each step's folder of predictions is a data set, paired with the label folder
//! and analysed as `batch` analyses it, into `steps/<step>/` (so that an interrupted step is
//! continued case by case).

use std::path::Path;

use super::outputs;
use super::run::{Halt, Progress, Ran, TrackOptions};
use super::steps::Step;
use crate::batch::pairing::{pair, Pairing};
use crate::batch::run::BatchOptions;
use crate::error::{Error, Naming, Param, Result};
use crate::msg;
use crate::report::record::CaseRecord;
use crate::report::series::StepRecord;
use crate::report::summary::ResolvedLosses;

/// The cases of each step's folder, checked before anything is analysed: a folder where no case
/// pairs with the labels is refused.
pub fn pairings(labels_dir: &Path, steps: &[Step], suffix: &str) -> Result<Vec<Pairing>> {
    steps
        .iter()
        .map(|step| {
            let p = pair(labels_dir, &step.source, suffix)?;
            if p.cases.is_empty() {
                let mut m = msg![format!(
                    "{} (step {}): none of the {} label files of {} has a prediction in it (looked for CASE.npz, \
                     CASE{suffix}.nii.gz, CASE{suffix}.nii and CASE/CASE{suffix}.nii.gz; {} prediction files found); \
                     check the folder, ",
                    step.source.display(),
                    step.step,
                    p.unpaired_labels.len(),
                    labels_dir.display(),
                    p.unpaired_predictions.len(),
                )];
                m.extend(msg![Param::PRED_SUFFIX, ", or leave the step out"]);
                return Err(Error::parameter(Param::PRED_DIRS, m));
            }
            Ok(p)
        })
        .collect()
}

/// Analyses each folder step as a batch run into `steps/<step>/` (continuing one that was
/// interrupted); the records of every step, the losses as resolved, and how many steps ran.
/// `recorded_before`: the folder held records of this track before this run.
pub fn run_folders<'s>(
    opts: &TrackOptions,
    recorded_before: bool,
    labels_dir: &Path,
    steps: &'s [Step],
    naming: &(dyn Naming + Sync),
    progress: &mut dyn FnMut(Progress),
) -> std::result::Result<Ran, Halt<'s>> {
    let mut records = Vec::with_capacity(steps.len());
    let mut resolved: Vec<ResolvedLosses> = Vec::new();
    let mut analysed = 0;
    for (i, step) in steps.iter().enumerate() {
        let folder = outputs::step_folder(step.step);
        let batch = BatchOptions {
            labels_dir: labels_dir.to_path_buf(),
            pred_dir: step.source.clone(),
            out: opts.out.join(&folder),
            params: opts.params.clone(),
            shard: None,
            jobs: opts.jobs,
            resume: true,
            force: false,
            grad_out_dir: None,
            compression: 1,
            case_reports: false,
            command: opts.command.clone(),
        };
        let mut cases = |done: usize, total: usize, _failed: usize| {
            progress(Progress { steps_done: i, steps: steps.len(), step: step.step, cases: Some((done, total)) })
        };
        let nothing_yet = i == 0 && !recorded_before && !batch.out.join(crate::batch::outputs::RUN).exists();
        let outcome = crate::batch::run::run(&batch, naming, &mut cases).map_err(|error| Halt::Step {
            error: Box::new(error),
            step,
            kept: (!nothing_yet).then_some(i),
        })?;
        analysed += usize::from(outcome.analysed > 0);
        let s = &outcome.summary;
        for r in &s.resolved {
            if !resolved.iter().any(|x| x.prediction_channels == r.prediction_channels) {
                resolved.push(r.clone());
            }
        }
        let source = step.source.display().to_string();
        records.push(StepRecord::of_folder(step.step, &source, &folder, &opts.params, s, &outcome.records));
        progress(Progress { steps_done: i + 1, steps: steps.len(), step: step.step, cases: None });
    }
    resolved.sort_by_key(|r| r.prediction_channels);
    Ok((records, resolved, analysed))
}

/// The record of the first case of the first folder: analysed before anything is written, so
/// that an error of the track's configuration (probabilities the loss would activate again)
/// leaves the folder as it was.
pub fn probe(opts: &TrackOptions, pairing: &Pairing, naming: &dyn Naming) -> Result<CaseRecord> {
    let case = pairing.cases.first().expect("every folder step pairs a case (checked first)");
    let labelled = |e: Error| {
        let mut m = msg![format!("case {}: ", case.id)];
        m.extend(e.message());
        Error::usage(m)
    };
    let mut r =
        super::files::analyse(&case.id, &case.labels, &case.pred, &opts.params, None, naming).map_err(labelled)?;
    r.error = r.error.map(|e| format!("case {}: {e}", case.id));
    Ok(r)
}
