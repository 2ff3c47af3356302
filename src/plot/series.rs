//! The pictures of a track, read from its [`Series`]: per reported channel (one row each), over
//! the training steps —
//! 1. the soft and hard Dice (with a folder's per-case mean and its 95 % confidence interval);
//! 2. the gradient's two levels, |foreground| and background, on a log scale (or, when the
//!    gradient is not two-valued, the magnitudes of its smallest and largest values);
//! 3. the level ratio, drawn as −ratio = 2/Dice − 1 on a log scale: the measured ratio as dots,
//!    the closed form 1 − 2/soft Dice as a line through them;
//! 4. the float16 loss-scale window (log2 of the scales S that keep the gradient × S a normal
//!    float16 number) as a band, the run's loss scale as a line: where the line leaves the band,
//!    a 16-bit cast loses gradient;
//! 5. with compared losses, the cosine of each pair of gradients.

use crate::report::wording::{channel_short, name_of};
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::parts::{draw_key, draw_title, log_label, log_ticks, loss_name, title_height, with_key, KeyEntry, Swatch};
use super::{write, Drawing, Drawn};
use crate::error::Result;
use crate::report::html::Figure;
use crate::report::series::{Series, StepChannel, StepRecord};

const PANEL_W: u32 = 330;
const ROW_H: u32 = 300;
const TITLE_SIZE: u32 = 18;
const FOREGROUND: RGBColor = RGBColor(222, 110, 20);
const BACKGROUND: RGBColor = RGBColor(35, 95, 190);
const GREY: RGBColor = RGBColor(110, 110, 110);
const SCALE: RGBColor = RGBColor(200, 30, 30);
/// The colours of compared pairs, in order.
const PAIRS: [RGBColor; 4] =
    [RGBColor(35, 95, 190), RGBColor(222, 110, 20), RGBColor(40, 150, 80), RGBColor(150, 60, 160)];

/// The pictures of a track, by file name.
pub const PICTURES: [&str; 2] = ["series.png", "series.svg"];

/// The series picture.
pub struct SeriesPicture<'a>(pub &'a Series);

fn panels(s: &Series) -> usize {
    if s.pairs.is_empty() {
        4
    } else {
        5
    }
}

fn title(s: &Series) -> String {
    let spec = s.parameters.loss.resolve(s.channels().iter().map(|c| c.0 + 1).max().unwrap_or(1));
    let steps = s.steps.len();
    format!(
        "{} loss over {steps} training step{}: Dice, gradient levels, their ratio against 1 − 2/Dice, the float16 \
         loss-scale window{}",
        loss_name(s.parameters.loss.kind(), &spec),
        if steps == 1 { "" } else { "s" },
        if s.pairs.is_empty() { "" } else { ", cosines of compared gradients" }
    )
}

impl Drawing for SeriesPicture<'_> {
    fn size(&self) -> (u32, u32) {
        let w = PANEL_W * panels(self.0) as u32;
        let rows = self.0.channels().len().max(1) as u32;
        (w, title_height(&title(self.0), TITLE_SIZE, w) + ROW_H * rows)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        draw(root, self.0)
    }
}

/// The steps' values of one channel: (step, channel) for each successful step that reports it.
fn points(s: &Series, k: usize) -> Vec<(f64, &StepRecord, &StepChannel)> {
    s.ok_steps().filter_map(|st| Some((st.step as f64, st, st.channels.iter().find(|c| c.channel == k)?))).collect()
}

/// The step axis: the steps' range, padded (one step: a unit around it).
fn step_axis(s: &Series) -> std::ops::Range<f64> {
    let (lo, hi) = s
        .steps
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), st| (a.min(st.step as f64), b.max(st.step as f64)));
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.04).max(0.5);
    lo - pad..hi + pad
}

/// A log axis around the positive finite `values` (at least a decade).
fn log_axis(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        values.filter(|v| v.is_finite() && *v > 0.0).fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return (1e-6, 1.0);
    }
    let (lo, hi) = (lo / 1.5, hi * 1.5);
    let widen = (10.0 / (hi / lo)).max(1.0).sqrt();
    (lo / widen, hi * widen)
}

/// A linear axis around the finite `values`, padded, holding `must`.
fn lin_axis(values: impl Iterator<Item = f64>, must: &[f64]) -> (f64, f64) {
    let (lo, hi) = values
        .chain(must.iter().copied())
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(0.5);
    (lo - pad, hi + pad)
}

type Line = (Vec<(f64, f64)>, RGBColor);

/// A tick of the step axis: a whole number, or none between whole steps.
fn step_label(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        String::new()
    }
}

fn line<DB: DrawingBackend, CT: plotters::coord::CoordTranslate<From = (f64, f64)>>(
    chart: &mut ChartContext<'_, DB, CT>,
    (pts, colour): &Line,
    dots: bool,
) -> Drawn<DB> {
    chart.draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))?;
    if dots {
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
    }
    Ok(())
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, s: &Series) -> Drawn<DB> {
    root.fill(&WHITE)?;
    let title = title(s);
    let (head, body) = root.split_vertically(title_height(&title, TITLE_SIZE, root.dim_in_pixel().0));
    draw_title(&head, &title, TITLE_SIZE)?;
    let channels = s.channels();
    let rows = body.split_evenly((channels.len().max(1), panels(s)));
    for (r, &(k, label)) in channels.iter().enumerate() {
        let row = &rows[r * panels(s)..(r + 1) * panels(s)];
        let pts = points(s, k);
        let name = channel_short(k, label, name_of(&s.parameters.classes.names, k));
        dice_panel(&row[0], s, &pts, &name)?;
        levels_panel(&row[1], s, &pts, &name)?;
        ratio_panel(&row[2], s, &pts, &name)?;
        window_panel(&row[3], s, &pts, &name)?;
        if panels(s) == 5 {
            cosine_panel(&row[4], s, &pts, &name)?;
        }
    }
    Ok(())
}

type Lin = plotters::coord::types::RangedCoordf64;
type Log = plotters::coord::combinators::WithKeyPoints<plotters::coord::combinators::LogCoord<f64>>;
/// A chart over the steps (x) and `Y`, or the error of its drawing area.
type Built<'a, DB, Y> = std::result::Result<
    ChartContext<'a, DB, Cartesian2d<Lin, Y>>,
    DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>,
>;

/// Draws the axes of a panel: steps along x (whole numbers only), `y_desc` up the y axis, whose
/// ticks `y_label` writes.
fn axes<DB: DrawingBackend, Y: Ranged<ValueType = f64> + plotters::coord::ranged1d::ValueFormatter<f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<Lin, Y>>,
    y_desc: impl Into<String>,
    y_label: &dyn Fn(&f64) -> String,
) -> Drawn<DB> {
    chart
        .configure_mesh()
        .x_desc("step")
        .x_label_formatter(&step_label)
        .x_labels(6)
        .y_desc(y_desc)
        .y_label_formatter(y_label)
        .label_style(("sans-serif", 12))
        .light_line_style(WHITE.mix(0.0))
        .draw()
}

type Pts<'a> = [(f64, &'a StepRecord, &'a StepChannel)];

fn dice_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, s: &Series, pts: &Pts, name: &str) -> Drawn<DB> {
    let folders = pts.iter().any(|p| p.2.spread.is_some());
    let mut key = vec![
        KeyEntry::new(Swatch::Line(FOREGROUND.to_rgba()), if folders { "soft Dice (pooled)" } else { "soft Dice" }),
        KeyEntry::new(Swatch::Line(GREY.to_rgba()), "hard Dice"),
    ];
    if folders {
        key.push(KeyEntry::new(Swatch::Dot(BACKGROUND.to_rgba()), "case mean, 95 % CI"));
    }
    if pts.iter().any(|p| p.1.status == "partial") {
        key.push(KeyEntry::new(Swatch::Ring(SCALE.to_rgba()), "cases failed or missing"));
    }
    let (plot, strip) = with_key(area, &key);
    draw_key(&strip, &key)?;
    let mut chart = chart(&plot, &format!("{name}: Dice"), s, 0.0..1.02)?;
    axes(&mut chart, "Dice", &plain)?;
    line(
        &mut chart,
        &(pts.iter().map(|p| (p.0, p.2.soft_dice)).filter(|p| p.1.is_finite()).collect(), FOREGROUND),
        true,
    )?;
    line(&mut chart, &(pts.iter().map(|p| (p.0, p.2.hard_dice)).filter(|p| p.1.is_finite()).collect(), GREY), true)?;
    // steps pooled over fewer cases than the folder has
    let partial: Vec<(f64, f64)> = pts
        .iter()
        .filter(|p| p.1.status == "partial")
        .map(|p| (p.0, p.2.soft_dice))
        .filter(|p| p.1.is_finite())
        .collect();
    chart.draw_series(partial.iter().map(|&p| Circle::new(p, 7, SCALE.stroke_width(2))))?;
    for (x, _, c) in pts {
        let Some(sp) = &c.spread else { continue };
        let st = &sp.soft_dice;
        if let (Some(lo), Some(hi)) = (st.ci95_low, st.ci95_high) {
            chart.draw_series([PathElement::new(vec![(*x, lo), (*x, hi)], BACKGROUND.stroke_width(1))])?;
        }
        if let Some(m) = st.mean {
            chart.draw_series([Circle::new((*x, m), 3, BACKGROUND.filled())])?;
        }
    }
    Ok(())
}

/// A panel's chart over the steps (x) and `y`: a linear range, or a log one ([`log_y`]).
fn chart<'a, DB: DrawingBackend, Y: plotters::coord::ranged1d::AsRangedCoord<Value = f64>>(
    area: &'a DrawingArea<DB, Shift>,
    caption: &str,
    s: &Series,
    y: Y,
) -> Built<'a, DB, Y::CoordDescType> {
    ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 14))
        .margin(8)
        .margin_right(14)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(step_axis(s), y)
}

/// A log axis from `lo` to `hi`, its ticks at 1, 2 and 5 times the powers of ten.
fn log_y((lo, hi): (f64, f64)) -> Log {
    (lo..hi).log_scale().with_key_points(log_ticks(lo, hi, 2.5))
}

fn levels_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, s: &Series, pts: &Pts, name: &str) -> Drawn<DB> {
    let abs = |v: Option<f64>| v.map(f64::abs).filter(|v| *v > 0.0 && v.is_finite());
    let level = |c: &StepChannel, fg: bool| if fg { c.foreground_level } else { c.background_level };
    let fg: Vec<(f64, f64)> = pts.iter().filter_map(|p| Some((p.0, abs(level(p.2, true))?))).collect();
    let bg: Vec<(f64, f64)> = pts.iter().filter_map(|p| Some((p.0, abs(level(p.2, false))?))).collect();
    let lo: Vec<(f64, f64)> = pts.iter().filter_map(|p| Some((p.0, abs(p.2.gradient_min)?))).collect();
    let hi: Vec<(f64, f64)> = pts.iter().filter_map(|p| Some((p.0, abs(p.2.gradient_max)?))).collect();
    let two = pts.iter().all(|p| p.2.two_level);
    let mut key = Vec::new();
    if !fg.is_empty() || !bg.is_empty() {
        key.push(KeyEntry::new(Swatch::Line(FOREGROUND.to_rgba()), "|foreground level|"));
        key.push(KeyEntry::new(Swatch::Line(BACKGROUND.to_rgba()), "background level"));
    }
    if !two {
        key.push(KeyEntry::new(Swatch::Line(GREY.to_rgba()), "|min|, |max| of the gradient"));
    }
    let (plot, strip) = with_key(area, &key);
    draw_key(&strip, &key)?;
    let all = fg.iter().chain(&bg).chain(if two { [].iter() } else { lo.iter() }).chain(if two {
        [].iter()
    } else {
        hi.iter()
    });
    let axis = log_axis(all.map(|p| p.1));
    let wrt = if s.parameters.loss.resolve(2).activation == crate::loss::Activation::None { "dL/ds" } else { "dL/dz" };
    let what = if two { "gradient levels" } else { "gradient range" };
    let mut chart = chart(&plot, &format!("{name}: {what}"), s, log_y(axis))?;
    axes(&mut chart, format!("|{wrt}| per voxel"), &|v| log_label(*v))?;
    line(&mut chart, &(fg, FOREGROUND), true)?;
    line(&mut chart, &(bg, BACKGROUND), true)?;
    if !two {
        for l in [lo, hi] {
            chart.draw_series(LineSeries::new(l, GREY.stroke_width(1)))?;
        }
    }
    Ok(())
}

fn ratio_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, s: &Series, pts: &Pts, name: &str) -> Drawn<DB> {
    let neg = |v: Option<f64>| v.map(|r| -r).filter(|v| *v > 0.0 && v.is_finite());
    let measured: Vec<(f64, f64)> = pts.iter().filter_map(|p| Some((p.0, neg(p.2.level_ratio)?))).collect();
    let closed: Vec<(f64, f64)> = pts.iter().filter_map(|p| Some((p.0, neg(p.2.level_ratio_closed_form)?))).collect();
    let dice: Vec<(f64, f64)> = pts.iter().filter_map(|p| Some((p.0, neg(p.2.dice_ratio)?))).collect();
    let mut key = vec![KeyEntry::new(Swatch::Line(GREY.to_rgba()), "2/Dice − 1 (closed form)")];
    if !measured.is_empty() {
        key.push(KeyEntry::new(Swatch::Dot(FOREGROUND.to_rgba()), "measured −fg/bg"));
    }
    if !closed.is_empty() && measured.is_empty() {
        key.push(KeyEntry::new(Swatch::Dot(BACKGROUND.to_rgba()), "−(c − a)/c of dL/ds"));
    }
    let (plot, strip) = with_key(area, &key);
    draw_key(&strip, &key)?;
    let axis = log_axis(measured.iter().chain(&closed).chain(&dice).map(|p| p.1).chain([1.0]));
    let mut chart = chart(&plot, &format!("{name}: level ratio"), s, log_y((axis.0.min(0.8), axis.1)))?;
    axes(&mut chart, "−(foreground / background)", &|v| log_label(*v))?;
    chart.draw_series(LineSeries::new(dice, GREY.stroke_width(2)))?;
    if measured.is_empty() {
        chart.draw_series(closed.iter().map(|&p| Circle::new(p, 4, BACKGROUND.filled())))?;
    } else {
        chart.draw_series(measured.iter().map(|&p| Circle::new(p, 4, FOREGROUND.filled())))?;
    }
    Ok(())
}

fn window_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, s: &Series, pts: &Pts, name: &str) -> Drawn<DB> {
    let scale = f64::from(s.parameters.loss_scale.get()).log2();
    let bounds: Vec<(f64, f64, f64)> =
        pts.iter().filter_map(|p| Some((p.0, p.2.float16_window_log2_min?, p.2.float16_window_log2_max?))).collect();
    let any_empty = bounds.iter().any(|b| b.1 > b.2);
    let mut key = vec![
        KeyEntry::new(Swatch::Fill(BACKGROUND.mix(0.3)), "scales keeping every value normal"),
        KeyEntry::new(Swatch::Line(BACKGROUND.to_rgba()), "upper bound (65504/max|g|)"),
        KeyEntry::new(Swatch::Line(GREY.to_rgba()), "lower bound (2^−14/min|g|)"),
        KeyEntry::new(Swatch::Line(SCALE.to_rgba()), format!("loss scale 2^{}", trim(scale))),
    ];
    if any_empty {
        key.push(KeyEntry::new(Swatch::Dot(SCALE.to_rgba()), "no window: lower above upper"));
    }
    let (plot, strip) = with_key(area, &key);
    draw_key(&strip, &key)?;
    let (lo, hi) = lin_axis(bounds.iter().flat_map(|b| [b.1, b.2]), &[scale]);
    let mut chart = chart(&plot, &format!("{name}: float16 loss-scale window"), s, lo..hi)?;
    axes(&mut chart, "log2 of the loss scale", &plain)?;
    // shaded over each run of steps whose window holds a scale
    for run in bounds.split(|b| b.1 > b.2).filter(|r| !r.is_empty()) {
        if let [(x, a, b)] = run {
            chart.draw_series([PathElement::new(vec![(*x, *a), (*x, *b)], BACKGROUND.mix(0.5).stroke_width(6))])?;
        } else {
            let outline: Vec<(f64, f64)> =
                run.iter().map(|b| (b.0, b.2)).chain(run.iter().rev().map(|b| (b.0, b.1))).collect();
            chart.draw_series([Polygon::new(outline, BACKGROUND.mix(0.3).filled())])?;
        }
    }
    line(&mut chart, &(bounds.iter().map(|b| (b.0, b.2)).collect(), BACKGROUND), bounds.len() == 1)?;
    line(&mut chart, &(bounds.iter().map(|b| (b.0, b.1)).collect(), GREY), bounds.len() == 1)?;
    chart.draw_series(
        bounds.iter().filter(|b| b.1 > b.2).map(|b| Circle::new((b.0, (b.1 + b.2) / 2.0), 4, SCALE.filled())),
    )?;
    let x = step_axis(s);
    chart.draw_series([PathElement::new(vec![(x.start, scale), (x.end, scale)], SCALE.stroke_width(2))])?;
    Ok(())
}

/// A number with at most four decimals, trailing zeros dropped (16, 15.5; never −0).
fn trim(v: f64) -> String {
    let t = format!("{v:.4}");
    let t = t.trim_end_matches('0').trim_end_matches('.');
    if t == "-0" {
        "0".to_string()
    } else {
        t.to_string()
    }
}

/// A tick of a linear axis.
fn plain(v: &f64) -> String {
    trim(*v)
}

fn cosine_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, s: &Series, pts: &Pts, name: &str) -> Drawn<DB> {
    let lines: Vec<(String, Line)> = s
        .pairs
        .iter()
        .zip(PAIRS.iter().cycle())
        .map(|(pair, &colour)| {
            let v =
                pts.iter().filter_map(|p| Some((p.0, p.2.cosines.iter().find(|c| &c.pair == pair)?.cosine?))).collect();
            (pair.clone(), (v, colour))
        })
        .collect();
    let key: Vec<KeyEntry> =
        lines.iter().map(|(pair, (_, c))| KeyEntry::new(Swatch::Line(c.to_rgba()), pair.clone())).collect();
    let (plot, strip) = with_key(area, &key);
    draw_key(&strip, &key)?;
    let (lo, hi) = lin_axis(lines.iter().flat_map(|(_, (v, _))| v.iter().map(|p| p.1)), &[]);
    let (lo, hi) = (lo.max(-1.05), hi.min(1.05));
    let mut chart = chart(&plot, &format!("{name}: cosine of gradients"), s, lo..hi.max(lo + 0.1))?;
    axes(&mut chart, "cosine", &plain)?;
    for (_, l) in &lines {
        line(&mut chart, l, true)?;
    }
    Ok(())
}

/// The alternative text of the series picture.
pub fn alt(s: &Series) -> String {
    format!(
        "Over {} training steps, per channel: soft and hard Dice; the gradient's foreground and background levels \
         (log scale; when the gradient is not two-valued, its smallest and largest values); the level ratio as −ratio against 2/Dice − 1; the float16 loss-scale window with the loss \
         scale marked{}",
        s.steps.len(),
        if s.pairs.is_empty() { "" } else { "; the cosine of each pair of compared gradients" }
    )
}

/// Writes the pictures of a track ([`PICTURES`]) into `dir`; the series picture as a figure of
/// the track's page.
pub fn write_pictures(s: &Series, dir: &Path) -> Result<Vec<Figure>> {
    let picture = SeriesPicture(s);
    write(&picture, &dir.join(PICTURES[0]), true)?;
    let svg = super::svg_string(&picture, &dir.join(PICTURES[1]))?;
    crate::output::write_bytes(&dir.join(PICTURES[1]), true, svg.as_bytes())?;
    Ok(vec![Figure { name: "series".into(), alt: alt(s), svg }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::html::track::tests::{series, step};

    #[test]
    fn an_empty_float16_window_is_not_shaded_and_the_key_says_why() {
        let s = series(vec![step(10, 0.5, 1.0, 20.0), step(20, 0.6, 42.2, 31.9), step(30, 0.7, 2.0, 21.0)]);
        let svg = super::super::svg_string(&SeriesPicture(&s), Path::new("s.svg")).unwrap();
        assert!(svg.contains("no window: lower above upper"));
        // a band per run of steps with a window: here two single steps, no polygon across step 20
        assert!(!svg.contains("<polygon"), "no band joins the steps around an empty window");
        let s = series(vec![step(10, 0.5, 1.0, 20.0), step(20, 0.6, 2.2, 21.9), step(30, 0.7, 2.0, 21.0)]);
        let svg = super::super::svg_string(&SeriesPicture(&s), Path::new("s.svg")).unwrap();
        assert!(svg.contains("<polygon") && !svg.contains("no window"), "a band over steps that all have a window");
    }
}
