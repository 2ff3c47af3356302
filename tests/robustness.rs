//! Robustness: every datatype read value by value; a corpus of malformed files (generated here, not
//! downloaded) each refused with exit code 2, one line naming the file, no panic and no output; a
//! FIFO; an output killed while being written; a full disk.

mod common;

use std::path::Path;

use common::*;
use dicegrad::pipeline::load::{LoadOptions, OpenCase};

/// Encodes `values` (whole numbers or floats) in a NIfTI datatype, little- or big-endian.
fn encode(code: i16, values: &[f64], big: bool) -> (i16, Vec<u8>) {
    macro_rules! enc {
        ($t:ty) => {
            values
                .iter()
                .flat_map(|&v| {
                    let x = v as $t;
                    if big {
                        x.to_be_bytes().to_vec()
                    } else {
                        x.to_le_bytes().to_vec()
                    }
                })
                .collect::<Vec<u8>>()
        };
    }
    let data = match code {
        2 => enc!(u8),
        256 => enc!(i8),
        4 => enc!(i16),
        512 => enc!(u16),
        8 => enc!(i32),
        768 => enc!(u32),
        1024 => enc!(i64),
        1280 => enc!(u64),
        16 => enc!(f32),
        64 => enc!(f64),
        _ => unreachable!(),
    };
    let bits = (data.len() / values.len() * 8) as i16;
    (bits, data)
}

const CODES: [i16; 10] = [2, 256, 4, 512, 8, 768, 1024, 1280, 16, 64];

#[test]
fn every_datatype_byte_order_and_scaling_reads_value_by_value() {
    let d = tmp();
    let labels = [0.0, 1.0, 2.0, 1.0, 0.0, 2.0, 2.0, 1.0];
    // stored values and the scaling that turns them into the probabilities below
    let stored = [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0];
    for code in CODES {
        for big in [false, true] {
            for (slope, inter, expect) in [
                (0.0f32, 0.0f32, stored.map(|v| v as f32)), // slope 0: no scaling
                (f32::NAN, 5.0, stored.map(|v| v as f32)),  // slope NaN: no scaling (intercept ignored)
                (0.01, 0.1, stored.map(|v| (v * 0.01f32 as f64 + 0.1f32 as f64) as f32)),
            ] {
                let (lbits, ldata) = encode(code, &labels, big);
                let mut l = Nii::new(&[2, 2, 2, 1], code, lbits, ldata); // singleton trailing dim
                l.big_endian = big;
                l.pixdim[0] = 0.0; // qfac 0 (read as 1)
                let (pbits, pdata) = encode(code, &stored, big);
                let mut p = Nii::new(&[2, 2, 2], code, pbits, pdata);
                p.big_endian = big;
                p.slope = slope;
                p.inter = inter;
                let (lp, pp) = (at(&d, "l.nii.gz"), at(&d, "p.nii"));
                l.write(&lp);
                p.write(&pp);
                let options = LoadOptions { max_values: 1 << 20, ..Default::default() };
                let open = OpenCase::open(&lp, &pp, options, Some(2)).unwrap();
                let loaded = open.read().unwrap_or_else(|e| panic!("code {code} big {big}: {e}"));
                let case = &loaded.case;
                assert_eq!(*case.prediction.values, expect, "code {code} big {big} slope {slope}");
                let want: Vec<u8> = labels.iter().map(|&v| u8::from(v == 2.0)).collect();
                assert_eq!(&case.labels.class[..], &want[..], "code {code} big {big}");
                assert_eq!(loaded.inputs.labels.affine[2][2], 3.0, "qfac 0 must read as 1");
            }
        }
    }
}

/// The malformed corpus: (name, bytes of the prediction file, words the error must contain).
fn corpus() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let good = Nii::f32(&[2, 2, 2], &[0.5; 8]);
    let bytes = good.bytes();
    let patch = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = bytes.clone();
        f(&mut b);
        b
    };
    let set16 = |b: &mut Vec<u8>, off: usize, v: i16| b[off..off + 2].copy_from_slice(&v.to_le_bytes());
    let set32 = |b: &mut Vec<u8>, off: usize, v: f32| b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    let gz = |b: &[u8]| {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    };
    let full_gz = gz(&bytes);
    let mut bad_crc = full_gz.clone();
    let n = bad_crc.len();
    bad_crc[n - 6] ^= 0x55;
    vec![
        ("empty", Vec::new(), "empty"),
        ("header only", bytes[..352].to_vec(), "truncated"),
        ("truncated raw", bytes[..bytes.len() - 5].to_vec(), "truncated"),
        ("truncated gz", full_gz[..full_gz.len() - 12].to_vec(), "truncated"),
        ("bad crc", bad_crc, "corrupt gzip"),
        ("wrong magic", patch(&|b| b[344..348].copy_from_slice(b"xyz\0")), "magic"),
        ("bitpix vs datatype", patch(&|b| set16(b, 72, 16)), "bitpix"),
        ("dim[0] is 0", patch(&|b| set16(b, 40, 0)), "dim[0]"),
        ("dim[0] is 8", patch(&|b| set16(b, 40, 8)), "dim[0]"),
        ("zero dimension", patch(&|b| set16(b, 44, 0)), "dim[2]"),
        ("negative dimension", patch(&|b| set16(b, 46, -4)), "dim[3]"),
        (
            "overflowing dimensions",
            patch(&|b| {
                set16(b, 40, 7);
                for i in 1..=7 {
                    set16(b, 40 + 2 * i, i16::MAX);
                }
            }),
            "--max-voxels",
        ),
        ("negative pixdim", patch(&|b| set32(b, 80, -1.0)), "pixdim[1]"),
        ("NaN pixdim", patch(&|b| set32(b, 84, f32::NAN)), "pixdim[2]"),
        ("NaN value", patch(&|b| b[352..356].copy_from_slice(&f32::NAN.to_le_bytes())), "NaN"),
        ("infinite value", patch(&|b| b[356..360].copy_from_slice(&f32::INFINITY.to_le_bytes())), "infinite"),
        ("minus infinity", patch(&|b| b[360..364].copy_from_slice(&f32::NEG_INFINITY.to_le_bytes())), "-inf"),
        ("vox_offset inside header", patch(&|b| set32(b, 108, 100.0)), "vox_offset"),
        ("complex datatype", patch(&|b| set16(b, 70, 32)), "complex64"),
    ]
}

#[test]
fn every_malformed_file_is_refused_with_one_clear_line_and_no_output() {
    let d = tmp();
    let l = at(&d, "labels.nii");
    Nii::u8(&[2, 2, 2], &[0, 1, 0, 1, 0, 1, 0, 1]).write(&l);
    for (name, bytes, words) in corpus() {
        let p = at(&d, "bad.nii");
        std::fs::write(&p, &bytes).unwrap();
        let g = at(&d, "g.nii");
        let err = fails_with_2(
            dicegrad().args(["analyze", "--labels"]).arg(&l).arg("--pred").arg(&p).arg("--grad-out").arg(&g),
        );
        assert!(err.contains("bad.nii") && err.contains(words), "{name}: {err}");
        eprint!("{name} => {err}");
        assert!(!g.exists(), "{name}: output written");
        // the same file as labels
        let err = fails_with_2(dicegrad().args(["analyze", "--labels"]).arg(&p).arg("--pred").arg(&l));
        assert!(err.contains("bad.nii"), "{name} as labels: {err}");
    }
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let d = tmp();
    let l = at(&d, "l.nii");
    Nii::u8(&[2, 2, 2], &[0; 8]).write(&l);
    let fifo = at(&d, "pipe.nii");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let err = fails_with_2(dicegrad().args(["analyze", "--labels"]).arg(&l).arg("--pred").arg(&fifo));
    assert!(err.contains("pipe.nii") && err.contains("not a regular file"), "{err}");
}

fn temp_leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".dicegrad-"))
        .collect()
}

#[test]
fn a_full_disk_gives_a_clear_error_and_leaves_no_partial_file() {
    let d = tmp();
    dicegrad().args(["synth", "--classes", "3", "--shape", "40,40,30", "--out"]).arg(d.path()).assert().success();
    let out = at(&d, "out");
    std::fs::create_dir(&out).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("dicegrad");
    // files may not grow past 100 KiB; SIGXFSZ ignored so that writes fail with EFBIG
    let res = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -f 100; trap '' XFSZ; exec '{}' analyze --activation softmax --labels '{}' --pred '{}' --grad-out '{}' --compression 0",
            bin.display(),
            at(&d, "labels.nii.gz").display(),
            at(&d, "logits.nii.gz").display(),
            out.join("g.nii.gz").display()
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("g.nii.gz") && stderr.contains("cannot write"), "{stderr}");
    assert!(!out.join("g.nii.gz").exists());
    assert!(temp_leftovers(&out).is_empty(), "{:?}", temp_leftovers(&out));
}

#[test]
fn an_output_killed_while_written_is_either_the_old_file_or_the_new_one() {
    let d = tmp();
    dicegrad().args(["synth", "--classes", "4", "--shape", "96,96,64", "--out"]).arg(d.path()).assert().success();
    let g = at(&d, "g.nii.gz");
    std::fs::write(&g, b"the previous gradient").unwrap();
    let bin = assert_cmd::cargo::cargo_bin("dicegrad");
    let mut child = std::process::Command::new(bin)
        .args(["analyze", "--force", "--activation", "softmax", "--compression", "9", "--labels"])
        .arg(at(&d, "labels.nii.gz"))
        .arg("--pred")
        .arg(at(&d, "logits.nii.gz"))
        .arg("--grad-out")
        .arg(&g)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // kill it once the temporary file is being written
    let started = std::time::Instant::now();
    while temp_leftovers(d.path()).is_empty() && started.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let _ = child.kill(); // it may have finished already; the checks below hold either way
    child.wait().unwrap();
    let now = std::fs::read(&g).unwrap();
    eprintln!("after the kill: {}", if now == b"the previous gradient" { "old file" } else { "new file" });
    assert!(temp_leftovers(d.path()).len() <= 1, "at most the killed run's temporary file");
    if now != b"the previous gradient" {
        // the rename happened: the new file must be complete
        let obj = nifti::ReaderOptions::new().read_file(&g).expect("a complete NIfTI file");
        assert_eq!(nifti::NiftiObject::header(&obj).dim[4], 4);
    }
}

#[test]
fn junk_after_a_complete_gzip_stream_is_called_corrupt_not_truncated() {
    let d = tmp();
    let (l, p) = binary_case(&d, [6, 5, 4], 3);
    let mut bytes = std::fs::read(&p).unwrap();
    bytes.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0]); // the start of a member that never comes
    std::fs::write(&p, bytes).unwrap();
    let err = fails_with_2(dicegrad().args(["analyze", "--labels"]).arg(&l).arg("--pred").arg(&p));
    assert!(err.contains("corrupt gzip data (after the voxel data:") && !err.contains("truncated"), "{err}");
}
