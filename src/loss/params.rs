//! The machinery of loss parameters: how a value is parsed, shown and checked, what a user is told
//! about a parameter, and the macro that turns the one table in [`super::family`] into the
//! resolved parameters ([`LossSpec`](super::LossSpec)), the explicit ones
//! ([`LossPatch`](super::LossPatch)) and their names ([`LossParam`](super::LossParam)).

use crate::names::Named;

/// A type a loss parameter can have.
pub trait ParamValue: Clone + PartialEq + std::fmt::Debug + Sized {
    /// Parses a value as a user writes it.
    fn parse_value(text: &str) -> Result<Self, String>;
    /// The value as a user would write it.
    fn show(&self) -> String;
    /// The value in few characters, for help texts (`1e-5` rather than `0.00001`).
    fn show_short(&self) -> String {
        self.show()
    }
    /// The values to choose from, for a value from a list.
    fn choices() -> Option<Vec<&'static str>> {
        None
    }
    /// An on/off switch.
    const SWITCH: bool = false;
}

impl ParamValue for f64 {
    fn parse_value(text: &str) -> Result<Self, String> {
        text.trim().parse().map_err(|_| format!("'{text}' is not a number"))
    }
    fn show(&self) -> String {
        self.to_string()
    }
    /// Plain decimals from 0.001 to 10⁶, scientific notation (`1e-5`) beyond.
    fn show_short(&self) -> String {
        let a = self.abs();
        if a != 0.0 && a.is_finite() && !(1e-3..1e6).contains(&a) {
            format!("{self:e}")
        } else {
            self.to_string()
        }
    }
}

impl ParamValue for bool {
    fn parse_value(text: &str) -> Result<Self, String> {
        match text.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(format!("'{text}' is neither true nor false")),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
    const SWITCH: bool = true;
}

/// One number per channel, or none.
impl ParamValue for Option<Vec<f64>> {
    fn parse_value(text: &str) -> Result<Self, String> {
        if text.trim() == "none" {
            return Ok(None);
        }
        text.split(',').map(f64::parse_value).collect::<Result<Vec<_>, _>>().map(Some)
    }
    fn show(&self) -> String {
        match self {
            None => "none".into(),
            Some(v) => v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(","),
        }
    }
}

impl<T: Named> ParamValue for T {
    fn parse_value(text: &str) -> Result<Self, String> {
        T::from_name(text).map_err(|e| e.to_string())
    }
    fn show(&self) -> String {
        self.name().to_string()
    }
    fn choices() -> Option<Vec<&'static str>> {
        Some(T::names())
    }
}

/// Who sets a parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetBy {
    /// Users, and presets.
    User,
    /// Presets only: a framework's variant of a formula, not a knob of its own.
    Preset,
}

/// What a user is told about a parameter.
#[derive(Clone, Debug)]
pub struct ParamInfo {
    /// The library name, in snake case.
    pub name: &'static str,
    /// What it is, from its documentation (one paragraph).
    pub help: String,
    /// How a value is written (`F`, `NAME`, `W0,W1,...`); empty for a switch.
    pub syntax: &'static str,
    /// The values to choose from, for a value from a list.
    pub choices: Option<Vec<&'static str>>,
    /// An on/off switch.
    pub switch: bool,
    pub set_by: SetBy,
    /// The default value, as written.
    pub default: String,
}

/// Checks a parameter's value; the message completes "NAME ...".
pub type Check<T> = fn(&T) -> Result<(), String>;

/// Any value.
pub fn any<T>(_: &T) -> Result<(), String> {
    Ok(())
}

/// A finite number ≥ 0.
pub fn nonnegative(v: &f64) -> Result<(), String> {
    if v.is_finite() && *v >= 0.0 {
        Ok(())
    } else {
        Err(format!("must be a finite number ≥ 0, got {v}"))
    }
}

/// A finite number > 0.
pub fn positive(v: &f64) -> Result<(), String> {
    if v.is_finite() && *v > 0.0 {
        Ok(())
    } else {
        Err(format!("must be a finite number > 0, got {v}"))
    }
}

/// Finite numbers ≥ 0, if any.
pub fn nonnegative_each(v: &Option<Vec<f64>>) -> Result<(), String> {
    v.iter().flatten().try_for_each(nonnegative)
}

/// Joins the lines of a doc comment into one paragraph.
pub fn paragraph(doc: &str) -> String {
    doc.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Defines, from one table of parameters (doc comment, `name: Type = default; Variant, "syntax",
/// SetBy, check;`), the resolved parameters `LossSpec` (the family and preset first), the explicit
/// ones `LossPatch`, the names `LossParam`, and what relates them.
macro_rules! loss_parameters {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident: $T:ty = $default:expr; $Var:ident, $syntax:literal, $set_by:ident, $check:path;
    )+) => {
        /// Every parameter of a loss, resolved. The default is MONAI's `DiceLoss()`.
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
        pub struct LossSpec {
            /// The loss family.
            pub loss: LossKind,
            /// The preset the defaults came from, if any.
            pub preset: Option<Preset>,
            $( $(#[doc = $doc])+ pub $name: $T, )+
        }

        impl Default for LossSpec {
            fn default() -> Self {
                LossSpec { loss: LossKind::Dice, preset: None, $( $name: $default, )+ }
            }
        }

        /// The parameters given explicitly; each overrides the preset's (or the default) value.
        #[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct LossPatch {
            /// The loss family.
            pub loss: Option<LossKind>,
            $( $(#[doc = $doc])+ pub $name: Option<$T>, )+
        }

        /// A loss parameter.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum LossParam {
            /// The loss family.
            Loss,
            $( $(#[doc = $doc])+ $Var, )+
        }

        impl LossParam {
            /// Every loss parameter, in the order of the table.
            pub const ALL: &'static [LossParam] = &[LossParam::Loss, $( LossParam::$Var, )+];

            /// The library name, in snake case.
            pub fn name(self) -> &'static str {
                match self {
                    LossParam::Loss => "loss",
                    $( LossParam::$Var => stringify!($name), )+
                }
            }

            /// As a parameter of error messages.
            pub fn param(self) -> $crate::error::Param {
                $crate::error::Param::named(self.name())
            }

            /// What a user is told about it.
            pub fn info(self) -> $crate::loss::params::ParamInfo {
                use $crate::loss::params::{paragraph, ParamInfo, ParamValue, SetBy};
                let d = LossSpec::default();
                match self {
                    LossParam::Loss => ParamInfo {
                        name: "loss",
                        help: "The loss family.".into(),
                        syntax: "NAME",
                        choices: <LossKind as ParamValue>::choices(),
                        switch: false,
                        set_by: SetBy::User,
                        default: d.loss.show_short(),
                    },
                    $( LossParam::$Var => ParamInfo {
                        name: stringify!($name),
                        help: paragraph(concat!($($doc, "\n"),+)),
                        syntax: $syntax,
                        choices: <$T as ParamValue>::choices(),
                        switch: <$T as ParamValue>::SWITCH,
                        set_by: SetBy::$set_by,
                        default: d.$name.show_short(),
                    }, )+
                }
            }
        }

        impl LossPatch {
            /// Sets every given parameter in `spec`.
            pub fn apply(&self, spec: &mut LossSpec) {
                if let Some(v) = self.loss {
                    spec.loss = v;
                }
                $( if let Some(v) = &self.$name {
                    spec.$name = v.clone();
                } )+
            }

            /// Gives `param` the value written `text` (parsed here, checked with the other values
            /// by [`LossSpec::check`]).
            pub fn set(&mut self, param: LossParam, text: &str) -> Result<(), String> {
                use $crate::loss::params::ParamValue;
                match param {
                    LossParam::Loss => self.loss = Some(ParamValue::parse_value(text)?),
                    $( LossParam::$Var => self.$name = Some(ParamValue::parse_value(text)?), )+
                }
                Ok(())
            }

            /// The parameters given.
            pub fn given(&self) -> Vec<LossParam> {
                let mut v = Vec::new();
                if self.loss.is_some() {
                    v.push(LossParam::Loss);
                }
                $( if self.$name.is_some() {
                    v.push(LossParam::$Var);
                } )+
                v
            }
        }

        impl LossSpec {
            /// The value of `param`, as a user would write it.
            pub fn show(&self, param: LossParam) -> String {
                use $crate::loss::params::ParamValue;
                match param {
                    LossParam::Loss => self.loss.show(),
                    $( LossParam::$Var => self.$name.show(), )+
                }
            }

            /// Checks every value on its own (combinations are checked by
            /// [`LossConfig::new`](super::LossConfig::new)).
            pub fn check(&self) -> $crate::error::Result<()> {
                $( $check(&self.$name).map_err(|e| {
                    $crate::error::Error::parameter(LossParam::$Var.param(), e)
                })?; )+
                Ok(())
            }
        }
    };
}
pub(super) use loss_parameters;
