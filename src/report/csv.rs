//! `cases.csv`: the case records in long form, one row per case and reported channel (one row with
//! the error for a failed case), written with the `csv` crate from one table of columns.
//!
//! Numbers are written in full precision, in scientific notation (`3.7e-1`, `1e0`); an undefined
//! number is an empty cell. The `error` column holds `none` for a case that succeeded, so that
//! tools reading the file (pandas) see a column of text even when no case failed.

use super::record::{CaseRecord, ChannelRow};
use crate::loss::{compared_kinds, pairs, LossKind};

/// A column before the comparison columns: its name and its cell on a row of a successful case.
type Column = (&'static str, fn(&CaseRecord, &ChannelRow) -> String);

fn num(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite()).map_or(String::new(), |x| format!("{x:e}"))
}

/// What a successful case's error column holds.
const NO_ERROR: &str = "none";

/// Every column before the comparison columns, in order.
const COLUMNS: [Column; 30] = [
    ("case", |r, _| r.case.clone()),
    ("status", |_, _| "ok".into()),
    ("error", |_, _| NO_ERROR.into()),
    ("channel", |_, c| c.channel.to_string()),
    ("label", |_, c| c.label.to_string()),
    ("name", |_, c| c.name.clone().unwrap_or_default()),
    ("foreground_voxels", |_, c| c.foreground_voxels.to_string()),
    ("loss", |r, _| num(r.loss)),
    ("loss_term", |_, c| num(c.loss_term)),
    ("soft_dice", |_, c| num(Some(c.soft_dice))),
    ("hard_dice", |_, c| num(Some(c.hard_dice))),
    ("foreground_level", |_, c| num(c.foreground_level)),
    ("background_level", |_, c| num(c.background_level)),
    ("mimic_weight", |_, c| num(c.mimic_weight)),
    ("mimic_a", |_, c| num(c.mimic_a)),
    ("fit_a", |_, c| num(c.fit_a)),
    ("fit_c", |_, c| num(c.fit_c)),
    ("fit_r2", |_, c| num(c.fit_r2)),
    ("two_level", |_, c| c.two_level.to_string()),
    ("dynamic_range", |_, c| num(c.dynamic_range)),
    ("float16_window_log2_min", |_, c| num(c.float16_window_log2_min)),
    ("float16_window_log2_max", |_, c| num(c.float16_window_log2_max)),
    ("float16_zero_share", |_, c| num(Some(c.float16_zero_share))),
    ("float16_subnormal_share", |_, c| num(Some(c.float16_subnormal_share))),
    ("float16_overflow_share", |_, c| num(Some(c.float16_overflow_share))),
    ("float16_l1_lost_share", |_, c| num(Some(c.float16_l1_lost_share))),
    ("bfloat16_zero_share", |_, c| num(Some(c.bfloat16_zero_share))),
    ("bfloat16_subnormal_share", |_, c| num(Some(c.bfloat16_subnormal_share))),
    ("bfloat16_overflow_share", |_, c| num(Some(c.bfloat16_overflow_share))),
    ("bfloat16_l1_lost_share", |_, c| num(Some(c.bfloat16_l1_lost_share))),
];

/// The figures of each compared pair, after [`COLUMNS`]: (suffix of the column name, cell).
type PairColumn = (&'static str, fn(&super::record::PairFigures) -> String);

const PAIR_COLUMNS: [PairColumn; 3] =
    [("cosine", |f| num(f.cosine)), ("scale", |f| num(f.scale)), ("sign_agreement", |f| num(Some(f.sign_agreement)))];

/// A cell of the one row of a failed case: its id, its status and its error; nothing else.
fn failed_cell(column: &str, r: &CaseRecord) -> String {
    match column {
        "case" => r.case.clone(),
        "status" => "failed".into(),
        "error" => r.error.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

/// The compared pairs ("a vs b") of a run's losses, in the order of the columns.
pub fn pair_names(main: LossKind, compare: &[LossKind]) -> Vec<String> {
    let kinds = compared_kinds(main, compare);
    pairs(kinds.len()).into_iter().map(|(i, j)| format!("{} vs {}", kinds[i], kinds[j])).collect()
}

fn write(rows: impl IntoIterator<Item = Vec<String>>) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    for row in rows {
        w.write_record(&row).expect("writing to memory does not fail");
    }
    w.into_inner().expect("writing to memory does not fail")
}

/// The header line for comparison pairs `pairs`.
pub fn header(pairs: &[String]) -> Vec<u8> {
    let mut cols: Vec<String> = COLUMNS.iter().map(|(name, _)| name.to_string()).collect();
    for p in pairs {
        let p = p.replace(" vs ", "_vs_");
        cols.extend(PAIR_COLUMNS.iter().map(|(suffix, _)| format!("{p}_{suffix}")));
    }
    write([cols])
}

/// The rows of a case: one per reported channel, or one for a failed case.
pub fn rows(r: &CaseRecord, pairs: &[String]) -> Vec<u8> {
    if !r.is_ok() {
        let mut cells: Vec<String> = COLUMNS.iter().map(|(name, _)| failed_cell(name, r)).collect();
        cells.resize(COLUMNS.len() + PAIR_COLUMNS.len() * pairs.len(), String::new());
        return write([cells]);
    }
    write(r.channels.iter().map(|c| {
        let mut cells: Vec<String> = COLUMNS.iter().map(|(_, cell)| cell(r, c)).collect();
        for p in pairs {
            match c.comparisons.iter().find(|f| &f.pair == p) {
                Some(f) => cells.extend(PAIR_COLUMNS.iter().map(|(_, cell)| cell(f))),
                None => cells.extend(std::iter::repeat_n(String::new(), PAIR_COLUMNS.len())),
            }
        }
        cells
    }))
}

/// The whole file for `records`.
pub fn to_csv(pairs: &[String], records: &[CaseRecord]) -> Vec<u8> {
    let mut out = header(pairs);
    for r in records {
        out.extend(rows(r, pairs));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::record::PairFigures;

    fn row(channel: usize) -> ChannelRow {
        ChannelRow {
            channel,
            label: channel as i64,
            name: None,
            in_dice_part: true,
            foreground_voxels: 10,
            soft_dice: 0.5,
            hard_dice: 1.0,
            loss_term: None,
            foreground_level: Some(-2.5e-3),
            background_level: Some(1e-4),
            mimic_weight: Some(0.25),
            mimic_a: Some(2e-4),
            fit_a: None,
            fit_c: None,
            fit_r2: Some(1.0),
            two_level: true,
            gradient_min: Some(-2.5e-3),
            gradient_max: Some(1e-4),
            level_ratio_closed_form: Some(-25.0),
            dynamic_range: Some(25.0),
            float16_window_log2_min: Some(-3.5),
            float16_window_log2_max: None,
            float16_zero_share: 0.25,
            float16_subnormal_share: 0.0,
            float16_overflow_share: 0.0,
            float16_l1_lost_share: 1e-3,
            bfloat16_zero_share: 0.0,
            bfloat16_subnormal_share: 0.0,
            bfloat16_overflow_share: 0.0,
            bfloat16_l1_lost_share: 0.0,
            comparisons: vec![PairFigures {
                pair: "dice vs ce".into(),
                cosine: Some(0.5),
                scale: None,
                sign_agreement: 1.0,
            }],
        }
    }

    fn record(case: &str, error: Option<&str>) -> CaseRecord {
        CaseRecord {
            case: case.into(),
            labels: format!("{case}.nii.gz"),
            pred: format!("{case}.npz"),
            status: if error.is_some() { "failed" } else { "ok" }.into(),
            error: error.map(String::from),
            loss: error.is_none().then_some(0.25),
            channels: if error.is_some() { vec![] } else { vec![row(0), row(1)] },
            sums: None,
            log_histograms: vec![],
        }
    }

    #[test]
    fn rows_have_one_cell_per_column_and_round_trip_through_a_csv_reader() {
        let pairs = pair_names(LossKind::Dice, &[LossKind::Ce, LossKind::Dice]);
        assert_eq!(pairs, ["dice vs ce"]);
        let records = [record("a", None), record("b, \"quoted\"\nline", Some("bad, \"file\": truncated"))];
        let bytes = to_csv(&pairs, &records);
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let head = reader.headers().unwrap().clone();
        assert_eq!(head.len(), 33);
        assert_eq!((&head[4], &head[5]), ("label", "name"));
        assert_eq!((&head[13], &head[14]), ("mimic_weight", "mimic_a"));
        assert_eq!((&head[20], &head[25]), ("float16_window_log2_min", "float16_l1_lost_share"));
        assert_eq!(&head[30], "dice_vs_ce_cosine");
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 3, "two channels of a, one row for b");
        assert!(rows.iter().all(|r| r.len() == head.len()));
        assert_eq!((&rows[0][0], &rows[0][2], &rows[0][3], &rows[1][3]), ("a", "none", "0", "1"));
        assert_eq!((&rows[0][7], &rows[0][11], &rows[0][15]), ("2.5e-1", "-2.5e-3", ""));
        assert_eq!((&rows[0][13], &rows[0][14]), ("2.5e-1", "2e-4"));
        assert_eq!((&rows[0][20], &rows[0][21], &rows[0][22], &rows[0][25]), ("-3.5e0", "", "2.5e-1", "1e-3"));
        assert_eq!((&rows[0][30], &rows[0][31], &rows[0][32]), ("5e-1", "", "1e0"));
        assert_eq!((&rows[2][0], &rows[2][1]), ("b, \"quoted\"\nline", "failed"));
        assert_eq!(&rows[2][2], "bad, \"file\": truncated");
        assert!((3..33).all(|i| rows[2][i].is_empty()));
    }
}
