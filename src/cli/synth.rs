//! `dicegrad synth`: write a seeded synthetic case as NIfTI files.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use dicegrad::nifti::template::new_template;
use dicegrad::nifti::{write_f32, write_u8, WriteOptions};
use dicegrad::output::check_output;
use dicegrad::synth::{generate, SynthOptions};
use dicegrad::{Error, Result};

use super::note;

#[derive(Args, Debug)]
pub struct SynthArgs {
    /// Folder to write labels.nii.gz, probs.nii.gz and logits.nii.gz into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
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
    /// Standard deviation of the logit noise.
    #[arg(long, default_value_t = 1.0)]
    noise: f32,
    /// Voxel size X,Y,Z in mm written to the headers.
    #[arg(long, default_value = "0.8,0.8,2.0", value_parser = parse_voxel_size)]
    voxel_size: [f32; 3],
    /// gzip level (0–9) of the files.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=9))]
    compression: u32,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
    /// Worker threads (0 = one per core).
    #[arg(long, default_value_t = 0, value_name = "N")]
    threads: usize,
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
    let names = ["labels.nii.gz", "probs.nii.gz", "logits.nii.gz"];
    let paths: Vec<PathBuf> = names.iter().map(|n| a.out.join(n)).collect();
    std::fs::create_dir_all(&a.out).map_err(|e| Error::Write { path: a.out.clone(), source: e })?;
    for p in &paths {
        check_output(p, &[], a.force)?;
    }
    let opts = SynthOptions {
        shape: a.shape,
        classes: a.classes as usize,
        seed: a.seed,
        shift: a.shift as i64,
        noise: a.noise,
        ..SynthOptions::default()
    };
    let case = generate(&opts);
    std::fs::create_dir_all(&a.out).map_err(|e| Error::Write { path: a.out.clone(), source: e })?;
    let [nx, ny, nz] = a.shape;
    let origin = [
        -(nx as f32) * a.voxel_size[0] / 2.0,
        -(ny as f32) * a.voxel_size[1] / 2.0,
        -(nz as f32) * a.voxel_size[2] / 2.0,
    ];
    let desc = format!("dicegrad synth seed={} classes={}", a.seed, a.classes);
    let template = new_template(a.voxel_size, origin, &desc);
    let w = WriteOptions { compression: a.compression, force: a.force };
    let spatial = vec![nx, ny, nz];
    let pred_dims = if case.channels == 1 { spatial.clone() } else { vec![nx, ny, nz, case.channels] };
    write_u8(&paths[0], &template, &spatial, w, &case.labels)?;
    for (path, values) in [(&paths[1], &case.probs), (&paths[2], &case.logits)] {
        write_f32(path, &template, &pred_dims, w, |start, out| out.copy_from_slice(&values[start..start + out.len()]))?;
    }
    for p in &paths {
        note!("wrote {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}
