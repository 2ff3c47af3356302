//! The report read in words: the sentences and figures that the terminal table and the HTML
//! report both print, written once here so that the two never say different things.
//!
//! - the two-level verdict: whether dL/ds = −a·g + c holds on every channel, and why not;
//! - per channel, the measured level ratio (foreground level / background level) against its
//!   closed form (c − a)/c, and against the paper's 1 − 2/Dice of the channel's soft Dice (the
//!   two agree for the Dice loss averaged over channels);
//! - the mixed-precision figures: the float16 loss-scale window and the fates of the gradient × S
//!   cast to 16 bits, per channel and for the whole prediction.

use super::{InputInfo, Parameters, Report};
use crate::analysis::precision::{MixedPrecision, ScaleWindow};
use crate::loss::family::SHARED;
use crate::loss::{Activation, DiceForm, LossParam, LossSpec};

/// An input file in one line: path, dims, datatype, voxel size.
pub fn input_line(info: &InputInfo) -> String {
    let dims: Vec<String> = info.dims.iter().map(|d| d.to_string()).collect();
    let vs = info.voxel_size;
    format!(
        "{}  ({}, {}, voxel {}×{}×{} {})",
        info.name(),
        dims.join("×"),
        info.datatype,
        vs[0],
        vs[1],
        vs[2],
        info.spatial_unit
    )
}

/// The resolved parameters that matter for the loss, in one line.
pub fn parameters_line(p: &Parameters) -> String {
    spec_line(&p.spec, p.reduction.describe(p.channels_in_loss.len()))
}

/// A loss's resolved parameters in one line, `reduction` saying how its channels are combined.
pub fn spec_line(s: &LossSpec, reduction: String) -> String {
    let mut parts = vec![format!("activation {}", s.activation)];
    if s.loss.reads(LossParam::SmoothNr) {
        parts.push(format!("smooth_nr {:e}, smooth_dr {:e}", s.smooth_nr, s.smooth_dr));
    }
    if s.loss.reads(LossParam::IncludeBackground) {
        let bg = if s.include_background { "background included" } else { "background excluded" };
        parts.push(format!("{bg}, {reduction}"));
    } else {
        parts.push(reduction);
    }
    for &param in s.loss.family().params() {
        // the shared parameters are shown above in their own words
        if !SHARED.contains(&param) {
            parts.push(format!("{} {}", param.name(), s.show(param)));
        }
    }
    if let Some(w) = &s.class_weights {
        parts.push(format!("class weights {w:?}"));
    }
    if s.denominator_floor > 0.0 {
        parts.push(format!("denominator ≥ {:e}", s.denominator_floor));
    }
    if s.skip_empty {
        parts.push("empty classes contribute 0".to_string());
    }
    if s.dice_form == DiceForm::Negative {
        parts.push("Dice term −dice".to_string());
    }
    if s.loss_weight != 1.0 {
        parts.push(format!("loss weight {}", significant(s.loss_weight)));
    }
    parts.join(", ")
}

/// "two-level structure holds: …" or "… does not hold: …, and why".
pub fn two_level(r: &Report) -> String {
    let verdict = if r.two_level_holds && r.channels.is_empty() {
        "has no channel to describe".to_string()
    } else if !r.loss.value.is_finite() {
        "does not hold: the loss is not finite, and neither is its gradient".to_string()
    } else if r.two_level_holds {
        "holds: on every channel the gradient takes exactly one value on foreground and one on \
         background voxels (dL/ds = −a·g + c)"
            .to_string()
    } else {
        let why = if r.parameters.spec.activation != Activation::None {
            "this is expected through an activation"
        } else if r.parameters.cross_entropy.is_some() {
            "this is expected of cross-entropy, whose gradient depends on each probability"
        } else {
            "this is expected of a loss with Σs², whose gradient has a term in each probability"
        };
        format!("does not hold: the gradient varies within foreground or background (see 'distinct'); {why}")
    };
    format!("two-level structure {verdict}")
}

/// The mimic weights in a sentence: what they make of the mimic loss, or why there are none.
pub fn mimic_weights(r: &Report) -> String {
    match r.mimic_weight_total {
        Some(total) => format!(
            "mimic weights w = a/Σa (column 'mimic w', summing to 1): the mimic loss −Σ_k w_k·Σ s·g has the \
             ground-truth part −a·g of this loss's dL/ds (w.r.t. probabilities) divided by Σa = {total:.4e}, and \
             leaves out the rest (the constant c{})",
            if r.two_valued_closed_form { "" } else { ", and the terms in each probability" }
        ),
        None if !r.parameters.spec.loss.has_dice_part() => {
            "mimic weights: none, cross-entropy's dL/ds = −g/(N·s) weighs the ground truth per voxel, not per class"
                .to_string()
        }
        None if r
            .channels
            .iter()
            .any(|c| r.parameters.channels_in_loss.contains(&c.channel) && c.foreground_voxels > 0) =>
        {
            "mimic weights: none, the loss gives the ground truth no weight on any channel with foreground voxels \
             (a = 0: class weights of 0, or a loss term that is flat there), so its gradient has no ground-truth \
             part to mimic"
                .to_string()
        }
        None => "mimic weights: none, no channel in the loss has a foreground voxel, so its gradient has no \
                 ground-truth part to mimic"
            .to_string(),
    }
}

/// Per channel, the measured level ratio against its closed form and against 1 − 2/Dice.
pub fn level_ratios(r: &Report) -> Vec<String> {
    r.channels
        .iter()
        .map(|c| {
            let lr = &c.gradient.level_ratio;
            // (c − a)/c = 1 − 2/Dice is the identity of soft Dice; other losses have levels of their own
            let dice = r.parameters.spec.loss == crate::loss::LossKind::Dice;
            let paper = if c.soft_dice > 0.0 && !dice {
                format!(
                    "1 − 2/Dice = {:.4} (soft Dice {:.5}; the identity (c − a)/c = 1 − 2/Dice is Dice's, not this \
                     loss's)",
                    1.0 - 2.0 / c.soft_dice,
                    c.soft_dice
                )
            } else if c.soft_dice > 0.0 {
                format!("1 − 2/Dice = {:.4} (soft Dice {:.5})", 1.0 - 2.0 / c.soft_dice, c.soft_dice)
            } else {
                "1 − 2/Dice is undefined (soft Dice 0)".to_string()
            };
            let measured = lr.measured.map_or_else(
                || "no measured level ratio (a side is empty, or the background level is 0)".to_string(),
                |m| format!("level ratio foreground/background {m:.4} measured"),
            );
            let cf = &c.closed_form;
            let act = r.parameters.spec.activation;
            // through an activation dL/ds is still two-valued when the loss is (T = 0, no
            // cross-entropy): the spread is the activation's
            let before = act != crate::loss::Activation::None
                && cf.t == 0.0
                && r.parameters.cross_entropy.is_none()
                && cf.background_level != 0.0;
            let closed = match lr.closed_form {
                Some(v) => format!("{v:.4} in closed form (c − a)/c"),
                None if before => format!(
                    "the gradient with respect to the logits spreads through the {act}, but with respect to the \
                     probabilities it is two-valued, (c − a)/c = {:.4} in closed form",
                    cf.foreground_level / cf.background_level
                ),
                None => "the closed form is not two-valued".to_string(),
            };
            format!("{}: {measured}, {closed}; {paper}", super::wording::channel(c.channel, c.label, c.name.as_deref()))
        })
        .collect()
}

/// A share as a percentage, with exact 0 and 1 told apart from what merely rounds to them.
pub fn percent(x: f64) -> String {
    match x {
        0.0 => "0".to_string(),
        1.0 => "100%".to_string(),
        x if x < 5e-5 => "<0.01%".to_string(),
        x if x > 1.0 - 5e-5 => ">99.99%".to_string(),
        x => format!("{:.2}%", 100.0 * x),
    }
}

/// The loss-scale window as powers of two.
pub fn window(w: &ScaleWindow) -> String {
    match (w.log2_min, w.log2_max) {
        (Some(lo), Some(hi)) if w.empty => format!("empty (2^{lo:.2} > 2^{hi:.2})"),
        (Some(lo), Some(hi)) => format!("2^{lo:.2} – 2^{hi:.2}"),
        _ => "any (every value is 0)".to_string(),
    }
}

/// What the mixed-precision figures are, in one sentence.
pub fn mixed_precision_heading(r: &Report) -> String {
    let s = f64::from(r.parameters.loss_scale);
    let power = if s.log2().fract() == 0.0 { format!("2^{}", s.log2()) } else { format!("2^{:.2}", s.log2()) };
    format!(
        "mixed precision at loss scale S = {} ({power}), the gradient × S cast to 16 bits: shares of the values \
         (L1 lost: of Σ|g|)",
        significant(s)
    )
}

/// The columns of [`mixed_precision_rows`].
pub const PRECISION_COLUMNS: [&str; 8] =
    ["ch", "float16 normal for S in", "flushed", "subnormal", "overflow", "L1 lost", "bf16 flushed", "bf16 L1 lost"];

/// The mixed-precision figures, a row per channel and one for the whole prediction ("all").
pub fn mixed_precision_rows(r: &Report) -> Vec<[String; 8]> {
    let row = |ch: String, m: &MixedPrecision| {
        let (f, b) = (&m.at_scale, &m.bfloat16.at_scale);
        [
            ch,
            window(&m.loss_scale_window),
            percent(f.zero_share),
            percent(f.subnormal_share),
            percent(f.overflow_share),
            percent(f.l1_lost_share),
            percent(b.zero_share),
            percent(b.l1_lost_share),
        ]
    };
    let mut rows: Vec<[String; 8]> =
        r.channels.iter().map(|c| row(c.channel.to_string(), &c.gradient.mixed_precision)).collect();
    rows.push(row("all".to_string(), &r.mixed_precision));
    rows
}

/// `v` with six significant digits, in scientific notation outside [1e-3, 1e6).
pub fn significant(v: f64) -> String {
    if v != 0.0 && !(1e-3..1e6).contains(&v.abs()) {
        format!("{v:.5e}")
    } else {
        format!("{}", (v * 1e6).round() / 1e6)
    }
}

/// The regions of a region-based prediction in one line: `whole tumor = 1+2+3, tumor core = 2+3`
/// (`channel 0 = 1+2+3` without names).
pub fn regions_line(regions: &[Vec<i64>], names: &Option<Vec<String>>) -> String {
    regions
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let values: Vec<String> = r.iter().map(i64::to_string).collect();
            let name = super::wording::name_of(names, k).map_or_else(|| format!("channel {k}"), str::to_string);
            format!("{name} = {}", values.join("+"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}
