//! Fuzzes the reading layer: any bytes, as a `.nii`/`.nii.gz` (the reader goes by content) read as
//! labels, as a prediction (3D or with channels), and as an nnU-Net `.npz`. Every outcome must be
//! an `Ok` or an `Err` — never a panic, an abort, or an allocation the file does not justify.
#![no_main]

use std::io::Write;

use dicegrad::nifti_io::load::read_label_file;
use dicegrad::nifti_io::npz::NpzSource;
use dicegrad::nifti_io::{LoadOptions, OpenCase};
use libfuzzer_sys::fuzz_target;

const MAX: u64 = 1 << 22;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.nii");
    std::fs::File::create(&path).unwrap().write_all(data).unwrap();
    let _ = read_label_file(&path, MAX, 2, None);
    if let Ok(open) = OpenCase::open(&path, &path, LoadOptions { max_values: MAX, label: None }) {
        let _ = open.read(true);
    }
    let npz = dir.path().join("v.npz");
    std::fs::write(&npz, data).unwrap();
    if let Ok(src) = NpzSource::open(&npz) {
        if let Ok(labels) = read_label_file(&path, MAX, src.layout().map(|l| l.0).unwrap_or(2), None) {
            let _ = src.read(&labels, MAX, true);
        }
    }
});
