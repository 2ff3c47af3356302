//! Ctrl-C, SIGTERM and SIGHUP: the unfinished output files are removed, one line says what the
//! interruption left behind, and the program exits with 128 + the signal's number (130 / 143 /
//! 129).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use dicegrad::output::{interrupt, Interrupted};
use dicegrad::{Error, Result};

/// What the running command keeps when it is interrupted.
pub enum Keeps {
    /// Its outputs are written at the end: an interruption leaves none, or says which it left.
    Outputs,
    /// A batch: the finished cases recorded in this folder, to be continued with `--resume`.
    Batch(PathBuf),
    /// A track: the finished steps recorded in this folder, to be continued with `--resume`.
    Track(PathBuf),
}

/// The line printed for an interruption.
fn line(keeps: &Keeps, found: &Interrupted) -> String {
    let removed = match found.removed {
        0 => String::new(),
        1 => " (1 unfinished file removed)".to_string(),
        n => format!(" ({n} unfinished files removed)"),
    };
    match keeps {
        Keeps::Batch(out) => format!(
            "interrupted{removed}; the cases finished so far are kept in {}; run the same command with --resume to \
             continue",
            out.display()
        ),
        Keeps::Track(out) => format!(
            "interrupted{removed}; the steps this track finished are kept in {}: run the same command with --resume \
             to continue it (a track there that this one had not yet begun to replace is left as it was)",
            out.display()
        ),
        Keeps::Outputs if found.written == 0 => format!("interrupted: nothing was written{removed}"),
        Keeps::Outputs => {
            let names: Vec<String> = found.written_names.iter().map(|p| p.display().to_string()).collect();
            format!("interrupted{removed}; written before the interruption: {}", names.join(", "))
        }
    }
}

/// Handles SIGINT, SIGTERM and SIGHUP for the rest of the program's life.
pub fn install(keeps: Keeps) -> Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(|e| Error::usage(format!("cannot handle interruptions (signals: {e})")))?;
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let found = interrupt();
            super::terminal::clear_progress();
            let mut err = std::io::stderr().lock();
            // clears a progress line
            let clear = if std::io::stderr().is_terminal() { "\r\x1b[K" } else { "" };
            let _ = writeln!(err, "{clear}{}", line(&keeps, &found));
            std::process::exit(128 + signal);
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_what_was_left() {
        let none = Interrupted { removed: 1, written: 0, written_names: vec![] };
        assert_eq!(line(&Keeps::Outputs, &none), "interrupted: nothing was written (1 unfinished file removed)");
        let some = Interrupted { removed: 0, written: 1, written_names: vec!["g.nii.gz".into()] };
        assert_eq!(line(&Keeps::Outputs, &some), "interrupted; written before the interruption: g.nii.gz");
        let batch = line(&Keeps::Batch("o".into()), &Interrupted { removed: 2, written: 9, written_names: vec![] });
        assert!(batch.starts_with("interrupted (2 unfinished files removed); the cases finished so far are kept in o"));
    }
}
