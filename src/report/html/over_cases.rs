//! The inference of the data set page (`index.html`, [`super::dataset`]): a mean over cases with
//! its 95 % confidence interval, and with compared losses the pairs' figures over the cases and
//! the paired tests of their cosines (definitions in [`crate::analysis::inference`]).

use std::fmt::Write;

use super::{escape, Cell, Row, Table};
use crate::report::paired::PairTest;
use crate::report::summary::{Stats, Summary};

/// "mean (low to high)": a mean over cases and its 95 % confidence interval; "mean (n = 1)"
/// without an interval, "–" without a value.
pub fn mean_ci(s: &Stats, f: impl Fn(f64) -> String) -> String {
    match (s.mean, s.ci95_low, s.ci95_high) {
        (Some(m), Some(a), Some(b)) => format!("{} ({} to {})", f(m), f(a), f(b)),
        (Some(m), _, _) => format!("{} (n = {})", f(m), s.n),
        _ => "–".to_string(),
    }
}

/// A p-value: 4 decimals, or 3 significant digits below 0.001.
pub fn p_text(p: f64) -> String {
    if p < 1e-3 {
        format!("{p:.2e}")
    } else {
        format!("{p:.4}")
    }
}

fn pairs_table(s: &Summary) -> String {
    let rows = s
        .channels
        .iter()
        .flat_map(|c| {
            c.comparisons.iter().map(move |p| {
                Row::new(vec![
                    Cell::text(c.channel.to_string()),
                    Cell::text(&p.pair),
                    Cell::text(p.cosine.n.to_string()),
                    Cell::text(mean_ci(&p.cosine, |v| format!("{v:.4}"))),
                    Cell::text(mean_ci(&p.scale, |v| format!("{v:.3e}"))),
                    Cell::text(mean_ci(&p.sign_agreement, |v| format!("{:.2}%", 100.0 * v))),
                ])
            })
        })
        .collect();
    Table {
        caption: "Compared losses per channel over the cases: mean (95 % confidence interval)",
        headers: ["channel", "pair", "cases", "cosine", "scale", "sign agreement"].map(String::from).to_vec(),
        rows,
        sortable: false,
    }
    .html()
}

fn test_row(channel: usize, t: &PairTest) -> Row {
    let top = t.n * (t.n + 1) / 2;
    Row::new(vec![
        Cell::text(channel.to_string()),
        Cell::text(&t.a),
        Cell::text(&t.b),
        Cell::text(t.cases.to_string()),
        Cell::text(t.n.to_string()),
        Cell::text(t.median_difference.map_or("–".to_string(), |d| format!("{d:+.4}"))),
        Cell::text(format!("{} of {top}", t.statistic)),
        Cell::text(t.p_value.map_or("–".to_string(), p_text)),
        Cell::text(t.method.map_or("–".to_string(), |m| m.to_string())),
    ])
}

fn tests_table(s: &Summary) -> String {
    let rows = s.channels.iter().flat_map(|c| c.cosine_tests.iter().map(|t| test_row(c.channel, t))).collect();
    Table {
        caption: "Do two pairs' cosines differ? Wilcoxon signed-rank test of cosine A − cosine B over the cases",
        headers: ["channel", "pair A", "pair B", "cases", "n ≠ 0", "median A − B", "W+", "p (two-sided)", "p from"]
            .map(String::from)
            .to_vec(),
        rows,
        sortable: false,
    }
    .html()
}

/// The section on compared losses over the cases; empty without compared losses.
pub fn comparisons(s: &Summary) -> String {
    if s.channels.iter().all(|c| c.comparisons.is_empty()) {
        return String::new();
    }
    let mut b = String::from("<h2 id=\"compared\">Compared losses over the cases</h2>\n");
    b += &pairs_table(s);
    if s.channels.iter().any(|c| !c.cosine_tests.is_empty()) {
        let _ = writeln!(
            b,
            "<p>{}</p>",
            escape(
                "Per channel, for every two pairs A and B: the differences d = cosine A − cosine B of the cases \
                 with both cosines. Zero differences are dropped (n ≠ 0 counts the rest); W+ is the sum of the \
                 ranks of |d| (1 … n, ties sharing their average rank) over the positive d, n(n + 1)/4 on average \
                 when the pairs do not differ. The p-value is exact for n ≤ 50 without tied |d|, else from the \
                 normal approximation with tie and continuity corrections. p-values are not adjusted for the \
                 number of tests."
            )
        );
        b += &tests_table(s);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mean_shows_its_interval_or_says_why_not() {
        let s = Stats::of([Some(1.0), Some(2.0), Some(3.0)]);
        // t(0.975; 2) = 4.302652729749462 (scipy), s = 1: 2 ± 4.3027/√3
        assert_eq!(mean_ci(&s, |v| format!("{v:.3}")), "2.000 (-0.484 to 4.484)");
        assert_eq!(mean_ci(&Stats::of([Some(0.5)]), |v| format!("{v:.1}")), "0.5 (n = 1)");
        assert_eq!(mean_ci(&Stats::of([]), |v| format!("{v}")), "–");
        assert_eq!(p_text(0.0078125), "0.0078");
        assert_eq!(p_text(1.234e-5), "1.23e-5");
    }
}
