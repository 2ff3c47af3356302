//! Gradient histograms: one panel per channel in the loss, foreground and background voxels in two
//! colours, log-scaled counts, closed-form levels marked when the gradient is with respect to
//! probabilities.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::analysis::Histogram;
use crate::loss::Activation;
use crate::report::{ChannelReport, Report};

const PANEL_W: u32 = 820;
const PANEL_H: u32 = 330;
const TITLE_H: u32 = 50;
const FOREGROUND: RGBColor = RGBColor(222, 110, 20);
const BACKGROUND: RGBColor = RGBColor(35, 95, 190);

fn columns(panels: usize) -> usize {
    if panels <= 2 {
        1
    } else {
        2
    }
}

/// Canvas size for the report's panels.
pub fn canvas_size(report: &Report) -> (u32, u32) {
    let n = report.channels.len().max(1);
    let cols = columns(n);
    let rows = n.div_ceil(cols);
    (PANEL_W * cols as u32, TITLE_H + PANEL_H * rows as u32)
}

/// Draws every channel's histogram onto `root`.
pub fn draw_histograms<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &Report,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let p = &report.parameters;
    let title = format!(
        "{} loss gradient w.r.t. {} — loss {:.4}, two-level structure {}",
        p.spec.kind.name(),
        p.gradient_wrt,
        report.loss.value,
        if report.two_level_holds { "holds" } else { "does not hold" }
    );
    let (head, body) = root.split_vertically(TITLE_H);
    head.titled(&title, ("sans-serif", 22).into_font())?;
    let n = report.channels.len().max(1);
    let cols = columns(n);
    let rows = n.div_ceil(cols);
    let panels = body.split_evenly((rows, cols));
    let act = p.spec.activation;
    let with_levels = act == Activation::None && report.two_valued_closed_form;
    for (panel, ch) in panels.iter().zip(&report.channels) {
        draw_panel(panel, ch, with_levels, act)?;
    }
    Ok(())
}

/// Top of the log count axis: three decades above the highest bar, so that the legend sits in
/// empty space above the bars.
fn y_top(peak: u64) -> f64 {
    peak as f64 * 1000.0
}

/// Tick label in scientific notation, with values that are zero up to rounding shown as 0.
fn tick(v: f64, span: f64) -> String {
    if v.abs() < span * 1e-9 {
        "0".to_string()
    } else {
        format!("{v:.2e}")
    }
}

fn axis_label(act: Activation) -> &'static str {
    match act {
        Activation::None => "dL/ds per voxel (s = probability)",
        _ => "dL/dz per voxel (z = logit)",
    }
}

fn bars(h: &Histogram, counts: &[u64], color: RGBColor) -> Vec<Rectangle<(f64, f64)>> {
    let w = (h.hi - h.lo) / counts.len() as f64;
    let style = ShapeStyle { color: color.mix(0.75), filled: true, stroke_width: 1 };
    counts
        .iter()
        .enumerate()
        .filter(|(_, &c)| c > 0)
        .map(|(i, &c)| {
            let x0 = h.lo + i as f64 * w;
            Rectangle::new([(x0, 0.5), (x0 + w, c as f64)], style)
        })
        .collect()
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    ch: &ChannelReport,
    with_levels: bool,
    act: Activation,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let h = &ch.gradient.histogram;
    let peak = h.foreground.iter().chain(&h.background).copied().max().unwrap_or(1).max(1);
    let caption = format!(
        "channel {} (label {}): soft Dice {:.4}, {} fg / {} bg voxels, {}",
        ch.channel,
        ch.label,
        ch.soft_dice,
        ch.foreground_voxels,
        ch.background_voxels,
        if ch.gradient.two_level { "two values" } else { "spread" }
    );
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(46)
        .y_label_area_size(62)
        .build_cartesian_2d(h.lo..h.hi, (0.5..y_top(peak)).log_scale())?;
    chart
        .configure_mesh()
        .x_desc(axis_label(act))
        .y_desc("voxels (log scale)")
        .x_labels(6)
        .x_label_formatter(&|v| tick(*v, h.hi - h.lo))
        .y_label_formatter(&|v| {
            if *v >= 1e4 {
                format!("{v:.0e}")
            } else {
                format!("{v:.0}")
            }
        })
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    chart
        .draw_series(bars(h, &h.background, BACKGROUND))?
        .label(format!("background (g = 0): {} voxels", ch.background_voxels))
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], BACKGROUND.filled()));
    chart
        .draw_series(bars(h, &h.foreground, FOREGROUND))?
        .label(format!("foreground (g = 1): {} voxels", ch.foreground_voxels))
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], FOREGROUND.filled()));
    if with_levels {
        let top = y_top(peak);
        let cf = &ch.closed_form;
        for (x, label, color) in [
            (cf.foreground_level, format!("closed form c − a = {:.3e}", cf.foreground_level), FOREGROUND),
            (cf.background_level, format!("closed form c = {:.3e}", cf.background_level), BACKGROUND),
        ] {
            if x >= h.lo && x <= h.hi {
                let style = ShapeStyle { color: color.to_rgba(), filled: false, stroke_width: 2 };
                chart
                    .draw_series(DashedLineSeries::new(vec![(x, 0.5), (x, top)], 6, 4, style))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], style));
            }
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperMiddle)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}
