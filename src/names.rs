//! The names of the choices a user makes — loss families, presets, activations, weightings,
//! layouts — written once per type: each type lists its values with the name users type and read,
//! and parsing ([`FromStr`](std::str::FromStr)), printing ([`Display`](std::fmt::Display)), serde
//! and every list of choices (command-line help, error messages) come from that one list.

use std::fmt;

/// A type whose values have names.
pub trait Named: Copy + PartialEq + fmt::Debug + Send + Sync + 'static {
    /// What the values are, for messages ("loss", "activation").
    const WHAT: &'static str;
    /// Every value, in the order they are listed to users.
    const ALL: &'static [Self];

    /// The value's name.
    fn name(self) -> &'static str;

    /// The value of a name.
    fn from_name(name: &str) -> Result<Self, UnknownName> {
        Self::ALL.iter().copied().find(|v| v.name() == name.trim()).ok_or_else(|| UnknownName {
            what: Self::WHAT,
            given: name.to_string(),
            choices: Self::names(),
        })
    }

    /// Every name, in order.
    fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|v| v.name()).collect()
    }
}

/// A name that is none of a type's values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    pub what: &'static str,
    pub given: String,
    pub choices: Vec<&'static str>,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} '{}'; choose one of: {}", self.what, self.given, self.choices.join(", "))
    }
}

impl std::error::Error for UnknownName {}

/// Defines an enum whose values have names, with [`Named`], `FromStr`, `Display` and serde (as
/// the name) implemented from the one list.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $T:ident: $what:literal {
            $( $(#[$vmeta:meta])* $V:ident = $name:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $T {
            $( $(#[$vmeta])* $V ),+
        }

        impl $crate::names::Named for $T {
            const WHAT: &'static str = $what;
            const ALL: &'static [Self] = &[$($T::$V),+];
            fn name(self) -> &'static str {
                match self {
                    $($T::$V => $name),+
                }
            }
        }

        impl ::std::str::FromStr for $T {
            type Err = $crate::names::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$T as $crate::names::Named>::from_name(s)
            }
        }

        impl ::std::fmt::Display for $T {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str($crate::names::Named::name(*self))
            }
        }

        impl ::serde::Serialize for $T {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($crate::names::Named::name(*self))
            }
        }

        impl ::schemars::JsonSchema for $T {
            fn schema_name() -> ::std::borrow::Cow<'static, str> {
                stringify!($T).into()
            }
            fn json_schema(_: &mut ::schemars::SchemaGenerator) -> ::schemars::Schema {
                ::schemars::json_schema!({ "type": "string", "enum": [$($name),+] })
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $T {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                <$T as $crate::names::Named>::from_name(&s).map_err(::serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use named_enum;

#[cfg(test)]
mod tests {
    named_enum! {
        /// A test type.
        enum Fruit: "fruit" {
            Apple = "apple",
            BloodOrange = "blood-orange",
        }
    }

    #[test]
    fn one_list_gives_parsing_printing_and_serde() {
        assert_eq!("blood-orange".parse::<Fruit>(), Ok(Fruit::BloodOrange));
        assert_eq!(Fruit::Apple.to_string(), "apple");
        assert_eq!(serde_json::to_string(&Fruit::BloodOrange).unwrap(), "\"blood-orange\"");
        assert_eq!(serde_json::from_str::<Fruit>("\"apple\"").unwrap(), Fruit::Apple);
        let e = "pear".parse::<Fruit>().unwrap_err();
        assert_eq!(e.to_string(), "unknown fruit 'pear'; choose one of: apple, blood-orange");
        assert!(serde_json::from_str::<Fruit>("\"pear\"").is_err());
    }
}
