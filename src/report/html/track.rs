//! `track.html`: a training run on one page — what was analysed and how, the series picture, a
//! reading of it (does the level ratio follow 1 − 2/Dice; when each class starts getting gradient;
//! where float16 at the run's loss scale stops holding the gradient; how far compared losses
//! agree), and per channel a table of the steps (with a link to each folder step's own page).

use crate::report::wording::{capitalised, channel as channel_title, name_of};
use std::fmt::Write;

use super::{escape, figure, loss_facts, opt, page, sci, Cell, Figure, Row, Table};
use crate::report::reading::significant;
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
    for (k, v) in loss_facts(p, &s.resolved) {
        fact(&k, v);
    }
    let failed = s.steps.iter().filter(|st| !st.is_ok()).count();
    let partial = s.steps.iter().filter(|st| st.status == "partial").count();
    let partial = if partial > 0 { format!(", {partial} over fewer cases") } else { String::new() };
    let first_last = match (s.steps.first(), s.steps.last()) {
        (Some(a), Some(b)) if a.step != b.step => format!(", steps {} to {}", a.step, b.step),
        (Some(a), _) => format!(", step {}", a.step),
        _ => String::new(),
    };
    fact("steps", format!("{} ({} ok, {failed} failed{partial}){first_last}", s.steps.len(), s.steps.len() - failed));
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

/// Channel `k`'s soft Dice over the steps against `at`: when it first reaches it, and whether it
/// falls below again after (the first such step).
fn crossing(s: &Series, k: usize, at: f64) -> String {
    let v: Vec<(u64, f64)> =
        s.ok_steps().filter_map(|st| Some((st.step, st.channels.iter().find(|c| c.channel == k)?.soft_dice))).collect();
    let Some(up) = v.iter().position(|(_, d)| *d >= at) else {
        return format!("soft Dice stays below {at}");
    };
    let Some(down) = v[up..].iter().find(|(_, d)| *d < at) else {
        return match up {
            0 => format!("soft Dice ≥ {at} at every step"),
            _ => format!("soft Dice reaches {at} at step {} and stays there", v[up].0),
        };
    };
    let fell = format!("soft Dice reaches {at} at step {} but falls below it again at step {}", v[up].0, down.0);
    // back above it for good after the last step below
    let last_below = v.iter().rposition(|(_, d)| *d < at).expect("a step below");
    match v.get(last_below + 1) {
        Some((step, _)) => format!("{fell}, and is at or above it again from step {step} on"),
        None => fell,
    }
}

/// A figure of channel `k` at one step.
type Measure = fn(&StepChannel) -> Option<f64>;

/// The steps at which `share` of channel `k` is above 0, with its largest value.
fn steps_with(s: &Series, k: usize, share: Measure) -> (Vec<u64>, f64) {
    let v: Vec<(u64, f64)> = s
        .ok_steps()
        .filter_map(|st| Some((st.step, share(st.channels.iter().find(|c| c.channel == k)?).filter(|z| *z > 0.0)?)))
        .collect();
    (v.iter().map(|x| x.0).collect(), v.iter().map(|x| x.1).fold(0.0, f64::max))
}

/// Steps written out: all of them when few, else the first few and how many more.
fn step_list(steps: &[u64]) -> String {
    let shown: Vec<String> = steps.iter().take(6).map(u64::to_string).collect();
    let more = steps.len().saturating_sub(6);
    let word = if steps.len() == 1 { "step" } else { "steps" };
    if more == 0 {
        format!("{word} {}", shown.join(", "))
    } else {
        format!("{word} {} and {more} more", shown.join(", "))
    }
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
        parts.push(crossing(s, k, 0.5));
        let fates: [(&str, Measure); 3] = [
            ("flushes values to zero", |c| c.float16_zero_share),
            ("makes values subnormal (fewer significant bits)", |c| c.float16_subnormal_share),
            ("makes values infinite (overflow)", |c| c.float16_overflow_share),
        ];
        for (what, share) in fates {
            let (steps, most) = steps_with(s, k, share);
            if !steps.is_empty() {
                parts.push(format!(
                    "at the loss scale a float16 cast {what} at {} (up to {} of the values)",
                    step_list(&steps),
                    significant(most)
                ));
            }
        }
        let empty: Vec<u64> = s
            .ok_steps()
            .filter(|st| st.channels.iter().any(|c| c.channel == k && c.float16_window_empty))
            .map(|st| st.step)
            .collect();
        if !empty.is_empty() {
            parts.push(format!("no loss scale keeps every value a normal float16 at {}", step_list(&empty)));
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
        let title = channel_title(k, label, name_of(&s.parameters.classes.names, k));
        let _ = writeln!(o, "<li>{}: {}.</li>", escape(&capitalised(&title)), escape(&parts.join("; ")));
    }
    o.push_str("</ul>\n");
    o
}

/// A warning for folder steps pooled over fewer cases than their folder's labels: their figures
/// do not compare with the other steps'.
fn partial(s: &Series) -> String {
    let partial: Vec<String> = s
        .steps
        .iter()
        .filter(|st| st.status == "partial")
        .map(|st| {
            let mut why = Vec::new();
            if st.cases.failed > 0 {
                why.push(format!("{} failed", st.cases.failed));
            }
            if !st.missing.is_empty() {
                why.push(format!("{} without a prediction", st.missing.len()));
            }
            let all = st.cases.ok + st.cases.failed + st.missing.len();
            format!("step {} ({} of {all} cases; {})", st.step, st.cases.ok, why.join(", "))
        })
        .collect();
    if partial.is_empty() {
        return String::new();
    }
    format!(
        "<p class=\"badge\">Steps over fewer cases: {}. Their pooled figures cover other cases than the other \
         steps' and do not compare with them directly; they are ringed in the picture.</p>\n",
        escape(&partial.join("; "))
    )
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
        "closed-form ratio",
        "1 − 2/Dice",
        "mimic weight",
        "dynamic range",
        "float16 window (log2 S)",
        "float16 zero share",
        "float16 overflow share",
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
                Cell::num(c.level_ratio_closed_form, opt(c.level_ratio_closed_form, |v| format!("{v:.5}"))),
                Cell::num(c.dice_ratio, opt(c.dice_ratio, |v| format!("{v:.5}"))),
                Cell::num(c.mimic_weight, opt(c.mimic_weight, |v| format!("{v:.4}"))),
                Cell::num(c.dynamic_range, opt(c.dynamic_range, |v| if v < 1e4 { format!("{v:.4}") } else { sci(v) })),
                Cell::num(
                    c.float16_window_log2_min,
                    match (c.float16_window_log2_min, c.float16_window_log2_max) {
                        (Some(a), Some(b)) if a > b => format!("none ({a:.2} > {b:.2})"),
                        (Some(a), Some(b)) => format!("{a:.2} to {b:.2}"),
                        _ => "–".into(),
                    },
                ),
                Cell::num(c.float16_zero_share, opt(c.float16_zero_share, significant)),
                Cell::num(c.float16_overflow_share, opt(c.float16_overflow_share, significant)),
            ];
            for p in pairs {
                let v = c.cosines.iter().find(|x| &x.pair == p).and_then(|x| x.cosine);
                cells.push(Cell::num(v, opt(v, |v| format!("{v:.4}"))));
            }
            let class = (st.status == "partial").then_some("flag");
            Some(Row { cells, class, first_html: link })
        })
        .collect();
    let caption =
        format!("{} over the steps", capitalised(&channel_title(k, label, name_of(&s.parameters.classes.names, k))));
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
    body.push_str(&partial(s));
    if s.parameters.loss.kind() == crate::loss::LossKind::Dice {
        body.push_str(
            "<p>With respect to probabilities the Dice gradient takes two values per channel, c − a on foreground and \
             c on background voxels, whose ratio is 1 − 2/soft Dice: as the network improves the ratio goes to −1 and \
             the foreground push and the background pull become equal and opposite.</p>\n",
        );
    }
    body.push_str("<h2>Steps</h2>\n");
    for (k, label) in s.channels() {
        body.push_str(&channel_table(s, k, label));
    }
    body.push_str(&failures(s));
    let _ = writeln!(body, "<footer>dicegrad {}</footer>", escape(s.tool.version));
    page(&format!("dicegrad track: {}", s.labels), &body, false)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::record::CaseRecord;
    use crate::report::summary::RunParameters;

    /// A file step of one channel with soft Dice `dice` and the float16 window 2^lo to 2^hi.
    pub(crate) fn step(step: u64, dice: f64, lo: f64, hi: f64) -> StepRecord {
        let row = serde_json::json!({
            "channel": 1, "label": 1, "foreground_voxels": 100, "soft_dice": dice, "hard_dice": dice,
            "loss_term": 1.0 - dice, "foreground_level": -2e-4, "background_level": 1e-4, "fit_a": null,
            "fit_c": null, "fit_r2": 1.0, "two_level": true, "dynamic_range": 2.0,
            "float16_window_log2_min": lo, "float16_window_log2_max": hi, "float16_zero_share": 0.0,
            "float16_subnormal_share": 0.0, "float16_overflow_share": 0.0, "float16_l1_lost_share": 0.0,
            "bfloat16_zero_share": 0.0, "bfloat16_subnormal_share": 0.0, "bfloat16_overflow_share": 0.0,
            "bfloat16_l1_lost_share": 0.0, "comparisons": []
        });
        let mut r = CaseRecord::failed(&step.to_string(), "l", "p", String::new());
        (r.status, r.error, r.channels, r.loss) =
            ("ok".into(), None, vec![serde_json::from_value(row).unwrap()], Some(0.5));
        StepRecord::of_file(step, "p", &r)
    }

    pub(crate) fn series(steps: Vec<StepRecord>) -> Series {
        let params: RunParameters = serde_json::from_value(serde_json::json!({
            "loss": {"preset": null, "overrides": {}}, "compare": [], "pred_suffix": "", "affine_tol": 1e-3,
            "max_values": 1000
        }))
        .unwrap();
        Series::build(&params, Vec::new(), "l".into(), None, steps)
    }

    #[test]
    fn a_class_that_reaches_half_and_falls_back_is_said_so() {
        let s = series(vec![step(1, 0.37, 1.0, 20.0), step(2, 0.82, 1.0, 20.0), step(3, 0.37, 1.0, 20.0)]);
        assert_eq!(crossing(&s, 1, 0.5), "soft Dice reaches 0.5 at step 2 but falls below it again at step 3");
        let s = series(vec![step(1, 0.3, 1.0, 20.0), step(2, 0.6, 1.0, 20.0), step(5, 0.7, 1.0, 20.0)]);
        assert_eq!(crossing(&s, 1, 0.5), "soft Dice reaches 0.5 at step 2 and stays there");
        let s = series(vec![step(10, 0.67, 1.0, 20.0), step(20, 0.48, 1.0, 20.0), step(30, 0.8, 1.0, 20.0)]);
        assert_eq!(
            crossing(&s, 1, 0.5),
            "soft Dice reaches 0.5 at step 10 but falls below it again at step 20, and is at or above it again from \
             step 30 on"
        );
        let s = series(vec![step(1, 0.1, 1.0, 20.0)]);
        assert_eq!(crossing(&s, 1, 0.5), "soft Dice stays below 0.5");
    }

    #[test]
    fn an_empty_float16_window_is_said_and_not_shown_as_a_range() {
        let s = series(vec![step(10, 0.5, 1.0, 20.0), step(20, 0.6, 42.2, 31.9)]);
        let c = &s.steps[1].channels[0];
        assert!(c.float16_window_empty && !s.steps[0].channels[0].float16_window_empty);
        let page = track_page(&s, &[], "dicegrad track");
        assert!(page.contains("none (42.20 &gt; 31.90)"), "the table says the window is empty");
        assert!(page.contains("no loss scale keeps every value a normal float16 at step 20"));
    }
}
