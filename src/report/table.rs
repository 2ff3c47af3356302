//! The report as a readable terminal table.

use std::fmt::Write;

use super::{InputInfo, Report};
use crate::analysis::precision::ScaleWindow;
use crate::loss::family::SHARED;
use crate::loss::{Activation, DiceForm, LossKind, LossParam};

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "–".to_string(), f)
}

fn sci(v: f64) -> String {
    format!("{v:.4e}")
}

fn describe(info: &InputInfo) -> String {
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

fn distinct(s: &crate::analysis::SideStats) -> String {
    if s.distinct_capped {
        format!(">{}", s.distinct)
    } else {
        s.distinct.to_string()
    }
}

/// The resolved parameters that matter for the loss, in one line.
fn parameters_line(p: &super::Parameters) -> String {
    let s = &p.spec;
    let mut parts = vec![format!("activation {}", s.activation)];
    if s.loss.reads(LossParam::SmoothNr) {
        parts.push(format!("smooth_nr {:e}, smooth_dr {:e}", s.smooth_nr, s.smooth_dr));
    }
    let reduction = p.reduction.describe(p.channels_in_loss.len());
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

/// The report as a table for the terminal.
pub fn to_table(r: &Report) -> String {
    let mut o = String::new();
    let p = &r.parameters;
    let spec = &p.spec;
    let preset = spec.preset.map_or(String::new(), |p| format!(" (preset {p})"));
    let _ = writeln!(
        o,
        "{} {}: {} loss{preset}, gradient with respect to {}",
        r.tool.name, r.tool.version, spec.loss, p.gradient_wrt
    );
    let _ = writeln!(o, "labels      {}", describe(&r.inputs.labels));
    let _ = writeln!(o, "prediction  {}", describe(&r.inputs.prediction.file));
    let _ = writeln!(o, "parameters  {}", parameters_line(p));
    if let Some(ce) = p.cross_entropy {
        let _ = writeln!(o, "            {ce}");
    }
    let mut loss = format!("{:.6}", r.loss.value);
    if let (Some(d), Some(c)) = (r.loss.dice_part, r.loss.ce_part) {
        let weighted = if spec.loss_weight != 1.0 { ", before the loss weight" } else { "" };
        loss += &format!("  (Dice part {d:.6}, cross-entropy part {c:.6}{weighted})");
    }
    let _ = writeln!(o, "loss        {loss}");
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:>3} {:>5} {:>10} {:>9} {:>9} {:>12} {:>12} {:>9} {:>10} {:>17} {:>10}",
        "ch",
        "label",
        "fg voxels",
        "soft Dice",
        "hard Dice",
        "mean grad fg",
        "mean grad bg",
        "distinct",
        "fit R²",
        "fg/bg (closed)",
        "dyn. range",
    );
    for c in &r.channels {
        let g = &c.gradient;
        let _ = writeln!(
            o,
            "{:>3} {:>5} {:>10} {:>9.5} {:>9.5} {:>12} {:>12} {:>9} {:>10} {:>17} {:>10}",
            c.channel,
            c.label,
            c.foreground_voxels,
            c.soft_dice,
            c.hard_dice,
            opt(g.foreground.mean, sci),
            opt(g.background.mean, sci),
            format!("{}/{}", distinct(&g.foreground), distinct(&g.background)),
            opt(g.fit.r2, |v| format!("{v:.6}")),
            format!(
                "{} ({})",
                opt(g.level_ratio.measured, |v| format!("{v:.4}")),
                opt(g.level_ratio.closed_form, |v| format!("{v:.4}"))
            ),
            opt(g.dynamic_range.ratio, |v| format!("{v:.3e}")),
        );
    }
    let _ = writeln!(o);
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
    let _ = writeln!(o, "two-level structure {verdict}");
    mixed_precision_table(&mut o, r);
    if let Some(cmp) = &r.comparison {
        comparison_table(&mut o, r, cmp);
    }
    if let Some(t) = &r.training {
        training_table(&mut o, r, t);
    }
    for w in &r.warnings {
        let _ = writeln!(o, "note: {w}");
    }
    o
}

/// A share as a percentage, with exact 0 and 1 told apart from what merely rounds to them.
fn percent(x: f64) -> String {
    match x {
        0.0 => "0".to_string(),
        1.0 => "100%".to_string(),
        x if x < 5e-5 => "<0.01%".to_string(),
        x if x > 1.0 - 5e-5 => ">99.99%".to_string(),
        x => format!("{:.2}%", 100.0 * x),
    }
}

/// The loss-scale window as powers of two.
fn window(w: &ScaleWindow) -> String {
    match (w.log2_min, w.log2_max) {
        (Some(lo), Some(hi)) if w.empty => format!("empty (2^{lo:.2} > 2^{hi:.2})"),
        (Some(lo), Some(hi)) => format!("2^{lo:.2} – 2^{hi:.2}"),
        _ => "any (every value is 0)".to_string(),
    }
}

/// The mixed-precision figures: per channel and for the whole prediction, the float16 window
/// and the fates at the loss scale, and bfloat16's at the same scale.
fn mixed_precision_table(o: &mut String, r: &Report) {
    let s = f64::from(r.parameters.loss_scale);
    let power = if s.log2().fract() == 0.0 { format!("2^{}", s.log2()) } else { format!("2^{:.2}", s.log2()) };
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "mixed precision at loss scale S = {} ({power}), the gradient × S cast to 16 bits: shares of the values \
         (L1 lost: of Σ|g|)",
        significant(s)
    );
    let _ = writeln!(
        o,
        "{:>3}  {:<25} {:>8} {:>9} {:>8} {:>8}   {:>12} {:>12}",
        "ch", "float16 normal for S in", "flushed", "subnormal", "overflow", "L1 lost", "bf16 flushed", "bf16 L1 lost"
    );
    let rows = r.channels.iter().map(|c| (c.channel.to_string(), &c.gradient.mixed_precision));
    for (ch, m) in rows.chain([("all".to_string(), &r.mixed_precision)]) {
        let (f, b) = (&m.at_scale, &m.bfloat16.at_scale);
        let _ = writeln!(
            o,
            "{ch:>3}  {:<25} {:>8} {:>9} {:>8} {:>8}   {:>12} {:>12}",
            window(&m.loss_scale_window),
            percent(f.zero_share),
            percent(f.subnormal_share),
            percent(f.overflow_share),
            percent(f.l1_lost_share),
            percent(b.zero_share),
            percent(b.l1_lost_share),
        );
    }
}

fn comparison_table(o: &mut String, r: &Report, cmp: &super::comparison::Comparison) {
    let _ = writeln!(o);
    let values: Vec<String> = cmp.losses.iter().map(|l| format!("{} {:.6}", l.name, l.value)).collect();
    let _ = writeln!(o, "compared losses: {} (same activation and options)", values.join(", "));
    let _ = writeln!(
        o,
        "{:<26} {:>3} {:>9} {:>12} {:>11}",
        format!("gradient pair (w.r.t. {})", if r.parameters.spec.activation == Activation::None { "s" } else { "z" }),
        "ch",
        "cosine",
        "LS scale",
        "sign agree"
    );
    for p in &cmp.pairs {
        for c in &p.channels {
            let _ = writeln!(
                o,
                "{:<26} {:>3} {:>9} {:>12} {:>10.2}%",
                format!("{} vs {}", p.a, p.b),
                c.channel,
                opt(c.cosine, |v| format!("{v:.6}")),
                opt(c.scale, |v| format!("{v:.4e}")),
                100.0 * c.sign_agreement
            );
        }
    }
    for p in &cmp.pairs {
        let Some(eq) = &p.mimic_equivalence else { continue };
        let other = if p.a == LossKind::Mimic { p.b } else { p.a };
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "{other} gradient = scale × mimic gradient + offset, exactly (w.r.t. probabilities); the offset is what the mimic loss leaves out"
        );
        let _ = writeln!(o, "{:>3} {:>12} {:>12} {:>14}", "ch", "scale", "offset", "offset share");
        for e in eq {
            let _ = writeln!(
                o,
                "{:>3} {:>12.4e} {:>12.4e} {:>13.2}%",
                e.channel,
                e.scale,
                e.offset,
                100.0 * e.offset_share
            );
        }
    }
}

/// `n` and the noun in the number it takes.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn training_table(o: &mut String, r: &Report, t: &crate::training::RegimeReport) {
    let g = &t.regime;
    let spread = |s: &crate::training::Spread| match (s.median, s.p05, s.p95) {
        (Some(m), Some(a), Some(b)) => format!("{m:.4e} [{a:.3e}, {b:.3e}]"),
        _ => "–".to_string(),
    };
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "training    {} of {} of {}×{}×{} voxels (seed {}), {} per mini-batch centred on foreground; {:.1}% of patches \
         padded",
        count(g.batches, "mini-batch", "mini-batches"),
        count(g.batch_size, "patch", "patches"),
        g.patch_size[0],
        g.patch_size[1],
        g.patch_size[2],
        g.seed,
        t.foreground_patches_per_batch,
        100.0 * t.padded_patch_share
    );
    let pooling = match (r.parameters.reduction, g.batch_dice) {
        (crate::loss::Reduction::Voxels, _) => "cross-entropy: the mean over every voxel of the mini-batch",
        (_, true) => "Dice sums pooled over the mini-batch",
        (_, false) => "Dice per patch, averaged",
    };
    let _ = writeln!(o, "            {pooling} ({})", g.batch_dice_source);
    let _ = writeln!(
        o,
        "            loss per mini-batch: median [5 %, 95 %] {} (whole volume {:.4e})",
        spread(&t.loss),
        r.loss.value
    );
    let _ = writeln!(
        o,
        "{:>3} {:>5} {:>14} {:>14} {:>32} {:>32} {:>32} {:>28}",
        "ch",
        "label",
        "absent patches",
        "absent batches",
        "fg level median [5 %, 95 %]",
        "bg level median [5 %, 95 %]",
        "max |g| median [5 %, 95 %]",
        "float16 scales, every batch"
    );
    for c in &t.channels {
        let lv = |s: &Option<crate::training::Spread>| s.as_ref().map_or("–".to_string(), spread);
        let _ = writeln!(
            o,
            "{:>3} {:>5} {:>13.1}% {:>13.1}% {:>32} {:>32} {:>32} {:>28}",
            c.channel,
            c.label,
            100.0 * c.absent_patch_share,
            100.0 * c.absent_batch_share,
            lv(&c.foreground_level),
            lv(&c.background_level),
            spread(&c.max_abs),
            c.loss_scale_window.every_batch.as_ref().map_or("any (every value is 0)".to_string(), window)
        );
    }
    let w = &t.loss_scale_window;
    let _ = writeln!(
        o,
        "whole prediction: float16 loss scales that serve every mini-batch {}; {:.1}% of mini-batches have no scale of their own",
        w.every_batch.as_ref().map_or("any (every value is 0)".to_string(), window),
        100.0 * w.empty_share
    );
    if let Some(l) = &t.largest {
        let _ = writeln!(
            o,
            "largest |gradient| {:.4e}: mini-batch {}, patch {} (corner {:?}), channel {} (label {}): {}",
            l.value, l.batch, l.patch, l.corner, l.channel, l.label, l.cause
        );
    }
}

/// `v` with six significant digits, in scientific notation outside [1e-3, 1e6).
fn significant(v: f64) -> String {
    if v != 0.0 && !(1e-3..1e6).contains(&v.abs()) {
        format!("{v:.5e}")
    } else {
        format!("{}", (v * 1e6).round() / 1e6)
    }
}
