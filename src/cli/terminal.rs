//! What the program shows on a terminal and nowhere else: the report fitted to the terminal's
//! width with colour (none when stdout is not a terminal, or `NO_COLOR` is set), and progress
//! bars on stderr (none when stderr is not a terminal, or with `--quiet`).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use dicegrad::report::layout::Layout;

/// The layout of the report on stdout: the terminal's width unless `wide` (a file or a pipe gets
/// every column, lines unbroken), colour as anstream decides it (`NO_COLOR`, `CLICOLOR`,
/// `CLICOLOR_FORCE`, and whether stdout is a terminal).
pub fn stdout_layout(wide: bool) -> Layout {
    let out = std::io::stdout();
    let width = if wide || !out.is_terminal() {
        None
    } else {
        console::Term::stdout().size_checked().map(|(_, cols)| usize::from(cols)).filter(|&c| c >= 40)
    };
    let colour = anstream::AutoStream::choice(&out) != anstream::ColorChoice::Never;
    Layout { width, colour, hint: Some("--wide shows every column".to_string()) }
}

/// Whether progress may be drawn: stderr is a terminal and `--quiet` was not given.
pub fn shows_progress(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// A progress bar over `total` items (`unit`: "cases", "steps") on stderr, with rate and ETA;
/// hidden unless [`shows_progress`].
pub fn counter(total: u64, unit: &str, quiet: bool) -> ProgressBar {
    if !shows_progress(quiet) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let template = format!("{{bar:30}} {{pos}}/{{len}} {unit}  {{per_sec}}  ETA {{eta}}  {{msg}}");
    bar.set_style(ProgressStyle::with_template(&template).expect("a valid template").progress_chars("█▉▊▋▌▍▎▏ "));
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

/// A spinner on stderr naming the stage of one analysis, drawn only once the analysis has taken
/// a second (a quick run shows nothing), and only if [`shows_progress`].
pub struct Stages {
    bar: ProgressBar,
}

impl Stages {
    pub fn new(quiet: bool) -> Stages {
        let bar = ProgressBar::hidden();
        if shows_progress(quiet) {
            bar.set_style(ProgressStyle::with_template("{spinner} {msg}  {elapsed}").expect("a valid template"));
            let later = bar.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(1));
                if !later.is_finished() {
                    later.set_draw_target(ProgressDrawTarget::stderr());
                    later.enable_steady_tick(Duration::from_millis(120));
                }
            });
        }
        Stages { bar }
    }

    /// Names the stage now running.
    pub fn stage(&self, what: &'static str) {
        self.bar.set_message(what);
    }

    /// Removes the spinner (before the report is printed).
    pub fn done(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Stages {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
