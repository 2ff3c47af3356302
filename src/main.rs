//! The `dicegrad` command: parse the command line, run, print the error once, exit.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", cli::message(&e));
            ExitCode::from(e.exit_code())
        }
    }
}
