//! What the program shows on a terminal and nowhere else: the report fitted to the terminal's
//! width with colour (none when stdout is not a terminal, or `NO_COLOR` is set), and progress
//! bars on stderr (none when stderr is not a terminal, or with `--quiet`).

use std::io::IsTerminal;
use std::sync::Mutex;
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
        console::Term::stdout().size_checked().map(|(_, cols)| usize::from(cols)).filter(|&c| c > 0)
    };
    let colour = anstream::AutoStream::choice(&out) != anstream::ColorChoice::Never;
    Layout { width, colour, hint: Some("--wide shows every column".to_string()) }
}

/// Whether progress may be drawn: stderr is a terminal and `--quiet` was not given.
pub fn shows_progress(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// The progress bar or spinner on the terminal, if one is drawn: an interruption clears it before
/// it says what it left ([`clear_progress`]).
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Clears the progress drawn on the terminal, if any, and stops it from being drawn again.
pub fn clear_progress() {
    if let Some(bar) = SHOWN.lock().unwrap_or_else(|e| e.into_inner()).take() {
        bar.finish_and_clear();
    }
}

/// Draws `bar` on stderr from now on.
fn show(bar: &ProgressBar) {
    bar.set_draw_target(ProgressDrawTarget::stderr());
    *SHOWN.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
}

/// A progress bar over items (`unit`: "cases", "steps") on stderr, with rate and ETA, drawn from
/// the first [`Counter::update`] that knows the total; nothing unless [`shows_progress`].
pub struct Counter {
    bar: ProgressBar,
    show: bool,
}

impl Counter {
    pub fn new(unit: &str, quiet: bool) -> Counter {
        let bar = ProgressBar::hidden();
        // the bar leaves room on its line: a ^C echoed after it does not start a line of its own
        let template = format!("{{bar:24}} {{pos}}/{{len}} {unit}  {{per_sec}}  ETA {{eta}}  {{msg}}");
        bar.set_style(ProgressStyle::with_template(&template).expect("a valid template").progress_chars("█▉▊▋▌▍▎▏ "));
        Counter { bar, show: shows_progress(quiet) }
    }

    /// `done` of `total` items, with `message` after the ETA.
    pub fn update(&self, done: usize, total: usize, message: String) {
        if !self.show || total == 0 {
            return;
        }
        if self.bar.length() != Some(total as u64) {
            self.bar.set_length(total as u64);
        }
        self.bar.set_position(done as u64);
        self.bar.set_message(message);
        if self.bar.is_hidden() {
            show(&self.bar);
            self.bar.enable_steady_tick(Duration::from_millis(250));
        }
    }

    /// Removes the bar (before the results are printed).
    pub fn done(&self) {
        self.bar.finish_and_clear();
        clear_progress();
    }
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
                    show(&later);
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
        clear_progress();
    }
}

impl Drop for Stages {
    fn drop(&mut self) {
        self.done();
    }
}
