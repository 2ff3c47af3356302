//! Command-line interface: one file per subcommand. clap types and flag names stop here: the
//! library sees typed options, and its messages name parameters, which [`flags::Flags`] writes as
//! this program's flags.

mod analyze;
mod batch;
mod case_args;
mod flags;
mod interrupt;
mod loss_args;
mod shell;
mod synth;
mod terminal;
mod track;
mod training_args;

use std::io::Write;
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
    /// Write a seeded synthetic case (labels, probabilities, logits), or with --steps a
    /// training-like sequence of predictions of one case.
    Synth(synth::SynthArgs),
    /// Analyse the predictions of successive checkpoints: the gradient's figures over training.
    Track(track::TrackArgs),
    /// Print the shell completion script for bash, zsh, fish, powershell or elvish (see the README
    /// for where to put it).
    Completions(shell::CompletionsArgs),
    /// Print the manual page (roff) of the program and its subcommands: `dicegrad man > dicegrad.1`.
    Man(shell::ManArgs),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    dicegrad::simd::check_switch().map_err(Error::usage)?;
    interrupt::install(match &cli.command {
        Command::Batch(b) => interrupt::Keeps::Batch(b.out().to_path_buf()),
        Command::Track(t) => interrupt::Keeps::Track(t.out().to_path_buf()),
        _ => interrupt::Keeps::Outputs,
    })?;
    match cli.command {
        Command::Analyze(a) => analyze::run(a),
        Command::Batch(b) => batch::run_batch(b),
        Command::Merge(m) => batch::run_merge(m),
        Command::Synth(s) => synth::run(s),
        Command::Track(t) => track::run(t),
        Command::Completions(c) => shell::completions(c),
        Command::Man(m) => shell::man(m),
    }
}

/// An error as this program shows it: one line, parameters written as flags.
pub fn message(e: &Error) -> String {
    e.render(&flags::Flags)
}

/// A line on stderr. Diagnostics are best effort: a closed or full stderr stops nothing.
macro_rules! note {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}
pub(crate) use note;

/// Writes the program's result to stdout. A full disk or another failure is an error; a reader
/// that went away (a closed pipe) is reported as such, and the program then ends quietly.
pub fn print_out(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes).and_then(|_| out.flush()).map_err(|e| Error::Write { path: "<stdout>".into(), source: e })
}

/// Whether `e` says that stdout's reader went away (`dicegrad … | head`).
pub fn is_closed_pipe(e: &Error) -> bool {
    matches!(e, Error::Write { path, source } if path.as_os_str() == "<stdout>"
        && source.kind() == std::io::ErrorKind::BrokenPipe)
}

/// The most workers (threads in a case, or cases at once) a run starts per core: more only slow
/// the run down and cost memory.
use dicegrad::parallel::{cores, PER_CORE};

/// `asked` workers (0 = one per core), at most [`PER_CORE`] per core; `flag` names them in the
/// note printed when the count is lowered.
fn workers(asked: usize, flag: &str) -> usize {
    let cap = dicegrad::parallel::max_workers();
    match asked {
        0 => cores(),
        n if n > cap => {
            note!("note: {flag} {n}: using {cap} ({PER_CORE} per core on this machine); results do not depend on it");
            cap
        }
        n => n,
    }
}

/// Sets the number of worker threads (0 = one per core; capped, see [`workers`]).
fn init_threads(threads: usize) -> Result<()> {
    let threads = workers(threads, "--threads");
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| Error::usage(format!("cannot start {threads} threads: {e}")))
}

/// This program's command line, ready to paste into a shell: `cd` to the folder it ran in, then
/// the arguments as given, each quoted.
fn command_line() -> String {
    let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    let cwd = std::env::current_dir().ok().map(|d| d.display().to_string());
    dicegrad::report::html::command_line(cwd.as_deref(), &args)
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
