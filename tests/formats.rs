//! Valid files read the same whatever their form: NIfTI-2 (both byte orders, raw and gz), data
//! after extensions (vox_offset beyond 352), multi-member gzip — each built here and compared with
//! the plain NIfTI-1 file holding the same values.

mod common;

use std::io::Write;
use std::path::Path;

use common::*;
use nifti::{NiftiObject, ReaderOptions};
use serde_json::Value;

/// A 3-class case as (labels, prediction) files in plain little-endian NIfTI-1.
fn case() -> (Nii, Nii) {
    let (x, y, z, c) = (6, 5, 4, 3);
    let (labels, probs) = labels_and_probs(11, x * y * z, c);
    (Nii::u8(&[x, y, z], &labels), Nii::f32(&[x, y, z, c], &probs))
}

fn report(labels: &Path, pred: &Path, extra: &[&str]) -> Value {
    json_of(dicegrad().args(["analyze", "--json", "--labels"]).arg(labels).arg("--pred").arg(pred).args(extra))
}

/// The decoded values, read by the library: (label classes, prediction values).
fn values(labels: &Path, pred: &Path) -> (Vec<u8>, Vec<f32>) {
    let open = dicegrad::pipeline::load::OpenCase::open(
        labels,
        pred,
        dicegrad::pipeline::load::LoadOptions { max_values: 1 << 20, ..Default::default() },
        None,
    )
    .unwrap();
    let case = open.read().unwrap().case;
    (case.labels.class.into_owned(), case.prediction.values.into_owned())
}

/// The values written into the test's files.
fn written(l: &Nii, p: &Nii) -> (Vec<u8>, Vec<f32>) {
    (l.data.clone(), p.data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
}

/// The figures that must not depend on the file's form.
fn figures(r: &Value) -> (Value, Value) {
    (r["loss"].clone(), r["channels"].clone())
}

#[test]
fn nifti2_files_read_like_nifti1_in_both_byte_orders() {
    let d = tmp();
    let (l, p) = case();
    let (l1, p1) = (at(&d, "l1.nii"), at(&d, "p1.nii"));
    l.write(&l1);
    p.write(&p1);
    let want = figures(&report(&l1, &p1, &[]));
    for (name, lab, pred) in [("le", l.clone(), p.clone()), ("be", big_endian(&l), big_endian(&p))] {
        for ext in ["nii", "nii.gz"] {
            let (l2, p2) = (at(&d, &format!("l2{name}.{ext}")), at(&d, &format!("p2{name}.{ext}")));
            write_maybe_gz(&l2, &lab.bytes_v2());
            write_maybe_gz(&p2, &pred.bytes_v2());
            assert_eq!(figures(&report(&l2, &p2, &[])), want, "{name} {ext}");
            assert_eq!(values(&l2, &p2), written(&l, &p), "{name} {ext}: value by value");
        }
    }
}

#[test]
fn gradient_of_a_nifti2_prediction_is_written_as_nifti1_with_its_geometry() {
    let d = tmp();
    let (l, p) = case();
    let (lp, pp, g) = (at(&d, "l.nii"), at(&d, "p2.nii.gz"), at(&d, "g.nii"));
    l.write(&lp);
    write_maybe_gz(&pp, &p.bytes_v2());
    report(&lp, &pp, &["--grad-out", g.to_str().unwrap()]);
    let h = ReaderOptions::new().read_file(&g).unwrap().header().clone();
    assert_eq!(&h.dim[..5], &[4, 6, 5, 4, 3]);
    assert_eq!(h.srow_x, p.srow[0]);
    assert_eq!(h.srow_z, p.srow[2]);
    assert_eq!(&h.pixdim[..4], &p.pixdim[..4]);
    assert_eq!((h.sform_code, h.qform_code), (p.sform_code, p.qform_code));
}

#[test]
fn data_after_extensions_and_multi_member_gzip_read_like_the_plain_file() {
    let d = tmp();
    let (l, p) = case();
    let (l1, p1) = (at(&d, "l.nii"), at(&d, "p.nii"));
    l.write(&l1);
    p.write(&p1);
    let want = figures(&report(&l1, &p1, &[]));
    // vox_offset 432: an 80-byte extension between header and data
    let mut ext = p.clone();
    ext.vox_offset = 432;
    let mut bytes = ext.bytes();
    bytes[348] = 1; // extension flag
    let pe = at(&d, "ext.nii");
    std::fs::write(&pe, &bytes).unwrap();
    assert_eq!(figures(&report(&l1, &pe, &[])), want, "vox_offset 432");
    assert_eq!(values(&l1, &pe), written(&l, &p), "vox_offset 432: value by value");
    // the same file as three concatenated gzip members
    let raw = p.bytes();
    let mut multi = Vec::new();
    for part in raw.chunks(raw.len() / 3 + 1) {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(part).unwrap();
        multi.extend(e.finish().unwrap());
    }
    let pm = at(&d, "multi.nii.gz");
    std::fs::write(&pm, multi).unwrap();
    assert_eq!(figures(&report(&l1, &pm, &[])), want, "multi-member gzip");
    assert_eq!(values(&l1, &pm), written(&l, &p), "multi-member gzip: value by value");
}

#[test]
fn labels_read_alike_as_bytes_16_bit_integers_and_floats() {
    let d = tmp();
    let (l, p) = case();
    let dims = [l.dims[0], l.dims[1], l.dims[2]];
    let as_i16: Vec<u8> = l.data.iter().flat_map(|&b| i16::from(b).to_le_bytes()).collect();
    let as_f32: Vec<f32> = l.data.iter().map(|&b| f32::from(b)).collect();
    let doubled: Vec<u8> = l.data.iter().map(|&b| 2 * b).collect();
    let mut halved = Nii::u8(&dims, &doubled);
    halved.slope = 0.5;
    let pf = at(&d, "p.nii");
    p.write(&pf);
    let forms = [
        ("uint8", l.clone()),
        ("int16", Nii::new(&dims, 4, 16, as_i16)),
        ("float32", Nii::f32(&dims, &as_f32)),
        ("uint8 scaled by 0.5", halved),
    ];
    for (name, lab) in forms {
        let lf = at(&d, &format!("l_{name}.nii"));
        lab.write(&lf);
        assert_eq!(values(&lf, &pf).0, l.data, "{name}");
    }
}
