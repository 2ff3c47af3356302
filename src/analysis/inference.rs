//! Inference over cases: the figures a paper quotes beside a mean over a data set (its 95 %
//! confidence interval) and beside a comparison of two paired figures (a Wilcoxon signed-rank
//! test). Pure arithmetic on slices of per-case values; the summary of a data set
//! (`report::summary`) calls it. statrs supplies the two distributions (Student t, standard
//! normal) and nothing else: the ranks, the statistic and the exact null distribution are
//! computed here.
//!
//! Confidence interval of a mean (Student t, two-sided, 95 %):
//!
//! ```text
//! x̄ = Σ x_i / n,   s = √(Σ (x_i − x̄)² / (n − 1)),
//! x̄ ± t(0.975; n − 1) · s / √n
//! ```
//!
//! with t(0.975; n − 1) the 97.5 % quantile of Student's t distribution with n − 1 degrees of
//! freedom. Defined for n ≥ 2 (None below); s = 0 gives the point x̄. It assumes the cases are
//! independent draws and the mean roughly normal (exact for normal data, by the central limit
//! theorem otherwise). Source: NIST/SEMATECH e-Handbook of Statistical Methods §7.2.2.1; the
//! same interval as scipy `stats.t.interval(0.95, n - 1, loc=x̄, scale=s/√n)` and R `t.test`.
//!
//! Wilcoxon signed-rank test of paired differences d_i = x_i − y_i (two-sided, H0: the d_i are
//! symmetric about 0):
//!
//! ```text
//! 1. zero differences are dropped (Wilcoxon's own method; scipy's default
//!    zero_method="wilcox", R wilcox.test); n = the number left;
//! 2. the |d_i| are ranked 1..n, tied magnitudes sharing the average of their ranks;
//! 3. the statistic is W+ = Σ of the ranks of the positive d_i (R's V; scipy reports
//!    min(W+, W−) for a two-sided test, W− = n(n + 1)/2 − W+);
//! 4. exact p-value when n ≤ 50 and no two |d_i| are tied: under H0 each sign is + or − with
//!    probability 1/2 independently, so W+ is the sum of a uniformly random subset of the ranks
//!    {1, …, n}. With c_n(w) the number of subsets of {1, …, n} summing to w,
//!      c_0(0) = 1,   c_k(w) = c_(k−1)(w) + c_(k−1)(w − k),
//!      p = min(1, 2 · min(Σ_{v ≤ W+} c_n(v), Σ_{v ≥ W+} c_n(v)) / 2^n);
//! 5. otherwise the normal approximation with the tie correction of the variance and a
//!    continuity correction (R wilcox.test(correct = TRUE), scipy
//!    method="asymptotic", correction=True):
//!      E = n(n + 1)/4,   V = n(n + 1)(2n + 1)/24 − Σ_j (t_j³ − t_j)/48,
//!      z = (W+ − E − sgn(W+ − E)·0.5) / √V,   p = 2·Φ(−|z|),
//!    t_j the size of the j-th group of tied magnitudes, Φ the standard normal cdf;
//! 6. n = 0 gives no p-value.
//! ```
//!
//! The exact route is the one scipy `wilcoxon(method="exact")` takes (after dropping zeros); R
//! switches to the normal route when there were zeros.
//!
//! Sources: F. Wilcoxon, "Individual comparisons by ranking methods", Biometrics Bulletin 1(6),
//! 80–83, 1945; M. Hollander, D. A. Wolfe, E. Chicken, Nonparametric Statistical Methods, 3rd ed.,
//! §3.1 (2014); R's `stats::wilcox.test` and scipy's `stats.wilcoxon` sources.

use serde::{Deserialize, Serialize};

/// Largest number of non-zero differences for which the p-value is computed exactly.
pub const EXACT_MAX_N: usize = 50;

/// t(p; df): the p-quantile of Student's t distribution with `df` degrees of freedom (`df` > 0,
/// 0 < p < 1).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    StudentsT::new(0.0, 1.0, df).expect("degrees of freedom are positive").inverse_cdf(p)
}

/// Φ(z): the standard normal cumulative distribution function.
fn normal_cdf(z: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal};
    Normal::standard().cdf(z)
}

/// The two-sided 95 % Student t confidence interval of a mean, `(low, high)`, from the number of
/// values `n`, their mean and their sample standard deviation `sd` (n − 1): None for n < 2 or a
/// value that is not finite.
pub fn mean_ci95(n: usize, mean: f64, sd: f64) -> Option<(f64, f64)> {
    if n < 2 || !mean.is_finite() || !sd.is_finite() {
        return None;
    }
    let half = t_quantile(0.975, (n - 1) as f64) * sd / (n as f64).sqrt();
    Some((mean - half, mean + half))
}

/// How a p-value was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PMethod {
    /// From the exact null distribution of W+ (n ≤ 50, no ties).
    Exact,
    /// From the normal approximation, tie and continuity corrected.
    Normal,
}

impl std::fmt::Display for PMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PMethod::Exact => "exact",
            PMethod::Normal => "normal",
        })
    }
}

/// The Wilcoxon signed-rank test of a set of paired differences (see the module doc).
#[derive(Clone, Debug, PartialEq)]
pub struct SignedRank {
    /// Non-zero differences: the number ranked.
    pub n: usize,
    /// Differences exactly 0, dropped.
    pub zeros: usize,
    /// W+: the sum of the ranks of the positive differences (0 when n = 0).
    pub w_plus: f64,
    /// Whether two non-zero |d| are equal (they share their average rank).
    pub ties: bool,
    /// Two-sided p-value (None when n = 0).
    pub p_value: Option<f64>,
    /// How `p_value` was obtained (None when n = 0).
    pub method: Option<PMethod>,
}

/// Ranks 1..n of `v` (ascending), tied values sharing the average of their ranks, and the sizes
/// of the groups of ties (each at least 2).
pub fn average_ranks(v: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut ranks = vec![0.0; v.len()];
    let mut groups = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && v[order[end]] == v[order[start]] {
            end += 1;
        }
        // positions start..end hold ranks start+1 ..= end
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        if end - start > 1 {
            groups.push(end - start);
        }
        start = end;
    }
    (ranks, groups)
}

/// c_n(w) for w = 0..=n(n + 1)/2: the number of subsets of {1, …, n} whose sum is w (exact in
/// u64 for n ≤ 63; the total is 2^n).
pub fn subset_sum_counts(n: usize) -> Vec<u64> {
    let mut c = vec![0u64; n * (n + 1) / 2 + 1];
    c[0] = 1;
    for k in 1..=n {
        let top = k * (k + 1) / 2;
        for w in (k..=top).rev() {
            c[w] += c[w - k];
        }
    }
    c
}

/// The exact two-sided p-value of an integer W+ among n untied ranks.
fn exact_p(n: usize, w_plus: f64) -> f64 {
    let c = subset_sum_counts(n);
    let w = w_plus.round() as usize;
    let below: u64 = c[..=w].iter().sum();
    let above: u64 = c[w..].iter().sum();
    let total = 2f64.powi(n as i32);
    (2.0 * below.min(above) as f64 / total).min(1.0)
}

/// The normal-approximation two-sided p-value of W+ among n ranks with tie groups `ties`.
fn normal_p(n: usize, w_plus: f64, ties: &[usize]) -> f64 {
    let nf = n as f64;
    let mean = nf * (nf + 1.0) / 4.0;
    let tie: f64 = ties.iter().map(|&t| (t * t * t - t) as f64).sum::<f64>() / 48.0;
    let var = nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0 - tie;
    let diff = w_plus - mean;
    let correction = if diff > 0.0 {
        0.5
    } else if diff < 0.0 {
        -0.5
    } else {
        0.0
    };
    let z = (diff - correction) / var.sqrt();
    (2.0 * normal_cdf(-z.abs())).min(1.0)
}

/// The Wilcoxon signed-rank test of the paired differences `d` (values that are not finite are
/// left out, like zeros).
pub fn signed_rank(d: &[f64]) -> SignedRank {
    let finite: Vec<f64> = d.iter().copied().filter(|x| x.is_finite()).collect();
    let nonzero: Vec<f64> = finite.iter().copied().filter(|&x| x != 0.0).collect();
    let (n, zeros) = (nonzero.len(), finite.len() - nonzero.len());
    let magnitudes: Vec<f64> = nonzero.iter().map(|x| x.abs()).collect();
    let (ranks, groups) = average_ranks(&magnitudes);
    // a fold from +0: an empty f64 sum is −0
    let w_plus = nonzero.iter().zip(&ranks).filter(|(x, _)| **x > 0.0).fold(0.0, |w, (_, r)| w + r);
    let ties = !groups.is_empty();
    let (p_value, method) = if n == 0 {
        (None, None)
    } else if n <= EXACT_MAX_N && !ties {
        (Some(exact_p(n, w_plus)), Some(PMethod::Exact))
    } else {
        (Some(normal_p(n, w_plus, &groups)), Some(PMethod::Normal))
    };
    SignedRank { n, zeros, w_plus, ties, p_value, method }
}

/// The median of `v` (the mean of the two middle values for an even count; None when empty).
pub fn median(v: &[f64]) -> Option<f64> {
    let mut x = v.to_vec();
    x.sort_by(f64::total_cmp);
    let n = x.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(x[n / 2]),
        _ => Some((x[n / 2 - 1] + x[n / 2]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn t_quantiles_match_scipy() {
        // scipy 1.17.1 `stats.t.ppf(0.975, df)`
        let want = [
            (1.0, 12.706204736174694),
            (2.0, 4.302652729749462),
            (4.0, 2.7764451051977934),
            (9.0, 2.262157162798205),
            (29.0, 2.045229642132703),
            (100.0, 1.9839715185235518),
        ];
        for (df, t) in want {
            let got = t_quantile(0.975, df);
            assert!(close(got, t, 1e-10), "df {df}: {got} vs {t}");
        }
    }

    #[test]
    fn mean_interval_matches_scipy_and_degenerates_to_the_point() {
        // x = [0.61, 0.72, 0.55, 0.80, 0.67]: mean 0.67, s = 0.09669539802906858; scipy 1.17.1
        // `stats.t.interval(0.95, 4, loc=mean, scale=s/sqrt(5))`
        let (lo, hi) = mean_ci95(5, 0.67, 0.09669539802906858).unwrap();
        assert!(close(lo, 0.5499368054753224, 1e-12) && close(hi, 0.7900631945246777, 1e-12), "{lo} {hi}");
        assert_eq!(mean_ci95(3, 0.5, 0.0), Some((0.5, 0.5)));
        assert_eq!(mean_ci95(1, 0.5, 0.0), None);
        assert_eq!(mean_ci95(0, f64::NAN, f64::NAN), None);
    }

    #[test]
    fn average_ranks_share_ties() {
        let (r, g) = average_ranks(&[3.0, 1.0, 3.0, 2.0, 3.0]);
        assert_eq!(r, vec![4.0, 1.0, 4.0, 2.0, 4.0]);
        assert_eq!(g, vec![3]);
    }

    #[test]
    fn four_differences_counted_by_hand() {
        // ranks 1, 2, 3, 4 with signs +, −, +, +: W+ = 1 + 3 + 4 = 8. Of the 16 subsets of
        // {1, 2, 3, 4}, three sum to 8 or more ({1,3,4}, {2,3,4}, {1,2,3,4}): p = 2·3/16.
        let t = signed_rank(&[1.0, -2.0, 3.0, 4.0]);
        assert_eq!((t.n, t.w_plus, t.method), (4, 8.0, Some(PMethod::Exact)));
        assert_eq!(t.p_value, Some(2.0 * 3.0 / 16.0));
        // all positive: only {1,2,3,4} reaches 10, p = 2·1/16
        assert_eq!(signed_rank(&[1.0, 2.0, 3.0, 4.0]).p_value, Some(0.125));
        // a single difference: W+ = 1 of {0, 1}, p = min(1, 2·1/2)
        assert_eq!(signed_rank(&[0.3]).p_value, Some(1.0));
    }

    #[test]
    fn exact_p_matches_scipy_and_ignores_zeros() {
        // scipy 1.17.1 `stats.wilcoxon(d, method="exact")` (zero_method="wilcox"): statistic
        // min(W+, W−) = 10, so W+ = 55 − 10 = 45; p = 0.083984375, with or without two zeros
        let d = [0.12, -0.05, 0.31, 0.08, -0.22, 0.17, 0.44, -0.01, 0.26, 0.09];
        let t = signed_rank(&d);
        assert_eq!((t.n, t.zeros, t.w_plus, t.ties, t.method), (10, 0, 45.0, false, Some(PMethod::Exact)));
        assert!(close(t.p_value.unwrap(), 0.083984375, 1e-14));
        let with_zeros: Vec<f64> = d.iter().copied().chain([0.0, 0.0]).collect();
        let z = signed_rank(&with_zeros);
        assert_eq!((z.n, z.zeros, z.w_plus, z.p_value), (10, 2, 45.0, t.p_value));
        // n = 50 is still exact: d_i = (37·i mod 101) − 40.3, i = 1..=50; scipy: W+ = 867,
        // p = 0.02616696817119646
        let d50: Vec<f64> = (1..=50).map(|i| ((37 * i) % 101) as f64 - 40.3).collect();
        let t = signed_rank(&d50);
        assert_eq!((t.n, t.w_plus, t.method), (50, 867.0, Some(PMethod::Exact)));
        assert!(close(t.p_value.unwrap(), 0.02616696817119646, 1e-12), "{:?}", t.p_value);
    }

    #[test]
    fn normal_p_matches_scipy_with_ties_and_beyond_fifty() {
        // scipy 1.17.1 `stats.wilcoxon(d, method="asymptotic", correction=True)` (R's
        // wilcox.test(correct = TRUE) computes the same; mpmath at 40 digits agrees with scipy to
        // 1e-16). statrs's normal cdf is good to about 5e-11 relative here, hence 1e-9.
        // Ties, n = 12, W+ = 63.5
        let d = [1.0, -2.0, 2.0, 3.0, -1.0, 4.0, 2.0, 5.0, -3.0, 6.0, 1.0, 7.0];
        let t = signed_rank(&d);
        assert_eq!((t.n, t.w_plus, t.ties, t.method), (12, 63.5, true, Some(PMethod::Normal)));
        assert!(close(t.p_value.unwrap(), 0.058856191941787324, 1e-9), "{:?}", t.p_value);
        // no ties, n = 60 > 50: d_i = (37·i mod 101) − 40.3, i = 1..=60; W+ = 1266
        let d60: Vec<f64> = (1..=60).map(|i| ((37 * i) % 101) as f64 - 40.3).collect();
        let t = signed_rank(&d60);
        assert_eq!((t.n, t.w_plus, t.ties, t.method), (60, 1266.0, false, Some(PMethod::Normal)));
        assert!(close(t.p_value.unwrap(), 0.009873114233504017, 1e-9), "{:?}", t.p_value);
    }

    #[test]
    fn no_non_zero_difference_gives_no_p_value() {
        let t = signed_rank(&[0.0, 0.0, f64::NAN]);
        assert_eq!((t.n, t.zeros, t.w_plus, t.p_value, t.method), (0, 2, 0.0, None, None));
        assert!(signed_rank(&[-1.0, -2.0]).w_plus.is_sign_positive(), "W+ = +0, not −0");
        assert_eq!(signed_rank(&[]).p_value, None);
    }

    /// The two-sided p-value by enumerating all 2^n sign assignments of the ranks 1..n.
    fn brute_force_p(n: usize, w: usize) -> f64 {
        let (mut below, mut above) = (0u64, 0u64);
        for mask in 0u32..(1 << n) {
            let s: usize = (0..n).filter(|b| mask >> b & 1 == 1).map(|b| b + 1).sum();
            below += u64::from(s <= w);
            above += u64::from(s >= w);
        }
        (2.0 * below.min(above) as f64 / (1u64 << n) as f64).min(1.0)
    }

    #[test]
    fn exact_p_equals_enumeration_of_every_sign_assignment() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for n in 1..=12usize {
            for _ in 0..6 {
                // distinct magnitudes 1..n in a shuffled order with random signs
                let mut mags: Vec<f64> = (1..=n).map(|k| k as f64 * 0.01).collect();
                for i in (1..n).rev() {
                    mags.swap(i, (next() % (i as u64 + 1)) as usize);
                }
                let d: Vec<f64> = mags.iter().map(|&m| if next() & 1 == 1 { m } else { -m }).collect();
                let t = signed_rank(&d);
                let w = d.iter().filter(|&&x| x > 0.0).map(|x| (x * 100.0).round() as usize).sum::<usize>();
                assert_eq!(t.w_plus, w as f64, "{d:?}");
                assert_eq!(t.p_value, Some(brute_force_p(n, w)), "n {n}, W+ {w}");
            }
        }
    }

    #[test]
    fn subset_counts_add_up_to_two_to_the_n() {
        for n in [0, 1, 5, 20, 50] {
            let c = subset_sum_counts(n);
            assert_eq!(c.iter().sum::<u64>(), 1u64 << n);
            assert_eq!(c.len(), n * (n + 1) / 2 + 1);
            assert!(c.iter().zip(c.iter().rev()).all(|(a, b)| a == b), "symmetric");
        }
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
