//! The end of a batch run on the terminal: per channel, the means over the cases of the figures
//! a reader checks first, and the mean over the foreground channels — as nnU-Net's
//! `nnUNetv2_evaluate_folder` prints its per-class means and `foreground_mean` (the mean of the
//! foreground classes' means; background, label 0, left out).

use super::layout::{Block, Column, Table, Tone};
use super::summary::{ChannelSummary, Stats, Summary};
use super::wording::label_named;

/// The statistic of a channel that a column shows.
type Figure = fn(&ChannelSummary) -> &Stats;

/// The figures of the table: heading, the statistic of a channel it shows, and whether the
/// foreground mean averages it (not the mimic weights, which share 1 among the channels).
const FIGURES: [(&str, Figure, bool); 6] = [
    ("soft Dice", |c| &c.soft_dice, true),
    ("hard Dice", |c| &c.hard_dice, true),
    ("loss term", |c| &c.loss_term, true),
    ("fg level", |c| &c.foreground_level, true),
    ("bg level", |c| &c.background_level, true),
    ("mimic w", |c| &c.mimic_weight, false),
];

fn mean(v: Option<f64>) -> String {
    v.map_or_else(
        || "–".to_string(),
        |v| if v != 0.0 && v.abs() < 1e-3 { format!("{v:.4e}") } else { format!("{v:.5}") },
    )
}

/// The channels whose mean makes the foreground mean: every channel but label 0.
fn foreground(s: &Summary) -> Vec<&ChannelSummary> {
    s.channels.iter().filter(|c| c.label != 0).collect()
}

/// The mean over `channels` of each figure's mean (None when a channel has none, or the figure is
/// not averaged).
pub fn foreground_means(channels: &[&ChannelSummary]) -> Vec<Option<f64>> {
    FIGURES
        .iter()
        .map(|&(_, stat, averaged)| {
            if !averaged {
                return None;
            }
            let means: Option<Vec<f64>> = channels.iter().map(|c| stat(c).mean).collect();
            means.filter(|m| !m.is_empty()).map(|m| m.iter().sum::<f64>() / m.len() as f64)
        })
        .collect()
}

/// The table of a finished run: a row per channel (means over its cases), then the foreground
/// mean; and a line for the loss pooled over the data set.
pub fn summary_blocks(s: &Summary) -> Vec<Block> {
    let mut o = Vec::new();
    if s.channels.is_empty() {
        let line = match s.cases.total {
            0 => "no case was analysed".to_string(),
            n => format!("no case succeeded: {} of {n} failed (see summary.json)", s.cases.failed),
        };
        o.push(Block::Line(line, Tone::Warn));
        return o;
    }
    // on a narrow terminal the counts go first, then hard Dice and the loss term; the soft Dice
    // and the gradient's two levels stay
    let ranks = [0, 2, 2, 0, 0, 1];
    let mut columns = vec![Column::left("channel", 0), Column::right("label", 0), Column::right("cases", 3)];
    columns.extend(FIGURES.iter().zip(ranks).map(|((name, _, _), rank)| Column::right(name, rank)));
    columns.push(Column::right("two-level", 3));
    let mut rows: Vec<Vec<String>> = s
        .channels
        .iter()
        .map(|c| {
            let mut row = vec![c.channel.to_string(), label_named(c.label, c.name.as_deref()), c.cases.to_string()];
            row.extend(FIGURES.iter().map(|(_, stat, _)| mean(stat(c).mean)));
            row.push(format!("{}/{}", c.two_level_cases, c.cases));
            row
        })
        .collect();
    let fg = foreground(s);
    if !fg.is_empty() {
        let mut row = vec!["foreground mean".to_string(), String::new(), String::new()];
        row.extend(
            foreground_means(&fg).into_iter().zip(FIGURES).map(|(m, f)| if f.2 { mean(m) } else { String::new() }),
        );
        row.push(String::new());
        rows.push(row);
    }
    o.push(Block::Line(format!("means over the {} analysed cases, per channel", s.cases.ok), Tone::Plain));
    o.push(Block::Table(Table { columns, rows }));
    if let Some(b) = &s.batch {
        o.push(Block::Line(
            format!(
                "loss with the sums pooled over the {} cases: {:.6} (mean of the per-case losses {:.6})",
                b.cases, b.loss, b.per_case_mean_loss
            ),
            Tone::Plain,
        ));
    }
    if s.cases.failed > 0 {
        o.push(Block::Line(
            format!("{} of {} cases failed (see summary.json)", s.cases.failed, s.cases.total),
            Tone::Warn,
        ));
    }
    o
}
