//! The report as text: the blocks (lines and tables, [`super::layout`]) that the terminal shows,
//! fitted to its width, and in Markdown; the channel table as CSV.

use super::layout::{markdown, render, Block, Column, Layout, Table, Tone};

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

/// The report as text for the terminal: every column, lines unbroken, no colour.
pub fn to_table(r: &Report) -> String {
    to_text(r, &Layout::default())
}

/// The report as text, laid out by `layout`.
pub fn to_text(r: &Report, layout: &Layout) -> String {
    render(&blocks(r), layout)
}

/// The report as Markdown: its lines, and each table with every column.
pub fn to_markdown(r: &Report) -> String {
    markdown(&blocks(r))
}

/// A line of text.
fn line(text: impl Into<String>) -> Block {
    Block::Line(text.into(), Tone::Plain)
}

/// The report as blocks of text.
pub fn blocks(r: &Report) -> Vec<Block> {
    let mut o = Vec::new();
    let p = &r.parameters;
    let spec = &p.spec;
    let preset = spec.preset.map_or(String::new(), |p| format!(" (preset {p})"));
    o.push(line(format!(
        "{} {}: {} loss{preset}, gradient with respect to {}",
        r.tool.name, r.tool.version, spec.loss, p.gradient_wrt
    )));
    o.push(line(format!("labels      {}", describe(&r.inputs.labels))));
    o.push(line(format!("prediction  {}", describe(&r.inputs.prediction.file))));
    o.push(line(format!("parameters  {}", parameters_line(p))));
    if let Some(ce) = &p.cross_entropy {
        o.push(line(format!("            {ce}")));
    }
    if let Some(r) = &p.regions {
        o.push(line(format!(
            "regions     {} (sigmoid per channel, overlapping)",
            super::reading::regions_line(r, &p.channel_names)
        )));
    }
    if let Some(k) = p.ignore_label {
        o.push(line(format!(
            "ignored     label {k}: {} voxels, left out of the loss and the figures (gradient 0)",
            p.ignored_voxels
        )));
    }
    let mut loss = format!("{:.6}", r.loss.value);
    if let (Some(d), Some(c)) = (r.loss.dice_part, r.loss.ce_part) {
        let weighted = if spec.loss_weight != 1.0 { ", before the loss weight" } else { "" };
        loss += &format!("  (Dice part {d:.6}, cross-entropy part {c:.6}{weighted})");
    }
    o.push(line(format!("loss        {loss}")));
    o.push(Block::Blank);
    o.push(Block::Table(channel_table(r, Numbers::Rounded)));
    o.push(Block::Blank);
    let tone = if r.two_level_holds && r.loss.value.is_finite() { Tone::Good } else { Tone::Warn };
    o.push(Block::Line(two_level(r), tone));
    o.push(line(super::reading::mimic_weights(r)));
    mixed_precision_table(&mut o, r);
    if let Some(cmp) = &r.comparison {
        comparison_table(&mut o, r, cmp);
    }
    if let Some(t) = &r.training {
        training_table(&mut o, r, t);
    }
    for w in &r.warnings {
        o.push(Block::Line(format!("note: {w}"), Tone::Warn));
    }
    o
}

/// How the numbers of a table are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Numbers {
    /// As the terminal shows them: a few significant digits.
    Rounded,
    /// Every digit (the shortest text that reads back to the same number), for files.
    Full,
}

/// The per-channel table: one row per reported channel.
pub fn channel_table(r: &Report, numbers: Numbers) -> Table {
    let full = numbers == Numbers::Full;
    let num = |v: Option<f64>, rounded: &dyn Fn(f64) -> String| match v {
        Some(v) if full => v.to_string(),
        Some(v) => rounded(v),
        None if full => String::new(),
        None => "–".to_string(),
    };
    let columns = vec![
        Column::right("ch", 0),
        Column::right("label", 0),
        Column::right("fg voxels", 3),
        Column::right("soft Dice", 0),
        Column::right("hard Dice", 2),
        Column::right("mean grad fg", 0),
        Column::right("mean grad bg", 0),
        Column::right("distinct", 4),
        Column::right("fit R²", 5),
        Column::right("fg/bg (closed)", 1),
        Column::right("dyn. range", 1),
        Column::right("mimic w", 1),
        Column::right("a", 3),
    ];
    let mut columns = columns;
    let named = r.channels.iter().any(|c| c.name.is_some());
    if full {
        // a file holds the measured and the closed-form ratio in columns of their own
        columns[9] = Column::right("fg/bg", 1);
        columns.insert(10, Column::right("fg/bg closed", 1));
    }
    let rows = r
        .channels
        .iter()
        .map(|c| {
            let g = &c.gradient;
            let ratio = |v: Option<f64>| num(v, &|v| format!("{v:.4}"));
            let mut row = vec![
                c.channel.to_string(),
                c.label.to_string(),
                c.foreground_voxels.to_string(),
                num(Some(c.soft_dice), &|v| format!("{v:.5}")),
                num(Some(c.hard_dice), &|v| format!("{v:.5}")),
                num(g.foreground.mean, &sci),
                num(g.background.mean, &sci),
                format!("{}/{}", distinct(&g.foreground), distinct(&g.background)),
                num(g.fit.r2, &|v| format!("{v:.6}")),
            ];
            if full {
                row.extend([ratio(g.level_ratio.measured), ratio(g.level_ratio.closed_form)]);
            } else {
                row.push(format!("{} ({})", ratio(g.level_ratio.measured), ratio(g.level_ratio.closed_form)));
            }
            row.push(num(g.dynamic_range.ratio, &|v| format!("{v:.3e}")));
            row.push(num(c.mimic_weight, &|v| format!("{v:.4}")));
            let dice_part = r.parameters.spec.loss.has_dice_part();
            row.push(num(Some(c.closed_form.a).filter(|_| dice_part), &|v| format!("{v:.4e}")));
            if named {
                row.insert(2, c.name.clone().unwrap_or_default());
            }
            row
        })
        .collect();
    if named {
        columns.insert(2, Column::left("name", 1));
    }
    Table { columns, rows }
}

/// The per-channel table as CSV (a header row, then a row per channel), every digit.
pub fn channels_csv(r: &Report) -> Vec<u8> {
    let t = channel_table(r, Numbers::Full);
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let written = w
        .write_record(t.columns.iter().map(|c| c.name.as_str()))
        .and_then(|_| t.rows.iter().try_for_each(|row| w.write_record(row)));
    written.expect("CSV into memory");
    w.into_inner().expect("CSV into memory")
}

/// The mixed-precision figures: per channel and for the whole prediction, the float16 window
/// and the fates at the loss scale, and bfloat16's at the same scale.
fn mixed_precision_table(o: &mut Vec<Block>, r: &Report) {
    o.push(Block::Blank);
    o.push(line(mixed_precision_heading(r)));
    let h = PRECISION_COLUMNS;
    let columns = vec![
        Column::right(h[0], 0),
        Column::left(h[1], 0),
        Column::right(h[2], 1),
        Column::right(h[3], 1),
        Column::right(h[4], 1),
        Column::right(h[5], 1),
        Column::right(h[6], 2),
        Column::right(h[7], 2),
    ];
    let rows = mixed_precision_rows(r).into_iter().map(|row| row.to_vec()).collect();
    o.push(Block::Table(Table { columns, rows }));
}

fn comparison_table(o: &mut Vec<Block>, r: &Report, cmp: &super::comparison::Comparison) {
    o.push(Block::Blank);
    let values: Vec<String> = cmp.losses.iter().map(|l| format!("{} {:.6}", l.name, l.value)).collect();
    o.push(line(format!("compared losses: {} (same activation and options)", values.join(", "))));
    let wrt = if r.parameters.spec.activation == Activation::None { "s" } else { "z" };
    let columns = vec![
        Column::left(&format!("gradient pair (w.r.t. {wrt})"), 0),
        Column::right("ch", 0),
        Column::right("cosine", 0),
        Column::right("LS scale", 1),
        Column::right("sign agree", 2),
    ];
    let rows = cmp
        .pairs
        .iter()
        .flat_map(|p| {
            p.channels.iter().map(move |c| {
                vec![
                    format!("{} vs {}", p.a, p.b),
                    c.channel.to_string(),
                    opt(c.cosine, |v| format!("{v:.6}")),
                    opt(c.scale, |v| format!("{v:.4e}")),
                    format!("{:.2}%", 100.0 * c.sign_agreement),
                ]
            })
        })
        .collect();
    o.push(Block::Table(Table { columns, rows }));
    for p in &cmp.pairs {
        let Some(eq) = &p.mimic_equivalence else { continue };
        let other = if p.a == LossKind::Mimic { p.b } else { p.a };
        o.push(Block::Blank);
        o.push(line(format!(
            "{other} gradient = scale × mimic gradient + offset, exactly (w.r.t. probabilities); the offset is what the \
             mimic loss leaves out"
        )));
        let columns = vec![
            Column::right("ch", 0),
            Column::right("scale", 0),
            Column::right("offset", 0),
            Column::right("offset share", 0),
        ];
        let rows = eq
            .iter()
            .map(|e| {
                vec![
                    e.channel.to_string(),
                    format!("{:.4e}", e.scale),
                    format!("{:.4e}", e.offset),
                    format!("{:.2}%", 100.0 * e.offset_share),
                ]
            })
            .collect();
        o.push(Block::Table(Table { columns, rows }));
    }
}

/// `n` and the noun in the number it takes.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The training figures as the terminal table shows them (also the HTML report's text of them).
pub fn training_text(r: &Report, t: &crate::training::RegimeReport) -> String {
    let mut o = Vec::new();
    training_table(&mut o, r, t);
    render(&o, &Layout::default()).trim_start_matches('\n').to_string()
}

fn training_table(o: &mut Vec<Block>, r: &Report, t: &crate::training::RegimeReport) {
    let g = &t.regime;
    let spread = |s: &crate::training::Spread| match (s.median, s.p05, s.p95) {
        (Some(m), Some(a), Some(b)) => format!("{m:.4e} [{a:.3e}, {b:.3e}]"),
        _ => "–".to_string(),
    };
    o.push(Block::Blank);
    o.push(line(format!(
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
    )));
    let pooling = match (r.parameters.reduction, g.batch_dice) {
        (crate::loss::Reduction::Voxels, _) => "cross-entropy: the mean over every voxel of the mini-batch",
        (_, true) => "Dice sums pooled over the mini-batch",
        (_, false) => "Dice per patch, averaged",
    };
    o.push(line(format!("            {pooling} ({})", g.batch_dice_source)));
    o.push(line(format!(
        "            loss per mini-batch: median [5 %, 95 %] {} (whole volume {:.4e})",
        spread(&t.loss),
        r.loss.value
    )));
    let columns = vec![
        Column::right("ch", 0),
        Column::right("label", 0),
        Column::right("absent patches", 2),
        Column::right("absent batches", 2),
        Column::right("fg level median [5 %, 95 %]", 1),
        Column::right("bg level median [5 %, 95 %]", 1),
        Column::right("max |g| median [5 %, 95 %]", 0),
        Column::right("mimic w median [5 %, 95 %]", 1),
        Column::right("float16 scales, every batch", 0),
    ];
    let rows = t
        .channels
        .iter()
        .map(|c| {
            let lv = |s: &Option<crate::training::Spread>| s.as_ref().map_or("–".to_string(), spread);
            vec![
                c.channel.to_string(),
                super::wording::label_named(c.label, super::wording::name_of(&r.parameters.channel_names, c.channel)),
                format!("{:.1}%", 100.0 * c.absent_patch_share),
                format!("{:.1}%", 100.0 * c.absent_batch_share),
                lv(&c.foreground_level),
                lv(&c.background_level),
                spread(&c.max_abs),
                c.mimic_weight.as_ref().map_or("–".to_string(), |s| match (s.median, s.p05, s.p95) {
                    (Some(m), Some(a), Some(b)) => format!("{m:.4} [{a:.4}, {b:.4}]"),
                    _ => "–".to_string(),
                }),
                c.loss_scale_window.every_batch.as_ref().map_or("any (every value is 0)".to_string(), window),
            ]
        })
        .collect();
    o.push(Block::Table(Table { columns, rows }));
    let w = &t.loss_scale_window;
    o.push(line(format!(
        "whole prediction: float16 loss scales that serve every mini-batch {}; {:.1}% of mini-batches have no scale of \
         their own",
        w.every_batch.as_ref().map_or("any (every value is 0)".to_string(), window),
        100.0 * w.empty_share
    )));
    if let Some(l) = &t.largest {
        o.push(line(format!(
            "largest |gradient| {:.4e}: mini-batch {}, patch {} (corner {:?}), {}: {}",
            l.value,
            l.batch,
            l.patch,
            l.corner,
            super::wording::channel(
                l.channel,
                l.label,
                super::wording::name_of(&r.parameters.channel_names, l.channel)
            ),
            l.cause
        )));
    }
}
