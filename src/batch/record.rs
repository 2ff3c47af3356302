//! What a batch keeps of each case: one JSON line in `cases.jsonl` (everything the summary and a
//! merge need, including the sums for the pooled loss and the log histograms), from which the rows
//! of `cases.csv` are derived.

use serde::{Deserialize, Serialize};

use crate::analysis::LogHistogram;
use crate::loss::CaseSums;
use crate::report::Report;

/// Figures of one channel of one case (the analysis of `analyze`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelRow {
    pub channel: usize,
    pub label: i64,
    pub foreground_voxels: u64,
    pub soft_dice: f64,
    pub hard_dice: f64,
    pub loss_term: Option<f64>,
    /// Mean gradient on foreground / background voxels.
    pub foreground_level: Option<f64>,
    pub background_level: Option<f64>,
    pub fit_a: Option<f64>,
    pub fit_c: Option<f64>,
    pub fit_r2: Option<f64>,
    pub two_level: bool,
    pub dynamic_range: Option<f64>,
    /// Shares of values lost (subnormal or zero) in float16 / bfloat16.
    pub float16_lost: f64,
    pub bfloat16_lost: f64,
    /// With `--compare`: per pair, (cosine, scale, sign agreement).
    pub comparisons: Vec<PairFigures>,
}

/// Comparison figures of one pair on one channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairFigures {
    /// "a vs b".
    pub pair: String,
    pub cosine: Option<f64>,
    pub scale: Option<f64>,
    pub sign_agreement: f64,
}

/// One case of a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseRecord {
    pub case: String,
    pub labels: String,
    pub pred: String,
    /// `ok` or `failed`.
    pub status: String,
    pub error: Option<String>,
    pub loss: Option<f64>,
    pub channels: Vec<ChannelRow>,
    /// The main loss's sums (None for a failed case).
    pub sums: Option<CaseSums>,
    /// Per reported channel, the |gradient| log histogram.
    pub log_histograms: Vec<LogHistogram>,
}

impl CaseRecord {
    /// A failed case.
    pub fn failed(case: &str, labels: &str, pred: &str, error: String) -> CaseRecord {
        CaseRecord {
            case: case.into(),
            labels: labels.into(),
            pred: pred.into(),
            status: "failed".into(),
            error: Some(error),
            loss: None,
            channels: Vec::new(),
            sums: None,
            log_histograms: Vec::new(),
        }
    }

    /// A case analysed successfully.
    pub fn ok(case: &str, report: &Report, sums: CaseSums) -> CaseRecord {
        let channels = report
            .channels
            .iter()
            .map(|c| {
                let g = &c.gradient;
                let comparisons = report
                    .comparison
                    .iter()
                    .flat_map(|cmp| &cmp.pairs)
                    .filter_map(|p| {
                        p.channels.iter().find(|pc| pc.channel == c.channel).map(|pc| PairFigures {
                            pair: format!("{} vs {}", p.a, p.b),
                            cosine: pc.cosine,
                            scale: pc.scale,
                            sign_agreement: pc.sign_agreement,
                        })
                    })
                    .collect();
                ChannelRow {
                    channel: c.channel,
                    label: c.label,
                    foreground_voxels: c.foreground_voxels,
                    soft_dice: c.soft_dice,
                    hard_dice: c.hard_dice,
                    loss_term: c.loss_term,
                    foreground_level: g.foreground.mean,
                    background_level: g.background.mean,
                    fit_a: g.fit.a,
                    fit_c: g.fit.c,
                    fit_r2: g.fit.r2,
                    two_level: g.two_level,
                    dynamic_range: g.dynamic_range.ratio,
                    float16_lost: g.precision.float16.lost,
                    bfloat16_lost: g.precision.bfloat16.lost,
                    comparisons,
                }
            })
            .collect();
        CaseRecord {
            case: case.into(),
            labels: report.inputs.labels.path.clone(),
            pred: report.inputs.prediction.file.path.clone(),
            status: "ok".into(),
            error: None,
            loss: Some(report.loss.value),
            channels,
            sums: Some(sums),
            log_histograms: report.channels.iter().map(|c| c.gradient.log_histogram.clone()).collect(),
        }
    }

    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }
}

/// Columns of `cases.csv` before the comparison columns.
pub const CSV_COLUMNS: [&str; 19] = [
    "case",
    "status",
    "error",
    "channel",
    "label",
    "foreground_voxels",
    "loss",
    "loss_term",
    "soft_dice",
    "hard_dice",
    "foreground_level",
    "background_level",
    "fit_a",
    "fit_c",
    "fit_r2",
    "two_level",
    "dynamic_range",
    "float16_lost",
    "bfloat16_lost",
];

fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn num(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite()).map_or(String::new(), |x| format!("{x:e}"))
}

/// The CSV header line for comparison pairs `pairs` ("a vs b").
pub fn csv_header(pairs: &[String]) -> String {
    let mut cols: Vec<String> = CSV_COLUMNS.iter().map(|s| s.to_string()).collect();
    for p in pairs {
        let p = p.replace(" vs ", "_vs_");
        cols.extend([format!("{p}_cosine"), format!("{p}_scale"), format!("{p}_sign_agreement")]);
    }
    cols.join(",") + "\n"
}

/// The CSV rows of a case: one per channel, or one for a failed case.
pub fn csv_rows(r: &CaseRecord, pairs: &[String]) -> String {
    if !r.is_ok() {
        let mut cells = vec![field(&r.case), "failed".into(), field(r.error.as_deref().unwrap_or(""))];
        cells.resize(CSV_COLUMNS.len() + 3 * pairs.len(), String::new());
        return cells.join(",") + "\n";
    }
    let mut out = String::new();
    for c in &r.channels {
        let mut cells = vec![
            field(&r.case),
            "ok".into(),
            String::new(),
            c.channel.to_string(),
            c.label.to_string(),
            c.foreground_voxels.to_string(),
            num(r.loss),
            num(c.loss_term),
            num(Some(c.soft_dice)),
            num(Some(c.hard_dice)),
            num(c.foreground_level),
            num(c.background_level),
            num(c.fit_a),
            num(c.fit_c),
            num(c.fit_r2),
            c.two_level.to_string(),
            num(c.dynamic_range),
            num(Some(c.float16_lost)),
            num(Some(c.bfloat16_lost)),
        ];
        for p in pairs {
            match c.comparisons.iter().find(|f| &f.pair == p) {
                Some(f) => cells.extend([num(f.cosine), num(f.scale), num(Some(f.sign_agreement))]),
                None => cells.extend([String::new(), String::new(), String::new()]),
            }
        }
        out += &(cells.join(",") + "\n");
    }
    out
}
