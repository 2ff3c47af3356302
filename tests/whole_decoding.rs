//! A `.nii.gz` float32 prediction or uint8 label map, and a deflated float32 `.npz`, are decoded
//! whole; every other form is streamed. Whatever the route, the same volume gives the same values,
//! and the same damage or offending value the same message: each form is compared here with the
//! plain file (streamed) holding the same bytes.

mod common;

use std::io::Write;
use std::path::Path;

use common::*;
use dicegrad::pipeline::load::{LoadOptions, OpenCase};

/// (classes, values) as the library reads them, or the error's message with the test folder
/// left out.
fn read(labels: &Path, pred: &Path) -> Result<(Vec<u8>, Vec<f32>), String> {
    let options = LoadOptions { max_values: 1 << 22, ..Default::default() };
    let dir = labels.parent().unwrap().display().to_string();
    OpenCase::open(labels, pred, options, None)
        .and_then(|open| open.read())
        .map(|loaded| (loaded.case.labels.class.into_owned(), loaded.case.prediction.values.into_owned()))
        .map_err(|e| e.to_string().replace(&dir, "DIR"))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A 4-channel case large enough for several chunks: (labels, prediction).
fn case() -> (Nii, Nii) {
    let (x, y, z, c) = (40, 30, 20, 4);
    let (labels, probs) = labels_and_probs(5, x * y * z, c);
    (Nii::u8(&[x, y, z], &labels), Nii::f32(&[x, y, z, c], &probs))
}

#[test]
fn every_form_of_a_volume_gives_the_values_of_the_plain_file() {
    let d = tmp();
    let (l, p) = case();
    let (lp, pp) = (at(&d, "l.nii"), at(&d, "p.nii"));
    l.write(&lp);
    p.write(&pp);
    let want = read(&lp, &pp).unwrap();
    let raw = p.bytes();
    let member_flags = |flags: u8| {
        let mut g = gzip(&raw);
        g[3] = flags;
        g
    };
    let padded = [gzip(&raw), vec![0; 1000]].concat();
    let halves = [gzip(&raw[..raw.len() / 2]), gzip(&raw[raw.len() / 2..])].concat();
    let with_name = {
        // FNAME: a file name after the 10-byte header
        let g = gzip(&raw);
        [&g[..3], &[0x08], &g[4..10], b"p.nii\0", &g[10..]].concat()
    };
    let mut after = raw.clone();
    after.extend_from_slice(&[7; 5000]); // bytes after the voxel data (another tool's)
    let mut odd_offset = p.clone();
    odd_offset.vox_offset = 354; // not a multiple of 4: streamed
    let mut big_extension = p.clone();
    big_extension.vox_offset = (2 << 20) + 352; // extensions of 2 MiB: streamed, not held
    let forms: Vec<(&str, Vec<u8>)> = vec![
        ("one member", gzip(&raw)),
        ("two members", halves),
        ("zero padding", padded),
        ("a file name in the header", with_name),
        ("a header CRC flag (streamed)", member_flags(0x02)),
        ("data after the voxels (streamed)", gzip(&after)),
        ("vox_offset 354 (streamed)", gzip(&odd_offset.bytes())),
        ("2 MiB of extensions (streamed)", gzip(&big_extension.bytes())),
        ("big-endian (streamed)", gzip(&big_endian(&p).bytes())),
    ];
    for (what, bytes) in forms {
        let f = at(&d, "form.nii.gz");
        std::fs::write(&f, &bytes).unwrap();
        if what.contains("CRC flag") {
            // a header CRC that does not match: the streaming decoder's refusal, as before
            assert!(read(&lp, &f).is_err(), "{what}");
            continue;
        }
        assert_eq!(read(&lp, &f).as_ref(), Ok(&want), "{what}");
    }
    // labels, too: uint8 whole, 16-bit streamed
    let lg = at(&d, "l.nii.gz");
    std::fs::write(&lg, gzip(&l.bytes())).unwrap();
    assert_eq!(read(&lg, &pp).as_ref(), Ok(&want), "labels decoded whole");
}

#[test]
fn offending_labels_are_named_alike_whether_decoded_whole_or_streamed() {
    let d = tmp();
    let (mut l, p) = case();
    // out of range for four channels, far apart: the first is named, all are counted
    for i in [1234, 5000, 23_999] {
        l.data[i] = 9;
    }
    let pp = at(&d, "p.nii");
    p.write(&pp);
    let (plain, packed) = (at(&d, "l.nii"), at(&d, "l.nii.gz"));
    l.write(&plain);
    std::fs::write(&packed, gzip(&l.bytes())).unwrap();
    let streamed = read(&plain, &pp).unwrap_err();
    let whole = read(&packed, &pp).unwrap_err();
    assert!(streamed.contains("3 voxels hold label values out of range (first: 9 at"), "{streamed}");
    assert_eq!(whole.replace("l.nii.gz", "l.nii"), streamed);
}

#[test]
fn damage_found_by_whole_decoding_is_told_as_the_streaming_decoder_tells_it() {
    let d = tmp();
    let (l, p) = case();
    let lp = at(&d, "l.nii");
    l.write(&lp);
    let g = gzip(&p.bytes());
    let n = g.len();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("a wrong CRC-32", [&g[..n - 8], &[!g[n - 8]], &g[n - 7..]].concat(), "corrupt"),
        ("cut inside the data", g[..n / 2].to_vec(), "truncated"),
        ("cut in the trailer", g[..n - 3].to_vec(), "truncated"),
        ("junk after the member", [&g[..], b"junk"].concat(), "neither another member nor"),
    ];
    for (what, bytes, says) in cases {
        let f = at(&d, "bad.nii.gz");
        std::fs::write(&f, &bytes).unwrap();
        let e = read(&lp, &f).unwrap_err();
        assert!(e.contains(says), "{what}: {e}");
    }
}

#[test]
fn a_deflated_npz_gives_the_values_of_a_stored_one() {
    let d = tmp();
    let shape = [3, 6, 7, 9]; // (C, z, y, x)
    let n = shape.iter().product::<usize>();
    let values: Vec<f32> = (0..n).map(|i| ((i * 37) % 101) as f32 / 100.0).collect();
    let labels = Nii::u8(&[9, 7, 6], &vec![1; 9 * 7 * 6]);
    let lp = at(&d, "l.nii");
    labels.write(&lp);
    let deflated = at(&d, "deflated.npz");
    write_npz(&deflated, shape, &values, false);
    let stored = at(&d, "stored.npz");
    {
        let dict = format!("'descr': '<f4', 'fortran_order': False, 'shape': {}", shape_tuple(shape));
        let npy = npy_bytes(&dict, &values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>());
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&stored).unwrap());
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        zip.start_file("probabilities.npy", opts).unwrap();
        zip.write_all(&npy).unwrap();
        zip.finish().unwrap();
    }
    let (_, whole) = read(&lp, &deflated).unwrap();
    let (_, streamed) = read(&lp, &stored).unwrap();
    assert_eq!(whole, streamed);
    assert_eq!(whole, values, "(C, z, y, x) in C order is the (X, Y, Z, C) layout");
    // a damaged deflated entry: the CRC-32 no longer matches
    let mut bytes = std::fs::read(&deflated).unwrap();
    let at_data = bytes.windows(6).position(|w| w == b"\x93NUMPY").is_none();
    assert!(at_data, "the entry is compressed");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    let damaged = at(&d, "damaged.npz");
    std::fs::write(&damaged, &bytes).unwrap();
    let e = read(&lp, &damaged).unwrap_err();
    assert!(e.contains("damaged"), "{e}");
}

#[test]
fn an_npz_whose_directory_claims_more_than_the_file_holds_is_read_or_refused_without_reserving_it() {
    let d = tmp();
    let shape = [2, 4, 5, 6];
    let n = shape.iter().product::<usize>();
    let values: Vec<f32> = (0..n).map(|i| (i % 10) as f32 / 10.0).collect();
    let lp = at(&d, "l.nii");
    Nii::u8(&[6, 5, 4], &[1; 120]).write(&lp);
    let good = at(&d, "good.npz");
    write_npz(&good, shape, &values, false);
    let mut bytes = std::fs::read(&good).unwrap();
    // the central directory's compressed size of the entry: 4 GB
    let cd = bytes.windows(4).rposition(|w| w == [0x50, 0x4b, 0x01, 0x02]).unwrap();
    bytes[cd + 20..cd + 24].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let lying = at(&d, "lying.npz");
    std::fs::write(&lying, &bytes).unwrap();
    // under a 600 MB address-space limit reserving the claimed size would abort the process
    let out = analyze_in_600_mb(&lp, &lying);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0) | Some(2)), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked") && !stderr.contains("allocation"), "{stderr}");
}
