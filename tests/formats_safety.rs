//! Reading and writing formats safely: gradients NIfTI-1 cannot hold are written as NIfTI-2 with
//! the input's geometry; gzip zero padding; truthful truncation messages; the `.npz` CRC; float64
//! values beyond float32 named as they are; `.npz` errors that speak of the archive.
//!
//! Every file is built here byte by byte (or with the test helpers' independent writer), and
//! outputs are checked against the bytes nifti1.h / nifti2.h prescribe and against the Dice
//! gradient written out from its definition.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use common::*;
use dicegrad::nifti::Source;
use dicegrad::pipeline::load::{LoadOptions, OpenCase};

// ---------------------------------------------------------------------------------------------
// helpers

/// Runs `analyze` on (labels, pred) with `extra` arguments; returns (exit code, stderr).
fn analyze(labels: &Path, pred: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let out =
        dicegrad().args(["analyze", "--json", "--labels"]).arg(labels).arg("--pred").arg(pred).args(extra).output();
    let out = out.unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
}

/// The one-line error of a run that must fail with exit code 2.
fn error_of(labels: &Path, pred: &Path) -> String {
    fails_with_2(dicegrad().args(["analyze", "--labels"]).arg(labels).arg("--pred").arg(pred))
}

/// The error of loading the case through the library (faster than the program, same route).
fn load_error(labels: &Path, pred: &Path) -> String {
    let options = LoadOptions { max_values: 1 << 24, ..Default::default() };
    match OpenCase::open(labels, pred, options, None).and_then(|o| o.read()) {
        Ok(_) => panic!("{} was read without an error", pred.display()),
        Err(e) => e.to_string(),
    }
}

/// The prediction values read by the library.
fn pred_values(labels: &Path, pred: &Path) -> Vec<f32> {
    let options = LoadOptions { max_values: 1 << 24, ..Default::default() };
    let case = OpenCase::open(labels, pred, options, None).unwrap().read().unwrap().case;
    case.prediction.values.into_owned()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

fn le_i16(b: &[u8], off: usize) -> i16 {
    i16::from_le_bytes(b[off..off + 2].try_into().unwrap())
}
fn le_i32(b: &[u8], off: usize) -> i32 {
    i32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}
fn le_i64(b: &[u8], off: usize) -> i64 {
    i64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}
fn le_f64(b: &[u8], off: usize) -> f64 {
    f64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

/// The Dice gradient written out from its definition (MONAI defaults: smooth_nr = smooth_dr =
/// 1e-5, mean over the K channels): per channel I = Σ s·g, S = Σ s, G = Σ g, N = 2I + 1e-5,
/// D = S + G + 1e-5, dL/ds_i = (N − 2·g_i·D) / (K·D²). `values` channel-major; `truth(k, i)` the
/// ground truth of channel k at voxel i.
fn dice_gradient(values: &[f32], channels: usize, truth: impl Fn(usize, usize) -> f64) -> Vec<f64> {
    let n = values.len() / channels;
    let mut g = Vec::with_capacity(values.len());
    for k in 0..channels {
        let s = &values[k * n..(k + 1) * n];
        let (mut i_, mut s_, mut g_) = (0.0, 0.0, 0.0);
        for (i, &v) in s.iter().enumerate() {
            i_ += v as f64 * truth(k, i);
            s_ += v as f64;
            g_ += truth(k, i);
        }
        let (nn, d) = (2.0 * i_ + 1e-5, s_ + g_ + 1e-5);
        g.extend((0..n).map(|i| (nn - 2.0 * truth(k, i) * d) / (channels as f64 * d * d)));
    }
    g
}

/// Checks float32 values (little-endian bytes) against `want` within 1e-5 of the largest |want|.
fn assert_close(bytes: &[u8], want: &[f64]) {
    let got: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((*g as f64 - w).abs() <= 1e-5 * scale, "value {i}: {g} vs {w}");
    }
}

/// Puts intent code 2 (correlation), intent_p1 = 0.25 and intent_name "probability" into NIfTI-2
/// header bytes (byte order `big`): what the prediction says of itself, which its gradient must not
/// repeat.
fn set_intent_v2(b: &mut [u8], big: bool) {
    let order = |mut a: Vec<u8>| {
        if big {
            a.reverse();
        }
        a
    };
    b[504..508].copy_from_slice(&order(2i32.to_le_bytes().to_vec()));
    b[80..88].copy_from_slice(&order(0.25f64.to_le_bytes().to_vec()));
    b[508..519].copy_from_slice(b"probability");
}

/// Checks the header of a NIfTI-2 output by nifti2.h offsets: sizeof_hdr 540, magic, float32,
/// dim as i64, data at 544, no scaling, and the geometry of `geometry` (pixdim, qform, sform,
/// units as the test helpers write them), and `descrip`.
fn assert_nifti2_header(b: &[u8], dims: &[i64], geometry: &Nii, descrip: &str) {
    assert_eq!(le_i32(b, 0), 540, "sizeof_hdr");
    assert_eq!(&b[4..12], b"n+2\0\r\n\x1a\n", "magic");
    assert_eq!((le_i16(b, 12), le_i16(b, 14)), (16, 32), "datatype float32, bitpix 32");
    let mut want_dim = vec![dims.len() as i64];
    want_dim.extend(dims);
    want_dim.resize(8, 1);
    let dim: Vec<i64> = (0..8).map(|i| le_i64(b, 16 + 8 * i)).collect();
    assert_eq!(dim, want_dim, "dim");
    assert_eq!(le_i64(b, 168), 544, "vox_offset");
    assert_eq!((le_f64(b, 176), le_f64(b, 184)), (1.0, 0.0), "no scaling");
    let pixdim: Vec<f64> = (0..8).map(|i| le_f64(b, 104 + 8 * i)).collect();
    assert_eq!(pixdim, geometry.pixdim.map(f64::from).to_vec(), "pixdim");
    assert_eq!((le_i32(b, 344), le_i32(b, 348)), (geometry.qform_code as i32, geometry.sform_code as i32));
    let quatern: Vec<f64> = (0..6).map(|i| le_f64(b, 352 + 8 * i)).collect();
    let want_q: Vec<f64> = geometry.quatern.iter().chain(&geometry.qoffset).map(|&v| v as f64).collect();
    assert_eq!(quatern, want_q, "quatern and qoffset");
    for r in 0..3 {
        let row: Vec<f64> = (0..4).map(|c| le_f64(b, 400 + 32 * r + 8 * c)).collect();
        assert_eq!(row, geometry.srow[r].map(f64::from).to_vec(), "srow {r}");
    }
    assert_eq!(le_i32(b, 500), 10, "xyzt_units: mm and seconds");
    let text = |r: std::ops::Range<usize>| String::from_utf8_lossy(&b[r]).trim_end_matches('\0').to_string();
    assert_eq!(text(240..320), descrip, "descrip");
}

/// What a gradient volume says it holds (the loss is dice, on probabilities), whatever the
/// prediction said of itself.
fn assert_describes_the_gradient(b: &[u8]) {
    let text = |r: std::ops::Range<usize>| String::from_utf8_lossy(&b[r]).trim_end_matches('\0').to_string();
    assert_eq!(text(240..320), "dicegrad gradient of dice w.r.t. probabilities", "descrip");
    assert_eq!(text(508..524), "gradient", "intent_name");
    assert_eq!(i32::from_le_bytes(b[504..508].try_into().unwrap()), 0, "intent_code");
}

/// The voxel-to-world affine of a test volume: its sform rows.
fn affine_of(n: &Nii) -> [[f64; 4]; 4] {
    let s = n.srow.map(|r| r.map(f64::from));
    [s[0], s[1], s[2], [0.0, 0.0, 0.0, 1.0]]
}

/// Reads a written volume back with dicegrad's reader: (dims, affine, float32 values).
fn read_back(path: &Path) -> (Vec<usize>, [[f64; 4]; 4], Vec<f32>) {
    let src = Source::open(path, 1 << 24).unwrap();
    let (dims, affine) = (src.header.dims.clone(), src.header.affine());
    let mut values = Vec::new();
    src.for_each_chunk(|_, b| {
        values.extend(b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())));
        Ok(())
    })
    .unwrap();
    (dims, affine, values)
}

// ---------------------------------------------------------------------------------------------
// 1. NIfTI-2 output when NIfTI-1 cannot hold the shape

#[test]
fn a_nifti2_prediction_longer_than_32767_gets_a_nifti2_gradient_with_its_geometry() {
    let d = tmp();
    let n = 40_000;
    let labels: Vec<u8> = (0..n).map(|i| u8::from(i % 3 == 0)).collect();
    let probs: Vec<f32> = (0..n).map(|i| if i % 3 == 0 { 0.7 } else { 0.2 } + (i % 7) as f32 * 0.01).collect();
    let (l, p) = (Nii::u8(&[n, 1, 1], &labels), Nii::f32(&[n, 1, 1], &probs));
    let (lp, pp, g) = (at(&d, "l.nii"), at(&d, "p.nii.gz"), at(&d, "g.nii.gz"));
    std::fs::write(&lp, l.bytes_v2()).unwrap();
    let mut pred = p.bytes_v2();
    set_intent_v2(&mut pred, false);
    std::fs::write(&pp, gzip(&pred)).unwrap();
    let (code, stderr) = analyze(&lp, &pp, &["--grad-out", g.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");

    let b = gunzip(&std::fs::read(&g).unwrap());
    assert_eq!(b.len(), 544 + 4 * n);
    assert_nifti2_header(&b, &[n as i64, 1, 1], &p, "dicegrad gradient of dice w.r.t. probabilities");
    assert_describes_the_gradient(&b);
    assert_eq!((le_i32(&b, 504), le_f64(&b, 80)), (0, 0.0), "intent: none, the prediction's not repeated");
    let want = dice_gradient(&probs, 1, |_, i| labels[i] as f64);
    assert_close(&b[544..], &want);

    let (dims, affine, values) = read_back(&g);
    assert_eq!(dims, vec![n, 1, 1]);
    assert_eq!(affine, affine_of(&p));
    assert_eq!(values.len(), n);
}

#[test]
fn channels_of_a_big_endian_nifti2_prediction_beyond_nifti1_keep_their_layout() {
    let d = tmp();
    let (x, y, c) = (33_000, 2, 2);
    let n = x * y;
    let labels: Vec<u8> = (0..n).map(|i| u8::from(i % 5 < 2)).collect();
    let mut probs = vec![0f32; n * c];
    for i in 0..n {
        let fg = if labels[i] == 1 { 0.8 } else { 0.1 } + (i % 11) as f32 * 0.005;
        probs[n + i] = fg;
        probs[i] = 1.0 - fg;
    }
    let l = big_endian(&Nii::u8(&[x, y, 1], &labels));
    let p = big_endian(&Nii::f32(&[x, y, 1, c], &probs));
    let (lp, pp, g) = (at(&d, "l.nii.gz"), at(&d, "p.nii"), at(&d, "g.nii"));
    write_maybe_gz(&lp, &l.bytes_v2());
    let mut pred = p.bytes_v2();
    set_intent_v2(&mut pred, true);
    std::fs::write(&pp, pred).unwrap();
    let (code, stderr) = analyze(&lp, &pp, &["--grad-out", g.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");

    let b = std::fs::read(&g).unwrap();
    assert_nifti2_header(&b, &[x as i64, y as i64, 1, c as i64], &p, "dicegrad gradient of dice w.r.t. probabilities");
    assert_describes_the_gradient(&b);
    assert_eq!((le_i32(&b, 504), le_f64(&b, 80)), (0, 0.0), "intent: none, the prediction's not repeated");
    let want = dice_gradient(&probs, c, |k, i| f64::from(labels[i] as usize == k));
    assert_close(&b[544..], &want);
    let (dims, affine, _) = read_back(&g);
    assert_eq!((dims, affine), (vec![x, y, 1, c], affine_of(&p)));
}

#[test]
fn the_library_writes_a_nifti1_geometry_as_nifti2_in_its_byte_order_when_the_shape_needs_it() {
    // (the program's own inputs of this kind are NIfTI-2; a NIfTI-1 template widens exactly)
    let d = tmp();
    let n = 40_000;
    for big in [false, true] {
        let plain = Nii::f32(&[2, 2, 2], &[0.5; 8]);
        let input = if big { big_endian(&plain) } else { plain };
        let (ip, g) = (at(&d, "in.nii"), at(&d, &format!("g{big}.nii")));
        input.write(&ip);
        let template = Source::open(&ip, 1 << 20).unwrap().header.template;
        let opts = dicegrad::nifti::WriteOptions { compression: 1, force: false };
        dicegrad::nifti::write_f32(&g, &template, &[n, 1, 1], opts, |start, out| {
            for (j, v) in out.iter_mut().enumerate() {
                *v = (start + j) as f32;
            }
        })
        .unwrap();
        let mut b = std::fs::read(&g).unwrap();
        if big {
            swap_nifti2_to_le(&mut b);
        }
        assert_nifti2_header(&b, &[n as i64, 1, 1], &input, "test volume");
        let (dims, affine, values) = read_back(&g);
        assert_eq!((dims, affine), (vec![n, 1, 1], affine_of(&input)), "big-endian: {big}");
        assert_eq!(values.len(), n);
        let want: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let stored: Vec<f32> = b[544..]
            .chunks_exact(4)
            .map(|c| {
                let c: [u8; 4] = c.try_into().unwrap();
                if big {
                    f32::from_be_bytes(c)
                } else {
                    f32::from_le_bytes(c)
                }
            })
            .collect();
        assert_eq!(stored, want, "data in the header's byte order (big-endian: {big})");
    }
}

/// Turns the numeric header fields of a big-endian NIfTI-2 file to little-endian, by nifti2.h's
/// layout: (offset, size, count) of every number.
fn swap_nifti2_to_le(b: &mut [u8]) {
    let fields = [
        (0, 4, 1),
        (12, 2, 2),
        (16, 8, 8),
        (80, 8, 3),
        (104, 8, 8),
        (168, 8, 1),
        (176, 8, 8),
        (344, 4, 2),
        (352, 8, 18),
        (496, 4, 3),
    ];
    for (off, size, count) in fields {
        for v in b[off..off + size * count].chunks_exact_mut(size) {
            v.reverse();
        }
    }
}

#[test]
fn a_gradient_that_fits_nifti1_is_nifti1_as_before() {
    let d = tmp();
    let (lp, pp) = binary_case(&d, [6, 5, 4], 3);
    let g = at(&d, "g.nii");
    let (code, stderr) = analyze(&lp, &pp, &["--grad-out", g.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    let b = std::fs::read(&g).unwrap();
    assert_eq!((le_i32(&b, 0), &b[344..348]), (348, &b"n+1\0"[..]));
    assert_eq!(b.len(), 352 + 4 * 120);
}

// ---------------------------------------------------------------------------------------------
// 2. gzip followed by zero padding

/// A small 2-class case: NIfTI-1 labels file and the prediction's plain bytes and values.
fn small_case(d: &tempfile::TempDir) -> (PathBuf, Vec<u8>, Vec<f32>) {
    let (labels, probs) = labels_and_probs(5, 6 * 5 * 4, 2);
    let lp = at(d, "l.nii");
    Nii::u8(&[6, 5, 4], &labels).write(&lp);
    (lp, Nii::f32(&[6, 5, 4, 2], &probs).bytes(), probs)
}

#[test]
fn a_gzip_file_followed_by_zero_padding_reads_like_the_plain_file() {
    let d = tmp();
    let (lp, raw, probs) = small_case(&d);
    let mut padded = gzip(&raw);
    padded.extend([0u8; 512]);
    let pp = at(&d, "padded.nii.gz");
    std::fs::write(&pp, &padded).unwrap();
    assert_eq!(pred_values(&lp, &pp), probs);
    // two members, then padding
    let half = raw.len() / 2;
    let mut two = gzip(&raw[..half]);
    two.extend(gzip(&raw[half..]));
    two.extend([0u8; 3000]);
    std::fs::write(&pp, &two).unwrap();
    assert_eq!(pred_values(&lp, &pp), probs);
    let (code, stderr) = analyze(&lp, &pp, &[]);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn bytes_other_than_zeros_after_the_last_gzip_member_are_refused() {
    let d = tmp();
    let (lp, raw, _) = small_case(&d);
    let pp = at(&d, "p.nii.gz");
    for (name, tail) in [("junk", b"xyz".to_vec()), ("zeros then junk", [&[0u8; 600][..], b"x"].concat())] {
        let mut bytes = gzip(&raw);
        bytes.extend(&tail);
        std::fs::write(&pp, &bytes).unwrap();
        let err = error_of(&lp, &pp);
        assert!(err.contains("p.nii.gz: corrupt gzip data (after the voxel data:"), "{name}: {err}");
    }
}

// ---------------------------------------------------------------------------------------------
// 3. truthful truncation messages

#[test]
fn a_gzip_file_missing_only_its_trailer_says_its_end_is_missing() {
    let d = tmp();
    let (lp, raw, _) = small_case(&d);
    let gz = gzip(&raw);
    let pp = at(&d, "p.nii.gz");
    std::fs::write(&pp, &gz[..gz.len() - 8]).unwrap();
    let err = error_of(&lp, &pp);
    let data_bytes = 6 * 5 * 4 * 2 * 4;
    assert!(err.contains(&format!("cut short after its {data_bytes} bytes of voxel data")), "{err}");
    assert!(err.contains("checksum") && err.contains("copy it again"), "{err}");
    assert!(!err.contains("but only") && !err.contains("corrupt"), "{err}");
}

#[test]
fn a_gzip_file_cut_inside_the_data_says_how_much_of_it_arrived() {
    let d = tmp();
    // incompressible values, so that half the compressed file is about half the data
    let mut r = Lcg(9);
    let n = 16 * 16 * 16;
    let probs: Vec<f32> = (0..n).map(|_| r.next() as f32).collect();
    let lp = at(&d, "l.nii");
    Nii::u8(&[16, 16, 16], &vec![0; n]).write(&lp);
    let gz = gzip(&Nii::f32(&[16, 16, 16], &probs).bytes());
    let pp = at(&d, "p.nii.gz");
    std::fs::write(&pp, &gz[..gz.len() / 2]).unwrap();
    let err = error_of(&lp, &pp);
    let (expected, found) = describes_and_read(&err).expect("the 'describes N bytes ... only M' form");
    assert_eq!(expected, 4 * n as u64, "{err}");
    assert!(found > 0 && found < expected, "{err}");
}

/// (N, M) of "describes N bytes of voxel data but only M could be read".
fn describes_and_read(err: &str) -> Option<(u64, u64)> {
    let number_after = |key: &str| -> Option<u64> {
        let rest = &err[err.find(key)? + key.len()..];
        rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    };
    Some((number_after("describes ")?, number_after("but only ")?))
}

#[test]
fn every_cut_of_a_gzip_file_is_reported_as_a_cut_and_truthfully() {
    let d = tmp();
    let (lp, raw, _) = small_case(&d);
    let gz = gzip(&raw);
    let pp = at(&d, "p.nii.gz");
    for len in 2..gz.len() {
        std::fs::write(&pp, &gz[..len]).unwrap();
        let err = load_error(&lp, &pp);
        let at_len = format!("cut at {len} of {}: {err}", gz.len());
        assert!(err.contains("truncated"), "{at_len}");
        assert!(!err.contains("not a NIfTI") && !err.contains("corrupt"), "{at_len}");
        if let Some((expected, found)) = describes_and_read(&err) {
            assert!(found < expected, "{at_len}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. the .npz CRC

/// A zip holding `probabilities.npy` (stored, not compressed) with header dict `dict` and `data`.
fn stored_npz(dict: &str, data: &[u8]) -> Vec<u8> {
    let npy = npy_bytes(dict, data);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("probabilities.npy", opts).unwrap();
    zip.write_all(&npy).unwrap();
    zip.finish().unwrap().into_inner()
}

/// A 2-channel case on the (4, 3, 2) grid: labels file and the probabilities, (C, z, y, x).
fn npz_case(d: &tempfile::TempDir) -> (PathBuf, Vec<f32>) {
    let (labels, probs) = labels_and_probs(21, 24, 2);
    let lp = at(d, "l.nii");
    Nii::u8(&[4, 3, 2], &labels).write(&lp);
    (lp, probs)
}

const F4: &str = "'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 3, 4)";

#[test]
fn an_npz_whose_data_fail_their_crc_is_refused() {
    let d = tmp();
    let (lp, probs) = npz_case(&d);
    let data: Vec<u8> = probs.iter().flat_map(|v| v.to_le_bytes()).collect();
    let zip = stored_npz(F4, &data);
    let np = at(&d, "p.npz");
    std::fs::write(&np, &zip).unwrap();
    assert_eq!(pred_values(&lp, &np), probs, "the intact archive reads");

    // flip a bit of the 10th value, leaving the CRC-32 stored in the archive as it was
    let at_value = zip.windows(4).position(|w| w == probs[10].to_le_bytes()).unwrap();
    let mut damaged = zip.clone();
    damaged[at_value] ^= 1;
    // independently: the stored CRC (local header, offset 14) no longer matches the entry
    let name_len = u16::from_le_bytes([zip[26], zip[27]]) as usize;
    let entry = &damaged[30 + name_len..30 + name_len + 64 + data.len()];
    assert_ne!(crc32fast::hash(entry), u32::from_le_bytes(zip[14..18].try_into().unwrap()));
    std::fs::write(&np, &damaged).unwrap();
    let err = error_of(&lp, &np);
    assert!(err.contains("p.npz: the archive is damaged") && err.contains("CRC-32"), "{err}");
    assert!(err.contains("export the probabilities again"), "{err}");
}

#[test]
fn an_npz_entry_holding_more_than_its_shape_is_refused() {
    let d = tmp();
    let (lp, probs) = npz_case(&d);
    let mut data: Vec<u8> = probs.iter().flat_map(|v| v.to_le_bytes()).collect();
    data.extend(0.5f32.to_le_bytes());
    let np = at(&d, "p.npz");
    std::fs::write(&np, stored_npz(F4, &data)).unwrap();
    let err = error_of(&lp, &np);
    assert!(err.contains("holds more than the 192 bytes of data its .npy header describes"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// 5. float64 values beyond float32

/// `values` as a float64 NIfTI-1 volume of shape `dims`.
fn f64_volume(dims: &[usize], values: &[f64]) -> Nii {
    Nii::new(dims, 64, 64, values.iter().flat_map(|v| v.to_le_bytes()).collect())
}

#[test]
fn a_float64_value_beyond_float32_is_named_with_its_value_and_voxel() {
    let d = tmp();
    let lp = at(&d, "l.nii");
    Nii::u8(&[2, 3, 4], &[0; 24]).write(&lp);
    let mut values = vec![0.25; 24];
    values[1] = 1e300; // voxel (1, 0, 0)
    values[5] = -5e38; // voxel (1, 2, 0)
    let pp = at(&d, "p64.nii");
    f64_volume(&[2, 3, 4], &values).write(&pp);
    let err = error_of(&lp, &pp);
    assert!(err.contains("p64.nii: holds 1e300 at voxel (1, 0, 0) and 1 more values"), "{err}");
    assert!(err.contains("beyond float32's range") && err.contains("check the export"), "{err}");
    assert!(!err.contains("inf") && !err.contains("NaN"), "{err}");

    // a true infinity is still called one
    values[1] = f64::INFINITY;
    values[5] = 0.5;
    f64_volume(&[2, 3, 4], &values).write(&pp);
    let err = error_of(&lp, &pp);
    assert!(err.contains("1 values are NaN or infinite (first: inf at voxel (1, 0, 0))"), "{err}");
}

#[test]
fn an_npz_float64_value_beyond_float32_is_named_with_its_value_and_channel() {
    let d = tmp();
    let (lp, probs) = npz_case(&d);
    let mut values: Vec<f64> = probs.iter().map(|&v| v as f64).collect();
    values[24 + 6] = -1e300; // channel 1, flat voxel 6 = (2, 1, 0) on the (4, 3, 2) grid
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let np = at(&d, "p.npz");
    std::fs::write(&np, stored_npz("'descr': '<f8', 'fortran_order': False, 'shape': (2, 2, 3, 4)", &data)).unwrap();
    let err = error_of(&lp, &np);
    assert!(err.contains("p.npz: holds -1e300 at voxel (2, 1, 0) of channel 1, beyond float32's range"), "{err}");
}

#[test]
fn scaling_beyond_float32_is_named_with_the_scaled_value() {
    let d = tmp();
    let lp = at(&d, "l.nii");
    Nii::u8(&[2, 3, 4], &[0; 24]).write(&lp);
    let mut stored = vec![0.5f32; 24];
    stored[3] = 100.0;
    let mut p = Nii::f32(&[2, 3, 4], &stored);
    p.slope = 1e37;
    let pp = at(&d, "scaled.nii");
    p.write(&pp);
    // what the file holds at voxel (1, 1, 0): 100 × the float32 slope, written out
    let value = 100.0 * f64::from(1e37f32);
    let err = error_of(&lp, &pp);
    assert!(err.contains(&format!("scaled.nii: holds {value:e} at voxel (1, 1, 0), beyond float32's")), "{err}");
}

// ---------------------------------------------------------------------------------------------
// 6. .npz errors speak of the archive

#[test]
fn npz_errors_speak_of_the_archive_not_of_nifti() {
    let d = tmp();
    let (lp, probs) = npz_case(&d);
    let data: Vec<u8> = probs.iter().flat_map(|v| v.to_le_bytes()).collect();
    let np = at(&d, "p.npz");
    std::fs::write(&np, stored_npz(F4, &data[..100])).unwrap();
    let err = error_of(&lp, &np);
    assert!(err.contains("p.npz: truncated: the 'probabilities' array's .npy header describes 192 bytes"), "{err}");
    assert!(err.contains("only 100 could be read from the archive"), "{err}");
    assert!(!err.contains("voxel data") && !err.contains("NIfTI"), "{err}");

    let dir = at(&d, "dir.npz");
    std::fs::create_dir(&dir).unwrap();
    let err = error_of(&lp, &dir);
    assert!(err.contains("dir.npz: is a folder, not a file; give a file"), "{err}");
    assert!(!err.contains(".nii"), "{err}");

    // an .npz where a NIfTI volume must be: named as the archive it is
    std::fs::write(&np, stored_npz(F4, &data)).unwrap();
    let err = error_of(&np, &at(&d, "l.nii"));
    assert!(err.contains("p.npz: not a NIfTI volume: it is a zip archive (an .npz?)"), "{err}");
}

#[test]
fn an_npz_without_channels_is_refused_naming_the_file() {
    let d = tmp();
    let (lp, _) = npz_case(&d);
    let np = at(&d, "p.npz");
    std::fs::write(&np, stored_npz("'descr': '<f4', 'fortran_order': False, 'shape': (0, 2, 3, 4)", &[])).unwrap();
    let err = error_of(&lp, &np);
    assert!(err.contains("p.npz: 'probabilities' has shape [0, 2, 3, 4], with an empty axis"), "{err}");
    assert!(!err.contains("the prediction has no channels"), "{err}");
}
