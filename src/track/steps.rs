//! The steps of a track: which prediction (file or folder) belongs to which training step, in
//! step order.
//!
//! A step is numbered by the user (`steps`, one number per prediction, in the order given) or by
//! the first whole number in the prediction's name: `epoch_050.nii.gz` is step 50; when the names
//! share their first number and exactly one other number differs, by that one (`fold_0_ep10`:
//! 10). When the files all share one name (`ckpt_10/pred.nii.gz`, `ckpt_20/pred.nii.gz`), the
//! number is read from the nearest folder in which their paths differ. A name without a number (`checkpoint_best`), two
//! predictions of one step, or a count of numbers that differs from the count of predictions is
//! refused before anything is read.

use std::path::{Component, Path, PathBuf};

use crate::error::{set, Error, Param, Result};
use crate::msg;

/// One step: its number and its prediction (a file, or a folder of cases).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub step: u64,
    pub source: PathBuf,
}

/// The first whole number written in `name` (a run of decimal digits), if any.
pub fn first_number(name: &str) -> Option<Result<u64, String>> {
    let start = name.find(|c: char| c.is_ascii_digit())?;
    let digits: String = name[start..].chars().take_while(char::is_ascii_digit).collect();
    Some(digits.parse::<u64>().map_err(|_| digits))
}

/// The components of `p` that name something (no `.`, no root).
fn names(p: &Path) -> Vec<String> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect()
}

/// For each of `sources`, the name its step number is read from: the file name, or when the file
/// names are not all different, the nearest folder in which the paths differ (the nearest whose
/// names all hold a number, if there is one).
fn step_names(sources: &[PathBuf]) -> Vec<String> {
    let all: Vec<Vec<String>> = sources.iter().map(|p| names(p)).collect();
    let last = |n: &Vec<String>| n.last().cloned().unwrap_or_default();
    let distinct = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v.dedup();
        v.len()
    };
    let files: Vec<String> = all.iter().map(last).collect();
    if distinct(&files) == sources.len() || sources.len() < 2 {
        return files;
    }
    // counted from the file name up: 0 = the file, 1 = its folder, ...
    let depth = all.iter().map(Vec::len).max().unwrap_or(0);
    let from_end = |n: &Vec<String>, d: usize| n.len().checked_sub(d + 1).map(|i| n[i].clone()).unwrap_or_default();
    let level = |d: usize| all.iter().map(|n| from_end(n, d)).collect::<Vec<String>>();
    let differing: Vec<usize> = (1..depth).filter(|&d| distinct(&level(d)) > 1).collect();
    let numbered = differing.iter().find(|&&d| level(d).iter().all(|n| first_number(n).is_some()));
    match numbered.or(differing.first()) {
        Some(&d) => level(d),
        None => files,
    }
}

/// Every whole number written in `name`, in order (a number too large for u64 as its digits).
fn numbers(name: &str) -> Vec<Result<u64, String>> {
    let mut out = Vec::new();
    let mut rest = name;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        let digits: String = rest[start..].chars().take_while(char::is_ascii_digit).collect();
        rest = &rest[start + digits.len()..];
        out.push(digits.parse::<u64>().map_err(|_| digits));
    }
    out
}

/// Which number of the names numbers the steps: the first, unless the first numbers coincide and
/// exactly one later position holds numbers that differ, all different (`fold_0_ep10`,
/// `fold_0_ep20`: the second). When several positions differ (`run3_fold1_ep5`,
/// `run3_fold2_ep10`) the names do not say which is the step: the first is taken, and its
/// duplicates are refused with a request for the steps.
fn number_position(names: &[String]) -> usize {
    let all: Vec<Vec<Result<u64, String>>> = names.iter().map(|n| numbers(n)).collect();
    let distinct_at = |i: usize| {
        let mut v: Vec<u64> = Vec::new();
        for n in &all {
            match n.get(i) {
                Some(Ok(x)) => v.push(*x),
                _ => return false,
            }
        }
        v.sort_unstable();
        v.dedup();
        v.len() == names.len()
    };
    if names.len() < 2 || distinct_at(0) {
        return 0;
    }
    let most = all.iter().map(Vec::len).min().unwrap_or(0);
    let varies = |i: usize| all.iter().any(|n| n.get(i) != all[0].get(i));
    match (1..most).filter(|&i| varies(i)).collect::<Vec<_>>()[..] {
        [i] if distinct_at(i) => i,
        _ => 0,
    }
}

/// The steps of `sources` (given as `param`), numbered by `given` when it is given, else by their
/// names; sorted by step.
pub fn name_steps(sources: &[PathBuf], given: Option<&[u64]>, param: Param) -> Result<Vec<Step>> {
    if sources.is_empty() {
        return Err(Error::parameter(param, "needs at least one prediction"));
    }
    let numbers: Vec<u64> = match given {
        Some(g) if g.len() != sources.len() => {
            return Err(Error::parameter(
                Param::STEPS,
                msg![
                    format!(
                        "gives {} step number{} for {} prediction{} (",
                        g.len(),
                        if g.len() == 1 { "" } else { "s" },
                        sources.len(),
                        if sources.len() == 1 { "" } else { "s" },
                    ),
                    param,
                    "); give one step number per prediction, in the same order",
                ],
            ))
        }
        Some(g) => g.to_vec(),
        None => {
            let names = step_names(sources);
            let at = number_position(&names);
            names
                .iter()
                .zip(sources)
                .map(|(name, source)| match numbers(name).into_iter().nth(at) {
                    Some(Ok(n)) => Ok(n),
                    Some(Err(digits)) => Err(Error::parameter(
                        param,
                        msg![
                            format!(
                                "{}: the step number {digits} in its name is too large; give the steps with ",
                                source.display()
                            ),
                            Param::STEPS,
                        ],
                    )),
                    None => Err(Error::parameter(
                        param,
                        msg![
                            format!(
                                "{}: no step number in its name ('{name}'); name the steps with ",
                                source.display()
                            ),
                            set(Param::STEPS, "N1,N2,…"),
                            ", one per prediction in the order given",
                        ],
                    )),
                })
                .collect::<Result<_>>()?
        }
    };
    let mut steps: Vec<Step> =
        numbers.into_iter().zip(sources).map(|(step, source)| Step { step, source: source.clone() }).collect();
    steps.sort_by_key(|s| s.step);
    if let Some(w) = steps.windows(2).find(|w| w[0].step == w[1].step) {
        let how = if given.is_some() {
            msg!["; give each prediction its own step number in ", Param::STEPS]
        } else {
            msg!["; the step is the first number in each name: name them apart, or give ", set(Param::STEPS, "N1,N2,…")]
        };
        let mut m =
            msg![format!("{} and {} are both step {}", w[0].source.display(), w[1].source.display(), w[0].step),];
        m.extend(how);
        return Err(Error::parameter(param, m));
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(p: &[&str]) -> Vec<PathBuf> {
        p.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn the_first_number_of_a_name_is_its_step() {
        assert_eq!(first_number("epoch_050.nii.gz"), Some(Ok(50)));
        assert_eq!(first_number("ckpt12_v3"), Some(Ok(12)));
        assert_eq!(first_number("checkpoint_best"), None);
        assert!(matches!(first_number("e99999999999999999999999"), Some(Err(_))));
    }

    #[test]
    fn steps_are_sorted_by_number() {
        let s = name_steps(&paths(&["e_20.nii.gz", "e_3.nii.gz", "e_100.nii.gz"]), None, Param::PRED).unwrap();
        assert_eq!(s.iter().map(|s| s.step).collect::<Vec<_>>(), [3, 20, 100]);
        assert_eq!(s[0].source, PathBuf::from("e_3.nii.gz"));
    }

    #[test]
    fn files_of_one_name_are_numbered_by_their_folders() {
        let s =
            name_steps(&paths(&["run/ckpt_20/val/a.nii.gz", "run/ckpt_10/val/a.nii.gz"]), None, Param::PRED).unwrap();
        assert_eq!(s.iter().map(|s| s.step).collect::<Vec<_>>(), [10, 20]);
    }

    #[test]
    fn the_number_that_tells_names_apart_numbers_them_when_the_first_coincide() {
        let s = name_steps(&paths(&["fold_0_ep20.nii.gz", "fold_0_ep10.nii.gz"]), None, Param::PRED).unwrap();
        assert_eq!(s.iter().map(|s| s.step).collect::<Vec<_>>(), [10, 20]);
        // folders without numbers nearer the file are passed over for the numbered ones
        // two numbers that differ: which is the step is not said, and the steps are asked for
        let e = name_steps(&paths(&["run3_fold1_ep5", "run3_fold2_ep10"]), None, Param::PRED).unwrap_err();
        assert!(e.to_string().contains("are both step 3"), "{e}");
        let s = name_steps(&paths(&["nn/e8/w/p.nii.gz", "nn/e7/v/p.nii.gz"]), None, Param::PRED).unwrap();
        assert_eq!(s.iter().map(|s| s.step).collect::<Vec<_>>(), [7, 8]);
    }

    #[test]
    fn given_steps_name_the_predictions_in_order() {
        let s = name_steps(&paths(&["b", "a"]), Some(&[5, 1]), Param::PRED).unwrap();
        assert_eq!(s, vec![Step { step: 1, source: "a".into() }, Step { step: 5, source: "b".into() }]);
    }

    #[test]
    fn names_without_numbers_duplicates_and_miscounts_are_refused() {
        let e = name_steps(&paths(&["e_1.nii", "checkpoint_best.nii"]), None, Param::PRED).unwrap_err();
        assert!(e.to_string().contains("checkpoint_best.nii: no step number in its name"), "{e}");
        assert!(e.to_string().contains("steps"), "{e}");
        let e = name_steps(&paths(&["e_1.nii", "f_1.nii"]), None, Param::PRED).unwrap_err();
        assert!(e.to_string().contains("are both step 1"), "{e}");
        let e = name_steps(&paths(&["a", "b"]), Some(&[1]), Param::PRED).unwrap_err();
        assert!(e.to_string().contains("gives 1 step number for 2 predictions"), "{e}");
        let e = name_steps(&paths(&["a", "b"]), Some(&[4, 4]), Param::PRED).unwrap_err();
        assert!(e.to_string().contains("both step 4"), "{e}");
    }
}
