//! Command-line interface: one file per subcommand. clap types and flag names stop here: the
//! library sees typed options, and its messages name parameters, which [`flags::Flags`] writes as
//! this program's flags.

mod analyze;
mod batch;
mod flags;
mod loss_args;
mod synth;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use dicegrad::{Error, Result};

/// Exact per-voxel gradients of the Dice loss on NIfTI volumes: levels, dynamic range, histograms.
#[derive(Parser, Debug)]
#[command(name = "dicegrad", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Compute the Dice loss gradient of one case and report its structure.
    Analyze(analyze::AnalyzeArgs),
    /// Analyse every case of a data set (two folders); exit code 1 if some cases failed.
    Batch(batch::BatchArgs),
    /// Merge the output folders of the shards of one batch run.
    Merge(batch::MergeArgs),
    /// Write a seeded synthetic case (labels, probabilities, logits).
    Synth(synth::SynthArgs),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    dicegrad::simd::check_switch().map_err(Error::usage)?;
    match cli.command {
        Command::Analyze(a) => analyze::run(a),
        Command::Batch(b) => batch::run_batch(b),
        Command::Merge(m) => batch::run_merge(m),
        Command::Synth(s) => synth::run(s),
    }
}

/// An error as this program shows it: one line, parameters written as flags.
pub fn message(e: &Error) -> String {
    e.render(&flags::Flags)
}

/// Sets the number of worker threads (0 = one per core).
fn init_threads(threads: usize) -> Result<()> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| Error::usage(format!("cannot start {threads} threads: {e}")))
}

/// Parses `X,Y,Z`.
fn parse_shape(s: &str) -> std::result::Result<[usize; 3], String> {
    let parts: Vec<&str> = s.split([',', 'x']).collect();
    if parts.len() != 3 {
        return Err(format!("expected X,Y,Z (three sizes), got '{s}'"));
    }
    let mut shape = [0; 3];
    for (d, p) in shape.iter_mut().zip(parts) {
        *d = p.trim().parse().map_err(|_| format!("'{p}' is not a whole number"))?;
        if *d == 0 || *d > 32767 {
            return Err(format!("sizes must be 1 to 32767, got {d}"));
        }
    }
    Ok(shape)
}
