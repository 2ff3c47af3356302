//! The layout rules of the crate, checked on its sources: the library knows no command line (no
//! clap, none of the program's flags outside `src/cli` and `src/main.rs`), and its modules form
//! layers — each uses only modules of the layers below it, so there is no import cycle.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The top-level modules of the library, lowest layer first (as `src/lib.rs` lists them).
const LAYERS: [&str; 22] = [
    "error",
    "names",
    "simd",
    "parallel",
    "memory",
    "libdeflate",
    "case",
    "loss",
    "analysis",
    "training",
    "report",
    "output",
    "plot",
    "nifti",
    "npz",
    "dataset",
    "pipeline",
    "minibatch",
    "arrays",
    "batch",
    "track",
    "synth",
];

/// Macros exported at the crate root, and the modules that define them.
const ROOT_MACROS: [(&str, &str); 1] = [("msg", "error")];

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
            for used in modules_named(&text) {
                // a macro exported at the root belongs to the module that defines it
                let used = ROOT_MACROS.iter().find(|(m, _)| *m == used).map_or(used.as_str(), |(_, module)| module);
                let above = LAYERS.iter().position(|m| *m == used).unwrap_or_else(|| panic!("{used}: not a module"));
                assert!(
                    above <= layer,
                    "{} ({module}, layer {layer}) uses {used} (layer {above}), a layer above it",
                    path.display()
                );
            }
        }
    }
}

/// The top-level modules a piece of code names through `crate::` (`crate::a::…`, `crate::a;`,
/// and each name of `crate::{a, b::…}`; macros exported at the root, `crate::m!`, are not modules).
fn modules_named(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
            // the names of the group, at its top level
            let (mut depth, mut start, mut names) = (0, 0, Vec::new());
            for (i, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        names.push(&group[start..i]);
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        names.push(&group[start..i]);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            names
        } else {
            vec![rest]
        };
        for n in names {
            let n = n.trim();
            let first: String = n.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let is_macro = n[first.len()..].starts_with('!');
            if !first.is_empty() && first != "self" && !is_macro && first.starts_with(|c: char| c.is_lowercase()) {
                out.push(first);
            }
        }
    }
    out
}

#[test]
fn the_module_scanner_reads_paths_and_groups() {
    let code = "use crate::loss::{A, B};\nuse crate::{case::Case, error::{Error, Param}};\nlet x = crate::msg!();";
    assert_eq!(modules_named(code), ["loss", "case", "error"]);
}

#[test]
fn the_scanner_finds_flags_and_nothing_else() {
    assert_eq!(flag_like("pass --smooth-dr 1 or --force; x--y, a -- b, ---z"), ["--smooth-dr", "--force"]);
}
