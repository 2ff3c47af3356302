//! The `dicegrad` command: parse the command line, run, print the error once, exit.

use std::io::Write;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        // help and version go to stdout like any result: a closed pipe ends quietly, a full disk
        // is an error
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            return match cli::print_out(e.render().to_string().as_bytes()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if cli::is_closed_pipe(&e) => ExitCode::from(141),
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "error: {}", cli::message(&e));
                    ExitCode::from(e.exit_code())
                }
            };
        }
        Err(e) => e.exit(),
    };
    match cli::run(args) {
        Ok(code) => code,
        // a reader that stopped reading (`| head`): end as a program killed by SIGPIPE would
        Err(e) if cli::is_closed_pipe(&e) => ExitCode::from(141),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {}", cli::message(&e));
            ExitCode::from(e.exit_code())
        }
    }
}
