//! `slices.png`: per channel one row — the ground truth, the probability, the gradient with
//! respect to the probabilities and (with an activation) with respect to the logits — each in
//! three orthogonal planes, shown to scale (voxel sizes from the header) in the orientation of
//! [`crate::analysis::views::orientation`], with the letters of the patient's directions at the
//! edges.
//!
//! Gradients use a diverging map centred at 0, from −m to +m with m the largest |gradient| of
//! that quantity over the whole volume: one scale for the three planes of a quantity, and
//! separate scales for dL/ds and dL/dz (their units differ: per unit of probability, per unit of
//! logit). The closed-form levels are marked on the colour bar of dL/ds when it is two-valued.
//! Pixels are nearest-neighbour samples of the voxels, so each voxel's colour is exactly its
//! value's.

/// The ground truth's colour for a voxel of the ignore label.
const IGNORED_GREY: [u8; 3] = [128, 128, 128];

use crate::report::wording::{channel as channel_title, name_of};
use plotters::coord::Shift;
use plotters::element::BitMapElement;
use plotters::prelude::*;

use super::colour::{diverging, grey};
use super::Drawn;
use crate::analysis::views::slices::Plane;
use crate::analysis::views::{ChannelView, GradientView, Views};
use crate::loss::Activation;
use crate::report::Report;

/// The largest side of a plane, in pixels.
const BOX: u32 = 132;
/// Room for the letters around a plane.
const MARGIN: u32 = 16;
const CELL: u32 = BOX + 2 * MARGIN;
const GROUP_GAP: u32 = 18;
const TITLE_H: u32 = 64;
const ROW_HEAD: u32 = 44;
const BAR_H: u32 = 58;
const FOOT_H: u32 = 58;
const SIDE: u32 = 16;

/// What a group of three planes shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantity {
    Truth,
    Probability,
    /// dL/ds with an activation (the Dice-type part).
    ProbabilityGradient,
    /// The gradient with respect to the file's values.
    Gradient,
}

/// The groups of a row, in order.
pub fn quantities(views: &Views) -> Vec<Quantity> {
    let with_probability = views.channels.iter().any(|c| c.probability.is_some());
    let mut q = vec![Quantity::Truth, Quantity::Probability];
    if with_probability {
        q.push(Quantity::ProbabilityGradient);
    }
    q.push(Quantity::Gradient);
    q
}

/// The canvas size.
pub fn canvas_size(report: &Report) -> (u32, u32) {
    let Some(v) = &report.views else { return (400, 200) };
    let groups = quantities(v).len() as u32;
    let w = 2 * SIDE + groups * 3 * CELL + (groups - 1) * GROUP_GAP;
    let rows = v.channels.len().max(1) as u32;
    (w, TITLE_H + rows * (ROW_HEAD + CELL + BAR_H) + FOOT_H)
}

/// Where a plane's picture lies on the canvas: `(x, y, width, height)` in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlaneRect {
    pub channel: usize,
    pub quantity: Quantity,
    /// Index into the channel's planes (sagittal, coronal, axial).
    pub plane: usize,
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// Pixels per millimetre of a channel's planes: the largest plane side fills [`BOX`].
fn px_per_mm(planes: &[Plane]) -> f64 {
    let extent = planes
        .iter()
        .flat_map(|p| [p.width as f64 * mm(p.pixel_mm[0]), p.height as f64 * mm(p.pixel_mm[1])])
        .fold(0.0, f64::max);
    if extent > 0.0 {
        f64::from(BOX) / extent
    } else {
        1.0
    }
}

/// A voxel size as drawn (a size that is 0 or not finite is drawn as 1 mm).
fn mm(v: f64) -> f64 {
    if v.is_finite() && v > 0.0 {
        v
    } else {
        1.0
    }
}

/// The rectangles of every plane picture, in drawing order.
pub fn layout(report: &Report) -> Vec<PlaneRect> {
    let Some(v) = &report.views else { return Vec::new() };
    let qs = quantities(v);
    let mut out = Vec::new();
    for (row, ch) in v.channels.iter().enumerate() {
        let top = TITLE_H + row as u32 * (ROW_HEAD + CELL + BAR_H) + ROW_HEAD;
        let scale = px_per_mm(&ch.slices.planes);
        for (g, &quantity) in qs.iter().enumerate() {
            let left = SIDE + g as u32 * (3 * CELL + GROUP_GAP);
            for (i, p) in ch.slices.planes.iter().enumerate() {
                let w = ((p.width as f64 * mm(p.pixel_mm[0]) * scale).round() as u32).clamp(1, BOX);
                let h = ((p.height as f64 * mm(p.pixel_mm[1]) * scale).round() as u32).clamp(1, BOX);
                let x = left + i as u32 * CELL + MARGIN + (BOX - w) / 2;
                let y = top + MARGIN + (BOX - h) / 2;
                out.push(PlaneRect { channel: ch.channel, quantity, plane: i, x, y, width: w, height: h });
            }
        }
    }
    out
}

/// The values of a plane for a quantity, and how they are coloured.
fn colour_of(ch: &ChannelView, q: Quantity, p: &Plane) -> Option<(Vec<[u8; 3]>, usize)> {
    let n = p.width * p.height;
    let colours: Vec<[u8; 3]> = match q {
        Quantity::Truth => p
            .truth
            .iter()
            .map(|&t| match t {
                1 => [255, 255, 255],
                2 => IGNORED_GREY,
                _ => [0, 0, 0],
            })
            .collect(),
        Quantity::Probability => p.probability.iter().map(|&s| grey(f64::from(s) / 255.0)).collect(),
        Quantity::Gradient => p.gradient.iter().map(|&g| diverging(f64::from(g), ch.gradient.scale)).collect(),
        Quantity::ProbabilityGradient => {
            let (vals, view) = (p.probability_gradient.as_ref()?, &ch.probability.as_ref()?.view);
            vals.iter().map(|&g| diverging(f64::from(g), view.scale)).collect()
        }
    };
    (colours.len() == n).then_some((colours, p.width))
}

/// The plane's picture resampled to `w × h` pixels (nearest voxel), as RGB bytes.
fn resample(colours: &[[u8; 3]], width: usize, height: usize, w: u32, h: u32) -> Vec<u8> {
    let mut buf = Vec::with_capacity((w * h * 3) as usize);
    for py in 0..h as usize {
        let row = (py * height / h as usize).min(height - 1);
        for px in 0..w as usize {
            let col = (px * width / w as usize).min(width - 1);
            buf.extend_from_slice(&colours[row * width + col]);
        }
    }
    buf
}

fn header(q: Quantity, act: Activation, dice_part_only: bool, ignores: bool) -> String {
    match (q, act) {
        (Quantity::Truth, _) if ignores => "ground truth g (white = foreground; grey = ignore label)".into(),
        (Quantity::Truth, _) => "ground truth g (white = foreground)".into(),
        (Quantity::Probability, Activation::None) => "prediction s (probability)".into(),
        (Quantity::Probability, a) => format!("prediction s = {a}(z)"),
        (Quantity::ProbabilityGradient, _) if dice_part_only => "dL/ds, Dice part (per unit probability)".into(),
        (Quantity::ProbabilityGradient, _) => "dL/ds (per unit probability)".into(),
        (Quantity::Gradient, Activation::None) => "dL/ds, gradient w.r.t. the probabilities".into(),
        (Quantity::Gradient, a) => format!("dL/dz through the {a} (per unit logit)"),
    }
}

/// Draws the slices picture.
pub fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, report: &Report) -> Drawn<DB> {
    root.fill(&WHITE)?;
    let Some(views) = &report.views else {
        return root.draw_text("no views measured", &("sans-serif", 16).into_font().color(&BLACK), (10, 10));
    };
    let (w, h) = root.dim_in_pixel();
    let act = report.parameters.spec.activation;
    let name = super::parts::loss_name(report.parameters.spec.loss, &report.parameters.spec);
    let two_valued = report.two_valued_closed_form;
    let title = if two_valued {
        format!("{name} loss gradient in three planes per channel — w.r.t. probabilities it is −a·g + c: the ground truth, negated and scaled")
    } else {
        format!(
            "{name} loss gradient in three planes per channel — for this loss it is not two-valued w.r.t. \
             probabilities (it depends on s, or holds a cross-entropy part)"
        )
    };
    let big = ("sans-serif", 19).into_font().color(&BLACK);
    let text = ("sans-serif", 13).into_font().color(&BLACK);
    let small = ("sans-serif", 11).into_font().color(&BLACK);
    root.draw_text(&title, &big, (SIDE as i32, 14))?;
    let sub = match (act, two_valued) {
        (Activation::None, _) => format!(
            "loss {:.4}; two-level structure {}",
            report.loss.value,
            if report.two_level_holds { "holds on every channel" } else { "does not hold" }
        ),
        (a, true) => format!(
            "loss {:.4}; w.r.t. probabilities two values per channel (−a·g + c); w.r.t. the logits spread by the {a}",
            report.loss.value
        ),
        (a, false) => format!("loss {:.4}; the gradient w.r.t. the logits through the {a}", report.loss.value),
    };
    root.draw_text(&sub, &text, (SIDE as i32, 40))?;
    let qs = quantities(views);
    let rects = layout(report);
    for (row, ch) in views.channels.iter().enumerate() {
        let top = (TITLE_H + row as u32 * (ROW_HEAD + CELL + BAR_H)) as i32;
        let name = name_of(&report.parameters.channel_names, ch.channel);
        let mut head = format!("{}: {}", channel_title(ch.channel, ch.label, name), where_(&ch.slices));
        if let Some(r) = report.channels.iter().find(|r| r.channel == ch.channel) {
            let nan = |m: Option<f64>| m.is_some_and(|v| !v.is_finite());
            if nan(r.gradient.foreground.mean) || nan(r.gradient.background.mean) {
                head += " — the gradient is not finite here (drawn as 0)";
            }
        }
        root.draw_text(&head, &("sans-serif", 14).into_font().color(&BLACK), (SIDE as i32, top + 4))?;
        let dice_part_only = ch.probability.as_ref().is_some_and(|p| p.dice_part_only);
        for (g, &q) in qs.iter().enumerate() {
            let left = (SIDE + g as u32 * (3 * CELL + GROUP_GAP)) as i32;
            let ignores = report.parameters.ignore_label.is_some();
            root.draw_text(&header(q, act, dice_part_only, ignores), &text, (left + MARGIN as i32, top + 24))?;
            let bar_top = top + (ROW_HEAD + CELL) as i32 + 4;
            let bar = (left + MARGIN as i32, bar_top, (3 * CELL - 2 * MARGIN) as i32);
            match q {
                Quantity::Truth => {}
                Quantity::Probability => grey_bar(root, bar, &small)?,
                Quantity::Gradient => gradient_bar(root, bar, &ch.gradient, &small)?,
                Quantity::ProbabilityGradient => {
                    if let Some(p) = &ch.probability {
                        gradient_bar(root, bar, &p.view, &small)?;
                    }
                }
            }
        }
        for r in rects.iter().filter(|r| r.channel == ch.channel) {
            let plane = &ch.slices.planes[r.plane];
            let Some((colours, width)) = colour_of(ch, r.quantity, plane) else { continue };
            let buf = resample(&colours, width, plane.height, r.width, r.height);
            if let Some(img) = BitMapElement::with_owned_buffer((r.x as i32, r.y as i32), (r.width, r.height), buf) {
                root.draw(&img)?;
            }
            // a thin frame, so that a white plane keeps its edges on the white page
            let frame = [(r.x as i32 - 1, r.y as i32 - 1), ((r.x + r.width) as i32, (r.y + r.height) as i32)];
            root.draw(&Rectangle::new(frame, BLACK.mix(0.35)))?;
            let l = plane.layout.letters;
            let (x0, y0, x1, y1) = (r.x as i32, r.y as i32, (r.x + r.width) as i32, (r.y + r.height) as i32);
            let my = (y0 + y1) / 2 - 6;
            let mx = (x0 + x1) / 2 - 4;
            root.draw_text(&l.left.to_string(), &small, (x0 - 11, my))?;
            root.draw_text(&l.right.to_string(), &small, (x1 + 3, my))?;
            root.draw_text(&l.top.to_string(), &small, (mx, y0 - 14))?;
            root.draw_text(&l.bottom.to_string(), &small, (mx, y1 + 2))?;
        }
    }
    let spacing = views
        .channels
        .first()
        .and_then(|c| c.slices.planes.first())
        .map(|_| format!("voxel size {} mm", voxel_text(report)))
        .unwrap_or_default();
    let scales = if qs.contains(&Quantity::ProbabilityGradient) {
        "colour scales: one per row and quantity, symmetric about 0 at the largest |value| over the volume; dL/ds \
         and dL/dz are on separate scales (different units)"
    } else {
        "colour scale: one per row, symmetric about 0 at the largest |gradient| of the channel over the volume"
    };
    let mut foot1 = format!(
        "{} convention; grid orientation {}; {spacing}, shown to scale; nearest-voxel pixels",
        views.convention, views.orientation
    );
    if views.obliquity_degrees > 1.0 {
        foot1 += &format!(
            "; the grid is oblique ({:.0}° from the world axes): planes of the grid, the nearest to the anatomical ones",
            views.obliquity_degrees
        );
    }
    let y = h as i32 - FOOT_H as i32 + 8;
    root.draw_text(&foot1, &small, (SIDE as i32, y))?;
    root.draw_text(scales, &small, (SIDE as i32, y + 18))?;
    let _ = w;
    Ok(())
}

/// Where a channel's planes lie: each plane's index along the voxel axis normal to it, and why
/// there.
fn where_(s: &crate::analysis::views::slices::ChannelSlices) -> String {
    use crate::analysis::views::slices::CentreSource;
    const AXES: [&str; 3] = ["x", "y", "z"];
    let planes: Vec<String> =
        s.planes.iter().map(|p| format!("{} {} = {}", p.layout.view.name(), AXES[p.layout.normal], p.index)).collect();
    let given: Vec<&str> = (0..3).filter(|&a| s.given[a]).map(|a| AXES[a]).collect();
    let rest = if s.has_foreground { "the foreground centroid" } else { "the volume centre (no foreground voxel)" };
    let why = match s.source {
        CentreSource::ForegroundCentroid | CentreSource::VolumeCentre => format!("through {rest}"),
        CentreSource::Given if given.len() == 3 => "at the voxel given".to_string(),
        CentreSource::Given => format!("{} as given, the rest at {rest}", given.join(", ")),
    };
    format!("planes {why} — {} (voxel indices)", planes.join(", "))
}

fn voxel_text(report: &Report) -> String {
    let v = report.inputs.labels.voxel_size;
    format!("{}×{}×{}", short(v[0].into()), short(v[1].into()), short(v[2].into()))
}

fn short(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Formats a value of a colour bar.
fn value_text(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else {
        format!("{v:.2e}")
    }
}

/// A colour bar at `(x, y, width)`, 10 pixels high: `colour(t)` for t from 0 (left) to 1, as one
/// bitmap.
pub(super) fn bar<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    (x, y, w): (i32, i32, i32),
    colour: impl Fn(f64) -> [u8; 3],
) -> Drawn<DB> {
    let w = w.max(2) as u32;
    let row: Vec<[u8; 3]> = (0..w).map(|i| colour(f64::from(i) / f64::from(w - 1))).collect();
    let buf: Vec<u8> = (0..10).flat_map(|_| row.iter().flatten().copied()).collect();
    if let Some(img) = BitMapElement::with_owned_buffer((x, y), (w, 10), buf) {
        root.draw(&img)?;
    }
    Ok(())
}

/// A grey bar from 0 to 1 at `(x, y, width)`.
fn grey_bar<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    (x, y, w): (i32, i32, i32),
    font: &TextStyle,
) -> Drawn<DB> {
    bar(root, (x, y, w), grey)?;
    root.draw(&Rectangle::new([(x, y), (x + w, y + 10)], BLACK.mix(0.5)))?;
    root.draw_text("0", font, (x, y + 13))?;
    root.draw_text("1", font, (x + w - 6, y + 13))?;
    Ok(())
}

/// A diverging bar from −scale to +scale at `(x, y, width)`, with the closed-form levels marked.
fn gradient_bar<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    (x, y, w): (i32, i32, i32),
    view: &GradientView,
    font: &TextStyle,
) -> Drawn<DB> {
    let m = view.scale;
    bar(root, (x, y, w), |t| diverging(2.0 * t - 1.0, 1.0))?;
    root.draw(&Rectangle::new([(x, y), (x + w, y + 10)], BLACK.mix(0.5)))?;
    let at = |v: f64| x + (((v / m).clamp(-1.0, 1.0) + 1.0) / 2.0 * f64::from(w - 1)).round() as i32;
    root.draw_text(&value_text(-m), font, (x, y + 13))?;
    root.draw_text("0", font, (at(0.0) - 3, y + 13))?;
    let right = value_text(m);
    root.draw_text(&right, font, (x + w - 7 * right.len() as i32, y + 13))?;
    if let (Some([bg, fg]), true) = (view.levels, m > 0.0) {
        // labels centred under their marks, kept within the bar, the second one lower when they
        // would overlap
        let mut placed: Vec<(i32, i32)> = Vec::new();
        let mut marks = [(fg, "fg"), (bg, "bg")];
        marks.sort_by(|a, b| a.0.total_cmp(&b.0));
        // a level beyond the scale holds no voxel (a class absent from the labels): not marked
        for (v, name) in marks.into_iter().filter(|(v, _)| v.abs() <= m * (1.0 + 1e-6)) {
            let px = at(v);
            root.draw(&PathElement::new(vec![(px, y - 3), (px, y + 13)], BLACK.stroke_width(2)))?;
            let label = format!("{name} {}", value_text(v));
            let lw = 6 * label.len() as i32;
            let lx = (px - lw / 2).clamp(x, x + w - lw);
            let row = if placed.iter().any(|&(a, b)| lx < b + 4 && a < lx + lw + 4) { 1 } else { 0 };
            placed.push((lx, lx + lw));
            root.draw_text(&label, font, (lx, y + 27 + 13 * row))?;
        }
    }
    Ok(())
}
