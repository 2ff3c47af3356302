//! The loss flags, one per settable parameter of the library's parameter table
//! ([`dicegrad::loss::LossParam`]), with the help, syntax and choices the table gives, plus
//! `--preset`. A parameter added to the table is a flag here without a change.

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};

use dicegrad::error::Param;
use dicegrad::loss::params::SetBy;
use dicegrad::loss::{LossParam, LossPatch, LossRequest, Preset};
use dicegrad::names::Named;

use super::flags::flag_name;

/// A flag that takes one of the names of `T`, parsed into `T`.
pub fn names_of<T: Named>() -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(T::names()).map(|s| T::from_name(&s).expect("clap checked the name"))
}

/// The loss a user asks for on the command line.
#[derive(Clone, Debug, Default)]
pub struct LossArgs {
    pub preset: Option<Preset>,
    pub patch: LossPatch,
}

impl LossArgs {
    /// The loss as requested (resolved per case).
    pub fn request(&self) -> LossRequest {
        LossRequest { preset: self.preset, overrides: self.patch.clone() }
    }
}

/// The loss parameters users set (presets set the others).
fn settable() -> impl Iterator<Item = LossParam> {
    LossParam::ALL.iter().copied().filter(|p| p.info().set_by == SetBy::User)
}

fn arg_of(p: LossParam) -> Arg {
    let info = p.info();
    let flag = flag_name(p.param());
    let arg = Arg::new(info.name).long(flag);
    if info.switch {
        // The flag turns the switch away from its default.
        let help =
            SWITCH_HELP.iter().find(|(name, _)| *name == info.name).map_or(info.help.clone(), |(_, h)| h.to_string());
        return arg.action(ArgAction::SetTrue).help(help);
    }
    let help = format!("{} Default: {} (or the preset's).", info.help, info.default);
    let arg = arg.action(ArgAction::Set).value_name(info.syntax).help(help).allow_hyphen_values(true);
    match info.choices {
        Some(choices) => arg.value_parser(PossibleValuesParser::new(choices)),
        None if info.syntax.contains(',') => {
            arg.value_delimiter(',').num_args(1).value_parser(move |s: &str| check(p, s))
        }
        None => arg.value_parser(move |s: &str| check(p, s)),
    }
}

/// What a switch's flag does, where the flag is named for turning it off.
const SWITCH_HELP: [(&str, &str); 1] = [(
    "include_background",
    "Leave channel 0 (background) out of the Dice-type part of the loss (MONAI include_background=False); \
     cross-entropy always uses every channel.",
)];

/// Parses a value as the library will (the library checks its range, with the other values).
fn check(p: LossParam, text: &str) -> Result<String, String> {
    LossPatch::default().set(p, text).map(|_| text.to_string())
}

impl Args for LossArgs {
    fn augment_args(cmd: Command) -> Command {
        let preset = Arg::new(Param::PRESET.name())
            .long(flag_name(Param::PRESET))
            .value_name("NAME")
            .value_parser(names_of::<Preset>())
            .help("Framework preset: the exact loss that framework trains with. Explicit options override it.");
        cmd.arg(preset).args(settable().map(arg_of))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for LossArgs {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = LossArgs { preset: m.get_one::<Preset>(Param::PRESET.name()).copied(), ..LossArgs::default() };
        args.update_from_arg_matches(m)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        if let Some(p) = m.get_one::<Preset>(Param::PRESET.name()) {
            self.preset = Some(*p);
        }
        for p in settable() {
            let info = p.info();
            let text = if info.switch {
                m.get_flag(info.name).then(|| (info.default != "true").to_string())
            } else {
                m.get_many::<String>(info.name).map(|v| v.cloned().collect::<Vec<_>>().join(","))
            };
            if let Some(text) = text {
                self.patch.set(p, &text).map_err(|e| clap::Error::raw(clap::error::ErrorKind::ValueValidation, e))?;
            }
        }
        Ok(())
    }
}
