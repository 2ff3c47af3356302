//! `density.png`: per channel, the gradient (y) against the predicted probability (x) as a 2-D
//! histogram, foreground and background voxels in panels of their own, counts on a log colour
//! scale. With respect to probabilities a Dice gradient is two horizontal lines (the closed-form
//! levels, dashed); through a softmax or sigmoid the gradient with respect to the logits bends
//! into the s(1 − s) shape, which the panels beside it show.

use crate::report::wording::{channel as channel_title, name_of};
use plotters::coord::Shift;
use plotters::element::BitMapElement;
use plotters::prelude::*;

use super::colour::sequential;
use super::Drawn;
use crate::analysis::views::density::{Density, X_BINS, Y_BINS};
use crate::analysis::views::{ChannelView, GradientView};
use crate::loss::Activation;
use crate::report::Report;

const PANEL_W: u32 = 330;
const PANEL_H: u32 = 250;
const TITLE_H: u32 = 60;
const ROW_HEAD: u32 = 24;
const FOOT_H: u32 = 64;
/// Room for the title and the notes.
const MIN_W: u32 = 1100;

/// The panels of a channel: (gradient, with respect to probabilities?) per kind, each split in
/// foreground and background.
fn kinds(ch: &ChannelView) -> Vec<(&GradientView, bool)> {
    let mut k = Vec::new();
    if let Some(p) = &ch.probability {
        k.push((&p.view, true));
    }
    k.push((&ch.gradient, false));
    k
}

pub fn canvas_size(report: &Report) -> (u32, u32) {
    let Some(v) = &report.views else { return (400, 200) };
    let cols = v.channels.iter().map(|c| 2 * kinds(c).len()).max().unwrap_or(2) as u32;
    let rows = v.channels.len().max(1) as u32;
    ((cols * PANEL_W + 20).max(MIN_W), TITLE_H + rows * (ROW_HEAD + PANEL_H) + FOOT_H)
}

/// The count colour of a bin: white for 0, else the sequential map at log(count)/log(peak).
fn count_colour(count: u64, peak: u64) -> [u8; 3] {
    if count == 0 {
        return [255, 255, 255];
    }
    let t = if peak > 1 { (count as f64).ln() / (peak as f64).ln() } else { 1.0 };
    sequential(t)
}

/// A tick label; values within a millionth of the axis span of 0 are 0 (not −1.1e−19).
fn tick(v: f64, span: f64) -> String {
    if v.abs() <= span * 1e-6 {
        "0".into()
    } else {
        format!("{v:.1e}")
    }
}

pub fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, report: &Report) -> Drawn<DB> {
    root.fill(&WHITE)?;
    let Some(views) = &report.views else { return Ok(()) };
    let act = report.parameters.spec.activation;
    let black = |size| ("sans-serif", size).into_font().color(&BLACK);
    let name = super::parts::loss_name(report.parameters.spec.loss, &report.parameters.spec);
    let two = report.two_valued_closed_form;
    let title = match (act, two) {
        (Activation::None, true) => {
            format!("{name} loss gradient against the predicted probability: w.r.t. probabilities, one line per side")
        }
        (Activation::None, false) => format!(
            "{name} loss gradient against the predicted probability (not two-valued for this loss: it depends on s)"
        ),
        (a, true) => format!(
            "{name} loss gradient against the predicted probability: lines w.r.t. probabilities, the s(1 − s) shape \
             through the {a}"
        ),
        (a, false) => {
            format!("{name} loss gradient against the predicted probability, w.r.t. probabilities and through the {a}")
        }
    };
    root.draw_text(&title, &black(18), (10, 12))?;
    let levels_shown = views
        .channels
        .iter()
        .any(|c| c.gradient.levels.is_some() || c.probability.as_ref().is_some_and(|p| p.view.levels.is_some()));
    let sub = if levels_shown {
        "voxels per bin, log colour scale (pale: 1 voxel, dark: the most); dashed: closed-form levels"
    } else {
        "voxels per bin, log colour scale (pale: 1 voxel, dark: the most)"
    };
    root.draw_text(sub, &black(12), (10, 38))?;
    let (w, h) = root.dim_in_pixel();
    let body = root.margin(TITLE_H, FOOT_H, 10, 10);
    let rows = body.split_evenly((views.channels.len().max(1), 1));
    for (area, ch) in rows.iter().zip(&views.channels) {
        let (head, panels) = area.split_vertically(ROW_HEAD);
        head.draw_text(
            &channel_title(ch.channel, ch.label, name_of(&report.parameters.channel_names, ch.channel)),
            &black(14),
            (4, 4),
        )?;
        let ks = kinds(ch);
        let cols = panels.split_evenly((1, 2 * ks.len()));
        let mut i = 0;
        for (view, wrt_probability) in ks {
            for foreground in [true, false] {
                let quantity = if wrt_probability || act == Activation::None { "dL/ds" } else { "dL/dz" };
                let side = if foreground { "foreground (g = 1)" } else { "background (g = 0)" };
                let dice = ch.probability.as_ref().is_some_and(|p| p.dice_part_only) && wrt_probability;
                let caption = format!("{quantity}{}, {side}", if dice { " (Dice part)" } else { "" });
                panel(&cols[i], view, foreground, &caption)?;
                i += 1;
            }
        }
    }
    let foot = root.margin(h - FOOT_H + 6, 0, 10, 10);
    let bar_w = 240;
    super::slices::bar(&foot, (0, 0, bar_w), sequential)?;
    foot.draw(&Rectangle::new([(0, 0), (bar_w, 10)], BLACK.mix(0.5)))?;
    foot.draw_text("1 voxel", &black(11), (0, 15))?;
    foot.draw_text("peak of the panel", &black(11), (bar_w - 90, 15))?;
    foot.draw_text(
        "x: the channel's probability s in [0, 1]; y: the gradient per voxel; each panel has its own colour scale up \
         to its own largest count",
        &black(11),
        (bar_w + 16, 2),
    )?;
    let _ = w;
    Ok(())
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    view: &GradientView,
    foreground: bool,
    caption: &str,
) -> Drawn<DB> {
    let d: &Density = &view.density;
    let counts = if foreground { &d.foreground } else { &d.background };
    let peak = counts.iter().copied().max().unwrap_or(0);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 12))
        .margin(6)
        .x_label_area_size(30)
        .y_label_area_size(62)
        .build_cartesian_2d(0.0..1.0, d.lo..d.hi)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("probability s")
        .x_labels(5)
        .y_labels(5)
        .y_label_formatter(&|v| tick(*v, d.hi - d.lo))
        .label_style(("sans-serif", 10))
        .draw()?;
    let (pw, ph) = chart.plotting_area().dim_in_pixel();
    if pw > 0 && ph > 0 {
        let colours: Vec<[u8; 3]> = counts.iter().map(|&c| count_colour(c, peak)).collect();
        // each pixel column's bin, once
        let columns: Vec<usize> = (0..pw as usize).map(|px| (px * X_BINS / pw as usize).min(X_BINS - 1)).collect();
        let mut buf = Vec::with_capacity((pw * ph * 3) as usize);
        for py in 0..ph as usize {
            // row 0 of the picture is the top: the highest gradient bin
            let y = Y_BINS - 1 - (py * Y_BINS / ph as usize).min(Y_BINS - 1);
            let row = &colours[y * X_BINS..(y + 1) * X_BINS];
            buf.extend(columns.iter().flat_map(|&x| row[x]));
        }
        if let Some(img) = BitMapElement::with_owned_buffer((0.0, d.hi), (pw, ph), buf) {
            chart.plotting_area().draw(&img)?;
        }
    }
    if let Some([bg, fg]) = view.levels {
        let v = if foreground { fg } else { bg };
        if v >= d.lo && v <= d.hi {
            let style = BLACK.mix(0.7).stroke_width(1);
            chart.draw_series(DashedLineSeries::new(vec![(0.0, v), (1.0, v)], 4, 4, style))?;
        }
    }
    if peak == 0 {
        let style = ("sans-serif", 12).into_font().color(&BLACK);
        chart.plotting_area().draw(&Text::new("no voxels", (0.05, d.hi - 0.1 * (d.hi - d.lo)), style))?;
    }
    Ok(())
}
