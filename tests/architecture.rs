//! The layout rules of the crate, checked on its sources: the library knows no command line (no
//! clap, none of the program's flags outside `src/cli` and `src/main.rs`), and its modules form
//! layers — each uses only modules of the layers below it, so there is no import cycle.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The top-level modules of the library, lowest layer first (as `src/lib.rs` lists them).
const LAYERS: [&str; 16] = [
    "error", "names", "simd", "parallel", "case", "loss", "analysis", "report", "output", "plot", "nifti", "npz",
    "pipeline", "arrays", "batch", "synth",
];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The library's source files, by top-level module.
fn library() -> BTreeMap<String, Vec<(PathBuf, String)>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut by_module: BTreeMap<String, Vec<(PathBuf, String)>> = BTreeMap::new();
    for path in all {
        let rel = path.strip_prefix(&src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if first == "cli" || first == "main" || first == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        by_module.entry(first).or_default().push((rel.to_path_buf(), text));
    }
    by_module
}

/// Every `--word` in `text` (a flag-like token: two dashes, a letter, then letters, digits, `-`
/// or `_`).
fn flag_like(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    for i in 0..b.len().saturating_sub(2) {
        let before_ok = i == 0 || !(b[i - 1] == b'-' || b[i - 1].is_ascii_alphanumeric());
        if before_ok && b[i] == b'-' && b[i + 1] == b'-' && b[i + 2].is_ascii_lowercase() {
            let end = (i + 2..b.len()).find(|&j| !(b[j].is_ascii_alphanumeric() || b[j] == b'-' || b[j] == b'_'));
            out.push(text[i..end.unwrap_or(b.len())].to_string());
        }
    }
    out
}

#[test]
fn the_library_knows_no_command_line() {
    // nnU-Net's own flag, named where the library tells users how nnU-Net writes its files
    let allowed = ["--save_probabilities"];
    for (module, sources) in library() {
        for (path, text) in sources {
            assert!(!text.contains("clap"), "{} ({module}) mentions clap", path.display());
            for flag in flag_like(&text) {
                assert!(allowed.contains(&flag.as_str()), "{} names the flag {flag}", path.display());
            }
        }
    }
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let modules = library();
    let listed: Vec<&str> = LAYERS.to_vec();
    for name in modules.keys() {
        assert!(listed.contains(&name.as_str()), "module {name} is missing from LAYERS");
    }
    for (layer, module) in LAYERS.iter().enumerate() {
        for (path, text) in &modules[*module] {
            // code only: a link in a doc comment is no dependency
            let text: String =
                text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
            for (above, other) in LAYERS.iter().enumerate().skip(layer + 1) {
                let used = [format!("crate::{other}::"), format!("crate::{other};")];
                assert!(
                    !used.iter().any(|u| text.contains(u.as_str())),
                    "{} ({module}, layer {layer}) uses {other} (layer {above}), a layer above it",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn the_scanner_finds_flags_and_nothing_else() {
    assert_eq!(flag_like("pass --smooth-dr 1 or --force; x--y, a -- b, ---z"), ["--smooth-dr", "--force"]);
}
