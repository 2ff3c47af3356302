//! Pictures drawn from the report (never recomputing any math): per-channel histograms of the
//! gradient split by ground truth. PNG and SVG, with a bundled font so that no system font is
//! needed.

pub mod colour;
pub mod dataset;
mod density;
mod histogram;
mod parts;
pub mod series;
pub mod slices;
mod training;

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::drawing::DrawingAreaErrorKind;
use plotters::prelude::{BitMapBackend, DrawingArea, DrawingBackend, IntoDrawingArea, SVGBackend};
use plotters::style::{register_font, FontStyle};

use crate::error::{Error, Result};
use crate::output::write_bytes;
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
    // plotters names its embedded bitmaps' type `png`, which browsers do not decode: the MIME
    // type is image/png
    Ok(svg.replace("href=\"data:png;base64,", "href=\"data:image/png;base64,"))
}

/// Writes `picture` to `path` (atomically), as PNG or SVG after the path's extension.
pub fn write(picture: &impl Drawing, path: &Path, force: bool) -> Result<()> {
    ensure_font();
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("svg")) {
        write_bytes(path, force, svg_string(picture, path)?.as_bytes())
    } else {
        write_bytes(path, force, &png_bytes(picture, path)?)
    }
}

/// `picture` as a PNG file's bytes (`path` names it in an error): RGB, compressed fast (the
/// pictures are mostly flat colour, which compresses well at any level).
pub fn png_bytes(picture: &impl Drawing, path: &Path) -> Result<Vec<u8>> {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    use image::ImageEncoder;
    ensure_font();
    let (w, h) = picture.size();
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        picture.draw(&root).map_err(|e| draw_error(path, e))?;
        root.present().map_err(|e| draw_error(path, e))?;
    }
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Sub)
        .write_image(&rgb, w, h, image::ColorType::Rgb8)
        .map_err(|e| draw_error(path, e))?;
    Ok(out)
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
    /// Per channel, three planes of the ground truth, the probability and the gradient
    /// (slices.png / .svg).
    Slices,
    /// Per channel, the gradient against the predicted probability (density.png / .svg).
    Density,
}

impl Picture {
    /// The file name without extension (`histogram` for histogram.png and histogram.svg).
    pub fn stem(self) -> &'static str {
        match self {
            Picture::Histogram => "histogram",
            Picture::Comparison => "compare",
            Picture::Training => "training",
            Picture::Slices => "slices",
            Picture::Density => "density",
        }
    }

    /// The picture's alternative text and caption: what it shows of `report`.
    pub fn alt(self, report: &Report) -> String {
        let n = report.channels.len();
        let channels = if n == 1 { "1 channel".to_string() } else { format!("{n} channels") };
        match self {
            Picture::Histogram if histogram::probability_views(report).is_some() => format!(
                "Histograms of the {} loss gradient per voxel, for {channels}: with respect to the probabilities \
                 (left; two spikes for a two-valued loss) and with respect to {} (right); foreground (orange) and \
                 background (blue) voxels apart, counts on a log scale",
                report.loss.name, report.parameters.gradient_wrt
            ),
            Picture::Histogram => format!(
                "Histogram of the {} loss gradient with respect to {}, per voxel, for {channels}: foreground \
                 (orange) and background (blue) voxels apart, counts on a log scale",
                report.loss.name, report.parameters.gradient_wrt
            ),
            Picture::Comparison => {
                let names: Vec<String> = std::iter::once(report.loss.name)
                    .chain(report.comparison.iter().flat_map(|c| c.losses.iter().map(|l| l.name)))
                    .map(|k| k.to_string())
                    .collect();
                format!("Gradient histograms of the losses {} side by side, for {channels}", names.join(", "))
            }
            Picture::Training => "Over the sampled mini-batches of patches: the loss, the largest |gradient| per \
                                  channel, the float16 loss-scale window, and the share of patches without each class"
                .to_string(),
            Picture::Slices => format!(
                "Three orthogonal planes (sagittal, coronal, axial) per channel, for {channels}: the ground truth, \
                 the predicted probability and the loss gradient on a blue (negative) to orange (positive) scale; \
                 with respect to probabilities the gradient map is the ground truth, negated and scaled"
            ),
            Picture::Density => format!(
                "Per channel, for {channels}: the gradient per voxel against the predicted probability, \
                 foreground and background voxels apart, counts on a log colour scale; with respect to \
                 probabilities one horizontal line per side, through an activation an s(1 − s) shape"
            ),
        }
    }
}

/// The pictures a report has, in the order a reader meets them: the slices (with views), the
/// histograms always, the density (with views), the comparison when losses were compared, the
/// training figures when patches were analysed.
pub fn pictures_of(report: &Report) -> Vec<Picture> {
    let mut p = Vec::new();
    if report.views.is_some() {
        p.push(Picture::Slices);
    }
    p.push(Picture::Histogram);
    if report.views.is_some() {
        p.push(Picture::Density);
    }
    if report.comparison.as_ref().is_some_and(|c| !c.losses.is_empty()) {
        p.push(Picture::Comparison);
    }
    if report.training.is_some() {
        p.push(Picture::Training);
    }
    p
}

/// Every picture of a report as a figure for its HTML page (SVG; `path` names the page in an
/// error), drawn in parallel.
pub fn figures(report: &Report, path: &Path) -> Result<Vec<crate::report::html::Figure>> {
    use rayon::prelude::*;
    pictures_of(report)
        .into_par_iter()
        .map(|p| {
            let svg = svg_string(&ReportPicture(report, p), path)?;
            Ok(crate::report::html::Figure { name: p.stem().to_string(), alt: p.alt(report), svg })
        })
        .collect()
}

/// A picture's PNG file: the picture and the file's bytes.
pub type PngFile = (Picture, Vec<u8>);

/// Every picture of a report drawn in both formats, in parallel: its figure (the SVG, for the
/// page and the .svg file) and its PNG file's bytes. `dir` names the folder in an error.
pub fn draw_all(report: &Report, dir: &Path) -> Result<(Vec<crate::report::html::Figure>, Vec<PngFile>)> {
    let (figs, pngs) = rayon::join(|| figures(report, dir), || png_files(report, dir));
    Ok((figs?, pngs?))
}

/// Every picture of a report as PNG bytes, drawn in parallel (`dir` names the folder in an
/// error).
pub fn png_files(report: &Report, dir: &Path) -> Result<Vec<PngFile>> {
    use rayon::prelude::*;
    pictures_of(report)
        .into_par_iter()
        .map(|p| Ok((p, png_bytes(&ReportPicture(report, p), &dir.join(format!("{}.png", p.stem())))?)))
        .collect()
}

/// A report's picture.
pub struct ReportPicture<'a>(pub &'a Report, pub Picture);

impl Drawing for ReportPicture<'_> {
    fn size(&self) -> (u32, u32) {
        match self.1 {
            Picture::Histogram => histogram::canvas_size(self.0),
            Picture::Comparison => histogram::comparison_size(self.0),
            Picture::Training => training::canvas_size(self.0),
            Picture::Slices => slices::canvas_size(self.0),
            Picture::Density => density::canvas_size(self.0),
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        match self.1 {
            Picture::Histogram => histogram::draw_histograms(root, self.0),
            Picture::Comparison => histogram::draw_comparison(root, self.0),
            Picture::Training => training::draw(root, self.0),
            Picture::Slices => slices::draw(root, self.0),
            Picture::Density => density::draw(root, self.0),
        }
    }
}
