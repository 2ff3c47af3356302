//! Parts that every picture shares: titles wrapped to the canvas, a key (legend) drawn in a strip
//! of its own below a chart so that it never needs room inside the axes, tick labels of log axes,
//! and the name of a loss with the parameters that tell its variants apart.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::Drawn;
use crate::loss::{LossKind, LossSpec};

/// Height of one line of a title at `size` points.
pub fn line_height(size: u32) -> u32 {
    size * 3 / 2
}

/// `text` split into lines no wider than `width` pixels at `size` points: at " — " first, then
/// between words. A single word wider than `width` stays on its own line.
pub fn wrap(text: &str, size: u32, width: u32) -> Vec<String> {
    let font = ("sans-serif", size).into_font();
    let fits = |s: &str| font.box_size(s).map_or(s.chars().count() as u32 * size * 6 / 10, |b| b.0) <= width;
    let mut lines = Vec::new();
    for part in text.split(" — ") {
        let mut line = String::new();
        for word in part.split(' ') {
            let candidate = if line.is_empty() { word.to_string() } else { format!("{line} {word}") };
            if fits(&candidate) || line.is_empty() {
                line = candidate;
            } else {
                lines.push(std::mem::replace(&mut line, word.to_string()));
            }
        }
        lines.push(line);
    }
    // join parts again where they fit on one line
    let mut joined: Vec<String> = Vec::new();
    for l in lines {
        match joined.last_mut() {
            Some(last) if fits(&format!("{last} — {l}")) => *last = format!("{last} — {l}"),
            _ => joined.push(l),
        }
    }
    joined
}

/// Height of the title `text` at `size` points on a canvas `width` pixels wide, with a margin.
pub fn title_height(text: &str, size: u32, width: u32) -> u32 {
    wrap(text, size, width.saturating_sub(2 * TITLE_MARGIN)).len() as u32 * line_height(size) + 16
}

const TITLE_MARGIN: u32 = 12;

/// Draws `text` centred on `area`, wrapped to its width.
pub fn draw_title<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, text: &str, size: u32) -> Drawn<DB> {
    let (w, _) = area.dim_in_pixel();
    let style = ("sans-serif", size).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top));
    for (i, line) in wrap(text, size, w.saturating_sub(2 * TITLE_MARGIN)).iter().enumerate() {
        area.draw(&Text::new(
            line.clone(),
            ((w / 2) as i32, 8 + (i as u32 * line_height(size)) as i32),
            style.clone(),
        ))?;
    }
    Ok(())
}

/// What a key entry shows beside its words.
#[derive(Clone, Copy, Debug)]
pub enum Swatch {
    /// A filled box (bars, shaded bands).
    Fill(RGBAColor),
    /// A line (marks drawn as lines).
    Line(RGBAColor),
    /// A dot (scatter points).
    Dot(RGBAColor),
    /// A ring (a marked dot).
    Ring(RGBAColor),
}

/// One entry of a key.
#[derive(Clone, Debug)]
pub struct KeyEntry {
    pub swatch: Swatch,
    pub label: String,
}

impl KeyEntry {
    pub fn new(swatch: Swatch, label: impl Into<String>) -> Self {
        KeyEntry { swatch, label: label.into() }
    }
}

const KEY_FONT: u32 = 13;
const KEY_ROW: u32 = 18;
const SWATCH_W: u32 = 22;
const KEY_GAP: u32 = 18;

/// The entries of a key in rows that fit `width` pixels: each row a list of (x offset, entry).
fn key_rows(entries: &[KeyEntry], width: u32) -> Vec<Vec<(u32, &KeyEntry)>> {
    let font = ("sans-serif", KEY_FONT).into_font();
    let mut rows: Vec<Vec<(u32, &KeyEntry)>> = vec![Vec::new()];
    let mut x = 0;
    for e in entries {
        let w = SWATCH_W + font.box_size(&e.label).map_or(e.label.chars().count() as u32 * 8, |b| b.0);
        if x > 0 && x + w > width {
            rows.push(Vec::new());
            x = 0;
        }
        rows.last_mut().expect("a row").push((x, e));
        x += w + KEY_GAP;
    }
    rows
}

/// Height of the strip that [`draw_key`] needs for `entries` on `width` pixels.
pub fn key_height(entries: &[KeyEntry], width: u32) -> u32 {
    if entries.is_empty() {
        0
    } else {
        key_rows(entries, width.saturating_sub(20)).len() as u32 * KEY_ROW + 8
    }
}

/// Splits a panel into a chart area and a strip below it for the key of `entries`.
pub fn with_key<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[KeyEntry],
) -> (DrawingArea<DB, Shift>, DrawingArea<DB, Shift>) {
    let (w, h) = area.dim_in_pixel();
    let key = key_height(entries, w).min(h / 2);
    area.split_vertically(h - key)
}

/// Draws `entries` left to right in rows, starting 10 pixels from the left of `area`.
pub fn draw_key<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, entries: &[KeyEntry]) -> Drawn<DB> {
    let (w, _) = area.dim_in_pixel();
    let font = ("sans-serif", KEY_FONT).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
    for (r, row) in key_rows(entries, w.saturating_sub(20)).iter().enumerate() {
        let y = (r as u32 * KEY_ROW + KEY_ROW / 2) as i32;
        for &(x, e) in row {
            let x = x as i32 + 10;
            match e.swatch {
                Swatch::Fill(c) => area.draw(&Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled()))?,
                Swatch::Line(c) => area.draw(&PathElement::new(vec![(x, y), (x + 14, y)], c.stroke_width(2)))?,
                Swatch::Dot(c) => area.draw(&Circle::new((x + 7, y), 4, c.filled()))?,
                Swatch::Ring(c) => area.draw(&Circle::new((x + 7, y), 6, c.stroke_width(2)))?,
            }
            area.draw(&Text::new(e.label.clone(), (x + SWATCH_W as i32, y), font.clone()))?;
        }
    }
    Ok(())
}

/// Top of a log count axis whose highest bar is `peak`: a little above it (the key is drawn
/// outside the axes, so no room is kept for it).
pub fn log_count_top(peak: u64) -> f64 {
    peak.max(1) as f64 * 2.0
}

/// The ticks of a log axis over `[lo, hi]`: 1, 2 and 5 times each power of ten when the axis
/// spans at most `dense` decades, else the powers of ten (every k-th one, so that there are about
/// eight at most).
pub fn log_ticks(lo: f64, hi: f64, dense: f64) -> Vec<f64> {
    if lo.is_nan() || lo <= 0.0 || hi.is_nan() || hi <= lo || !hi.is_finite() {
        return Vec::new();
    }
    let decades = (hi / lo).log10();
    let mantissas: &[f64] = if decades <= dense { &[1.0, 2.0, 5.0] } else { &[1.0] };
    let step = (decades / 8.0).ceil().max(1.0) as i32;
    let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    (first..=last)
        .filter(|e| step == 1 || e.rem_euclid(step) == 0)
        .flat_map(|e| mantissas.iter().map(move |m| m * 10f64.powi(e)))
        .filter(|v| (lo..=hi).contains(v))
        .collect()
}

/// Label of a tick of a log axis: plain from 0.1 to below 10^4, else in scientific notation
/// with a one-digit mantissa (the ticks of [`log_ticks`]).
pub fn log_label(v: f64) -> String {
    if v.is_nan() || v <= 0.0 {
        return String::new();
    }
    let e = v.log10().floor();
    let (m, e) = match v / 10f64.powf(e) {
        m if m > 9.95 => (1.0, e + 1.0),
        m => (m, e),
    };
    if (-1.0..=3.0).contains(&e) {
        let digits = if e < 0.0 { (-e) as usize } else { 0 };
        format!("{:.*}", digits, m.round() * 10f64.powf(e))
    } else {
        format!("{:.0}e{e:.0}", m.round())
    }
}

/// The half of the bar `[x0, x1]` where one side is drawn: the left half for the background
/// (`half` 0), the right half for the foreground (`half` 1), so that neither hides the other.
pub fn half_span(x0: f64, x1: f64, half: usize) -> (f64, f64) {
    let m = 0.5 * (x0 + x1);
    if half == 0 {
        (x0, m)
    } else {
        (m, x1)
    }
}

/// The name of `kind` with the parameters of `spec` that set its variant apart: Tversky's α and
/// β, the generalized Dice weights, the λ of dice+ce.
pub fn loss_name(kind: LossKind, spec: &LossSpec) -> String {
    match kind {
        LossKind::Tversky => format!("{kind} (α = {}, β = {})", spec.alpha, spec.beta),
        LossKind::GeneralizedDice => format!("{kind} (weights {})", spec.w_type),
        LossKind::DiceCe => format!("{kind} (λ_dice = {}, λ_ce = {})", spec.lambda_dice, spec.lambda_ce),
        _ => kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_are_labelled_once_each_and_every_axis_has_some() {
        for (lo, hi) in [(1.3e-5, 1.3e-4), (2.1e-5, 4.6e-4), (1e-9, 1.0), (3e-3, 0.4), (0.5, 2e4), (1e-30, 1e-2)] {
            let ticks = log_ticks(lo, hi, 2.5);
            assert!(ticks.len() >= 2, "{lo}..{hi}: {ticks:?}");
            assert!(ticks.len() <= 12, "{lo}..{hi}: {ticks:?}");
            assert!(ticks.iter().all(|t| (lo..=hi).contains(t)));
            let labels: Vec<String> = ticks.iter().map(|&t| log_label(t)).collect();
            let mut unique = labels.clone();
            unique.dedup();
            assert_eq!(labels.len(), unique.len(), "{labels:?}");
            assert!(labels.iter().all(|l| !l.is_empty()));
        }
        assert_eq!(log_ticks(1.3e-5, 1.3e-4, 2.5), vec![2e-5, 5e-5, 1e-4]);
        assert_eq!(log_ticks(1e-7, 1e-3, 2.5).len(), 5);
        assert_eq!(log_label(1e-5), "1e-5");
        assert_eq!(log_label(5e-5), "5e-5");
        assert_eq!(log_label(0.05), "5e-2");
        assert_eq!(log_label(0.5), "0.5");
        assert_eq!(log_label(2000.0), "2000");
        assert_eq!(log_label(1e4), "1e4");
    }

    #[test]
    fn the_count_axis_ends_within_a_small_factor_of_the_highest_bar() {
        for peak in [1, 7, 19_876, 3_000_000] {
            let top = log_count_top(peak);
            assert!(top >= peak as f64 && top <= 3.0 * peak as f64, "{peak} -> {top}");
        }
    }

    #[test]
    fn the_two_sides_of_a_bin_are_drawn_side_by_side() {
        let (bg, fg) = (half_span(-4.2, -4.1, 0), half_span(-4.2, -4.1, 1));
        assert!(bg.1 <= fg.0, "{bg:?} {fg:?}");
        assert_eq!((bg.0, fg.1), (-4.2, -4.1));
    }

    #[test]
    fn a_long_title_is_wrapped_to_the_width_and_short_ones_are_not() {
        super::super::ensure_font();
        let font = ("sans-serif", 22).into_font();
        let long =
            "dice loss gradient w.r.t. logits (through sigmoid) — loss 0.2830, two-level structure does not hold";
        let lines = wrap(long, 22, 796);
        assert!(lines.len() >= 2, "{lines:?}");
        for l in &lines {
            assert!(font.box_size(l).unwrap().0 <= 796, "{l}");
        }
        let words = |t: &str| t.split_whitespace().filter(|w| *w != "—").map(String::from).collect::<Vec<_>>();
        assert_eq!(words(&lines.join(" ")), words(long));
        assert_eq!(wrap("dice loss", 22, 796), vec!["dice loss".to_string()]);
        assert!(title_height(long, 22, 820) > title_height("dice loss", 22, 820));
    }

    #[test]
    fn tversky_names_its_weights() {
        let spec = LossSpec { alpha: 0.3, beta: 0.7, ..LossSpec::default() };
        assert_eq!(loss_name(LossKind::Tversky, &spec), "tversky (α = 0.3, β = 0.7)");
        assert_eq!(loss_name(LossKind::Dice, &spec), "dice");
    }
}
