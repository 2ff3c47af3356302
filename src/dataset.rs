//! nnU-Net v2's `dataset.json`: the names of the classes, the ignore label and the regions of a
//! data set, read into a [`ClassSpec`].
//!
//! The `"labels"` object maps a name to a label value, or to a list of values for a region
//! (nnU-Net's `LabelManager`, nnunetv2/utilities/label_handling/label_handling.py):
//!
//! - without regions, the channels are the label values 0..C−1 (background included), which must
//!   be consecutive; channel k is named by the entry whose value is k;
//! - with regions (some value is a list of more than one label), the channels are the entries in
//!   the file's order, leaving out the background (value 0) and `"ignore"`; each is a region of
//!   label values, and `"regions_class_order"` gives the label each region stands for;
//! - `"ignore"`, when present, is the ignore label: a single value, after every class.
//!
//! The file's other fields (`channel_names`, `numTraining`, `file_ending`) are not read.

use std::path::{Path, PathBuf};

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::case::labels::ClassSpec;
use crate::error::{Error, Param, Result};

/// The file's `"labels"` entries in the file's order.
struct Entries(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Entries, D::Error> {
        struct InOrder;
        impl<'de> Visitor<'de> for InOrder {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of class names and label values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Entries, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    out.push((k, v));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(InOrder)
    }
}

#[derive(serde::Deserialize)]
struct DatasetJson {
    labels: Option<Entries>,
    regions_class_order: Option<Vec<i64>>,
}

/// The `dataset.json` of a data set whose label files lie in `labels_dir`: nnU-Net keeps it in
/// the folder above `labelsTr` (`DatasetXXX_Name/labelsTr` → `DatasetXXX_Name/dataset.json`).
/// None when there is none.
pub fn beside(labels_dir: &Path) -> Option<PathBuf> {
    let path = labels_dir.canonicalize().ok()?.parent()?.join("dataset.json");
    path.is_file().then_some(path)
}

/// A label value of the file: a whole number.
fn value_of(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 2f64.powi(53)).map(|f| f as i64))
}

/// The label values of an entry: one value, or a list of them.
fn values_of(v: &Value) -> Option<Vec<i64>> {
    match v {
        Value::Array(a) => a.iter().map(value_of).collect(),
        other => value_of(other).map(|x| vec![x]),
    }
}

/// Reads `path` into the classes it describes.
pub fn read(path: &Path) -> Result<ClassSpec> {
    let bad = |problem: String| Error::parameter(Param::DATASET_JSON, format!("{}: {problem}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it ({e})")))?;
    let file: DatasetJson =
        serde_json::from_str(&text).map_err(|e| bad(format!("is not the JSON of an nnU-Net dataset.json ({e})")))?;
    let Some(Entries(entries)) = file.labels else {
        return Err(bad("has no \"labels\" object; nnU-Net v2's dataset.json maps class names to label values".into()));
    };
    let mut named: Vec<(String, Vec<i64>)> = Vec::with_capacity(entries.len());
    for (name, v) in &entries {
        let values = values_of(v).filter(|v| !v.is_empty()).ok_or_else(|| {
            bad(format!("label \"{name}\" is {v}; give a whole number, or a list of them for a region"))
        })?;
        // a name is shown in tables and pictures: no line breaks or other control characters
        let shown: String = name.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        named.push((shown, values));
    }
    let ignore = match named.iter().position(|(n, _)| n == "ignore") {
        Some(i) => match &named.remove(i).1[..] {
            [v] => Some(*v),
            other => return Err(bad(format!("the ignore label is {other:?}; it must be one label value"))),
        },
        None => None,
    };
    if let Some(i) = ignore {
        let largest = named.iter().flat_map(|(_, v)| v.iter().copied()).max().unwrap_or(0);
        if i <= largest {
            return Err(bad(format!(
                "the ignore label is {i}, but it must be the largest label value, above every class ({largest}), as \
                 nnU-Net requires"
            )));
        }
    }
    let regions = named.iter().any(|(_, v)| v.len() > 1);
    if regions {
        let order = file.regions_class_order.ok_or_else(|| {
            bad("has regions (labels given as lists) but no \"regions_class_order\"; nnU-Net needs it too".into())
        })?;
        let kept: Vec<(String, Vec<i64>)> = named.into_iter().filter(|(_, v)| v.iter().any(|&x| x != 0)).collect();
        if order.len() != kept.len() {
            return Err(bad(format!(
                "\"regions_class_order\" has {} entries for {} regions; give one label per region",
                order.len(),
                kept.len()
            )));
        }
        let (names, sets): (Vec<String>, Vec<Vec<i64>>) = kept.into_iter().unzip();
        return Ok(ClassSpec {
            ignore_label: ignore,
            regions: Some(sets),
            regions_class_order: Some(order),
            names: Some(names),
            found_beside: false,
        });
    }
    // one channel per label value 0..C−1, consecutive
    let mut by_value: Vec<(i64, String)> = named.into_iter().map(|(n, v)| (v[0], n)).collect();
    by_value.sort();
    for (k, (v, name)) in by_value.iter().enumerate() {
        if *v != k as i64 {
            return Err(bad(format!(
                "label \"{name}\" is {v}, but the labels must be 0, 1, 2, … without gaps (nnU-Net's rule); {} is \
                 missing or given twice",
                k
            )));
        }
    }
    let names = by_value.into_iter().map(|(_, n)| n).collect();
    Ok(ClassSpec {
        ignore_label: ignore,
        regions: None,
        regions_class_order: None,
        names: Some(names),
        found_beside: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<ClassSpec> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dataset.json");
        std::fs::write(&p, json).unwrap();
        read(&p)
    }

    #[test]
    fn classes_are_named_by_their_label_values_and_the_ignore_label_is_kept_apart() {
        let s = spec(r#"{"channel_names": {"0": "CT"}, "labels": {"liver": 1, "background": 0, "tumour": 2, "ignore": 3}, "numTraining": 3}"#).unwrap();
        assert_eq!(s.names.unwrap(), ["background", "liver", "tumour"]);
        assert_eq!((s.ignore_label, s.regions), (Some(3), None));
    }

    #[test]
    fn regions_keep_the_files_order_without_background_and_ignore() {
        let s = spec(
            r#"{"labels": {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": 3, "ignore": 4},
                "regions_class_order": [1, 2, 3]}"#,
        )
        .unwrap();
        assert_eq!(s.names.unwrap(), ["whole tumor", "tumor core", "enhancing tumor"]);
        assert_eq!(s.regions.unwrap(), [vec![1, 2, 3], vec![2, 3], vec![3]]);
        assert_eq!((s.regions_class_order.unwrap(), s.ignore_label), (vec![1, 2, 3], Some(4)));
    }

    #[test]
    fn a_file_nnunet_would_refuse_is_refused_with_the_reason() {
        let e = |json: &str| spec(json).unwrap_err().to_string();
        assert!(e(r#"{"labels": {"background": 0, "a": 2}}"#).contains("without gaps"));
        assert!(e(r#"{"labels": {"background": 0, "a": [1, 2]}}"#).contains("no \"regions_class_order\""));
        assert!(e(r#"{"labels": {"background": 0, "a": "one"}}"#).contains("label \"a\" is \"one\""));
        assert!(e(r#"{"name": "x"}"#).contains("has no \"labels\" object"));
        assert!(e(r#"{"labels": {"background": 0, "a": 1, "ignore": 1}}"#).contains("must be the largest label value"));
        assert!(e(r#"{"labels": {"background": 0, "a": 1, "ignore": -1}}"#).contains("must be the largest label value"));
        // a name is shown on one line
        let s = spec("{\"labels\": {\"background\": 0, \"two\\nlines\": 1}}").unwrap();
        assert_eq!(s.names.unwrap()[1], "two lines");
        assert!(e("{").contains("is not the JSON of an nnU-Net dataset.json"));
    }
}
