//! The `dicegrad` command: parse the command line, run, print the error once, exit.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        // a reader that stopped reading (`| head`): end as a program killed by SIGPIPE would
        Err(e) if cli::is_closed_pipe(&e) => ExitCode::from(141),
        Err(e) => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "error: {}", cli::message(&e));
            ExitCode::from(e.exit_code())
        }
    }
}
