//! Test helpers: an independent NIfTI-1 writer (byte layout written out by hand from nifti1.h, so
//! that the reader under test is checked against something it did not produce), a seeded value
//! generator, and a command runner.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use dicegrad::case::Case;
use dicegrad::loss::{Activation, Evaluation, GradientKernel, LossConfig};

/// A NIfTI-1 file to build.
#[derive(Clone, Debug)]
pub struct Nii {
    pub dims: Vec<usize>,
    pub datatype: i16,
    pub bitpix: i16,
    pub big_endian: bool,
    pub slope: f32,
    pub inter: f32,
    pub vox_offset: usize,
    pub pixdim: [f32; 8],
    pub qform_code: i16,
    pub sform_code: i16,
    pub srow: [[f32; 4]; 3],
    pub quatern: [f32; 3],
    pub qoffset: [f32; 3],
    /// Voxel data, already encoded in the file's datatype and byte order.
    pub data: Vec<u8>,
}

impl Nii {
    /// A float32 little-endian volume with a non-trivial affine.
    pub fn f32(dims: &[usize], values: &[f32]) -> Nii {
        Nii::new(dims, 16, 32, values.iter().flat_map(|v| v.to_le_bytes()).collect())
    }

    /// A uint8 volume.
    pub fn u8(dims: &[usize], values: &[u8]) -> Nii {
        Nii::new(dims, 2, 8, values.to_vec())
    }

    pub fn new(dims: &[usize], datatype: i16, bitpix: i16, data: Vec<u8>) -> Nii {
        Nii {
            dims: dims.to_vec(),
            datatype,
            bitpix,
            big_endian: false,
            slope: 0.0,
            inter: 0.0,
            vox_offset: 352,
            pixdim: [-1.0, 1.5, 0.75, 3.0, 1.0, 1.0, 1.0, 1.0],
            qform_code: 1,
            sform_code: 2,
            srow: [[-1.5, 0.0, 0.0, 90.0], [0.0, 0.75, 0.0, -126.0], [0.0, 0.0, 3.0, -72.0]],
            quatern: [0.0, 0.0, 1.0],
            qoffset: [90.0, -126.0, -72.0],
            data,
        }
    }

    /// The file's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let mut h = vec![0u8; self.vox_offset.max(352)];
        let big = self.big_endian;
        let i16b = |v: i16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let i32b = |v: i32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let f32b = |v: f32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        h[0..4].copy_from_slice(&i32b(348));
        h[40..42].copy_from_slice(&i16b(self.dims.len() as i16));
        for i in 0..7 {
            let d = self.dims.get(i).map_or(1, |&d| d as i16);
            h[42 + 2 * i..44 + 2 * i].copy_from_slice(&i16b(d));
        }
        h[70..72].copy_from_slice(&i16b(self.datatype));
        h[72..74].copy_from_slice(&i16b(self.bitpix));
        for (i, p) in self.pixdim.iter().enumerate() {
            h[76 + 4 * i..80 + 4 * i].copy_from_slice(&f32b(*p));
        }
        h[108..112].copy_from_slice(&f32b(self.vox_offset as f32));
        h[112..116].copy_from_slice(&f32b(self.slope));
        h[116..120].copy_from_slice(&f32b(self.inter));
        h[123] = 2 | 8;
        h[148..160].copy_from_slice(b"test volume\0");
        h[252..254].copy_from_slice(&i16b(self.qform_code));
        h[254..256].copy_from_slice(&i16b(self.sform_code));
        for (i, q) in self.quatern.iter().chain(&self.qoffset).enumerate() {
            h[256 + 4 * i..260 + 4 * i].copy_from_slice(&f32b(*q));
        }
        for (r, row) in self.srow.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                h[280 + 16 * r + 4 * c..284 + 16 * r + 4 * c].copy_from_slice(&f32b(*v));
            }
        }
        h[344..348].copy_from_slice(b"n+1\0");
        h.extend_from_slice(&self.data);
        h
    }

    /// The file's bytes as NIfTI-2 (540-byte header, data at `max(vox_offset, 544)`).
    pub fn bytes_v2(&self) -> Vec<u8> {
        let offset = self.vox_offset.max(544);
        let mut h = vec![0u8; offset];
        let big = self.big_endian;
        fn put<const N: usize>(h: &mut [u8], off: usize, le: [u8; N], big: bool) {
            let mut b = le;
            if big {
                b.reverse();
            }
            h[off..off + N].copy_from_slice(&b);
        }
        put(&mut h, 0, 540i32.to_le_bytes(), big);
        h[4..12].copy_from_slice(b"n+2\0\r\n\x1a\n");
        put(&mut h, 12, self.datatype.to_le_bytes(), big);
        put(&mut h, 14, self.bitpix.to_le_bytes(), big);
        put(&mut h, 16, (self.dims.len() as i64).to_le_bytes(), big);
        for i in 0..7 {
            put(&mut h, 24 + 8 * i, (self.dims.get(i).map_or(1, |&d| d as i64)).to_le_bytes(), big);
        }
        for (i, p) in self.pixdim.iter().enumerate() {
            put(&mut h, 104 + 8 * i, (*p as f64).to_le_bytes(), big);
        }
        put(&mut h, 168, (offset as i64).to_le_bytes(), big);
        put(&mut h, 176, (self.slope as f64).to_le_bytes(), big);
        put(&mut h, 184, (self.inter as f64).to_le_bytes(), big);
        h[240..251].copy_from_slice(b"test volume");
        put(&mut h, 344, (self.qform_code as i32).to_le_bytes(), big);
        put(&mut h, 348, (self.sform_code as i32).to_le_bytes(), big);
        for (i, q) in self.quatern.iter().chain(&self.qoffset).enumerate() {
            put(&mut h, 352 + 8 * i, (*q as f64).to_le_bytes(), big);
        }
        for (r, row) in self.srow.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                put(&mut h, 400 + 32 * r + 8 * c, (*v as f64).to_le_bytes(), big);
            }
        }
        put(&mut h, 500, 10i32.to_le_bytes(), big);
        h.extend_from_slice(&self.data);
        h
    }

    /// Writes the file; gzip-compressed when the name ends in `.gz`.
    pub fn write(&self, path: &Path) {
        write_maybe_gz(path, &self.bytes());
    }
}

/// `dicegrad analyze --threads 1` of `labels` and `pred` with 600 MB of address space (`ulimit -v`):
/// a process that reserves more aborts.
pub fn analyze_in_600_mb(labels: &Path, pred: &Path) -> std::process::Output {
    let bin = assert_cmd::cargo::cargo_bin("dicegrad");
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 600000; exec '{}' analyze --threads 1 --labels '{}' --pred '{}'",
            bin.display(),
            labels.display(),
            pred.display()
        ))
        .output()
        .unwrap()
}

/// Writes `bytes` to `path`, gzip-compressed when the name ends in `.gz`.
pub fn write_maybe_gz(path: &Path, bytes: &[u8]) {
    if path.extension().is_some_and(|e| e == "gz") {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        std::fs::write(path, e.finish().unwrap()).unwrap();
    } else {
        std::fs::write(path, bytes).unwrap();
    }
}

/// Writes `probabilities` (shape (C, z, y, x), C order) as an nnU-Net .npz, float32 or float16.
pub fn write_npz(path: &Path, shape: [usize; 4], values: &[f32], half: bool) {
    let descr = if half { "<f2" } else { "<f4" };
    let data: Vec<u8> = if half {
        values.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect()
    } else {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    };
    let dict = format!("'descr': '{descr}', 'fortran_order': False, 'shape': {}", shape_tuple(shape));
    write_npy_zip(path, &dict, &data);
}

/// `(a, b, c, d)` as numpy writes a shape.
pub fn shape_tuple(shape: [usize; 4]) -> String {
    format!("({}, {}, {}, {})", shape[0], shape[1], shape[2], shape[3])
}

/// A .npy array (format version 1) with the header dict `{dict, }` and the data bytes `data` as
/// they are.
pub fn npy_bytes(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!("{{{dict}, }}").into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
    npy.extend_from_slice(&header);
    npy.extend_from_slice(data);
    npy
}

/// `n` with its data and header in big-endian order.
pub fn big_endian(n: &Nii) -> Nii {
    let mut b = n.clone();
    b.big_endian = true;
    let size = (b.bitpix / 8) as usize;
    for chunk in b.data.chunks_mut(size) {
        chunk.reverse();
    }
    b
}

/// Writes an .npz holding `probabilities.npy` with the header dict `{dict, }` and the data bytes
/// `data` as they are.
pub fn write_npy_zip(path: &Path, dict: &str, data: &[u8]) {
    let npy = npy_bytes(dict, data);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("probabilities.npy", opts).unwrap();
    zip.write_all(&npy).unwrap();
    zip.finish().unwrap();
}

/// Deterministic pseudo-random numbers for test data (xorshift64*).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next()
    }
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next() * n as f64) as usize).min(n - 1)
    }
}

/// Seeded labels over `c` classes and per-voxel normalised probabilities (channel-major) for `n`
/// voxels.
pub fn labels_and_probs(seed: u64, n: usize, c: usize) -> (Vec<u8>, Vec<f32>) {
    let mut r = Lcg(seed);
    let labels: Vec<u8> = (0..n).map(|_| r.below(c) as u8).collect();
    let mut probs = vec![0f32; c * n];
    for i in 0..n {
        let raw: Vec<f64> = (0..c).map(|_| r.range(0.1, 1.0)).collect();
        let t: f64 = raw.iter().sum();
        for k in 0..c {
            probs[k * n + i] = (raw[k] / t) as f32;
        }
    }
    (labels, probs)
}

/// A mini-batch of `b` seeded samples of `c` classes on `shape` (X, Y, Z): labels (B, X, Y, Z) and
/// probabilities (B, C, X, Y, Z), C order; sample i from seed `seed + i`.
pub fn minibatch_of(b: usize, c: usize, shape: [usize; 3], seed: u64) -> (ndarray::Array4<u8>, ndarray::Array5<f32>) {
    let [x, y, z] = shape;
    let n = x * y * z;
    let mut labels = ndarray::Array4::<u8>::zeros((b, x, y, z));
    let mut probs = ndarray::Array5::<f32>::zeros((b, c, x, y, z));
    for i in 0..b {
        let (l, p) = labels_and_probs(seed + i as u64, n, c);
        labels.index_axis_mut(ndarray::Axis(0), i).assign(&ndarray::Array3::from_shape_vec((x, y, z), l).unwrap());
        probs.index_axis_mut(ndarray::Axis(0), i).assign(&ndarray::Array4::from_shape_vec((c, x, y, z), p).unwrap());
    }
    (labels, probs)
}

/// The `dicegrad` binary.
pub fn dicegrad() -> Command {
    Command::cargo_bin("dicegrad").unwrap()
}

/// A fresh temporary folder.
pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// `dir/name` as a PathBuf.
pub fn at(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

/// Writes a small binary case (labels 0/1 and probabilities) and returns (labels, pred) paths.
pub fn binary_case(dir: &tempfile::TempDir, shape: [usize; 3], seed: u64) -> (PathBuf, PathBuf) {
    let n = shape.iter().product();
    let mut r = Lcg(seed | 1);
    let labels: Vec<u8> = (0..n).map(|_| u8::from(r.next() < 0.3)).collect();
    let probs: Vec<f32> = labels.iter().map(|&l| (0.6 * l as f64 + r.range(0.0, 0.4)) as f32).collect();
    let (lp, pp) = (at(dir, "labels.nii.gz"), at(dir, "pred.nii.gz"));
    Nii::u8(&shape, &labels).write(&lp);
    Nii::f32(&shape, &probs).write(&pp);
    (lp, pp)
}

/// Runs the command, expects exit code 2, and returns stderr.
pub fn fails_with_2(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "expected exit code 2, stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(stderr.starts_with("error: "), "stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one-line error expected: {stderr}");
    stderr
}

/// Runs the command, expects success, and parses stdout as JSON.
pub fn json_of(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// A random case on a 3×2×2 grid (or `shape`): labels over the classes (one channel: 0/1),
/// probabilities in (0.05, 1) (normalised over channels) or logits in (−3, 3).
pub fn random_case(seed: u64, shape: [usize; 3], channels: usize, act: Activation, empty_last: bool) -> Case<'static> {
    let n: usize = shape.iter().product();
    let mut r = Lcg(seed | 1);
    let classes = if channels == 1 { 2 } else { channels };
    let usable = if empty_last { classes - 1 } else { classes };
    let class: Vec<u8> = (0..n).map(|_| r.below(usable) as u8).collect();
    let mut data = vec![0f32; n * channels];
    for i in 0..n {
        let raw: Vec<f64> = (0..channels).map(|_| r.range(0.05, 1.0)).collect();
        let total: f64 = raw.iter().sum();
        for k in 0..channels {
            data[k * n + i] = match act {
                Activation::None if channels == 1 => (raw[k] * 0.9) as f32,
                Activation::None => (raw[k] / total) as f32,
                _ => r.range(-3.0, 3.0) as f32,
            };
        }
    }
    Case::from_parts(shape, class, channels, data)
}

/// What the report says about the inputs of a case built in memory.
pub fn inputs_of(case: &Case) -> dicegrad::report::Inputs {
    dicegrad::report::Inputs::arrays("uint8", case.grid.shape, case.prediction.channels, &case.geometry)
}

/// The gradient of a loss on a whole case, in the order of the prediction's values.
pub fn gradient(case: &Case, cfg: &LossConfig) -> Vec<f32> {
    let eval = Evaluation::compute(case, cfg);
    let mut g = vec![0f32; case.prediction.values.len()];
    GradientKernel::new(case, &eval).fill(0, &mut g);
    g
}

/// Max |central difference − gradient| relative to max |gradient| (absolute if that is 0).
pub fn fd_error(mut case: Case<'static>, cfg: &LossConfig) -> f64 {
    let g = gradient(&case, cfg);
    let scale = g.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
    let mut worst: f64 = 0.0;
    for (i, gi) in g.iter().enumerate() {
        let x = case.prediction.values[i];
        let h = 1e-3f32 * x.abs().max(0.1);
        let (xp, xm) = (x + h, x - h);
        case.prediction.values.to_mut()[i] = xp;
        let lp = Evaluation::compute(&case, cfg).value;
        case.prediction.values.to_mut()[i] = xm;
        let lm = Evaluation::compute(&case, cfg).value;
        case.prediction.values.to_mut()[i] = x;
        worst = worst.max(((lp - lm) / (xp as f64 - xm as f64) - *gi as f64).abs());
    }
    if scale == 0.0 {
        worst
    } else {
        worst / scale
    }
}

/// A data set of `n` synthetic 3-class 9×8×7 cases made by `dicegrad synth` (seeds 0..n), as
/// `labels/` and `preds/` (probabilities) in `dir`, case `i` named `name(i)`.
pub fn synth_dataset(dir: &tempfile::TempDir, n: usize, name: impl Fn(usize) -> String) -> (PathBuf, PathBuf) {
    let (labels, preds) = (at(dir, "labels"), at(dir, "preds"));
    std::fs::create_dir_all(&labels).unwrap();
    std::fs::create_dir_all(&preds).unwrap();
    for i in 0..n {
        let tmp = at(dir, &format!("synth{i}"));
        dicegrad()
            .args(["synth", "--classes", "3", "--shape", "9,8,7", "--seed"])
            .arg(i.to_string())
            .arg("--out")
            .arg(&tmp)
            .assert()
            .success();
        std::fs::rename(tmp.join("labels.nii.gz"), labels.join(format!("{}.nii.gz", name(i)))).unwrap();
        std::fs::rename(tmp.join("probs.nii.gz"), preds.join(format!("{}.nii.gz", name(i)))).unwrap();
    }
    (labels, preds)
}

/// Runs `dicegrad batch` on two folders into `out`, with `extra` options; its output.
pub fn batch_run(labels: &Path, preds: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    dicegrad()
        .arg("batch")
        .args(extra)
        .arg("--labels-dir")
        .arg(labels)
        .arg("--pred-dir")
        .arg(preds)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}
