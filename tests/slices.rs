//! The pictures of the volume: the slice picture's pixels are the closed-form levels through the
//! colour map, planes are oriented by the affine whatever the storage order, voxels are drawn to
//! scale, the densities are the per-voxel counts, and `--slice` is checked.

mod common;

use common::*;
use dicegrad::analysis::views::density::Density;
use dicegrad::analysis::views::{ViewRequest, Views};
use dicegrad::case::{Case, Geometry};
use dicegrad::error::FieldNames;
use dicegrad::loss::{Activation, LossPatch, LossRequest};
use dicegrad::pipeline::analyze;
use dicegrad::plot::colour::diverging;
use dicegrad::plot::slices::{layout, Quantity};
use dicegrad::plot::{write, Picture, ReportPicture};
use dicegrad::{Report, Request};

fn geometry(m: [[f64; 3]; 3], spacing: [f64; 3]) -> Geometry {
    let mut affine = [[0.0; 4]; 4];
    for r in 0..3 {
        affine[r][..3].copy_from_slice(&m[r]);
    }
    affine[3][3] = 1.0;
    Geometry { voxel_size: spacing, affine }
}

fn report_of(case: &Case, request: &Request) -> Report {
    analyze(case, inputs_of(case), request, &FieldNames).unwrap().report
}

fn with_views(slice: [Option<usize>; 3]) -> Request {
    Request { views: Some(ViewRequest { slice }), ..Request::default() }
}

/// A binary case: an ellipsoid of foreground centred in a 20×18×12 grid of 0.8×0.8×2 mm voxels,
/// probabilities 0.6–0.9 inside and 0.05–0.3 outside.
fn ellipsoid() -> (Case<'static>, Vec<u8>, Vec<f32>) {
    let shape = [20, 18, 12];
    let (mut class, mut probs) = (Vec::new(), Vec::new());
    let mut rng = Lcg(5);
    for z in 0..shape[2] {
        for y in 0..shape[1] {
            for x in 0..shape[0] {
                let d = ((x as f64 - 10.0) / 6.0).powi(2)
                    + ((y as f64 - 9.0) / 5.0).powi(2)
                    + ((z as f64 - 6.0) / 3.0).powi(2);
                let fg = d <= 1.0;
                class.push(u8::from(fg));
                probs.push(if fg { rng.range(0.6, 0.9) } else { rng.range(0.05, 0.3) } as f32);
            }
        }
    }
    let g = geometry([[0.8, 0.0, 0.0], [0.0, 0.8, 0.0], [0.0, 0.0, 2.0]], [0.8, 0.8, 2.0]);
    let case = Case::from_parts(shape, class.clone(), 1, probs.clone()).with_geometry(g);
    (case, class, probs)
}

fn pixel(img: &image::RgbImage, x: u32, y: u32) -> [u8; 3] {
    img.get_pixel(x, y).0
}

fn near(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(&b).all(|(x, y)| x.abs_diff(*y) <= 1)
}

#[test]
fn gradient_pixels_are_the_two_closed_form_levels_through_the_colour_map() {
    let (case, class, probs) = ellipsoid();
    let report = report_of(&case, &with_views([None; 3]));
    // the closed form from sums counted here: a = 2/D, c = N/D² (K = 1, MONAI's smoothing)
    let (mut i, mut s, mut g) = (0.0, 0.0, 0.0);
    for (&c, &p) in class.iter().zip(&probs) {
        i += f64::from(c) * f64::from(p);
        s += f64::from(p);
        g += f64::from(c);
    }
    let (n, d) = (2.0 * i + 1e-5, s + g + 1e-5);
    let (a, c) = (2.0 / d, n / (d * d));
    let (fg, bg) = (c - a, c);
    let m = f64::from(fg.abs().max(bg.abs()) as f32);
    let (fg_colour, bg_colour) = (diverging(fg, m), diverging(bg, m));
    assert_ne!(fg_colour, bg_colour);

    let dir = tmp();
    let path = at(&dir, "slices.png");
    write(&ReportPicture(&report, Picture::Slices), &path, false).unwrap();
    let img = image::open(&path).unwrap().to_rgb8();
    let rects: Vec<_> = layout(&report).into_iter().filter(|r| r.quantity == Quantity::Gradient).collect();
    assert_eq!(rects.len(), 3, "three planes");
    for r in rects {
        let (mut fgs, mut bgs) = (0, 0);
        for y in r.y..r.y + r.height {
            for x in r.x..r.x + r.width {
                let p = pixel(&img, x, y);
                if near(p, fg_colour) {
                    fgs += 1;
                } else if near(p, bg_colour) {
                    bgs += 1;
                } else {
                    panic!("plane {}: pixel ({x}, {y}) is {p:?}, neither level's colour", r.plane);
                }
            }
        }
        assert!(fgs > 0 && bgs > 0, "plane {}: both levels shown ({fgs} fg, {bgs} bg pixels)", r.plane);
        // the planes cross the ellipsoid's centre, which is foreground; the corners are background
        assert!(near(pixel(&img, r.x + r.width / 2, r.y + r.height / 2), fg_colour));
        assert!(near(pixel(&img, r.x, r.y), bg_colour));
    }
}

#[test]
fn voxels_are_drawn_to_scale() {
    let (case, _, _) = ellipsoid();
    let report = report_of(&case, &with_views([None; 3]));
    let rects: Vec<_> = layout(&report).into_iter().filter(|r| r.quantity == Quantity::Truth).collect();
    // sagittal: y (18 × 0.8 mm) across, z (12 × 2 mm) up; axial: x (20 × 0.8) across, y (18 × 0.8) up
    let ratio = |r: &dicegrad::plot::slices::PlaneRect| f64::from(r.height) / f64::from(r.width);
    assert!((ratio(&rects[0]) - 24.0 / 14.4).abs() < 0.03, "sagittal {:?}", rects[0]);
    assert!((ratio(&rects[1]) - 24.0 / 16.0).abs() < 0.03, "coronal {:?}", rects[1]);
    assert!((ratio(&rects[2]) - 14.4 / 16.0).abs() < 0.03, "axial {:?}", rects[2]);
}

/// A world of 12×10×8 positions holding an asymmetric blob (on the patient's left, anterior and
/// superior), stored as voxels by `to_world` (voxel → world position) on a grid of `shape`.
fn stored(shape: [usize; 3], to_world: impl Fn([usize; 3]) -> [usize; 3], m: [[f64; 3]; 3]) -> Case<'static> {
    let (mut class, mut probs) = (Vec::new(), Vec::new());
    for k in 0..shape[2] {
        for j in 0..shape[1] {
            for i in 0..shape[0] {
                let [x, y, z] = to_world([i, j, k]);
                // small x is the patient's left in RAS
                let fg = x < 5 && y > 4 && z > 3 || (x == 2 && y == 1);
                class.push(u8::from(fg));
                probs.push(((x * 7 + y * 3 + z * 5) % 10) as f32 / 10.0);
            }
        }
    }
    Case::from_parts(shape, class, 1, probs).with_geometry(geometry(m, [1.0; 3]))
}

#[test]
fn planes_show_the_same_world_whatever_the_storage_order() {
    let ident = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let ras = stored([12, 10, 8], |v| v, ident);
    // x and y stored backwards: the DICOM-style LPS grid
    let lps =
        stored([12, 10, 8], |[i, j, k]| [11 - i, 9 - j, k], [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]]);
    // axes permuted and z reversed: voxel axis 0 runs along −z, 1 along x, 2 along y
    let odd = stored([8, 12, 10], |[a, b, c]| [b, c, 7 - a], [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]]);
    // the same world voxel (x, y, z) = (3, 6, 5) as each grid's centre
    let views = |case: &Case, at: [usize; 3]| -> Views { report_of(case, &with_views(at.map(Some))).views.unwrap() };
    let a = views(&ras, [3, 6, 5]);
    let b = views(&lps, [8, 3, 5]);
    let c = views(&odd, [2, 3, 6]);
    assert_eq!((a.orientation.as_str(), b.orientation.as_str(), c.orientation.as_str()), ("RAS", "LPS", "IRA"));
    for v in [&b, &c] {
        for (p, q) in a.channels[0].slices.planes.iter().zip(&v.channels[0].slices.planes) {
            assert_eq!(p.layout.view, q.layout.view);
            assert_eq!(p.layout.letters, q.layout.letters);
            assert_eq!((p.width, p.height), (q.width, q.height), "{:?}", p.layout.view);
            assert_eq!(p.truth, q.truth, "{:?}", p.layout.view);
            assert_eq!(p.probability, q.probability, "{:?}", p.layout.view);
            for (x, y) in p.gradient.iter().zip(&q.gradient) {
                assert!((x - y).abs() <= 1e-6 * x.abs().max(1e-12), "{:?}", p.layout.view);
            }
        }
    }
    // axial, neurological: the patient's left (small x, where the blob is) on the left, anterior
    // (large y) on top
    let axial = &a.channels[0].slices.planes[2];
    assert_eq!((axial.layout.letters.left, axial.layout.letters.right, axial.layout.letters.top), ('L', 'R', 'A'));
    let (w, h) = (axial.width, axial.height);
    let fg_at = |col: usize, row: usize| axial.truth[row * w + col] == 1;
    // world (x, y) = (0, 9) is left-anterior: column 0, row 0; world (11, 0) right-posterior
    assert!(fg_at(0, 0));
    assert!(!fg_at(w - 1, h - 1));
    // the single marked column x = 2 at y = 1 (posterior): column 2, row h − 2
    assert!(fg_at(2, h - 2));
}

#[test]
fn densities_are_the_counts_of_every_voxel() {
    let case = random_case(8, [13, 11, 9], 1, Activation::Sigmoid, false);
    let request = Request {
        loss: LossRequest {
            preset: None,
            overrides: LossPatch { activation: Some(Activation::Sigmoid), ..LossPatch::default() },
        },
        views: Some(ViewRequest::default()),
        ..Request::default()
    };
    let report = report_of(&case, &request);
    let view = &report.views.as_ref().unwrap().channels[0];
    // the per-voxel route: the whole gradient, the probabilities by the definition
    let g = dicegrad::pipeline::gradient(&case, &inputs_of(&case), &request).unwrap();
    let mut direct = Density::new(0.0, 1.0);
    direct.lo = view.gradient.density.lo;
    direct.hi = view.gradient.density.hi;
    let (mut fg_count, mut probability_rows) = (0u64, Density::new(0.0, 1.0));
    probability_rows.lo = view.probability.as_ref().unwrap().view.density.lo;
    probability_rows.hi = view.probability.as_ref().unwrap().view.density.hi;
    let levels = view.probability.as_ref().unwrap().view.levels.unwrap();
    for ((&z, &v), &cl) in case.prediction.values.iter().zip(&g).zip(case.labels.class.iter()) {
        let s = 1.0 / (1.0 + (-f64::from(z)).exp());
        direct.add(s, f64::from(v), cl == 1);
        probability_rows.add(s, levels[usize::from(cl)], cl == 1);
        fg_count += u64::from(cl);
    }
    let close = |a: &[u64], b: &[u64]| a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).sum::<u64>();
    // the library's sigmoid and exp here may round differently on a bin edge: at most a voxel or two
    assert!(close(&direct.foreground, &view.gradient.density.foreground) <= 4);
    assert!(close(&direct.background, &view.gradient.density.background) <= 4);
    assert_eq!(view.gradient.density.foreground.iter().sum::<u64>(), fg_count);
    assert_eq!(view.gradient.density.background.iter().sum::<u64>(), case.voxels() as u64 - fg_count);
    // dL/ds of Dice through a sigmoid is −a·g + c: one row per side
    let p = &view.probability.as_ref().unwrap().view.density;
    let rows = |counts: &[u64]| {
        (0..dicegrad::analysis::views::density::Y_BINS)
            .filter(|y| {
                counts[y * dicegrad::analysis::views::density::X_BINS..][..dicegrad::analysis::views::density::X_BINS]
                    .iter()
                    .any(|&c| c > 0)
            })
            .count()
    };
    assert_eq!((rows(&p.foreground), rows(&p.background)), (1, 1));
    assert!(close(&probability_rows.foreground, &p.foreground) <= 4);
}

#[test]
fn a_channel_without_foreground_is_cut_through_the_volume_centre() {
    let case = random_case(3, [9, 8, 7], 4, Activation::None, true);
    let report = report_of(&case, &with_views([None; 3]));
    let last = report.views.unwrap().channels.pop().unwrap();
    let json = serde_json::to_value(&last.slices).unwrap();
    assert_eq!(json["source"], "volume_centre");
    assert_eq!(json["has_foreground"], false);
    assert_eq!(last.slices.centre, [4, 4, 3]);
}

#[test]
fn slice_positions_are_checked() {
    let (l, p) = ("samples/multiclass/labels.nii.gz", "samples/multiclass/probs.nii.gz");
    let d = tmp();
    let out = at(&d, "out");
    let err =
        fails_with_2(dicegrad().args(["analyze", "--labels", l, "--pred", p, "--slice", "z=20", "--out"]).arg(&out));
    assert!(err.contains("--slice") && err.contains("20 voxels along z (0 to 19)"), "{err}");
    assert!(!out.exists(), "nothing written on a refusal");
    let o =
        dicegrad().args(["analyze", "--labels", l, "--pred", p, "--slice", "q=3", "--out"]).arg(&out).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("'q' is not an axis; use x, y or z"));
    let err = fails_with_2(dicegrad().args(["analyze", "--labels", l, "--pred", p, "--slice", "z=3"]));
    assert!(err.contains("--out"), "{err}");
    let json = json_of(
        dicegrad().args(["analyze", "--json", "--labels", l, "--pred", p, "--slice", "x=3,z=7", "--out"]).arg(&out),
    );
    for ch in json["views"]["channels"].as_array().unwrap() {
        assert_eq!(ch["slices"]["source"], "given");
        assert_eq!(ch["slices"]["centre"][0], 3);
        assert_eq!(ch["slices"]["centre"][2], 7);
        assert_eq!(ch["slices"]["planes"][0]["index"], 3, "the sagittal plane is x = 3 on this RAS grid");
    }
    for f in ["slices.png", "slices.svg", "density.png", "density.svg"] {
        assert!(out.join(f).exists(), "{f}");
    }
    let svg = std::fs::read_to_string(out.join("slices.svg")).unwrap();
    assert!(svg.contains("data:image/png;base64"), "the SVG embeds the planes as images");
}

#[test]
fn a_forced_run_removes_the_pictures_an_earlier_run_left() {
    let (l, p) = ("samples/binary/labels.nii.gz", "samples/binary/probs.nii.gz");
    let d = tmp();
    let out = at(&d, "out");
    let first =
        dicegrad().args(["analyze", "--labels", l, "--pred", p, "--compare", "mimic", "--out"]).arg(&out).output();
    assert!(first.unwrap().status.success());
    assert!(out.join("compare.png").exists() && out.join("compare.svg").exists());
    let again =
        dicegrad().args(["analyze", "--labels", l, "--pred", p, "--force", "--out"]).arg(&out).output().unwrap();
    assert!(again.status.success());
    assert!(!out.join("compare.png").exists() && !out.join("compare.svg").exists(), "stale comparison removed");
    assert!(String::from_utf8_lossy(&again.stderr).contains("removed"));
    for f in ["slices.png", "density.svg", "histogram.png", "report.html"] {
        assert!(out.join(f).exists(), "{f}");
    }
}
