//! How the command line writes the library's parameters: as its flags. Every parameter's flag is
//! its library name in kebab case (`smooth_dr` → `--smooth-dr`), except where the command line
//! has a name of its own (below).

use dicegrad::error::{Naming, Param};

/// Parameters whose flag is not their name in kebab case.
const RENAMED: [(&str, &str); 2] = [("include_background", "no-background"), ("max_values", "max-voxels")];

/// The flag of a parameter, without the dashes.
pub fn flag_name(p: Param) -> String {
    RENAMED
        .iter()
        .find(|(name, _)| *name == p.name())
        .map_or_else(|| p.name().replace('_', "-"), |(_, f)| f.to_string())
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use dicegrad::loss::params::SetBy;
    use dicegrad::loss::LossParam;

    use super::*;

    #[test]
    fn every_parameter_the_library_can_name_is_a_flag_of_the_command_line() {
        let cli = crate::cli::Cli::command();
        let flags: Vec<String> = cli
            .get_subcommands()
            .flat_map(|c| c.get_arguments().filter_map(|a| a.get_long().map(String::from)).collect::<Vec<_>>())
            .collect();
        let user_set = LossParam::ALL.iter().filter(|p| p.info().set_by == SetBy::User).map(|p| p.param());
        for p in user_set.chain(Param::RUN_OPTIONS) {
            assert!(flags.contains(&flag_name(p)), "{} has no flag --{}", p.name(), flag_name(p));
        }
    }

    #[test]
    fn settings_are_written_as_a_user_types_them() {
        let p = |name| LossParam::ALL.iter().find(|p| p.name() == name).unwrap().param();
        assert_eq!(Flags.setting(p("activation"), "sigmoid"), "--activation sigmoid");
        assert_eq!(Flags.setting(p("include_background"), "false"), "--no-background");
        assert_eq!(Flags.setting(Param::FORCE, "true"), "--force");
        assert_eq!(Flags.param(Param::MAX_VALUES), "--max-voxels");
        assert_eq!(Flags.param(p("smooth_dr")), "--smooth-dr");
    }
}
