//! `series.csv`: the series of a track in long form, one row per step and reported channel (one
//! row with the errors for a step that failed), written with the `csv` crate from one table of
//! columns. Numbers as in `cases.csv`: full precision, scientific notation, empty when undefined.

use super::series::{Series, StepChannel, StepRecord};

type Column = (&'static str, fn(&StepRecord, &StepChannel) -> String);

fn num(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite()).map_or(String::new(), |x| format!("{x:e}"))
}

/// A figure of a folder's cases: its mean and the bounds of the mean's 95 % confidence interval.
fn spread(c: &StepChannel, pick: fn(&super::summary::ChannelSummary) -> &super::summary::Stats) -> [Option<f64>; 3] {
    c.spread.as_ref().map_or([None; 3], |s| {
        let st = pick(s);
        [st.mean, st.ci95_low, st.ci95_high]
    })
}

/// Every column before the comparison columns, in order.
const COLUMNS: [Column; 43] = [
    ("step", |s, _| s.step.to_string()),
    ("source", |s, _| s.source.clone()),
    ("status", |s, _| s.status.to_string()),
    ("cases", |s, _| s.cases.total.to_string()),
    ("cases_ok", |s, _| s.cases.ok.to_string()),
    ("cases_failed", |s, _| s.cases.failed.to_string()),
    ("cases_missing", |s, _| s.missing.len().to_string()),
    ("channel", |_, c| c.channel.to_string()),
    ("label", |_, c| c.label.to_string()),
    ("name", |_, c| c.name.clone().unwrap_or_default()),
    ("foreground_voxels", |_, c| c.foreground_voxels.to_string()),
    ("loss", |s, _| num(s.loss)),
    ("loss_term", |_, c| num(c.loss_term)),
    ("soft_dice", |_, c| num(Some(c.soft_dice))),
    ("hard_dice", |_, c| num(Some(c.hard_dice))),
    ("foreground_level", |_, c| num(c.foreground_level)),
    ("background_level", |_, c| num(c.background_level)),
    ("mimic_weight", |_, c| num(c.mimic_weight)),
    ("mimic_a", |_, c| num(c.mimic_a)),
    ("gradient_min", |_, c| num(c.gradient_min)),
    ("gradient_max", |_, c| num(c.gradient_max)),
    ("two_level", |_, c| c.two_level.to_string()),
    ("level_ratio", |_, c| num(c.level_ratio)),
    ("level_ratio_closed_form", |_, c| num(c.level_ratio_closed_form)),
    ("dice_ratio", |_, c| num(c.dice_ratio)),
    ("dynamic_range", |_, c| num(c.dynamic_range)),
    ("float16_window_log2_min", |_, c| num(c.float16_window_log2_min)),
    ("float16_window_log2_max", |_, c| num(c.float16_window_log2_max)),
    ("float16_window_empty", |_, c| c.float16_window_empty.to_string()),
    ("float16_zero_share", |_, c| num(c.float16_zero_share)),
    ("float16_subnormal_share", |_, c| num(c.float16_subnormal_share)),
    ("float16_overflow_share", |_, c| num(c.float16_overflow_share)),
    ("float16_l1_lost_share", |_, c| num(c.float16_l1_lost_share)),
    ("bfloat16_zero_share", |_, c| num(c.bfloat16_zero_share)),
    ("bfloat16_subnormal_share", |_, c| num(c.bfloat16_subnormal_share)),
    ("bfloat16_overflow_share", |_, c| num(c.bfloat16_overflow_share)),
    ("bfloat16_l1_lost_share", |_, c| num(c.bfloat16_l1_lost_share)),
    ("case_soft_dice_mean", |_, c| num(spread(c, |s| &s.soft_dice)[0])),
    ("case_soft_dice_ci95_low", |_, c| num(spread(c, |s| &s.soft_dice)[1])),
    ("case_soft_dice_ci95_high", |_, c| num(spread(c, |s| &s.soft_dice)[2])),
    ("case_dynamic_range_mean", |_, c| num(spread(c, |s| &s.dynamic_range)[0])),
    ("case_dynamic_range_ci95_low", |_, c| num(spread(c, |s| &s.dynamic_range)[1])),
    ("case_dynamic_range_ci95_high", |_, c| num(spread(c, |s| &s.dynamic_range)[2])),
];

/// A cell of the one row of a failed step: its step, source and counts, and its errors after
/// `failed: ` in the status column; nothing else.
fn failed_cell(column: &str, s: &StepRecord) -> String {
    match column {
        "step" => s.step.to_string(),
        "source" => s.source.clone(),
        "status" => format!("failed: {}", s.errors.join("; ")),
        "cases" => s.cases.total.to_string(),
        "cases_ok" => s.cases.ok.to_string(),
        "cases_failed" => s.cases.failed.to_string(),
        "cases_missing" => s.missing.len().to_string(),
        _ => String::new(),
    }
}

/// The whole file.
pub fn to_csv(series: &Series) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    let mut header: Vec<String> = COLUMNS.iter().map(|(name, _)| name.to_string()).collect();
    header.extend(series.pairs.iter().map(|p| format!("{}_cosine", p.replace(" vs ", "_vs_"))));
    w.write_record(&header).expect("writing to memory does not fail");
    for s in &series.steps {
        if !s.is_ok() {
            let mut cells: Vec<String> = COLUMNS.iter().map(|(name, _)| failed_cell(name, s)).collect();
            cells.resize(header.len(), String::new());
            w.write_record(&cells).expect("writing to memory does not fail");
            continue;
        }
        for c in &s.channels {
            let mut cells: Vec<String> = COLUMNS.iter().map(|(_, cell)| cell(s, c)).collect();
            for p in &series.pairs {
                cells.push(num(c.cosines.iter().find(|x| &x.pair == p).and_then(|x| x.cosine)));
            }
            w.write_record(&cells).expect("writing to memory does not fail");
        }
    }
    w.into_inner().expect("writing to memory does not fail")
}
