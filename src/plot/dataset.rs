//! Pictures of a data set: the pooled |gradient| histogram per channel (foreground vs background,
//! float16's normal range at the run's loss scale shaded), and the per-case gradient levels against
//! case Dice (one point per case and channel).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::histogram::{normal_range, normal_range_label, NORMAL_RANGE};
use super::{write, Drawing, Drawn};
use crate::analysis::LogHistogram;
use crate::error::Result;
use crate::report::record::CaseRecord;
use crate::report::summary::Summary;

const W: u32 = 700;
const H: u32 = 320;
const TITLE: u32 = 50;
const FOREGROUND: RGBColor = RGBColor(222, 110, 20);
const BACKGROUND: RGBColor = RGBColor(35, 95, 190);

fn grid(n: usize) -> (usize, usize) {
    let cols = if n <= 2 { 1 } else { 2 };
    (n.div_ceil(cols).max(1), cols)
}

fn size(n: usize) -> (u32, u32) {
    let (rows, cols) = grid(n);
    (W * cols as u32, TITLE + H * rows as u32)
}

fn draw_pooled<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, s: &Summary) -> Drawn<DB> {
    root.fill(&WHITE)?;
    let title =
        format!("|{} loss gradient| pooled over {} cases (log bins, one per factor 2)", s.loss_kind(), s.cases.ok);
    let (head, body) = root.split_vertically(TITLE);
    head.titled(&title, ("sans-serif", 20))?;
    let (rows, cols) = grid(s.channels.len());
    for (area, ch) in body.split_evenly((rows, cols)).iter().zip(&s.channels) {
        let h = &ch.pooled_histogram;
        let used: Vec<usize> = (0..LogHistogram::BINS).filter(|&b| h.foreground[b] + h.background[b] > 0).collect();
        let (lo, hi) = match (used.first(), used.last()) {
            (Some(&a), Some(&b)) => (a, b + 1),
            _ => (100, 130),
        };
        let x = |b: usize| (b as f64 - 127.0) * std::f64::consts::LOG10_2;
        let peak = h.foreground.iter().chain(&h.background).copied().max().unwrap_or(1).max(1) as f64;
        let top = peak * 1e4;
        let (left, right) = (x(lo) - 0.2, x(hi) + 0.2);
        let mut chart = ChartBuilder::on(area)
            .caption(format!("channel {} (label {}): {} cases", ch.channel, ch.label, ch.cases), ("sans-serif", 15))
            .margin(10)
            .x_label_area_size(42)
            .y_label_area_size(60)
            .build_cartesian_2d(left..right, (0.5..top).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("log10 |gradient| per voxel")
            .y_desc("voxels (log scale)")
            .y_label_formatter(&|v| if *v >= 1e4 { format!("{v:.0e}") } else { format!("{v:.0}") })
            .label_style(("sans-serif", 12))
            .draw()?;
        let scale = f64::from(s.parameters.loss_scale);
        let range = normal_range(scale);
        let [a, b] = range.map(f64::log10);
        let band = (a.max(left), b.min(right));
        let shown = band.0 < band.1;
        chart
            .draw_series(
                shown.then(|| Rectangle::new([(band.0, 0.5), (band.1, top)], NORMAL_RANGE.mix(0.12).filled())),
            )?
            .label(normal_range_label(scale, range, shown))
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], NORMAL_RANGE.mix(0.3).filled()));
        let line = ShapeStyle { color: NORMAL_RANGE.mix(0.8), filled: false, stroke_width: 1 };
        for e in [a, b].into_iter().filter(|e| (left..=right).contains(e)) {
            chart.draw_series(DashedLineSeries::new(vec![(e, 0.5), (e, top)], 3, 3, line))?;
        }
        for (counts, color, name) in
            [(&h.background, BACKGROUND, "background (g = 0)"), (&h.foreground, FOREGROUND, "foreground (g = 1)")]
        {
            let style = ShapeStyle { color: color.mix(0.7), filled: true, stroke_width: 1 };
            chart
                .draw_series(
                    (lo..hi)
                        .filter(|&b| counts[b] > 0)
                        .map(|b| Rectangle::new([(x(b), 0.5), (x(b + 1), counts[b] as f64)], style)),
                )?
                .label(name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
        }
        super::legend(&mut chart, SeriesLabelPosition::UpperRight, 12)?;
    }
    Ok(())
}

fn draw_levels<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, s: &Summary, records: &[CaseRecord]) -> Drawn<DB> {
    root.fill(&WHITE)?;
    let title =
        format!("Per-case gradient levels (mean on foreground / background) against soft Dice, {} cases", s.cases.ok);
    let (head, body) = root.split_vertically(TITLE);
    head.titled(&title, ("sans-serif", 20))?;
    let (rows, cols) = grid(s.channels.len());
    for (area, ch) in body.split_evenly((rows, cols)).iter().zip(&s.channels) {
        let pts: Vec<(f64, Option<f64>, Option<f64>)> = records
            .iter()
            .filter(|r| r.is_ok())
            .flat_map(|r| r.channels.iter().filter(|c| c.channel == ch.channel))
            .map(|c| (c.soft_dice, c.foreground_level, c.background_level))
            .collect();
        let mags: Vec<f64> = pts.iter().flat_map(|p| [p.1, p.2]).flatten().map(f64::abs).filter(|v| *v > 0.0).collect();
        let (ymin, ymax) = mags.iter().fold((f64::INFINITY, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
        let (ymin, ymax) = if ymin.is_finite() { (ymin / 3.0, ymax * 30.0) } else { (1e-9, 1.0) };
        let mut chart = ChartBuilder::on(area)
            .caption(format!("channel {} (label {})", ch.channel, ch.label), ("sans-serif", 15))
            .margin(10)
            .x_label_area_size(42)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..1.0, (ymin..ymax).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("soft Dice of the case")
            .y_desc("|mean gradient|")
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .label_style(("sans-serif", 12))
            .draw()?;
        for (side, color, name) in [(1, FOREGROUND, "foreground (negative for Dice)"), (2, BACKGROUND, "background")] {
            let series = pts.iter().filter_map(|p| {
                let v = if side == 1 { p.1 } else { p.2 }?;
                (v != 0.0).then(|| Circle::new((p.0.clamp(0.0, 1.0), v.abs()), 3, color.filled()))
            });
            chart.draw_series(series)?.label(name).legend(move |(x, y)| Circle::new((x + 7, y), 4, color.filled()));
        }
        super::legend(&mut chart, SeriesLabelPosition::UpperLeft, 12)?;
    }
    Ok(())
}

/// The pooled histogram of a data set.
struct Pooled<'a>(&'a Summary);
/// The per-case levels against Dice.
struct Levels<'a>(&'a Summary, &'a [CaseRecord]);

impl Drawing for Pooled<'_> {
    fn size(&self) -> (u32, u32) {
        size(self.0.channels.len())
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        draw_pooled(root, self.0)
    }
}

impl Drawing for Levels<'_> {
    fn size(&self) -> (u32, u32) {
        size(self.0.channels.len())
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        draw_levels(root, self.0, self.1)
    }
}

/// The pictures of a data set, by file name: the pooled histogram and the levels, each as PNG and
/// SVG.
pub const PICTURES: [&str; 4] = ["histogram.png", "histogram.svg", "levels.png", "levels.svg"];

/// Writes the pictures of a data set ([`PICTURES`]) into `dir`.
pub fn write_pictures(s: &Summary, records: &[CaseRecord], dir: &Path) -> Result<()> {
    for name in &PICTURES[..2] {
        write(&Pooled(s), &dir.join(name), true)?;
    }
    for name in &PICTURES[2..] {
        write(&Levels(s, records), &dir.join(name), true)?;
    }
    Ok(())
}

/// The pictures of a data set as figures of its HTML page (SVG, with their alternative text);
/// `path` names the page in an error.
pub fn figures(s: &Summary, records: &[CaseRecord], path: &Path) -> Result<Vec<crate::report::html::Figure>> {
    let figure = |name: &str, alt: String, svg: String| crate::report::html::Figure { name: name.into(), alt, svg };
    Ok(vec![
        figure(
            "histogram",
            format!(
                "|{} loss gradient| pooled over {} cases, per channel: voxel counts per factor of 2, foreground \
                 (orange) and background (blue), float16's normal range at the loss scale shaded",
                s.loss_kind(),
                s.cases.ok
            ),
            super::svg_string(&Pooled(s), path)?,
        ),
        figure(
            "levels",
            format!(
                "Per case and channel, the mean gradient on foreground and on background voxels (log scale) against \
                 the case's soft Dice, {} cases",
                s.cases.ok
            ),
            super::svg_string(&Levels(s, records), path)?,
        ),
    ])
}
