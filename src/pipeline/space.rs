//! Whether labels and prediction lie in the same place in the world: their voxel-to-world affines
//! compared entry by entry, and when they differ, how — which voxel axis, a flip, a voxel size, the
//! origin — in words a user can act on.

/// An affine, row major.
pub type Affine = [[f64; 4]; 4];

const AXES: [&str; 3] = ["x", "y", "z"];

/// A number in few characters (up to 4 decimals, no trailing zeros).
pub fn short(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

fn vector(v: [f64; 3]) -> String {
    format!("({}, {}, {})", short(v[0]), short(v[1]), short(v[2]))
}

fn matrix(m: &Affine) -> String {
    let rows: Vec<String> = m[..3].iter().map(|r| r.iter().map(|&v| short(v)).collect::<Vec<_>>().join(" ")).collect();
    format!("[{}]", rows.join("; "))
}

fn column(m: &Affine, c: usize) -> [f64; 3] {
    [m[0][c], m[1][c], m[2][c]]
}

/// The largest |a − b| of two vectors; infinite when an entry is not finite (NaN never compares
/// as close).
fn distance(a: [f64; 3], b: [f64; 3]) -> f64 {
    a.iter()
        .zip(&b)
        .map(|(x, y)| if x.is_finite() && y.is_finite() { (x - y).abs() } else { f64::INFINITY })
        .fold(0.0, f64::max)
}

fn norm(v: [f64; 3]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// How two affines differ.
#[derive(Clone, Debug, PartialEq)]
pub struct Difference {
    /// What differs, in words.
    pub how: String,
    /// Both affines are finite numbers: a larger tolerance could accept them.
    pub finite: bool,
    /// The largest difference of an entry (infinite for a NaN).
    pub worst: f64,
    /// Both affines, written out.
    pub affines: String,
}

/// How the prediction's affine differs from the labels' by more than `tol` in some entry; None
/// when they agree. A NaN or infinite entry never agrees.
pub fn difference(labels: &Affine, pred: &Affine, tol: f64) -> Option<Difference> {
    let finite = |m: &Affine| m[..3].iter().flatten().all(|v| v.is_finite());
    let broken: Vec<&str> = [("labels'", labels), ("prediction's", pred)]
        .iter()
        .filter(|(_, m)| !finite(m))
        .map(|(whose, _)| *whose)
        .collect();
    if !broken.is_empty() {
        return Some(Difference {
            how: broken
                .iter()
                .map(|w| format!("the {w} affine holds a NaN or infinite entry"))
                .collect::<Vec<_>>()
                .join(", "),
            finite: false,
            worst: f64::INFINITY,
            affines: format!("labels {}, prediction {}", matrix(labels), matrix(pred)),
        });
    }
    let mut notes = Vec::new();
    for (c, axis) in AXES.iter().enumerate() {
        let (l, p) = (column(labels, c), column(pred, c));
        if distance(l, p) <= tol {
            continue;
        }
        let (nl, np) = (norm(l), norm(p));
        if distance(l, p.map(|v| -v)) <= tol {
            notes.push(format!(
                "voxel axis {axis} is flipped (the prediction's step along {axis} is the labels' negated)"
            ));
        } else if (nl - np).abs() > tol {
            notes.push(format!(
                "the voxel size along {axis} differs ({} in the labels, {} in the prediction)",
                short(nl),
                short(np)
            ));
        } else {
            notes.push(format!(
                "voxel axis {axis} points elsewhere (step {} in the labels, {} in the prediction)",
                vector(l),
                vector(p)
            ));
        }
    }
    let (lo, po) = (column(labels, 3), column(pred, 3));
    if distance(lo, po) > tol {
        notes.push(format!("the origin differs by {}", vector([po[0] - lo[0], po[1] - lo[1], po[2] - lo[2]])));
    }
    if notes.is_empty() {
        return None;
    }
    Some(Difference {
        how: notes.join(", "),
        finite: true,
        worst: (0..4).map(|c| distance(column(labels, c), column(pred, c))).fold(0.0, f64::max),
        affines: format!("labels {}, prediction {}", matrix(labels), matrix(pred)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Affine = [[-0.8, 0.0, 0.0, 90.0], [0.0, 0.8, 0.0, -126.0], [0.0, 0.0, 2.0, -72.0], [0.0, 0.0, 0.0, 1.0]];

    #[test]
    fn equal_affines_and_rounding_agree() {
        assert_eq!(difference(&L, &L, 1e-3), None);
        let mut p = L;
        p[0][3] += 5e-4;
        assert_eq!(difference(&L, &p, 1e-3), None);
    }

    #[test]
    fn a_flip_a_voxel_size_and_a_shift_are_named() {
        let mut p = L;
        p[0][0] = 0.8;
        p[0][3] = 90.0 - 0.8 * 31.0;
        let d = difference(&L, &p, 1e-3).unwrap();
        assert_eq!(
            d.how,
            "voxel axis x is flipped (the prediction's step along x is the labels' negated), the origin differs \
             by (-24.8, 0, 0)"
        );
        assert!(d.affines.starts_with("labels [-0.8 0 0 90; 0 0.8 0 -126; 0 0 2 -72], prediction [0.8 0 0 65.2;"));
        let mut p = L;
        p[2][2] = 0.8;
        let d = difference(&L, &p, 1e-3).unwrap();
        assert_eq!(d.how, "the voxel size along z differs (2 in the labels, 0.8 in the prediction)");
        let mut p = L;
        p[1][3] += 50.0;
        let d = difference(&L, &p, 1e-3).unwrap();
        assert_eq!((d.how.as_str(), d.worst), ("the origin differs by (0, 50, 0)", 50.0));
    }

    #[test]
    fn nan_entries_never_agree() {
        let mut p = L;
        p[1][1] = f64::NAN;
        let d = difference(&L, &p, 1e-3).unwrap();
        assert_eq!(d.how, "the prediction's affine holds a NaN or infinite entry");
        assert!(!d.finite && d.worst.is_infinite() && d.affines.contains("NaN"), "{d:?}");
        let d = difference(&p, &p, f64::MAX).unwrap();
        assert_eq!(
            d.how,
            "the labels' affine holds a NaN or infinite entry, the prediction's affine holds a NaN or infinite entry"
        );
    }
}
