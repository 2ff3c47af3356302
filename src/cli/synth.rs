//! `dicegrad synth`: write a seeded synthetic case as NIfTI files, or with `--steps` a
//! training-like sequence of predictions of one case.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use dicegrad::nifti::template::new_template;
use dicegrad::nifti::{write_f32, write_u8, HeaderTemplate, WriteOptions};
use dicegrad::output::{check_output, create_folder};
use dicegrad::synth::{generate, Sequence, SequenceOptions, SynthOptions};
use dicegrad::{Error, Result};

use super::note;

#[derive(Args, Debug)]
pub struct SynthArgs {
    /// Folder to write labels.nii.gz, probs.nii.gz and logits.nii.gz into (created if missing); with
    /// --steps, labels.nii.gz, probs/epoch_E.nii.gz and logits/epoch_E.nii.gz.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Write a training-like sequence of N predictions of one case, better from step to step: the
    /// shift, the blur and the noise shrink, the sharpness grows, and with three or more classes
    /// the last is a small lesion, missed in the first half and learnt in the second; --shift and
    /// --noise are those of the first step.
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = clap::value_parser!(u16).range(1..=MAX_STEPS))]
    steps: Option<u16>,
    /// With --steps: epochs from one step to the next; step i = 1..N is written as epoch i·K.
    #[arg(long, value_name = "K", default_value_t = 10, requires = "steps", allow_negative_numbers = true,
          value_parser = clap::value_parser!(u32).range(1..=MAX_EPOCHS_PER_STEP))]
    epochs_per_step: u32,
    /// Random seed; the same seed and options give the same files.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Grid size X,Y,Z.
    #[arg(long, default_value = "64,64,48", value_parser = super::parse_shape)]
    shape: [usize; 3],
    /// Number of classes C including background (2 = binary: one-channel 3D prediction; more:
    /// (X,Y,Z,C) prediction).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(2..=255))]
    classes: u16,
    /// Largest shift of the prediction against the labels, voxels per axis.
    #[arg(long, default_value_t = 2)]
    shift: u8,
    /// Standard deviation of the logit noise (with --trained, the amplitude of a smooth texture), 0
    /// to 1000.
    #[arg(long, default_value_t = 1.0, value_parser = parse_noise, allow_negative_numbers = true)]
    noise: f32,
    /// Logits that look like a trained network's: on plateaus far from the boundaries (the
    /// background high, other classes at −10 to −20), soft within a few voxels of them, with a
    /// smooth texture instead of voxel-wise noise (the model: docs/outputs.md, "synth").
    #[arg(long, conflicts_with_all = ["steps", "no_logits", "epochs_per_step"])]
    trained: bool,
    /// Voxel size X,Y,Z in mm written to the headers.
    #[arg(long, default_value = "0.8,0.8,2.0", value_parser = parse_voxel_size)]
    voxel_size: [f32; 3],
    /// gzip level (0–9) of the files.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=9))]
    compression: u32,
    /// With --steps: write the probabilities only (no logits/ folder).
    #[arg(long, requires = "steps")]
    no_logits: bool,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
    /// Worker threads (0 = one per core).
    #[arg(long, default_value_t = 0, value_name = "N")]
    threads: usize,
}

/// Most steps of a sequence, and most epochs per step.
const MAX_STEPS: i64 = 1000;
const MAX_EPOCHS_PER_STEP: i64 = 10_000;

fn parse_noise(s: &str) -> std::result::Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(v) if (0.0..=1000.0).contains(&v) => Ok(v),
        Ok(_) => Err(format!("{} is not a noise level; give a number from 0 to 1000", s.trim())),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_voxel_size(s: &str) -> std::result::Result<[f32; 3], String> {
    let v: Vec<f32> = s
        .split(',')
        .map(|p| p.trim().parse::<f32>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| e.to_string())?;
    match v.as_slice() {
        [x, y, z] if v.iter().all(|d| d.is_finite() && *d > 0.0) => Ok([*x, *y, *z]),
        _ => Err(format!("expected three positive sizes X,Y,Z, got '{s}'")),
    }
}

pub fn run(a: SynthArgs) -> Result<ExitCode> {
    super::init_threads(a.threads)?;
    match a.steps {
        Some(steps) => write_sequence(&a, steps as usize),
        None => write_case(&a),
    }
}

fn options(a: &SynthArgs) -> SynthOptions {
    SynthOptions {
        shape: a.shape,
        classes: a.classes as usize,
        seed: a.seed,
        shift: a.shift as i64,
        noise: a.noise,
        trained: a.trained,
        ..SynthOptions::default()
    }
}

/// A header for the grid of `a`, centred on the origin.
fn template(a: &SynthArgs, description: &str) -> HeaderTemplate {
    let [nx, ny, nz] = a.shape;
    let origin = [
        -(nx as f32) * a.voxel_size[0] / 2.0,
        -(ny as f32) * a.voxel_size[1] / 2.0,
        -(nz as f32) * a.voxel_size[2] / 2.0,
    ];
    new_template(a.voxel_size, origin, description)
}

/// The prediction's dimensions: (X,Y,Z) for one channel, (X,Y,Z,C) otherwise.
fn prediction_dims(a: &SynthArgs, channels: usize) -> Vec<usize> {
    let mut dims = a.shape.to_vec();
    if channels > 1 {
        dims.push(channels);
    }
    dims
}

fn write_values(path: &Path, template: &HeaderTemplate, dims: &[usize], w: WriteOptions, values: &[f32]) -> Result<()> {
    write_f32(path, template, dims, w, |start, out| out.copy_from_slice(&values[start..start + out.len()]))
}

fn write_case(a: &SynthArgs) -> Result<ExitCode> {
    let names = ["labels.nii.gz", "probs.nii.gz", "logits.nii.gz"];
    let paths: Vec<PathBuf> = names.iter().map(|n| a.out.join(n)).collect();
    std::fs::create_dir_all(&a.out).map_err(|e| Error::Write { path: a.out.clone(), source: e })?;
    for p in &paths {
        check_output(p, &[], a.force)?;
    }
    let case = generate(&options(a));
    let template = template(a, &format!("dicegrad synth seed={} classes={}", a.seed, a.classes));
    let w = WriteOptions { compression: a.compression, force: a.force };
    let pred_dims = prediction_dims(a, case.channels);
    write_u8(&paths[0], &template, &a.shape, w, &case.labels)?;
    write_values(&paths[1], &template, &pred_dims, w, &case.probs)?;
    write_values(&paths[2], &template, &pred_dims, w, &case.logits)?;
    for p in &paths {
        note!("wrote {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The folders of a sequence's predictions in `DIR`, each holding one file per epoch.
const PROBS: &str = "probs";
const LOGITS: &str = "logits";

/// The file name of epoch `epoch`, zero-padded to `width` digits so that names sort as epochs.
fn epoch_name(epoch: u64, width: usize) -> String {
    format!("epoch_{epoch:0width$}.nii.gz")
}

/// Whether `name` is the name of an epoch's file (`epoch_`, digits, `.nii.gz`).
fn is_epoch_name(name: &str) -> bool {
    name.strip_prefix("epoch_")
        .and_then(|rest| rest.strip_suffix(".nii.gz"))
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// Epoch files in `dir` that are not among `names`: an earlier sequence's.
fn other_epoch_files(dir: &Path, names: &[String]) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::Open { path: dir.to_path_buf(), source: e })?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::Open { path: dir.to_path_buf(), source: e })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_epoch_name(&name) && !names.contains(&name) {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

fn write_sequence(a: &SynthArgs, steps: usize) -> Result<ExitCode> {
    let k = u64::from(a.epochs_per_step);
    let width = (steps as u64 * k).to_string().len().max(3);
    let names: Vec<String> = (1..=steps as u64).map(|i| epoch_name(i * k, width)).collect();
    let folders: &[&str] = if a.no_logits { &[PROBS] } else { &[PROBS, LOGITS] };
    let labels = a.out.join("labels.nii.gz");
    // everything checked before anything is created, so that a refusal leaves nothing behind
    if a.out.is_dir() {
        check_output(&labels, &[], a.force)?;
    }
    let mut earlier = Vec::new();
    for folder in [PROBS, LOGITS] {
        let dir = a.out.join(folder);
        if dir.is_dir() {
            let ours: &[String] = if folders.contains(&folder) { &names } else { &[] };
            for name in ours {
                check_output(&dir.join(name), &[], a.force)?;
            }
            earlier.extend(other_epoch_files(&dir, ours)?);
        }
    }
    if let (false, Some(first)) = (a.force, earlier.first()) {
        return Err(Error::usage(format!(
            "{} is an epoch of an earlier sequence that this one would not replace ({} such files); give --force \
             to replace that sequence, or choose another --out",
            first.display(),
            earlier.len()
        )));
    }
    create_folder(&a.out)?;
    for folder in folders {
        create_folder(&a.out.join(folder))?;
    }

    let sequence = Sequence::new(&SequenceOptions { case: options(a), steps });
    let w = WriteOptions { compression: a.compression, force: a.force };
    let describe = |what: &str| format!("dicegrad synth seed={} classes={} {what}", a.seed, a.classes);
    write_u8(&labels, &template(a, &describe(&format!("steps={steps}"))), &a.shape, w, sequence.labels())?;
    note!("wrote {}", labels.display());
    for (i, name) in names.iter().enumerate() {
        let step = sequence.step(i);
        let dims = prediction_dims(a, step.channels);
        let template = template(a, &describe(&format!("epoch={}", (i as u64 + 1) * k)));
        for (folder, values) in folders.iter().zip([&step.probs, &step.logits]) {
            let path = a.out.join(folder).join(name);
            write_values(&path, &template, &dims, w, values)?;
            note!("wrote {}", path.display());
        }
    }
    let replaced = !earlier.is_empty();
    for path in earlier {
        std::fs::remove_file(&path).map_err(|e| Error::Write { path: path.clone(), source: e })?;
        note!("removed {} (an epoch of an earlier sequence, not written by this one)", path.display());
    }
    if replaced && a.no_logits {
        // the earlier sequence's logits folder, if nothing else is in it
        let _ = std::fs::remove_dir(a.out.join(LOGITS));
    }
    Ok(ExitCode::SUCCESS)
}
