//! The compared pairs of losses over the cases of a data set, per channel: the spread of each
//! pair's figures (cosine, scale, sign agreement) and, between every two pairs, a paired test of
//! whether their cosines differ — the Wilcoxon signed-rank test of the per-case differences
//! ([`crate::analysis::inference`]). Part of the summary ([`super::summary`]), so built from the
//! case records alone, in case order.

use serde::Serialize;

use super::record::ChannelRow;
use super::summary::Stats;
use crate::analysis::inference::{median, signed_rank, PMethod};

/// One compared pair of losses on one channel, over the cases.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct PairSummary {
    /// "a vs b" (as `ChannelRow::comparisons`).
    pub pair: String,
    /// Cosine similarity of the two gradient fields (dimensionless).
    pub cosine: Stats,
    /// Least-squares scale λ in b ≈ λ·a (b units per a unit).
    pub scale: Stats,
    /// Share (0–1) of voxels where the two gradients have the same sign.
    pub sign_agreement: Stats,
}

/// Whether two pairs' cosines differ over the cases, on one channel: the Wilcoxon signed-rank
/// test of d_i = cosine of pair `a` − cosine of pair `b` in case i (two-sided; see
/// [`crate::analysis::inference`] for the definitions). A case where either cosine is missing
/// (a gradient zero everywhere) or not finite is dropped from the test; a difference of exactly
/// 0 is dropped from the ranking (Wilcoxon's method) but counted in `cases`.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct PairTest {
    /// The first pair, "x vs y".
    pub a: String,
    /// The second pair.
    pub b: String,
    /// Cases with both cosines.
    pub cases: usize,
    /// Of those, cases with a non-zero difference: the number ranked.
    pub n: usize,
    /// Median over the `cases` of d_i (dimensionless, as the cosine; None without cases).
    pub median_difference: Option<f64>,
    /// W+: the sum of the ranks of |d_i| over the cases with d_i > 0 (ranks 1..n, ties sharing
    /// their average rank). Under no difference its mean is n(n + 1)/4.
    pub statistic: f64,
    /// Two-sided p-value (None when n = 0).
    pub p_value: Option<f64>,
    /// `exact` (n ≤ 50 without tied |d|) or `normal` (tie- and continuity-corrected normal
    /// approximation); None when n = 0.
    pub method: Option<PMethod>,
}

fn figure<'a>(rows: &'a [&ChannelRow], pair: &'a str) -> impl Iterator<Item = Option<&'a super::record::PairFigures>> {
    rows.iter().map(move |r| r.comparisons.iter().find(|p| p.pair == pair))
}

/// Per pair in `pairs` (names "a vs b", in order) present in some row: its figures over `rows`.
pub fn pair_summaries(pairs: &[String], rows: &[&ChannelRow]) -> Vec<PairSummary> {
    pairs
        .iter()
        .filter(|name| figure(rows, name).any(|f| f.is_some()))
        .map(|name| PairSummary {
            pair: name.clone(),
            cosine: Stats::of(figure(rows, name).map(|f| f.and_then(|f| f.cosine))),
            scale: Stats::of(figure(rows, name).map(|f| f.and_then(|f| f.scale))),
            sign_agreement: Stats::of(figure(rows, name).map(|f| f.map(|f| f.sign_agreement))),
        })
        .collect()
}

/// The test of two pairs' cosines over `rows` (one channel, in case order).
pub fn cosine_test(a: &str, b: &str, rows: &[&ChannelRow]) -> PairTest {
    let d: Vec<f64> = figure(rows, a)
        .zip(figure(rows, b))
        .filter_map(|(x, y)| Some(x?.cosine? - y?.cosine?))
        .filter(|d| d.is_finite())
        .collect();
    let t = signed_rank(&d);
    PairTest {
        a: a.to_string(),
        b: b.to_string(),
        cases: d.len(),
        n: t.n,
        median_difference: median(&d),
        statistic: t.w_plus,
        p_value: t.p_value,
        method: t.method,
    }
}

/// Every two of the `pairs` summarised (in their order: (1, 2), (1, 3), …, (2, 3), …): their
/// cosine tests; empty with fewer than two pairs.
pub fn cosine_tests(pairs: &[PairSummary], rows: &[&ChannelRow]) -> Vec<PairTest> {
    let mut out = Vec::new();
    for (i, a) in pairs.iter().enumerate() {
        for b in &pairs[i + 1..] {
            out.push(cosine_test(&a.pair, &b.pair, rows));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::record::PairFigures;

    fn row(cosines: &[(&str, Option<f64>)]) -> ChannelRow {
        let mut r: ChannelRow = serde_json::from_value(serde_json::json!({
            "channel": 1, "label": 1, "foreground_voxels": 1, "soft_dice": 0.5, "hard_dice": 0.5,
            "loss_term": null, "foreground_level": null, "background_level": null, "fit_a": null,
            "fit_c": null, "fit_r2": null, "two_level": false, "dynamic_range": null,
            "float16_window_log2_min": null, "float16_window_log2_max": null,
            "float16_zero_share": 0.0, "float16_subnormal_share": 0.0, "float16_overflow_share": 0.0,
            "float16_l1_lost_share": 0.0, "bfloat16_zero_share": 0.0, "bfloat16_subnormal_share": 0.0,
            "bfloat16_overflow_share": 0.0, "bfloat16_l1_lost_share": 0.0, "comparisons": []
        }))
        .unwrap();
        r.comparisons = cosines
            .iter()
            .map(|(p, c)| PairFigures { pair: p.to_string(), cosine: *c, scale: Some(1.0), sign_agreement: 1.0 })
            .collect();
        r
    }

    #[test]
    fn cases_missing_a_cosine_leave_the_test_and_zeros_leave_the_ranking() {
        let rows = [
            row(&[("x vs y", Some(0.9)), ("x vs z", Some(0.5))]), // d = 0.4
            row(&[("x vs y", Some(0.7)), ("x vs z", Some(0.8))]), // d = −0.1
            row(&[("x vs y", None), ("x vs z", Some(0.1))]),      // dropped
            row(&[("x vs y", Some(0.6))]),                        // dropped
            row(&[("x vs y", Some(0.3)), ("x vs z", Some(0.3))]), // d = 0
            row(&[("x vs y", Some(0.9)), ("x vs z", Some(0.6))]), // d = 0.3
        ];
        let refs: Vec<&ChannelRow> = rows.iter().collect();
        let pairs = pair_summaries(&["x vs y".into(), "x vs z".into(), "y vs z".into()], &refs);
        assert_eq!(pairs.iter().map(|p| p.pair.as_str()).collect::<Vec<_>>(), ["x vs y", "x vs z"]);
        assert_eq!((pairs[0].cosine.n, pairs[1].cosine.n), (5, 5));
        let tests = cosine_tests(&pairs, &refs);
        assert_eq!(tests.len(), 1);
        let t = &tests[0];
        assert_eq!((t.a.as_str(), t.b.as_str(), t.cases, t.n), ("x vs y", "x vs z", 4, 3));
        // |d| = 0.4, 0.1, 0.3 rank 3, 1, 2; positive: 0.4 and 0.3, W+ = 5 of {0..6}; subsets of
        // {1, 2, 3} summing to 5 or more: {2,3}, {1,2,3}; p = 2·2/8
        assert_eq!((t.statistic, t.p_value, t.method), (5.0, Some(0.5), Some(PMethod::Exact)));
        // the median of 0.4, −0.1, 0, 0.3 (floating-point differences of the cosines)
        assert!((t.median_difference.unwrap() - 0.15).abs() < 1e-12);
    }

    #[test]
    fn one_pair_has_no_test() {
        let rows = [row(&[("x vs y", Some(0.9))]), row(&[("x vs y", Some(0.8))])];
        let refs: Vec<&ChannelRow> = rows.iter().collect();
        let pairs = pair_summaries(&["x vs y".into()], &refs);
        assert!(cosine_tests(&pairs, &refs).is_empty());
        assert_eq!(pair_summaries(&[], &refs).len(), 0);
    }
}
