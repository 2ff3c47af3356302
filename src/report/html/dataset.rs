//! `index.html`: a data set on one page — the run's parameters, the summary per channel, the pooled
//! pictures, a sortable table of the cases with the outliers flagged
//! ([`crate::report::outliers`]: the one definition the pictures use too), the failed cases with
//! their errors, and a link to each case's own `report.html` when the run wrote them.

use crate::report::wording::label_named;
use std::fmt::Write;

use super::over_cases::{comparisons, mean_ci};
use super::{escape, figure, loss_facts, opt, page, Cell, Figure, Row, Table};
use crate::report::outliers::{outliers, Outlier, THRESHOLD};
use crate::report::record::CaseRecord;
use crate::report::summary::{Stats, Summary};

/// Where the run read its cases and what it wrote besides the index.
#[derive(Clone, Debug, Default)]
pub struct RunInfo {
    pub labels_dir: String,
    pub pred_dir: String,
    /// Each successful case has `cases/<case_folder(id)>/report.html`.
    pub case_reports: bool,
}

/// The folder name of a case's own report: the id with every character other than an ASCII
/// letter, digit, `-`, `_` or a `.` not in first place written as `%XX` (per UTF-8 byte), so that
/// no id names a path outside `cases/` (`..`), a hidden file, or another id's folder.
pub fn case_folder(id: &str) -> String {
    let mut o = String::new();
    for (i, b) in id.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0) {
            o.push(b as char);
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

/// The link from the index to a case's report (the `%` of the folder name written `%25`).
pub fn case_href(id: &str) -> String {
    format!("cases/{}/report.html", case_folder(id).replace('%', "%25"))
}

/// "median [min, max]" of a figure over the cases.
fn spread(s: &Stats, f: impl Fn(f64) -> String) -> String {
    match (s.median, s.min, s.max) {
        (Some(m), Some(a), Some(b)) => format!("{} [{}, {}]", f(m), f(a), f(b)),
        _ => "–".to_string(),
    }
}

fn parameters(s: &Summary, run: &RunInfo) -> String {
    let p = &s.parameters;
    let mut o = String::from("<dl class=\"facts\">");
    let mut fact = |k: &str, v: String| {
        let _ = write!(o, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(&v));
    };
    fact("labels folder", run.labels_dir.clone());
    fact("predictions folder", run.pred_dir.clone());
    for (k, v) in loss_facts(p, &s.resolved) {
        fact(&k, v);
    }
    if !p.pred_suffix.is_empty() {
        fact("prediction suffix", p.pred_suffix.clone());
    }
    fact("cases", format!("{} ({} ok, {} failed)", s.cases.total, s.cases.ok, s.cases.failed));
    fact("loss over cases", spread(&s.loss, |v| format!("{v:.4}")) + " (median [min, max])");
    fact("mean loss over cases", mean_ci(&s.loss, |v| format!("{v:.4}")) + " (95 % confidence interval)");
    if let Some(b) = &s.batch {
        fact(
            "pooled loss",
            format!(
                "{:.6} with sums pooled over {} cases (mean of the per-case losses {:.6}); its mimic weights {}",
                b.loss,
                b.cases,
                b.per_case_mean_loss,
                b.channels
                    .iter()
                    .map(|c| format!("{} {}", c.channel, opt(c.mimic_weight, |v| format!("{v:.4}"))))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    o.push_str("</dl>\n");
    o
}

fn summary_table(s: &Summary) -> String {
    let rows = s
        .channels
        .iter()
        .map(|c| {
            let lo = c.float16_window_log2_min.max;
            let hi = c.float16_window_log2_max.min;
            let window = match (lo, hi) {
                (Some(a), Some(b)) if a <= b => format!("2^{a:.2} – 2^{b:.2}"),
                (Some(a), Some(b)) => format!("none (2^{a:.2} > 2^{b:.2})"),
                _ => "–".to_string(),
            };
            Row::new(vec![
                Cell::text(c.channel.to_string()),
                Cell::text(label_named(c.label, c.name.as_deref())),
                Cell::text(c.cases.to_string()),
                Cell::text(c.empty_cases.to_string()),
                Cell::text(c.two_level_cases.to_string()),
                Cell::text(spread(&c.soft_dice, |v| format!("{v:.4}"))),
                Cell::text(mean_ci(&c.soft_dice, |v| format!("{v:.4}"))),
                Cell::text(spread(&c.hard_dice, |v| format!("{v:.4}"))),
                Cell::text(mean_ci(&c.hard_dice, |v| format!("{v:.4}"))),
                Cell::text(spread(&c.foreground_level, |v| format!("{v:.3e}"))),
                Cell::text(spread(&c.background_level, |v| format!("{v:.3e}"))),
                Cell::text(spread(&c.mimic_weight, |v| format!("{v:.4}"))),
                Cell::text(spread(&c.dynamic_range, |v| format!("{v:.3e}"))),
                Cell::text(window),
                Cell::text(mean_ci(&c.float16_l1_lost_share, |v| format!("{:.3}%", 100.0 * v))),
            ])
        })
        .collect();
    Table {
        caption: "Per channel over the successful cases: median [min, max]; mean (95 % confidence interval, \
                  Student t over the cases)",
        headers: [
            "channel",
            "label",
            "cases",
            "empty",
            "two-level",
            "soft Dice",
            "soft Dice mean",
            "hard Dice",
            "hard Dice mean",
            "fg level",
            "bg level",
            "mimic weight",
            "dynamic range",
            "float16 scales serving every case",
            "float16 L1 lost (mean)",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        sortable: false,
    }
    .html()
}

/// What flags a case, in words: "channel 1: level ratio … z = 5.2".
fn flag_text(o: &Outlier) -> String {
    format!("channel {}: {} {:.3} vs median {:.3}, z = {:.1}", o.channel, o.measure.describe(), o.value, o.median, o.z)
}

/// How many cases are flagged, on how many measures, in words.
fn flag_count(flagged: &[Outlier]) -> String {
    let mut cases: Vec<&str> = flagged.iter().map(|o| o.case.as_str()).collect();
    cases.sort_unstable();
    cases.dedup();
    match (cases.len(), flagged.len()) {
        (0, _) => "No case is flagged.".to_string(),
        (1, 1) => "One case is flagged, on one measure.".to_string(),
        (1, m) => format!("One case is flagged, on {m} measures."),
        (n, m) => format!("{n} cases are flagged, on {m} measures in all."),
    }
}

fn cases_table(s: &Summary, records: &[CaseRecord], flagged: &[Outlier], run: &RunInfo) -> String {
    let channels: Vec<usize> = s.channels.iter().map(|c| c.channel).collect();
    let mut headers: Vec<String> = ["case", "status", "flags", "loss"].map(String::from).to_vec();
    for k in &channels {
        headers.extend([
            format!("ch {k} soft Dice"),
            format!("ch {k} fg/bg"),
            format!("ch {k} log2 S low"),
            format!("ch {k} log2 S high"),
        ]);
    }
    let rows = records
        .iter()
        .map(|r| {
            let mine: Vec<&Outlier> = flagged.iter().filter(|o| o.case == r.case).collect();
            let flags = if mine.is_empty() {
                String::new()
            } else {
                format!("⚑ outlier: {}", mine.iter().map(|o| flag_text(o)).collect::<Vec<_>>().join("; "))
            };
            let mut cells = vec![
                Cell::text(&r.case),
                Cell::text(if r.is_ok() { "ok" } else { "failed" }),
                Cell::num(Some(mine.len() as f64), flags),
                Cell::num(r.loss, opt(r.loss, |v| format!("{v:.5}"))),
            ];
            for k in &channels {
                let row = r.channels.iter().find(|c| c.channel == *k);
                let ratio = row.and_then(|c| Some(c.foreground_level? / c.background_level?));
                let dice = row.map(|c| c.soft_dice);
                let lo = row.and_then(|c| c.float16_window_log2_min);
                let hi = row.and_then(|c| c.float16_window_log2_max);
                cells.extend([
                    Cell::num(dice, opt(dice, |v| format!("{v:.4}"))),
                    Cell::num(ratio, opt(ratio, |v| format!("{v:.4}"))),
                    Cell::num(lo, opt(lo, |v| format!("{v:.2}"))),
                    Cell::num(hi, opt(hi, |v| format!("{v:.2}"))),
                ]);
            }
            let first_html = (run.case_reports && r.is_ok())
                .then(|| format!("<a href=\"{}\">{}</a>", escape(&case_href(&r.case)), escape(&r.case)));
            let class = if !mine.is_empty() {
                Some("flag")
            } else if !r.is_ok() {
                Some("failed")
            } else {
                None
            };
            Row { cells, class, first_html }
        })
        .collect();
    Table {
        caption:
            "Cases (click a column header to sort; fg/bg is the level ratio, log2 S the float16 loss-scale window)",
        headers,
        rows,
        sortable: true,
    }
    .html()
}

/// The whole page of a data set; `figures` are its pooled pictures.
pub fn index(s: &Summary, records: &[CaseRecord], run: &RunInfo, figures: &[Figure]) -> String {
    let flagged = outliers(records);
    let mut b = String::new();
    let title = format!("{} loss gradient over {} cases", s.loss_kind(), s.cases.total);
    let _ = writeln!(b, "<h1>{}</h1>", escape(&title));
    let _ = writeln!(b, "<p>{} {}</p>", escape(s.tool.name), escape(s.tool.version));
    b += "<h2 id=\"run\">Run</h2>\n";
    b += &parameters(s, run);
    b += "<h2 id=\"summary\">Summary per channel</h2>\n";
    b += &summary_table(s);
    b += &comparisons(s);
    b += "<h2 id=\"pictures\">Pictures</h2>\n";
    for f in figures {
        b += &figure(f);
    }
    b += "<h2 id=\"cases\">Cases</h2>\n";
    let _ = writeln!(
        b,
        "<p>Outliers: per channel, a case whose level ratio (log10 |fg/bg|) or float16 loss-scale window bound \
         (log2 S) has a modified z-score |z| &gt; {THRESHOLD} against the other cases' median (Iglewicz &amp; \
         Hoaglin; at least 5 cases). Flagged rows are highlighted and marked ⚑ in the flags column. {}</p>",
        flag_count(&flagged)
    );
    if run.case_reports {
        b += "<p>Each case id links to the case's own report.</p>\n";
    }
    b += &cases_table(s, records, &flagged, run);
    if !s.failed.is_empty() {
        b += "<h2 id=\"failed\">Failed cases</h2>\n<ul>\n";
        for f in &s.failed {
            let _ = writeln!(b, "<li><code>{}</code>: {}</li>", escape(&f.case), escape(&f.error));
        }
        b += "</ul>\n";
    }
    let u = &s.unpaired;
    if !(u.labels.is_empty() && u.predictions.is_empty() && u.skipped.is_empty()) {
        b += "<h2 id=\"unpaired\">Files not analysed</h2>\n<ul>\n";
        for l in &u.labels {
            let _ = writeln!(b, "<li>label file without a prediction: <code>{}</code></li>", escape(l));
        }
        for p in &u.predictions {
            let _ = writeln!(b, "<li>prediction without a label file: <code>{}</code></li>", escape(p));
        }
        for k in &u.skipped {
            let _ = writeln!(b, "<li>skipped <code>{}</code>: {}</li>", escape(&k.file), escape(&k.reason));
        }
        b += "</ul>\n";
    }
    b += "<footer>A self-contained page: pictures are embedded, nothing is loaded from elsewhere.</footer>\n";
    page(&title, &b, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_folders_stay_inside_and_apart() {
        assert_eq!(case_folder("case_001"), "case_001");
        assert_eq!(case_folder(".."), "%2E.");
        assert_eq!(case_folder("a/b"), "a%2Fb");
        assert_eq!(case_folder("a%2Fb"), "a%252Fb");
        assert_eq!(case_folder("é"), "%C3%A9");
        assert_eq!(case_href("a b"), "cases/a%2520b/report.html");
    }
}
