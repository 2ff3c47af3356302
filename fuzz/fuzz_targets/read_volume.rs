//! Fuzzes the reading layer: any bytes, as a `.nii`/`.nii.gz` (the reader goes by content) read as
//! labels and as a prediction (3D or with channels), as labels of one class of a multi-label map,
//! and as an nnU-Net `.npz`. Every outcome must be an `Ok` or an `Err` — never a panic, an abort,
//! or an allocation the file does not justify.
#![no_main]

use std::io::Write;

use dicegrad::error::Input;
use dicegrad::npz::NpzSource;
use dicegrad::pipeline::load::{LoadOptions, OpenCase};
use libfuzzer_sys::fuzz_target;

const MAX: u64 = 1 << 22;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.nii");
    std::fs::File::create(&path).unwrap().write_all(data).unwrap();
    let options = LoadOptions { max_values: MAX, ..LoadOptions::default() };
    if let Ok(open) = OpenCase::open(&path, &path, options, None) {
        let _ = open.read();
    }
    if let Ok(open) = OpenCase::open(&path, &path, options, Some(2)) {
        let _ = open.read();
    }
    let npz = dir.path().join("v.npz");
    std::fs::write(&npz, data).unwrap();
    if let Ok(src) = NpzSource::open(&npz) {
        if let Ok((_, grid)) = src.layout() {
            let _ = src.read(grid, &Input::array("labels"), MAX);
        }
    }
});
