//! `track.html`: a training run on one page — what was analysed and how, the series picture, a
//! reading of it (does the level ratio follow 1 − 2/Dice; when each class starts getting gradient;
//! where float16 at the run's loss scale stops holding the gradient; how far compared losses
//! agree), and per channel a table of the steps (with a link to each folder step's own page).

use std::fmt::Write;

use super::{escape, figure, opt, page, sci, Cell, Figure, Row, Table};
use crate::report::reading::{significant, spec_line};
use crate::report::series::{Series, StepChannel, StepRecord};

fn facts(s: &Series, command: &str) -> String {
    let p = &s.parameters;
    let mut o = String::from("<dl class=\"facts\">");
    let mut fact = |k: &str, v: String| {
        let _ = write!(o, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(&v));
    };
    fact("labels", s.labels.clone());
    if let Some(k) = s.label {
        fact("label value", k.to_string());
    }
    let preset = p.loss.preset.map_or(String::new(), |x| format!(" (preset {x})"));
    fact("loss", format!("{}{preset}", p.loss.kind()));
    if !p.compare.is_empty() {
        fact("compared with", p.compare.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", "));
    }
    for r in &s.resolved {
        let c = r.prediction_channels;
        for spec in &r.losses {
            let n = if spec.include_background || c == 1 { c } else { c - 1 };
            let reduction = spec.loss.family().reduction().describe(n);
            fact(
                &format!("{} with {c} channel{}", spec.loss, if c == 1 { "" } else { "s" }),
                spec_line(spec, reduction),
            );
        }
    }
    fact("loss scale S", significant(f64::from(p.loss_scale)));
    let failed = s.steps.iter().filter(|st| !st.is_ok()).count();
    let first_last = match (s.steps.first(), s.steps.last()) {
        (Some(a), Some(b)) => format!(", steps {} to {}", a.step, b.step),
        _ => String::new(),
    };
    fact("steps", format!("{} ({} ok, {failed} failed){first_last}", s.steps.len(), s.steps.len() - failed));
    o.push_str("</dl>\n");
    let _ = writeln!(o, "<p>Written by this command:</p><pre class=\"wrap\">{}</pre>", escape(command));
    o
}

/// The largest relative difference, over the steps, between the measured level ratio and its
/// closed form (c − a)/c on channel `k` (None when no step has both).
pub fn ratio_deviation(s: &Series, k: usize) -> Option<f64> {
    s.ok_steps()
        .filter_map(|st| st.channels.iter().find(|c| c.channel == k))
        .filter_map(|c| Some(((c.level_ratio? - c.level_ratio_closed_form?) / c.level_ratio_closed_form?).abs()))
        .reduce(f64::max)
}

/// The first step from which channel `k` keeps a soft Dice of at least `at`.
fn learned_from(s: &Series, k: usize, at: f64) -> Option<u64> {
    let v: Vec<(u64, f64)> =
        s.ok_steps().filter_map(|st| Some((st.step, st.channels.iter().find(|c| c.channel == k)?.soft_dice))).collect();
    let i = v.iter().rposition(|(_, d)| *d < at).map_or(0, |i| i + 1);
    v.get(i).map(|(step, _)| *step)
}

/// Steps at which a float16 cast at the run's loss scale flushes some of channel `k`'s gradient.
fn float16_losses(s: &Series, k: usize) -> Vec<(u64, f64)> {
    s.ok_steps()
        .filter_map(|st| {
            let c = st.channels.iter().find(|c| c.channel == k)?;
            Some((st.step, c.float16_zero_share.filter(|z| *z > 0.0)?))
        })
        .collect()
}

fn reading(s: &Series) -> String {
    let mut o = String::from("<ul>\n");
    let dice = s.parameters.loss.kind() == crate::loss::LossKind::Dice;
    for (k, label) in s.channels() {
        let mut parts = Vec::new();
        if let Some(d) = ratio_deviation(s, k) {
            let form = if dice { "1 − 2/soft Dice" } else { "its closed form (c − a)/c" };
            parts.push(format!(
                "the measured ratio of the levels follows {form} within a relative {} at every step",
                significant(d)
            ));
        }
        match learned_from(s, k, 0.5) {
            Some(step) => parts.push(format!("soft Dice ≥ 0.5 from step {step} on")),
            None => parts.push("soft Dice stays below 0.5".to_string()),
        }
        let lost = float16_losses(s, k);
        if let (Some(first), Some(last)) = (lost.first(), lost.last()) {
            parts.push(format!(
                "at the loss scale, a float16 cast flushes part of its gradient to zero at {} step{} (steps {} to {}, up \
                 to {} of the values)",
                lost.len(),
                if lost.len() == 1 { "" } else { "s" },
                first.0,
                last.0,
                significant(lost.iter().map(|l| l.1).fold(0.0, f64::max))
            ));
        }
        for pair in &s.pairs {
            let v: Vec<(u64, f64)> = s
                .ok_steps()
                .filter_map(|st| {
                    let c = st.channels.iter().find(|c| c.channel == k)?;
                    Some((st.step, c.cosines.iter().find(|x| &x.pair == pair)?.cosine?))
                })
                .collect();
            if let (Some(a), Some(b)) = (v.first(), v.last()) {
                parts.push(format!(
                    "the cosine of {pair} goes from {:.3} (step {}) to {:.3} (step {})",
                    a.1, a.0, b.1, b.0
                ));
            }
        }
        let _ = writeln!(o, "<li>Channel {k} (label {label}): {}.</li>", escape(&parts.join("; ")));
    }
    o.push_str("</ul>\n");
    o
}

fn step_cell(st: &StepRecord) -> (Cell, Option<String>) {
    let cell = Cell::num(Some(st.step as f64), st.step.to_string());
    let link = st.folder.as_ref().map(|f| format!("<a href=\"{}/index.html\">{}</a>", escape(f), st.step));
    (cell, link)
}

fn channel_table(s: &Series, k: usize, label: i64) -> String {
    let pairs = &s.pairs;
    let mut headers: Vec<String> = [
        "step",
        "soft Dice",
        "hard Dice",
        "foreground level",
        "background level",
        "level ratio",
        "1 − 2/Dice",
        "dynamic range",
        "float16 window (log2 S)",
        "float16 zero share",
    ]
    .iter()
    .map(|h| h.to_string())
    .collect();
    headers.extend(pairs.iter().map(|p| format!("cos {p}")));
    let rows = s
        .steps
        .iter()
        .filter_map(|st| {
            let c: &StepChannel = st.channels.iter().find(|c| c.channel == k)?;
            let (first, link) = step_cell(st);
            let mut cells = vec![
                first,
                Cell::num(Some(c.soft_dice), format!("{:.4}", c.soft_dice)),
                Cell::num(Some(c.hard_dice), format!("{:.4}", c.hard_dice)),
                Cell::num(c.foreground_level, opt(c.foreground_level, sci)),
                Cell::num(c.background_level, opt(c.background_level, sci)),
                Cell::num(c.level_ratio, opt(c.level_ratio, |v| format!("{v:.5}"))),
                Cell::num(c.dice_ratio, opt(c.dice_ratio, |v| format!("{v:.5}"))),
                Cell::num(c.dynamic_range, opt(c.dynamic_range, |v| format!("{v:.4}"))),
                Cell::num(
                    c.float16_window_log2_min,
                    match (c.float16_window_log2_min, c.float16_window_log2_max) {
                        (Some(a), Some(b)) => format!("{a:.2} to {b:.2}"),
                        _ => "–".into(),
                    },
                ),
                Cell::num(c.float16_zero_share, opt(c.float16_zero_share, significant)),
            ];
            for p in pairs {
                let v = c.cosines.iter().find(|x| &x.pair == p).and_then(|x| x.cosine);
                cells.push(Cell::num(v, opt(v, |v| format!("{v:.4}"))));
            }
            Some(Row { cells, class: None, first_html: link })
        })
        .collect();
    let caption = format!("Channel {k} (label {label}) over the steps");
    Table { caption: &caption, headers, rows, sortable: false }.html()
}

fn failures(s: &Series) -> String {
    let failed: Vec<&StepRecord> = s.steps.iter().filter(|st| !st.is_ok() || !st.errors.is_empty()).collect();
    if failed.is_empty() {
        return String::new();
    }
    let mut o = String::from("<h2>Failures</h2>\n<ul class=\"warnings\">\n");
    for st in failed {
        for e in &st.errors {
            let _ = writeln!(o, "<li>Step {} ({}): {}</li>", st.step, escape(&st.source), escape(e));
        }
    }
    o.push_str("</ul>\n");
    o
}

/// The page of a track, with its pictures `figures`; `command` made it.
pub fn track_page(s: &Series, figures: &[Figure], command: &str) -> String {
    let mut body =
        format!("<h1>dicegrad track: {} loss over training</h1>\n", escape(&s.parameters.loss.kind().to_string()));
    body.push_str(&facts(s, command));
    body.push_str("<h2>Over the steps</h2>\n");
    for f in figures {
        body.push_str(&figure(f));
    }
    body.push_str("<h2>Reading</h2>\n");
    body.push_str(&reading(s));
    body.push_str(
        "<p>With respect to probabilities the Dice gradient takes two values per channel, c − a on foreground and c \
         on background voxels, whose ratio is 1 − 2/soft Dice: as the network improves the ratio goes to −1 and the \
         foreground push and the background pull become equal and opposite.</p>\n",
    );
    body.push_str("<h2>Steps</h2>\n");
    for (k, label) in s.channels() {
        body.push_str(&channel_table(s, k, label));
    }
    body.push_str(&failures(s));
    let _ = writeln!(body, "<footer>dicegrad {}</footer>", escape(s.tool.version));
    page(&format!("dicegrad track: {}", s.labels), &body, false)
}
