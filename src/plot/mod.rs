//! Pictures drawn from the report (never recomputing any math): per-channel histograms of the
//! gradient split by ground truth. PNG and SVG, with a bundled font so that no system font is
//! needed.

mod histogram;

use std::path::Path;
use std::sync::Once;

use plotters::style::{register_font, FontStyle};

use crate::error::{Error, Result};
use crate::output::{write_bytes, write_via_temp_path};
use crate::report::Report;

pub use histogram::draw_histograms;

/// DejaVu Sans (see assets/DejaVuSans-LICENSE.txt), registered as the "sans-serif" family.
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Registers the bundled font once.
fn ensure_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if register_font("sans-serif", FontStyle::Normal, FONT).is_err() {
            unreachable!("the bundled font is a valid TrueType file");
        }
    });
}

fn draw_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Write { path: path.to_path_buf(), source: std::io::Error::other(e.to_string()) }
}

/// Writes `histogram.png`-style PNG of the report to `path` (atomically).
pub fn write_histogram_png(report: &Report, path: &Path, force: bool) -> Result<()> {
    ensure_font();
    let size = histogram::canvas_size(report);
    write_via_temp_path(path, force, ".png", |tmp| {
        use plotters::prelude::*;
        let root = BitMapBackend::new(tmp, size).into_drawing_area();
        draw_histograms(&root, report).map_err(|e| draw_error(path, e))?;
        root.present().map_err(|e| draw_error(path, e))
    })
}

/// Writes the same picture as SVG to `path` (atomically).
pub fn write_histogram_svg(report: &Report, path: &Path, force: bool) -> Result<()> {
    ensure_font();
    let size = histogram::canvas_size(report);
    let mut svg = String::new();
    {
        use plotters::prelude::*;
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw_histograms(&root, report).map_err(|e| draw_error(path, e))?;
        root.present().map_err(|e| draw_error(path, e))?;
    }
    write_bytes(path, force, svg.as_bytes())
}
