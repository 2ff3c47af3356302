//! Which way a voxel grid faces in the patient, read off its affine, and how the three orthogonal
//! views show it.
//!
//! The NIfTI world is RAS+: x grows to the patient's Right, y to Anterior, z to Superior. Each
//! voxel axis j has the direction of column j of the affine's 3×3 part; it is assigned the world
//! axis it is most nearly parallel to, greedily by the largest |entry| of the columns left (as
//! nibabel's `io_orientation` does), with the sign of that entry. The code of the grid is then the
//! letter each voxel axis points to (`RAS`, `LPS`, `PIR`...).
//!
//! Views, in the neurological convention (the patient's left on the left of the picture; what a
//! viewer looking at the patient from behind sees):
//! - sagittal (normal to x): posterior on the left, anterior on the right, superior at the top;
//! - coronal (normal to y): left on the left, right on the right, superior at the top;
//! - axial (normal to z): left on the left, right on the right, anterior at the top.
//!
//! So in every view the picture's columns run along a world axis in increasing order, and its rows
//! run along another one in decreasing order (top = the larger world coordinate).

use serde::Serialize;

/// The convention the views follow, as a reader needs it stated.
pub const CONVENTION: &str = "neurological (the patient's left on the left)";

/// The three views, in the order they are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum View {
    Sagittal,
    Coronal,
    Axial,
}

impl View {
    pub const ALL: [View; 3] = [View::Sagittal, View::Coronal, View::Axial];

    /// The world axes `[normal, horizontal, vertical]` of the view.
    fn world_axes(self) -> [usize; 3] {
        match self {
            View::Sagittal => [0, 1, 2],
            View::Coronal => [1, 0, 2],
            View::Axial => [2, 0, 1],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            View::Sagittal => "sagittal",
            View::Coronal => "coronal",
            View::Axial => "axial",
        }
    }
}

/// The letters of the world axes' ends: `[negative, positive]` per axis.
const LETTERS: [[char; 2]; 3] = [['L', 'R'], ['P', 'A'], ['I', 'S']];

/// How the voxel axes lie in the world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Orientation {
    /// For each voxel axis, the world axis it runs along (0 = x, 1 = y, 2 = z).
    pub world_axis: [usize; 3],
    /// For each voxel axis, whether it runs towards the world axis' positive end (R, A, S).
    pub positive: [bool; 3],
}

impl Orientation {
    /// The orientation of the voxel-to-world `affine` (row major; its 3×3 part is read). An
    /// affine whose 3×3 part is 0 or not finite is taken as the identity.
    pub fn of_affine(affine: &[[f64; 4]; 4]) -> Orientation {
        let m: [[f64; 3]; 3] = std::array::from_fn(|r| std::array::from_fn(|c| affine[r][c]));
        if m.iter().flatten().any(|v| !v.is_finite()) || m.iter().flatten().all(|v| *v == 0.0) {
            return Orientation { world_axis: [0, 1, 2], positive: [true; 3] };
        }
        let mut world_axis = [usize::MAX; 3];
        let mut positive = [true; 3];
        let (mut rows_left, mut cols_left) = ([true; 3], [true; 3]);
        for _ in 0..3 {
            // the largest |entry| among the axes not yet assigned (first one on ties)
            let mut best = (0, 0, -1.0);
            for (r, row) in m.iter().enumerate() {
                for (c, v) in row.iter().enumerate() {
                    if rows_left[r] && cols_left[c] && v.abs() > best.2 {
                        best = (r, c, v.abs());
                    }
                }
            }
            let (r, c, _) = best;
            world_axis[c] = r;
            positive[c] = m[r][c] >= 0.0;
            rows_left[r] = false;
            cols_left[c] = false;
        }
        Orientation { world_axis, positive }
    }

    /// The largest angle, in degrees, between a voxel axis (a column of the affine's 3×3 part)
    /// and the world axis it is assigned (0 for a grid aligned with the world axes).
    pub fn obliquity_degrees(affine: &[[f64; 4]; 4]) -> f64 {
        let o = Orientation::of_affine(affine);
        (0..3)
            .map(|j| {
                let col = [affine[0][j], affine[1][j], affine[2][j]];
                let norm = col.iter().map(|v| v * v).sum::<f64>().sqrt();
                if norm > 0.0 && norm.is_finite() {
                    (col[o.world_axis[j]].abs() / norm).clamp(0.0, 1.0).acos().to_degrees()
                } else {
                    0.0
                }
            })
            .fold(0.0, f64::max)
    }

    /// The code of the grid: the letter each voxel axis points to ("RAS" for an identity affine).
    pub fn code(&self) -> String {
        (0..3).map(|j| LETTERS[self.world_axis[j]][usize::from(self.positive[j])]).collect()
    }

    /// The voxel axis running along world axis `w`.
    fn voxel_axis(&self, w: usize) -> usize {
        (0..3).find(|&j| self.world_axis[j] == w).unwrap_or(w)
    }

    /// How `view` shows a grid of this orientation.
    pub fn layout(&self, view: View) -> PlaneLayout {
        let [n, h, v] = view.world_axes();
        let (normal, horizontal, vertical) = (self.voxel_axis(n), self.voxel_axis(h), self.voxel_axis(v));
        PlaneLayout {
            view,
            normal,
            horizontal,
            vertical,
            // columns run along +world: reversed when the voxel axis runs the other way
            reverse_horizontal: !self.positive[horizontal],
            // rows run along −world (top = larger): reversed when the voxel axis runs along +world
            reverse_vertical: self.positive[vertical],
            letters: PlaneLetters {
                left: LETTERS[h][0],
                right: LETTERS[h][1],
                top: LETTERS[v][1],
                bottom: LETTERS[v][0],
            },
        }
    }
}

/// The letters at a picture's edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PlaneLetters {
    pub left: char,
    pub right: char,
    pub top: char,
    pub bottom: char,
}

/// How a view maps voxels to a picture: the voxel axis normal to it, the voxel axes along its
/// columns and rows, and whether each runs against the picture's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PlaneLayout {
    pub view: View,
    pub normal: usize,
    pub horizontal: usize,
    pub vertical: usize,
    /// Column 0 holds the last voxel along `horizontal`.
    pub reverse_horizontal: bool,
    /// Row 0 (the top) holds the last voxel along `vertical`.
    pub reverse_vertical: bool,
    pub letters: PlaneLetters,
}

impl PlaneLayout {
    /// The voxel `[x, y, z]` at picture column `col`, row `row`, on the plane through `centre`,
    /// for a grid of `shape`.
    pub fn voxel(&self, shape: [usize; 3], centre: [usize; 3], col: usize, row: usize) -> [usize; 3] {
        let mut v = centre;
        let (nh, nv) = (shape[self.horizontal], shape[self.vertical]);
        v[self.horizontal] = if self.reverse_horizontal { nh - 1 - col } else { col };
        v[self.vertical] = if self.reverse_vertical { nv - 1 - row } else { row };
        v
    }

    /// The picture's size in voxels `(columns, rows)` for a grid of `shape`.
    pub fn size(&self, shape: [usize; 3]) -> (usize, usize) {
        (shape[self.horizontal], shape[self.vertical])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn affine(m: [[f64; 3]; 3]) -> [[f64; 4]; 4] {
        let mut a = [[0.0; 4]; 4];
        for r in 0..3 {
            a[r][..3].copy_from_slice(&m[r]);
        }
        a[3][3] = 1.0;
        a
    }

    #[test]
    fn codes_follow_the_affine_columns() {
        let ident = affine([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
        assert_eq!(Orientation::of_affine(&ident).code(), "RAS");
        // the usual DICOM-derived LPS storage
        let lps = affine([[-0.8, 0.0, 0.0], [0.0, -0.8, 0.0], [0.0, 0.0, 2.0]]);
        assert_eq!(Orientation::of_affine(&lps).code(), "LPS");
        // voxel axis 0 along −y (P), axis 1 along −z (I), axis 2 along +x (R)
        let pir = affine([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]);
        assert_eq!(Orientation::of_affine(&pir).code(), "PIR");
        // a 20° rotation about z keeps the nearest axes
        let (c, s) = (20f64.to_radians().cos(), 20f64.to_radians().sin());
        let rot = affine([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]);
        assert_eq!(Orientation::of_affine(&rot).code(), "RAS");
        assert!((Orientation::obliquity_degrees(&rot) - 20.0).abs() < 1e-9);
        assert_eq!(Orientation::obliquity_degrees(&lps), 0.0);
    }

    #[test]
    fn axial_view_of_a_ras_grid_puts_left_on_the_left_and_anterior_on_top() {
        let o = Orientation::of_affine(&affine([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]));
        let l = o.layout(View::Axial);
        assert_eq!((l.normal, l.horizontal, l.vertical), (2, 0, 1));
        assert_eq!(l.letters, PlaneLetters { left: 'L', right: 'R', top: 'A', bottom: 'P' });
        // column 0 is the leftmost world x (voxel 0 of a RAS grid); row 0 the most anterior y
        assert_eq!(l.voxel([4, 5, 6], [0, 0, 3], 0, 0), [0, 4, 3]);
    }
}
