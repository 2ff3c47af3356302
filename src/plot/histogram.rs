//! Gradient histograms: one panel per channel in the loss, foreground and background voxels in two
//! colours, log-scaled counts, closed-form levels marked when the gradient is with respect to
//! probabilities, and float16's normal range at the report's loss scale S shaded: the values g with
//! 2^−14/S ≤ |g| ≤ 65504/S, whose S·g is a normal float16.

use crate::report::wording::channel as channel_title;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::parts::{
    draw_key, draw_title, half_span, log_count_top, loss_name, title_height, with_key, KeyEntry, Swatch,
};
use crate::analysis::precision::{F16_LARGEST, F16_SMALLEST_NORMAL};
use crate::analysis::views::ProbabilityView;
use crate::analysis::Histogram;
use crate::loss::Activation;
use crate::report::Report;

const PANEL_W: u32 = 820;
const COMPARE_W: u32 = 600;
const PANEL_H: u32 = 380;
const TITLE_SIZE: u32 = 22;
/// The most columns of the comparison.
pub(super) const COMPARE_MAX_COLUMNS: usize = 5;
const FOREGROUND: RGBColor = RGBColor(222, 110, 20);
const BACKGROUND: RGBColor = RGBColor(35, 95, 190);
/// float16's normal range at the loss scale.
pub(super) const NORMAL_RANGE: RGBColor = RGBColor(40, 150, 80);

fn columns(panels: usize) -> usize {
    if panels <= 2 {
        1
    } else {
        2
    }
}

/// The title of the histograms.
fn histogram_title(report: &Report) -> String {
    let p = &report.parameters;
    if probability_views(report).is_some() {
        return format!(
            "{} loss gradient w.r.t. probabilities (left: −a·g + c, two values per channel) and w.r.t. {} (right) \
             — loss {:.4}",
            loss_name(p.spec.loss, &p.spec),
            p.gradient_wrt,
            report.loss.value,
        );
    }
    format!(
        "{} loss gradient w.r.t. {} — loss {:.4}, two-level structure {}",
        loss_name(p.spec.loss, &p.spec),
        p.gradient_wrt,
        report.loss.value,
        if report.two_level_holds { "holds" } else { "does not hold" }
    )
}

/// With an activation (and pictures of the volume measured): per reported channel, the gradient
/// with respect to the probabilities, drawn beside the one with respect to the logits.
pub(super) fn probability_views(report: &Report) -> Option<Vec<&ProbabilityView>> {
    let views = report.views.as_ref()?;
    views.channels.iter().map(|c| c.probability.as_ref()).collect::<Option<Vec<_>>>().filter(|v| !v.is_empty())
}

/// Rows and columns of the panels: a row per channel with both gradients, else two columns from
/// three channels on.
fn grid(report: &Report) -> (usize, usize) {
    let n = report.channels.len().max(1);
    if probability_views(report).is_some() {
        return (n, 2);
    }
    let cols = columns(n);
    (n.div_ceil(cols), cols)
}

/// Canvas size for the report's panels.
pub fn canvas_size(report: &Report) -> (u32, u32) {
    let (rows, cols) = grid(report);
    let w = PANEL_W * cols as u32;
    (w, title_height(&histogram_title(report), TITLE_SIZE, w) + PANEL_H * rows as u32)
}

/// The names of the main and the compared losses, main first.
fn compared_names(report: &Report) -> Vec<String> {
    let spec = &report.parameters.spec;
    let mut names = vec![loss_name(spec.loss, spec)];
    if let Some(cmp) = &report.comparison {
        names.extend(cmp.losses.iter().map(|l| loss_name(l.name, spec)));
    }
    names
}

fn comparison_title(report: &Report) -> String {
    format!("Gradients w.r.t. {} compared: {}", report.parameters.gradient_wrt, compared_names(report).join(" | "))
}

/// The comparison's grid for `channels` channels of `losses` losses each: (rows per channel,
/// columns). One channel: its losses in a near-square grid; several: a row per channel, wrapped
/// into rows of equal length when there are more than [`COMPARE_MAX_COLUMNS`] losses.
pub(super) fn compare_grid(channels: usize, losses: usize) -> (usize, usize) {
    let losses = losses.max(1);
    let cols = if channels <= 1 {
        (1..=losses).find(|c| c * c >= losses).unwrap_or(losses)
    } else {
        losses.div_ceil(losses.div_ceil(COMPARE_MAX_COLUMNS))
    };
    (losses.div_ceil(cols), cols)
}

/// Canvas size of the comparison (see [`compare_grid`]).
pub fn comparison_size(report: &Report) -> (u32, u32) {
    let channels = report.channels.len().max(1);
    let (per_channel, cols) = compare_grid(channels, compared_names(report).len());
    let w = COMPARE_W * cols as u32;
    (w, title_height(&comparison_title(report), TITLE_SIZE, w) + PANEL_H * (per_channel * channels) as u32)
}

/// What one panel shows.
struct Panel<'a> {
    caption: String,
    hist: &'a Histogram,
    /// Closed-form [foreground, background] levels to mark.
    levels: Option<[f64; 2]>,
    foreground_voxels: u64,
    background_voxels: u64,
    /// The loss scale S.
    scale: f64,
}

/// Draws every channel's histogram onto `root`.
pub fn draw_histograms<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &Report,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let p = &report.parameters;
    let title = histogram_title(report);
    let (head, body) = root.split_vertically(title_height(&title, TITLE_SIZE, root.dim_in_pixel().0));
    draw_title(&head, &title, TITLE_SIZE)?;
    let panels = body.split_evenly(grid(report));
    let act = p.spec.activation;
    let with_levels = act == Activation::None && report.two_valued_closed_form;
    let probability = probability_views(report);
    let mut areas = panels.iter();
    for (i, ch) in report.channels.iter().enumerate() {
        if let Some(pv) = probability.as_ref().and_then(|v| v.get(i)) {
            let two = pv.histogram.foreground.iter().filter(|&&c| c > 0).count() <= 1
                && pv.histogram.background.iter().filter(|&&c| c > 0).count() <= 1;
            let panel = Panel {
                caption: format!(
                    "{}: dL/ds{}, w.r.t. probabilities: {}",
                    channel_title(ch.channel, ch.label, ch.name.as_deref()),
                    if pv.dice_part_only { " of the Dice part" } else { "" },
                    if two { "two values" } else { "spread" }
                ),
                hist: &pv.histogram,
                levels: pv.view.levels.map(|[bg, fg]| [fg, bg]),
                foreground_voxels: ch.foreground_voxels,
                background_voxels: ch.background_voxels,
                scale: p.loss_scale.into(),
            };
            if let Some(area) = areas.next() {
                draw_panel(area, &panel, Activation::None)?;
            }
        }
        let Some(area) = areas.next() else { break };
        let panel = Panel {
            caption: format!(
                "{}: soft Dice {:.4}, {} fg / {} bg voxels, {}",
                channel_title(ch.channel, ch.label, ch.name.as_deref()),
                ch.soft_dice,
                ch.foreground_voxels,
                ch.background_voxels,
                if ch.gradient.two_level { "two values" } else { "spread" }
            ),
            hist: &ch.gradient.histogram,
            levels: with_levels.then_some([ch.closed_form.foreground_level, ch.closed_form.background_level]),
            foreground_voxels: ch.foreground_voxels,
            background_voxels: ch.background_voxels,
            scale: p.loss_scale.into(),
        };
        draw_panel(area, &panel, act)?;
    }
    Ok(())
}

/// Draws the main loss and the compared losses side by side: per channel, its losses in a grid
/// (see [`compare_grid`]).
pub fn draw_comparison<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &Report,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let Some(cmp) = &report.comparison else { return Ok(()) };
    let p = &report.parameters;
    let act = p.spec.activation;
    let names = compared_names(report);
    let title = comparison_title(report);
    let (head, body) = root.split_vertically(title_height(&title, TITLE_SIZE, root.dim_in_pixel().0));
    draw_title(&head, &title, TITLE_SIZE)?;
    let channels = report.channels.len().max(1);
    let (per_channel, cols) = compare_grid(channels, names.len());
    let areas = body.split_evenly((per_channel * channels, cols));
    for (r, ch) in report.channels.iter().enumerate() {
        let first = r * per_channel * cols;
        let main = Panel {
            caption: format!("{}: {}", names[0], channel_title(ch.channel, ch.label, ch.name.as_deref())),
            hist: &ch.gradient.histogram,
            levels: (act == Activation::None && report.two_valued_closed_form)
                .then_some([ch.closed_form.foreground_level, ch.closed_form.background_level]),
            foreground_voxels: ch.foreground_voxels,
            background_voxels: ch.background_voxels,
            scale: p.loss_scale.into(),
        };
        draw_panel(&areas[first], &main, act)?;
        for (j, loss) in cmp.losses.iter().enumerate() {
            let area = &areas[first + 1 + j];
            let name = &names[1 + j];
            let Some(other) = loss.channels.iter().find(|c| c.channel == ch.channel) else {
                area.titled(&format!("{name}: channel {} not in this loss", ch.channel), ("sans-serif", 16))?;
                continue;
            };
            let panel = Panel {
                caption: format!("{name}: {}", channel_title(other.channel, other.label, ch.name.as_deref())),
                hist: &other.gradient.histogram,
                levels: (act == Activation::None && loss.two_valued_closed_form)
                    .then_some([other.closed_form.foreground_level, other.closed_form.background_level]),
                foreground_voxels: ch.foreground_voxels,
                background_voxels: ch.background_voxels,
                scale: p.loss_scale.into(),
            };
            draw_panel(area, &panel, act)?;
        }
    }
    Ok(())
}

/// The legend's words for float16's normal range at the loss scale `scale`, `[lo, hi]` in
/// gradient units; `shown` when some of it lies on the axis.
pub(super) fn normal_range_label(scale: f64, [lo, hi]: [f64; 2], shown: bool) -> String {
    let k = scale.log2();
    let s = if k.fract() == 0.0 && k != 0.0 { format!("{scale} = 2^{k}") } else { format!("{scale}") };
    let off = if shown { "" } else { ", off this axis" };
    format!("float16 normal at S = {s}: {lo:.2e} ≤ |g| ≤ {hi:.2e}{off}")
}

/// Where S·g is a normal float16: |g| in [2^−14/S, 65504/S].
pub(super) fn normal_range(scale: f64) -> [f64; 2] {
    [F16_SMALLEST_NORMAL / scale, F16_LARGEST / scale]
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

/// The bars of one side: each bin's left half for the background (`half` 0), its right half for
/// the foreground (`half` 1), so that neither hides the other.
fn bars(h: &Histogram, counts: &[u64], color: RGBColor, half: usize) -> Vec<Rectangle<(f64, f64)>> {
    let w = (h.hi - h.lo) / counts.len() as f64;
    let style = ShapeStyle { color: color.mix(0.85), filled: true, stroke_width: 1 };
    counts
        .iter()
        .enumerate()
        .filter(|(_, &c)| c > 0)
        .map(|(i, &c)| {
            let x0 = h.lo + i as f64 * w;
            let (a, z) = half_span(x0, x0 + w, half);
            Rectangle::new([(a, 0.5), (z, c as f64)], style)
        })
        .collect()
}

/// The key of a panel, in the order of the marks: float16's range, the two sides, the closed
/// forms shown.
fn panel_key(panel: &Panel, shown_range: bool, levels: &[(f64, String, RGBColor)]) -> Vec<KeyEntry> {
    let range = normal_range(panel.scale);
    let mut key = vec![
        KeyEntry::new(Swatch::Fill(NORMAL_RANGE.mix(0.3)), normal_range_label(panel.scale, range, shown_range)),
        KeyEntry::new(
            Swatch::Fill(BACKGROUND.to_rgba()),
            format!("background (g = 0): {} voxels", panel.background_voxels),
        ),
        KeyEntry::new(
            Swatch::Fill(FOREGROUND.to_rgba()),
            format!("foreground (g = 1): {} voxels", panel.foreground_voxels),
        ),
    ];
    key.extend(levels.iter().map(|(_, label, color)| KeyEntry::new(Swatch::Line(color.to_rgba()), label.clone())));
    key
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    act: Activation,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let h = panel.hist;
    let peak = h.foreground.iter().chain(&h.background).copied().max().unwrap_or(1).max(1);
    let top = log_count_top(peak);
    let [lo, hi] = normal_range(panel.scale);
    // the two intervals of values whose magnitude is in range, clipped to the axis
    let bands: Vec<(f64, f64)> =
        [(lo, hi), (-hi, -lo)].into_iter().map(|(a, b)| (a.max(h.lo), b.min(h.hi))).filter(|(a, b)| a < b).collect();
    let levels: Vec<(f64, String, RGBColor)> = panel
        .levels
        .map(|[fg, bg]| {
            vec![
                (fg, format!("closed form c − a = {fg:.3e}"), FOREGROUND),
                (bg, format!("closed form c = {bg:.3e}"), BACKGROUND),
            ]
        })
        .unwrap_or_default()
        .into_iter()
        .filter(|(x, _, _)| *x >= h.lo && *x <= h.hi)
        .collect();
    let key = panel_key(panel, !bands.is_empty(), &levels);
    let (plot, strip) = with_key(area, &key);
    draw_key(&strip, &key)?;
    let mut chart = ChartBuilder::on(&plot)
        .caption(&panel.caption, ("sans-serif", 16))
        .margin(12)
        .margin_bottom(4)
        .x_label_area_size(46)
        .y_label_area_size(62)
        .build_cartesian_2d(h.lo..h.hi, (0.5..top).log_scale())?;
    chart
        .configure_mesh()
        .x_desc(axis_label(act))
        .y_desc("voxels (log scale)")
        .x_labels(6)
        .x_label_formatter(&|v| tick(*v, h.hi - h.lo))
        .y_label_formatter(&|v| if *v >= 1e4 { format!("{v:.0e}") } else { format!("{v:.0}") })
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let band_style = NORMAL_RANGE.mix(0.12).filled();
    let line_style = ShapeStyle { color: NORMAL_RANGE.mix(0.8), filled: false, stroke_width: 1 };
    chart.draw_series(bands.iter().map(|&(a, b)| Rectangle::new([(a, 0.5), (b, top)], band_style)))?;
    let edges = [lo, hi, -lo, -hi].into_iter().filter(|x| *x >= h.lo && *x <= h.hi);
    for x in edges {
        chart.draw_series(DashedLineSeries::new(vec![(x, 0.5), (x, top)], 3, 3, line_style))?;
    }
    chart.draw_series(bars(h, &h.background, BACKGROUND, 0))?;
    chart.draw_series(bars(h, &h.foreground, FOREGROUND, 1))?;
    for (x, _, color) in &levels {
        let style = ShapeStyle { color: color.to_rgba(), filled: false, stroke_width: 2 };
        chart.draw_series(DashedLineSeries::new(vec![(*x, 0.5), (*x, top)], 6, 4, style))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_comparison_of_four_losses_on_one_channel_is_a_square_grid() {
        assert_eq!(compare_grid(1, 4), (2, 2));
        assert_eq!(compare_grid(1, 2), (1, 2));
        assert_eq!(compare_grid(1, 1), (1, 1));
        for losses in 1..=10 {
            let (rows, cols) = compare_grid(1, losses);
            assert!(rows * cols >= losses && cols <= rows + 1, "{losses}: {rows}×{cols}");
            let (per_channel, cols) = compare_grid(4, losses);
            assert!(cols <= COMPARE_MAX_COLUMNS && per_channel * cols >= losses);
            assert!(per_channel * cols - losses < per_channel, "{losses}: rows of equal length");
        }
    }
}
