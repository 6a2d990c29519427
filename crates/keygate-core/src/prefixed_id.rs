//! Public ids that are a fixed prefix and random base62 characters
//! (`key_…`, `cli_…`, `usr_…`, `fam_…`): one definition for all of them.

/// Defines `$name(String)`: built only by `generate` (random) or `parse`
/// (a prefix and exactly `$chars` letters or digits), shown and serialized
/// as the bare string, deserialized through `parse`. A refusal is
/// `Error::Invalid` on `$field`, saying what `$noun` looks like.
macro_rules! prefixed_id {
    (
        $(#[$meta:meta])*
        $name:ident {
            prefix: $prefix:expr,
            chars: $chars:expr,
            field: $field:literal,
            noun: $noun:literal $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(String);

        impl $name {
            pub fn generate() -> Result<Self, $crate::error::Error> {
                $crate::keys::apikey::random_id($prefix, $chars).map(Self)
            }

            pub fn parse(s: &str) -> Result<Self, $crate::error::Error> {
                match s.strip_prefix($prefix) {
                    Some(rest)
                        if rest.len() == $chars
                            && rest.bytes().all(|b| b.is_ascii_alphanumeric()) =>
                    {
                        Ok(Self(s.to_owned()))
                    }
                    _ => Err($crate::error::Error::invalid(
                        $field,
                        format!(
                            "{} looks like {} followed by {} letters or digits",
                            $noun, $prefix, $chars
                        ),
                    )),
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::error::Error;
            fn try_from(value: String) -> Result<Self, $crate::error::Error> {
                Self::parse(&value)
            }
        }

        // Serialized as the bare string, without the copy `serde(into)`
        // would make.
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
    };
}

pub(crate) use prefixed_id;
