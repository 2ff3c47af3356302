//! The training-regime picture: over the sampled mini-batches, the loss, the largest gradient per
//! channel, the float16 loss-scale windows, and how often each class is absent — all read from
//! the report's [`RegimeReport`].

use crate::report::wording::{channel_short, name_of};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::parts::title_height;
use crate::analysis::precision::ScaleWindow;
use crate::report::Report;
use crate::training::{RegimeReport, Spread};

const W: u32 = 1400;
const H: u32 = 860;
const TITLE_H: u32 = 50;
const LOWER: RGBColor = RGBColor(35, 95, 190);
const UPPER: RGBColor = RGBColor(222, 110, 20);
const GREY: RGBColor = RGBColor(120, 120, 120);

pub fn canvas_size(report: &Report) -> (u32, u32) {
    let title = report.training.as_ref().map_or(String::new(), |t| title(report, t));
    (W, H - TITLE_H + title_height(&title, TITLE_SIZE, W))
}

const TITLE_SIZE: u32 = 18;

/// The title: the loss and how the mini-batches were drawn.
fn title(report: &Report, t: &RegimeReport) -> String {
    let r = &t.regime;
    let pooled = if r.batch_dice { "Dice pooled over the mini-batch" } else { "Dice per patch, averaged" };
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let spec = &report.parameters.spec;
    format!(
        "{} loss in training: {} of {} of {}×{}×{}, {} per mini-batch centred on foreground, {pooled}, seed {}",
        super::parts::loss_name(spec.loss, spec),
        plural(r.batches, "mini-batch", "mini-batches"),
        plural(r.batch_size, "patch", "patches"),
        r.patch_size[0],
        r.patch_size[1],
        r.patch_size[2],
        t.foreground_patches_per_batch,
        r.seed
    )
}

/// Counts of `values` in `bins` equal bins over [lo, hi].
fn binned(values: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<u32> {
    let mut c = vec![0u32; bins];
    let w = (hi - lo) / bins as f64;
    for &v in values.iter().filter(|v| v.is_finite()) {
        let i = if w > 0.0 { ((v - lo) / w).floor() as isize } else { 0 };
        c[i.clamp(0, bins as isize - 1) as usize] += 1;
    }
    c
}

/// A range around the finite values, padded.
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-9 * lo.abs().max(1.0)).max(1e-12);
    (lo - pad, hi + pad)
}

fn histogram_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    x_desc: &str,
    series: &[(&str, RGBColor, &[f64])],
    marks: &[(f64, String, RGBColor)],
    band: Option<(f64, f64)>,
    legend_at: SeriesLabelPosition,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let all = series.iter().flat_map(|(_, _, v)| v.iter().copied()).chain(marks.iter().map(|m| m.0));
    let (lo, hi) = span(all.chain(band.into_iter().flat_map(|(a, b)| [a, b])));
    let bins = 40;
    let counts: Vec<Vec<u32>> = series.iter().map(|(_, _, v)| binned(v, lo, hi, bins)).collect();
    let peak = counts.iter().flatten().copied().max().unwrap_or(1).max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(46)
        .y_label_area_size(56)
        .build_cartesian_2d(lo..hi, 0.0..f64::from(peak) * 1.25)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("mini-batches")
        .x_labels(7)
        .y_label_formatter(&|v| if v.fract() == 0.0 { format!("{v:.0}") } else { String::new() })
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    if let Some((a, b)) = band {
        let (a, b) = (a.max(lo), b.min(hi));
        if a < b {
            chart
                .draw_series([Rectangle::new(
                    [(a, 0.0), (b, f64::from(peak) * 1.25)],
                    RGBColor(60, 170, 90).mix(0.18).filled(),
                )])?
                .label("scales that serve every mini-batch")
                .legend(|(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], RGBColor(60, 170, 90).mix(0.3).filled())
                });
        }
    }
    let w = (hi - lo) / bins as f64;
    for ((name, color, _), c) in series.iter().zip(&counts) {
        let color = *color;
        chart
            .draw_series(c.iter().enumerate().filter(|(_, &n)| n > 0).map(|(i, &n)| {
                let x0 = lo + i as f64 * w;
                Rectangle::new([(x0 + w * 0.08, 0.0), (x0 + w * 0.92, f64::from(n))], color.mix(0.75).filled())
            }))?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
    }
    for (x, label, color) in marks {
        let style = ShapeStyle { color: color.to_rgba(), filled: false, stroke_width: 2 };
        chart
            .draw_series(DashedLineSeries::new(vec![(*x, 0.0), (*x, f64::from(peak) * 1.25)], 6, 4, style))?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], style));
    }
    super::legend(&mut chart, legend_at, 13)?;
    Ok(())
}

/// Per channel, the spread of log10 max |g| over mini-batches as a box (5 %–95 %), whiskers
/// (min–max) and the median.
fn spread_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    t: &RegimeReport,
    names: &Option<Vec<String>>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let log = |v: Option<f64>| v.filter(|v| *v > 0.0).map(f64::log10);
    let rows: Vec<(String, &Spread)> =
        t.channels.iter().map(|c| (channel_short(c.channel, c.label, name_of(names, c.channel)), &c.max_abs)).collect();
    let (lo, hi) = span(rows.iter().flat_map(|(_, s)| [log(s.min), log(s.max)]).flatten());
    let n = rows.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption("largest |gradient| per mini-batch, per channel (box 5–95 %, whiskers min–max)", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(46)
        // room for the longest channel name (about 7 pixels a character at this size)
        .y_label_area_size(rows.iter().map(|r| 12 + 7 * r.0.chars().count() as u32).max().unwrap_or(0).max(110))
        .build_cartesian_2d(lo..hi, -0.5..n - 0.5)?;
    let names: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    chart
        .configure_mesh()
        .x_desc("log10 max |gradient|")
        .y_labels(rows.len().max(1))
        .y_label_formatter(&|y| {
            let i = y.round();
            if (y - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (i, (_, s)) in rows.iter().enumerate() {
        let y = i as f64;
        if let (Some(a), Some(b), Some(p5), Some(p95), Some(m)) =
            (log(s.min), log(s.max), log(s.p05), log(s.p95), log(s.median))
        {
            chart.draw_series([PathElement::new(vec![(a, y), (b, y)], GREY.stroke_width(2))])?;
            chart.draw_series([Rectangle::new(
                [(p5, y - 0.25), (p95.max(p5 + (hi - lo) * 0.003), y + 0.25)],
                UPPER.mix(0.6).filled(),
            )])?;
            chart.draw_series([PathElement::new(vec![(m, y - 0.3), (m, y + 0.3)], BLACK.stroke_width(3))])?;
        }
    }
    Ok(())
}

/// Per channel, the share of patches and of mini-batches without the class.
fn absent_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    t: &RegimeReport,
    channel_names: &Option<Vec<String>>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let n = t.channels.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(
            if t.channels.iter().all(|c| c.absent_patch_share == 0.0) {
                "class absent (G = 0): none — every class in every patch"
            } else {
                "class absent (G = 0): share of patches and of mini-batches"
            },
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(46)
        .y_label_area_size(56)
        .build_cartesian_2d(-0.5..n as f64 - 0.5, 0.0..1.3)?;
    let names: Vec<String> =
        t.channels.iter().map(|c| channel_short(c.channel, c.label, name_of(channel_names, c.channel))).collect();
    chart
        .configure_mesh()
        .x_labels(n)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("share")
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    chart
        .draw_series(t.channels.iter().enumerate().map(|(i, c)| {
            Rectangle::new([(i as f64 - 0.35, 0.0), (i as f64 - 0.02, c.absent_patch_share)], LOWER.mix(0.8).filled())
        }))?
        .label("patches without the class")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], LOWER.filled()));
    chart
        .draw_series(t.channels.iter().enumerate().map(|(i, c)| {
            Rectangle::new([(i as f64 + 0.02, 0.0), (i as f64 + 0.35, c.absent_batch_share)], UPPER.mix(0.8).filled())
        }))?
        .label("mini-batches without the class")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], UPPER.filled()));
    super::legend(&mut chart, SeriesLabelPosition::UpperRight, 13)?;
    Ok(())
}

/// Draws the training-regime picture of `report` (which must hold one).
pub fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &Report,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let Some(t) = &report.training else {
        return Ok(());
    };
    let title = title(report, t);
    let (top, body) = root.split_vertically(title_height(&title, TITLE_SIZE, root.dim_in_pixel().0));
    super::parts::draw_title(&top, &title, TITLE_SIZE)?;
    let panels = body.split_evenly((2, 2));
    let loss_marks = [(report.loss.value, format!("whole volume: {:.4}", report.loss.value), GREY)];
    histogram_panel(
        &panels[0],
        "loss per mini-batch",
        "loss",
        &[("mini-batches", LOWER, &t.batch_losses)],
        &loss_marks,
        None,
        SeriesLabelPosition::UpperRight,
    )?;
    spread_panel(&panels[1], t, &report.parameters.channel_names)?;
    let windows: Vec<ScaleWindow> =
        t.batch_max_abs.iter().zip(&t.batch_min_nonzero_abs).map(|(&mx, mn)| ScaleWindow::float16(*mn, mx)).collect();
    let lows: Vec<f64> = windows.iter().filter_map(|w| w.log2_min).collect();
    let highs: Vec<f64> = windows.iter().filter_map(|w| w.log2_max).collect();
    let band = t.loss_scale_window.every_batch.as_ref().filter(|w| !w.empty).and_then(|w| w.log2_min.zip(w.log2_max));
    let scale = f64::from(report.parameters.loss_scale);
    let marks = [(scale.log2(), format!("the loss scale S = 2^{:.1}", scale.log2()), GREY)];
    let every = match &t.loss_scale_window.every_batch {
        Some(w) if w.empty => "no scale serves every mini-batch",
        Some(_) => "shaded: the scales that serve every mini-batch",
        None => "every gradient is 0",
    };
    histogram_panel(
        &panels[2],
        "float16 loss-scale window per mini-batch (one scale for all channels)",
        &format!("log2 loss scale — {every}"),
        &[("lower bound 2^-14 / min |g|", LOWER, &lows), ("upper bound 65504 / max |g|", UPPER, &highs)],
        &marks,
        band,
        SeriesLabelPosition::UpperLeft,
    )?;
    absent_panel(&panels[3], t, &report.parameters.channel_names)?;
    Ok(())
}
