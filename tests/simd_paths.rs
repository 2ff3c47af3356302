//! The two builds of every loop — AVX2 and portable (`DICEGRAD_SIMD=portable`) — give the same
//! bytes end to end: report, pictures and gradient volume, for probabilities and through sigmoid
//! and softmax, at GradScaler's loss scale and at 1 (where float16 flushes and makes subnormal
//! many of the logit gradient's values). (The kernels are compared build against build in the unit
//! tests of `src/simd`.)

mod common;

use common::*;

#[test]
fn the_portable_and_the_avx2_builds_write_the_same_bytes() {
    let d = tmp();
    for (classes, pred, activation) in [(2, "probs", "none"), (2, "logits", "sigmoid"), (4, "logits", "softmax")] {
        let case = at(&d, &format!("{pred}-{activation}"));
        let ok = dicegrad()
            .args(["synth", "--shape", "23,17,9", "--seed", "4", "--classes", &classes.to_string(), "--out"])
            .arg(&case)
            .output()
            .unwrap();
        assert!(ok.status.success());
        let run = |portable: bool, scale: &str| {
            let out = at(&d, &format!("{pred}-{activation}-{portable}-{scale}"));
            let mut c = dicegrad();
            if portable {
                c.env("DICEGRAD_SIMD", "portable");
            } else {
                c.env_remove("DICEGRAD_SIMD");
            }
            let r = c
                .args([
                    "analyze",
                    "--compare",
                    "ce,mimic",
                    "--activation",
                    activation,
                    "--loss-scale",
                    scale,
                    "--labels",
                ])
                .arg(case.join("labels.nii.gz"))
                .arg("--pred")
                .arg(case.join(format!("{pred}.nii.gz")))
                .arg("--out")
                .arg(&out)
                .arg("--grad-out")
                .arg(out.join("g.nii"))
                .output()
                .unwrap();
            assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
            ["report.json", "histogram.png", "compare.svg", "g.nii"].map(|f| std::fs::read(out.join(f)).unwrap())
        };
        for scale in ["65536", "1"] {
            let (fast, portable) = (run(false, scale), run(true, scale));
            for (i, name) in ["report.json", "histogram.png", "compare.svg", "g.nii"].iter().enumerate() {
                assert!(
                    fast[i] == portable[i],
                    "{activation} on {pred}, S = {scale}: {name} differs between the builds"
                );
            }
        }
    }
}
