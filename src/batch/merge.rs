//! Merging the output folders of the shards of one run into the outputs of one unsharded run.
//!
//! A merge is refused unless the folders are exactly the shards 0..N−1 of one run, each complete:
//! the same input folders, parameters, unpaired files and list of every case of the data set; the
//! same number N of shards, each index once. Their cases then make up the data set exactly.
//!
//! When the shards wrote case reports (all of them did, or none: it is one of the options that
//! must agree), each successful case's `cases/<folder>/report.html` is copied from its shard into
//! `out` (atomically, file by file) before `index.html` is written, so that the merged index links
//! to reports in its own folder; a shard missing one of its reports is refused.

use std::path::{Path, PathBuf};

use super::outputs::{self, read_meta, read_records, RunMeta};
use super::pairing::Shard;
use crate::error::{set, Error, Param, Result};
use crate::msg;
use crate::output::{resolved, write_bytes, FolderLock};
use crate::report::record::CaseRecord;
use crate::report::summary::Summary;

/// A shard folder's run and records, checked complete.
fn read_shard(dir: &Path) -> Result<(RunMeta, Vec<CaseRecord>)> {
    if let Some(problem) = Error::path_problem(dir, true) {
        return Err(Error::usage(problem));
    }
    let meta = read_meta(dir)?.ok_or_else(|| {
        Error::usage(format!("{}: no run.json; give the output folders of batch runs", dir.display()))
    })?;
    let records = read_records(dir)?;
    if records.len() != meta.cases.len() {
        return Err(Error::usage(msg![
            format!(
                "{}: the run is incomplete ({} of {} cases); finish it with ",
                dir.display(),
                records.len(),
                meta.cases.len()
            ),
            set(Param::RESUME, true),
            " before merging",
        ]));
    }
    Ok((meta, records))
}

/// The shard of a run (an unsharded run is shard 0 of 1).
fn shard_of(meta: &RunMeta) -> Shard {
    meta.shard.unwrap_or(Shard { index: 0, count: 1 })
}

/// Refuses shard folders that are not exactly the shards of one run.
fn check_shards(shards: &[(PathBuf, RunMeta)]) -> Result<()> {
    let (first_dir, first) = shards.first().ok_or_else(|| Error::usage("merging needs at least one shard folder"))?;
    for (dir, meta) in &shards[1..] {
        let differ = outputs::shard_differences(first, meta);
        if !differ.is_empty() {
            return Err(Error::usage(format!(
                "{} and {} are not shards of one run: their {} differ; merge only the shards of one run",
                first_dir.display(),
                dir.display(),
                differ.join(", ")
            )));
        }
    }
    let count = shard_of(first).count;
    if let Some((dir, meta)) = shards.iter().find(|(_, m)| shard_of(m).count != count) {
        return Err(Error::usage(format!(
            "{} is shard {} of {} but {} is shard {} of {}; merge the shards of one split",
            dir.display(),
            shard_of(meta).index,
            shard_of(meta).count,
            first_dir.display(),
            shard_of(first).index,
            count
        )));
    }
    let mut holder: Vec<Option<&Path>> = vec![None; count];
    for (dir, meta) in shards {
        let k = shard_of(meta).index;
        if let Some(other) = holder[k] {
            return Err(Error::usage(format!(
                "{} and {} are both shard {k} of {count}; give each shard once",
                other.display(),
                dir.display()
            )));
        }
        holder[k] = Some(dir);
    }
    let missing: Vec<String> =
        holder.iter().enumerate().filter(|(_, h)| h.is_none()).map(|(k, _)| format!("{k}/{count}")).collect();
    if !missing.is_empty() {
        return Err(Error::usage(format!(
            "shard{} {} of the run missing: the folders given hold {} of its {count} shards; give the output \
             folders of all of them",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", "),
            count - missing.len()
        )));
    }
    Ok(())
}

/// Merges the folders of the shards of one run into `out`: the same `cases.csv`, `summary.json`
/// and pictures as one unsharded run.
pub fn merge(out: &Path, shards: &[PathBuf], force: bool) -> Result<Summary> {
    let mut metas = Vec::new();
    let mut records: Vec<CaseRecord> = Vec::new();
    for dir in shards {
        let (meta, recs) = read_shard(dir)?;
        records.extend(recs);
        metas.push((dir.clone(), meta));
    }
    check_shards(&metas)?;
    let first = &metas[0].1;
    records.sort_by(|a, b| a.case.cmp(&b.case));
    let ids: Vec<String> = records.iter().map(|r| r.case.clone()).collect();
    if ids != first.all_cases {
        return Err(Error::usage(
            "the shards' cases do not make up the run's data set; merge the untouched output folders of its shards",
        ));
    }
    for (dir, _) in &metas {
        if resolved(dir)? == resolved(out)? {
            return Err(Error::usage(format!(
                "{}: is one of the shard folders; merge into another folder",
                out.display()
            )));
        }
    }
    let inputs = [
        (first.inputs.labels_dir.clone(), first.inputs.labels_dir.as_path(), Param::LABELS_DIR),
        (first.inputs.pred_dir.clone(), first.inputs.pred_dir.as_path(), Param::PRED_DIR),
    ];
    super::folders::check_output(out, Param::OUT, &inputs)?;
    std::fs::create_dir_all(out).map_err(|e| Error::Write { path: out.to_path_buf(), source: e })?;
    let _lock = FolderLock::acquire(out)?;
    if !force && outputs::all_files(out).iter().any(|p| p.exists()) {
        return Err(Error::OutputExists { path: out.to_path_buf() });
    }
    // the gradient folder and level only where every shard used the same
    let same_gradients = metas.iter().all(|(_, m)| {
        (&m.inputs.grad_out_dir, m.inputs.compression) == (&first.inputs.grad_out_dir, first.inputs.compression)
    });
    let mut inputs = first.inputs.clone();
    if !same_gradients {
        (inputs.grad_out_dir, inputs.compression) = (None, None);
    }
    if !force && out.join(outputs::CASES_DIR).exists() {
        return Err(Error::OutputExists { path: out.join(outputs::CASES_DIR) });
    }
    // the reports of what `out` held before go; those of this run's cases come from the shards
    super::prepare::remove_case_reports(out, &[]);
    if first.inputs.case_reports {
        copy_case_reports(out, &metas)?;
    }
    let meta = RunMeta { inputs, shard: None, cases: ids, ..first.clone() };
    outputs::finalize(out, &meta, &records)
}

/// Copies the case reports of every shard's successful cases into `out`.
fn copy_case_reports(out: &Path, shards: &[(PathBuf, RunMeta)]) -> Result<()> {
    for (dir, _) in shards {
        for r in read_records(dir)?.iter().filter(|r| r.is_ok()) {
            let from = outputs::case_report_path(dir, &r.case);
            let bytes = std::fs::read(&from).map_err(|e| {
                Error::usage(format!(
                    "{}: the report of case {} cannot be read ({e}); merge the untouched output folders of the \
                     shards, or run the shard again with case reports",
                    from.display(),
                    r.case
                ))
            })?;
            let to = outputs::case_report_path(out, &r.case);
            let folder = to.parent().expect("a case report lies in a folder");
            std::fs::create_dir_all(folder).map_err(|e| Error::Write { path: folder.to_path_buf(), source: e })?;
            write_bytes(&to, true, &bytes)?;
        }
    }
    Ok(())
}
