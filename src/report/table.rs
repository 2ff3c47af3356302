//! The report as a readable terminal table.

use std::fmt::Write;

use super::reading::{
    input_line as describe, mixed_precision_heading, mixed_precision_rows, parameters_line, two_level, window,
    PRECISION_COLUMNS,
};
use super::Report;
use crate::loss::{Activation, LossKind};

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "–".to_string(), f)
}

fn sci(v: f64) -> String {
    format!("{v:.4e}")
}

fn distinct(s: &crate::analysis::SideStats) -> String {
    if s.distinct_capped {
        format!(">{}", s.distinct)
    } else {
        s.distinct.to_string()
    }
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
    let _ = writeln!(o, "{}", two_level(r));
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

/// The mixed-precision figures: per channel and for the whole prediction, the float16 window
/// and the fates at the loss scale, and bfloat16's at the same scale.
fn mixed_precision_table(o: &mut String, r: &Report) {
    let _ = writeln!(o);
    let _ = writeln!(o, "{}", mixed_precision_heading(r));
    let h = PRECISION_COLUMNS;
    let _ = writeln!(
        o,
        "{:>3}  {:<25} {:>8} {:>9} {:>8} {:>8}   {:>12} {:>12}",
        h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]
    );
    for [ch, w, z, sub, over, l1, bz, bl1] in mixed_precision_rows(r) {
        let _ = writeln!(o, "{ch:>3}  {w:<25} {z:>8} {sub:>9} {over:>8} {l1:>8}   {bz:>12} {bl1:>12}");
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

/// The training figures as the terminal table shows them (also the HTML report's text of them).
pub fn training_text(r: &Report, t: &crate::training::RegimeReport) -> String {
    let mut o = String::new();
    training_table(&mut o, r, t);
    o.trim_start_matches('\n').to_string()
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
