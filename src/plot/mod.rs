//! Pictures drawn from the report (never recomputing any math): per-channel histograms of the
//! gradient split by ground truth. PNG and SVG, with a bundled font so that no system font is
//! needed.

pub mod dataset;
mod histogram;
mod parts;
mod training;

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::drawing::DrawingAreaErrorKind;
use plotters::prelude::{BitMapBackend, DrawingArea, DrawingBackend, IntoDrawingArea, SVGBackend};
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

/// Draws a chart's legend in the style of every picture: a light box with a thin border.
pub(crate) fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut plotters::chart::ChartContext<'a, DB, CT>,
    position: plotters::chart::SeriesLabelPosition,
    font_size: u32,
) -> Drawn<DB> {
    use plotters::style::{Color, BLACK, WHITE};
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", font_size))
        .draw()
}

/// A picture that can be drawn on any plotters backend.
pub trait Drawing {
    /// Canvas size in pixels.
    fn size(&self) -> (u32, u32);
    /// Draws onto `root`.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB>;
}

/// What drawing on a backend returns.
pub type Drawn<DB> = std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// `picture` as an SVG document (`path` names it in an error).
pub fn svg_string(picture: &impl Drawing, path: &Path) -> Result<String> {
    ensure_font();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, picture.size()).into_drawing_area();
        picture.draw(&root).map_err(|e| draw_error(path, e))?;
        root.present().map_err(|e| draw_error(path, e))?;
    }
    Ok(svg)
}

/// Writes `picture` to `path` (atomically), as PNG or SVG after the path's extension.
pub fn write(picture: &impl Drawing, path: &Path, force: bool) -> Result<()> {
    ensure_font();
    let size = picture.size();
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("svg")) {
        write_bytes(path, force, svg_string(picture, path)?.as_bytes())
    } else {
        write_via_temp_path(path, force, ".png", |tmp| {
            let root = BitMapBackend::new(tmp, size).into_drawing_area();
            picture.draw(&root).map_err(|e| draw_error(path, e))?;
            root.present().map_err(|e| draw_error(path, e))
        })
    }
}

/// The pictures drawn from a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Picture {
    /// Per channel, the main loss's gradient histogram (histogram.png / .svg).
    Histogram,
    /// Per channel, the main and compared losses side by side (compare.png / .svg).
    Comparison,
    /// The loss and gradient over sampled mini-batches of patches (training.png / .svg).
    Training,
}

impl Picture {
    /// The file name without extension (`histogram` for histogram.png and histogram.svg).
    pub fn stem(self) -> &'static str {
        match self {
            Picture::Histogram => "histogram",
            Picture::Comparison => "compare",
            Picture::Training => "training",
        }
    }
}

/// The pictures a report has, in the order a reader meets them: the histograms always, the
/// comparison when losses were compared, the training figures when patches were analysed.
pub fn pictures_of(report: &Report) -> Vec<Picture> {
    let mut p = vec![Picture::Histogram];
    if report.comparison.as_ref().is_some_and(|c| !c.losses.is_empty()) {
        p.push(Picture::Comparison);
    }
    if report.training.is_some() {
        p.push(Picture::Training);
    }
    p
}

/// A report's picture.
pub struct ReportPicture<'a>(pub &'a Report, pub Picture);

impl Drawing for ReportPicture<'_> {
    fn size(&self) -> (u32, u32) {
        match self.1 {
            Picture::Histogram => histogram::canvas_size(self.0),
            Picture::Comparison => histogram::comparison_size(self.0),
            Picture::Training => training::canvas_size(self.0),
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        match self.1 {
            Picture::Histogram => histogram::draw_histograms(root, self.0),
            Picture::Comparison => histogram::draw_comparison(root, self.0),
            Picture::Training => training::draw(root, self.0),
        }
    }
}
