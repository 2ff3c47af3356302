//! Pictures of a data set: the pooled |gradient| histogram per channel (foreground and background
//! side by side in each log bin, float16's normal range at the run's loss scale shaded), and the
//! per-case gradient levels against case Dice (one point per case and channel, the outliers of
//! [`crate::report::outliers`] and the case of lowest Dice ringed and named).

use crate::report::wording::channel as channel_title;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::histogram::{normal_range, normal_range_label, NORMAL_RANGE};
use super::parts::{
    draw_key, draw_title, half_span, log_count_top, log_label, log_ticks, loss_name, title_height, with_key, KeyEntry,
    Swatch,
};
use super::{write, Drawing, Drawn};
use crate::analysis::LogHistogram;
use crate::error::Result;
use crate::report::outliers::{outliers, Outlier, THRESHOLD};
use crate::report::record::CaseRecord;
use crate::report::summary::{ChannelSummary, Summary};

const W: u32 = 700;
const H: u32 = 360;
const TITLE_SIZE: u32 = 20;
const FOREGROUND: RGBColor = RGBColor(222, 110, 20);
const BACKGROUND: RGBColor = RGBColor(35, 95, 190);
const MARKED: RGBColor = RGBColor(200, 30, 30);
/// The most cases named in one panel of the levels.
pub(super) const MAX_NAMED: usize = 8;
/// Pixels between the names of cases.
const LABEL_GAP: i32 = 13;

fn grid(n: usize) -> (usize, usize) {
    let cols = if n <= 2 { 1 } else { 2 };
    (n.div_ceil(cols).max(1), cols)
}

fn size(n: usize, title: &str) -> (u32, u32) {
    let (rows, cols) = grid(n);
    let w = W * cols as u32;
    (w, title_height(title, TITLE_SIZE, w) + H * rows as u32)
}

fn pooled_title(s: &Summary) -> String {
    format!(
        "|{} loss gradient| pooled over {} cases — log bins, {} per factor 2; background and foreground side by side",
        loss_name(s.loss_kind(), &s.parameters.loss.resolve(s.channels.len().max(1))),
        s.cases.ok,
        LogHistogram::BINS_PER_OCTAVE
    )
}

/// log10 of the edges of log bin `b` (the first bin, which starts at 0, drawn as wide as its
/// neighbour).
fn bin_x(b: usize) -> (f64, f64) {
    let (lo, hi) = LogHistogram::edges(b);
    let x1 = hi.log10();
    let x0 = if lo > 0.0 { lo.log10() } else { x1 - 0.1 };
    (x0, x1)
}

/// The bars of one side of a pooled histogram: bin b's left half for the background (`half` 0),
/// its right half for the foreground (`half` 1).
fn pooled_bars(counts: &[u64], color: RGBColor, half: usize) -> Vec<Rectangle<(f64, f64)>> {
    let style = ShapeStyle { color: color.mix(0.85), filled: true, stroke_width: 1 };
    (0..counts.len().min(LogHistogram::BINS))
        .filter(|&b| counts[b] > 0)
        .map(|b| {
            let (x0, x1) = bin_x(b);
            let (a, z) = half_span(x0, x1, half);
            Rectangle::new([(a, 0.5), (z, counts[b] as f64)], style)
        })
        .collect()
}

fn draw_pooled<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, s: &Summary) -> Drawn<DB> {
    root.fill(&WHITE)?;
    let title = pooled_title(s);
    let (head, body) = root.split_vertically(title_height(&title, TITLE_SIZE, root.dim_in_pixel().0));
    draw_title(&head, &title, TITLE_SIZE)?;
    let (rows, cols) = grid(s.channels.len());
    for (area, ch) in body.split_evenly((rows, cols)).iter().zip(&s.channels) {
        draw_pooled_panel(area, s, ch)?;
    }
    Ok(())
}

fn draw_pooled_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, s: &Summary, ch: &ChannelSummary) -> Drawn<DB> {
    let h = &ch.pooled_histogram;
    let used: Vec<usize> = (0..LogHistogram::BINS).filter(|&b| h.foreground[b] + h.background[b] > 0).collect();
    let (left, right) = match (used.first(), used.last()) {
        (Some(&a), Some(&b)) => (bin_x(a).0 - 0.1, bin_x(b).1 + 0.1),
        _ => (-8.0, -1.0),
    };
    let peak = h.foreground.iter().chain(&h.background).copied().max().unwrap_or(1);
    let top = log_count_top(peak);
    let scale = f64::from(s.parameters.loss_scale);
    let range = normal_range(scale);
    let [a, b] = range.map(f64::log10);
    let band = (a.max(left), b.min(right));
    let shown = band.0 < band.1;
    let mut key = vec![
        KeyEntry::new(Swatch::Fill(NORMAL_RANGE.mix(0.3)), normal_range_label(scale, range, shown)),
        KeyEntry::new(Swatch::Fill(BACKGROUND.to_rgba()), format!("background (g = 0): {} voxels", sum(&h.background))),
        KeyEntry::new(Swatch::Fill(FOREGROUND.to_rgba()), format!("foreground (g = 1): {} voxels", sum(&h.foreground))),
    ];
    if h.zeros != [0, 0] {
        key.push(KeyEntry::new(
            Swatch::Fill(WHITE.to_rgba()),
            format!("exactly 0 (not drawn): {} bg, {} fg", h.zeros[0], h.zeros[1]),
        ));
    }
    let (plot, strip) = with_key(area, &key);
    draw_key(&strip, &key)?;
    let mut chart = ChartBuilder::on(&plot)
        .caption(
            format!("{}: {} cases", channel_title(ch.channel, ch.label, ch.name.as_deref()), ch.cases),
            ("sans-serif", 15),
        )
        .margin(10)
        .margin_bottom(4)
        .x_label_area_size(42)
        .y_label_area_size(60)
        .build_cartesian_2d(left..right, (0.5..top).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("log10 |gradient| per voxel")
        .y_desc("voxels (log scale)")
        .y_label_formatter(&|v| if *v >= 1e4 { format!("{v:.0e}") } else { format!("{v:.0}") })
        .label_style(("sans-serif", 12))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    if shown {
        chart.draw_series([Rectangle::new([(band.0, 0.5), (band.1, top)], NORMAL_RANGE.mix(0.12).filled())])?;
    }
    let line = ShapeStyle { color: NORMAL_RANGE.mix(0.8), filled: false, stroke_width: 1 };
    for e in [a, b].into_iter().filter(|e| (left..=right).contains(e)) {
        chart.draw_series(DashedLineSeries::new(vec![(e, 0.5), (e, top)], 3, 3, line))?;
    }
    chart.draw_series(pooled_bars(&h.background, BACKGROUND, 0))?;
    chart.draw_series(pooled_bars(&h.foreground, FOREGROUND, 1))?;
    Ok(())
}

fn sum(v: &[u64]) -> u64 {
    v.iter().sum()
}

fn levels_title(s: &Summary) -> String {
    format!(
        "Per-case gradient levels (mean on foreground / background) against soft Dice, {} cases — outliers ringed and \
         named",
        s.cases.ok
    )
}

/// One case's dot pair on a channel.
struct CasePoint<'a> {
    case: &'a str,
    dice: f64,
    foreground: Option<f64>,
    background: Option<f64>,
}

/// Why a case is named in the levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Named {
    /// Flagged by [`outliers`] on this channel.
    Outlier,
    /// The case of lowest soft Dice on this channel.
    LowestDice,
}

/// The cases a panel of the levels names, with why: the outliers of the channel (by the one
/// definition, [`outliers`]), the farthest first, at most [`MAX_NAMED`]; and the case with the
/// lowest soft Dice, the one a reader looks for first. Returns the names and how many outliers
/// were left unnamed.
pub(super) fn named_cases(records: &[CaseRecord], channel: usize) -> (Vec<(String, Named)>, usize) {
    let mut flagged: Vec<Outlier> = outliers(records).into_iter().filter(|o| o.channel == channel).collect();
    flagged.sort_by(|a, b| b.z.abs().total_cmp(&a.z.abs()));
    let mut names: Vec<(String, Named)> = Vec::new();
    for o in &flagged {
        if !names.iter().any(|(c, _)| *c == o.case) {
            names.push((o.case.clone(), Named::Outlier));
        }
    }
    let unnamed = names.len().saturating_sub(MAX_NAMED);
    names.truncate(MAX_NAMED);
    let lowest = records
        .iter()
        .filter(|r| r.is_ok())
        .filter_map(|r| r.channels.iter().find(|c| c.channel == channel).map(|c| (r.case.as_str(), c.soft_dice)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((case, _)) = lowest {
        if !names.iter().any(|(c, _)| c == case) {
            names.push((case.to_string(), Named::LowestDice));
        }
    }
    (names, unnamed)
}

/// The log axis of |level| over `mags`: a little beyond the values, and at least a factor 10
/// (so that the axis has a labelled tick whatever the values).
pub(super) fn level_axis(mags: &[f64]) -> (f64, f64) {
    let (lo, hi) = mags.iter().fold((f64::INFINITY, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
    if !lo.is_finite() || hi <= 0.0 {
        return (1e-9, 1.0);
    }
    let (lo, hi) = (lo / 1.6, hi * 1.6);
    let widen = (10.0 / (hi / lo)).max(1.0).sqrt();
    (lo / widen, hi * widen)
}

fn draw_levels<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, s: &Summary, records: &[CaseRecord]) -> Drawn<DB> {
    root.fill(&WHITE)?;
    let title = levels_title(s);
    let (head, body) = root.split_vertically(title_height(&title, TITLE_SIZE, root.dim_in_pixel().0));
    draw_title(&head, &title, TITLE_SIZE)?;
    let (rows, cols) = grid(s.channels.len());
    for (area, ch) in body.split_evenly((rows, cols)).iter().zip(&s.channels) {
        draw_levels_panel(area, ch, records)?;
    }
    Ok(())
}

fn levels_key(named: &[(String, Named)], unnamed: usize) -> Vec<KeyEntry> {
    let mut key = vec![
        KeyEntry::new(Swatch::Dot(FOREGROUND.to_rgba()), "foreground (negative for Dice)"),
        KeyEntry::new(Swatch::Dot(BACKGROUND.to_rgba()), "background"),
    ];
    if named.iter().any(|n| n.1 == Named::Outlier) {
        let more = if unnamed > 0 { format!("; {unnamed} more in summary") } else { String::new() };
        key.push(KeyEntry::new(
            Swatch::Ring(MARKED.to_rgba()),
            format!("outlier: |modified z| > {THRESHOLD} on level ratio or float16 window{more}"),
        ));
    }
    if named.iter().any(|n| n.1 == Named::LowestDice) {
        key.push(KeyEntry::new(Swatch::Ring(BLACK.to_rgba()), "lowest soft Dice"));
    }
    key
}

fn draw_levels_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    ch: &ChannelSummary,
    records: &[CaseRecord],
) -> Drawn<DB> {
    let pts: Vec<CasePoint> = records
        .iter()
        .filter(|r| r.is_ok())
        .flat_map(|r| r.channels.iter().filter(|c| c.channel == ch.channel).map(move |c| (r.case.as_str(), c)))
        .map(|(case, c)| CasePoint {
            case,
            dice: c.soft_dice.clamp(0.0, 1.0),
            foreground: c.foreground_level.filter(|v| *v != 0.0).map(f64::abs),
            background: c.background_level.filter(|v| *v != 0.0).map(f64::abs),
        })
        .collect();
    let mags: Vec<f64> = pts.iter().flat_map(|p| [p.foreground, p.background]).flatten().collect();
    let (ymin, ymax) = level_axis(&mags);
    let (named, unnamed) = named_cases(records, ch.channel);
    let key = levels_key(&named, unnamed);
    let (plot, strip) = with_key(area, &key);
    draw_key(&strip, &key)?;
    let mut chart = ChartBuilder::on(&plot)
        .caption(channel_title(ch.channel, ch.label, ch.name.as_deref()), ("sans-serif", 15))
        .margin(10)
        .margin_bottom(4)
        .x_label_area_size(42)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..1.0, (ymin..ymax).log_scale().with_key_points(log_ticks(ymin, ymax, 2.5)))?;
    chart
        .configure_mesh()
        .x_desc("soft Dice of the case")
        .y_desc("|mean gradient|")
        .y_label_formatter(&|v| log_label(*v))
        .label_style(("sans-serif", 12))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (side, color) in [(1, FOREGROUND), (2, BACKGROUND)] {
        let series = pts.iter().filter_map(|p| {
            let v = if side == 1 { p.foreground } else { p.background }?;
            Some(Circle::new((p.dice, v), 3, color.filled()))
        });
        chart.draw_series(series)?;
    }
    let mut labels = Vec::new();
    for (case, why) in &named {
        let Some(p) = pts.iter().find(|p| p.case == case) else { continue };
        let ring = if *why == Named::Outlier { MARKED } else { BLACK };
        let dots: Vec<f64> = [p.foreground, p.background].into_iter().flatten().collect();
        chart.draw_series(dots.iter().map(|&v| Circle::new((p.dice, v), 6, ring.stroke_width(2))))?;
        if let Some(&v) = dots.first() {
            labels.push((chart.backend_coord(&(p.dice, v)).1, (p.dice, v), case.as_str(), ring));
        }
    }
    // beside the upper dot, on the side with room, moved down where labels would overlap
    labels.sort_by_key(|l| l.0);
    let mut below = i32::MIN;
    for (y, at, case, color) in labels {
        let dy = (below + LABEL_GAP).max(y) - y;
        below = y + dy;
        let (dx, anchor) = if at.0 > 0.75 { (-12, HPos::Right) } else { (12, HPos::Left) };
        let font = ("sans-serif", 12).into_font();
        let (w, h) = font.box_size(case).map_or((60, 12), |(w, h)| (w as i32, h as i32));
        let (x0, x1) = if dx < 0 { (dx - w - 2, dx + 2) } else { (dx - 2, dx + w + 2) };
        let card = Rectangle::new([(x0, dy - h / 2 - 1), (x1, dy + h / 2 + 1)], WHITE.mix(0.85).filled());
        let style = font.color(&color).pos(Pos::new(anchor, VPos::Center));
        let leader = PathElement::new(vec![(0, 0), (dx, dy)], color.mix(0.6));
        chart.draw_series([EmptyElement::at(at) + leader + card + Text::new(case.to_string(), (dx, dy), style)])?;
    }
    Ok(())
}

/// The pooled histogram of a data set.
struct Pooled<'a>(&'a Summary);
/// The per-case levels against Dice.
struct Levels<'a>(&'a Summary, &'a [CaseRecord]);

impl Drawing for Pooled<'_> {
    fn size(&self) -> (u32, u32) {
        size(self.0.channels.len(), &pooled_title(self.0))
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        draw_pooled(root, self.0)
    }
}

impl Drawing for Levels<'_> {
    fn size(&self) -> (u32, u32) {
        size(self.0.channels.len(), &levels_title(self.0))
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
                "|{} loss gradient| pooled over {} cases, per channel: voxel counts in four bins per factor of 2, foreground \
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
                 the case's soft Dice, {} cases; outlying cases ringed and named",
                s.cases.ok
            ),
            super::svg_string(&Levels(s, records), path)?,
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of one channel-1 case with soft Dice `dice` and levels `fg`, `bg`.
    fn record(case: &str, dice: f64, fg: f64, bg: f64) -> CaseRecord {
        let row = serde_json::json!({
            "channel": 1, "label": 1, "foreground_voxels": 100, "soft_dice": dice, "hard_dice": dice,
            "loss_term": 1.0 - dice, "foreground_level": fg, "background_level": bg, "fit_a": bg - fg,
            "fit_c": bg, "fit_r2": 1.0, "two_level": true, "dynamic_range": fg.abs() / bg.abs(),
            "float16_window_log2_min": 10.0, "float16_window_log2_max": 20.0, "float16_zero_share": 0.0,
            "float16_subnormal_share": 0.0, "float16_overflow_share": 0.0, "float16_l1_lost_share": 0.0,
            "bfloat16_zero_share": 0.0, "bfloat16_subnormal_share": 0.0, "bfloat16_overflow_share": 0.0,
            "bfloat16_l1_lost_share": 0.0, "comparisons": []
        });
        let mut r = CaseRecord::failed(case, "l", "p", String::new());
        (r.status, r.error, r.channels) = ("ok".into(), None, vec![serde_json::from_value(row).unwrap()]);
        r
    }

    #[test]
    fn the_levels_name_the_outliers_farthest_first_then_the_lowest_dice_at_most_a_few() {
        // level ratio 3 for every case but "far" (ratio 300) and "farther" (ratio 3000)
        let mut records: Vec<CaseRecord> = (0..20)
            .map(|i| record(&format!("c{i:02}"), 0.5 + 0.01 * i as f64, -3e-4 * (1.0 + 0.01 * i as f64), 1e-4))
            .collect();
        records.push(record("far", 0.6, -3e-2, 1e-4));
        records.push(record("farther", 0.7, -3e-1, 1e-4));
        let (named, unnamed) = named_cases(&records, 1);
        let want: Vec<(String, Named)> =
            vec![("farther".into(), Named::Outlier), ("far".into(), Named::Outlier), ("c00".into(), Named::LowestDice)];
        assert_eq!((named, unnamed), (want, 0));
        // many outliers: a few named, the count of the rest said
        let many: Vec<CaseRecord> = (0..30)
            .map(|i| match i % 3 {
                0 => record(&format!("o{i:02}"), 0.3, -3e-1 * (1.0 + i as f64), 1e-4),
                _ => record(&format!("c{i:02}"), 0.5, -3e-4 * (1.0 + 0.001 * i as f64), 1e-4),
            })
            .collect();
        let (named, unnamed) = named_cases(&many, 1);
        let flagged = outliers(&many).iter().filter(|o| o.channel == 1).count();
        assert!(flagged > MAX_NAMED, "{flagged}");
        assert_eq!(named.iter().filter(|n| n.1 == Named::Outlier).count(), MAX_NAMED);
        assert_eq!(unnamed, flagged - MAX_NAMED);
        assert!(named.len() <= MAX_NAMED + 1);
    }

    #[test]
    fn the_level_axis_spans_a_decade_at_least_and_holds_every_value() {
        let v = [1.4e-5, 2.6e-5];
        let (lo, hi) = level_axis(&v);
        assert!(hi / lo >= 10.0 - 1e-9 && lo < v[0] && hi > v[1]);
        assert!(log_ticks(lo, hi, 2.5).len() >= 2);
        let (lo, hi) = level_axis(&[1e-8, 1e-2]);
        assert!(hi / lo < 1e6 * 3.0, "no more than a little beyond the values");
    }
}
