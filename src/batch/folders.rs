//! The folders of a batch: the two input folders resolved, and the output folders checked
//! against them before anything is written — an output folder that is, lies inside or contains an
//! input folder is refused (symbolic links followed), so that a run can never write over its data.

use std::path::{Path, PathBuf};

use super::outputs::RunInputs;
use crate::error::{Error, Param, Result};
use crate::msg;
use crate::output::resolved;

/// How an output folder lies against an input folder, if it touches it.
fn overlap(out: &Path, input: &Path) -> Option<&'static str> {
    if out == input {
        Some("is")
    } else if out.starts_with(input) {
        Some("lies inside")
    } else if input.starts_with(out) {
        Some("contains")
    } else {
        None
    }
}

/// Refuses an output folder `dir` (given as `param`) that is, lies inside or contains one of
/// `inputs` (resolved, as given, and its parameter).
pub fn check_output(dir: &Path, param: Param, inputs: &[(PathBuf, &Path, Param)]) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::parameter(param, format!("{}: is a file, not a folder; give a folder", dir.display())));
    }
    let target = resolved(dir)?;
    for (input, given, input_param) in inputs {
        if let Some(how) = overlap(&target, input) {
            return Err(Error::parameter(
                param,
                msg![
                    format!("{} {how} the input folder {} (", dir.display(), given.display()),
                    *input_param,
                    "); a run never writes among its inputs: choose a folder outside both input folders",
                ],
            ));
        }
    }
    Ok(())
}

/// The resolved folders of a run, once its output folders (`out`, and `grad_out_dir` if any) are
/// known to stay clear of its input folders.
pub fn check(labels_dir: &Path, pred_dir: &Path, out: &Path, grad_out_dir: Option<&Path>) -> Result<RunInputs> {
    let mut found = Vec::new();
    for (dir, param) in [(labels_dir, Param::LABELS_DIR), (pred_dir, Param::PRED_DIR)] {
        if let Some(e) = Error::input_path(param, dir, true) {
            return Err(e);
        }
        found.push((resolved(dir)?, dir, param));
    }
    let outputs = [(Some(out), Param::OUT), (grad_out_dir, Param::GRAD_OUT_DIR)];
    for (dir, param) in outputs.into_iter().filter_map(|(d, p)| Some((d?, p))) {
        check_output(dir, param, &found)?;
    }
    let [labels, pred] = [found[0].0.clone(), found[1].0.clone()];
    Ok(RunInputs {
        labels_dir: labels,
        pred_dir: pred,
        grad_out_dir: grad_out_dir.map(resolved).transpose()?,
        compression: None,
        case_reports: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlaps_are_named() {
        let p = Path::new;
        assert_eq!(overlap(p("/a/b"), p("/a/b")), Some("is"));
        assert_eq!(overlap(p("/a/b/c"), p("/a/b")), Some("lies inside"));
        assert_eq!(overlap(p("/a"), p("/a/b")), Some("contains"));
        assert_eq!(overlap(p("/a/bc"), p("/a/b")), None);
    }
}
