//! Pictures drawn from the report (never recomputing any math): per-channel histograms of the
//! gradient split by ground truth. PNG and SVG, with a bundled font so that no system font is
//! needed.

pub mod batch;
mod histogram;

use std::path::Path;
use std::sync::Once;

use plotters::style::{register_font, FontStyle};

use crate::error::{Error, Result};
use crate::output::{write_bytes, write_via_temp_path};
use crate::report::Report;

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

/// The pictures drawn from a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Picture {
    /// Per channel, the main loss's gradient histogram (histogram.png / .svg).
    Histogram,
    /// Per channel, the main and compared losses side by side (compare.png / .svg).
    Comparison,
}

impl Picture {
    fn size(self, report: &Report) -> (u32, u32) {
        match self {
            Picture::Histogram => histogram::canvas_size(report),
            Picture::Comparison => histogram::comparison_size(report),
        }
    }

    fn draw<DB: plotters::prelude::DrawingBackend>(
        self,
        root: &plotters::prelude::DrawingArea<DB, plotters::coord::Shift>,
        report: &Report,
    ) -> std::result::Result<(), plotters::drawing::DrawingAreaErrorKind<DB::ErrorType>> {
        match self {
            Picture::Histogram => histogram::draw_histograms(root, report),
            Picture::Comparison => histogram::draw_comparison(root, report),
        }
    }
}

/// Writes the picture as PNG to `path` (atomically).
pub fn write_png(report: &Report, picture: Picture, path: &Path, force: bool) -> Result<()> {
    ensure_font();
    let size = picture.size(report);
    write_via_temp_path(path, force, ".png", |tmp| {
        use plotters::prelude::*;
        let root = BitMapBackend::new(tmp, size).into_drawing_area();
        picture.draw(&root, report).map_err(|e| draw_error(path, e))?;
        root.present().map_err(|e| draw_error(path, e))
    })
}

/// Writes the picture as SVG to `path` (atomically).
pub fn write_svg(report: &Report, picture: Picture, path: &Path, force: bool) -> Result<()> {
    ensure_font();
    let size = picture.size(report);
    let mut svg = String::new();
    {
        use plotters::prelude::*;
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        picture.draw(&root, report).map_err(|e| draw_error(path, e))?;
        root.present().map_err(|e| draw_error(path, e))?;
    }
    write_bytes(path, force, svg.as_bytes())
}
