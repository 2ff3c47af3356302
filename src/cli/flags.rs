//! How the command line writes the library's parameters: as its flags. Every parameter's flag is
//! its library name in kebab case (`smooth_dr` → `--smooth-dr`), except where the command line
//! has a name of its own (below).

use dicegrad::error::{Naming, Param};

/// Parameters whose flag is not their name in kebab case.
const RENAMED: [(&str, &str); 2] = [("include_background", "no-background"), ("max_values", "max-voxels")];

/// The flag of a parameter, without the dashes.
pub fn flag_name(p: Param) -> String {
    RENAMED.iter().find(|(name, _)| *name == p.name()).map_or_else(|| p.name().replace('_', "-"), |(_, f)| f.to_string())
}

/// Writes parameters as flags: `--smooth-dr`, `--activation sigmoid`, `--force`.
pub struct Flags;

impl Naming for Flags {
    fn param(&self, p: Param) -> String {
        format!("--{}", flag_name(p))
    }

    fn setting(&self, p: Param, value: &str) -> String {
        match (p.name(), value) {
            // --no-background switches the background off; on is the default.
            ("include_background", "false") => self.param(p),
            ("include_background", _) => format!("no {}", self.param(p)),
            (_, "true") => self.param(p),
            _ => format!("{} {value}", self.param(p)),
        }
    }
}
