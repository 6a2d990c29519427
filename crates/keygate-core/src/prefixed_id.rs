//! Public ids that are a fixed prefix and random base62 characters
//! (`key_…`, `cli_…`, `usr_…`, `fam_…`): one definition for all of them,
//! and the trait the HTTP extractors and the CLI refuse a bad one through,
//! in the same words.

use crate::error::Error;

/// An id of the form `prefix` + base62 characters.
pub trait PrefixedId: Sized {
    /// What it names, with its article: `a key id`.
    const NOUN: &'static str;
    /// Its form: `key_ followed by 16 letters or digits`.
    const SHAPE: &'static str;

    fn parse(s: &str) -> Result<Self, Error>;
}

/// Defines `$name(String)`: built only by `generate` (random) or `parse`
/// (a prefix and exactly `$chars` letters or digits), shown and serialized
/// as the bare string, deserialized through `parse`. A refusal is
/// `Error::Invalid` on `$field`, saying what `$noun` looks like.
macro_rules! prefixed_id {
    (
        $(#[$meta:meta])*
        $name:ident {
            prefix: $prefix:literal,
            chars: $chars:literal,
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
                $crate::base62::random_id($prefix, $chars).map(Self)
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
                            "{} looks like {}",
                            <Self as $crate::prefixed_id::PrefixedId>::NOUN,
                            <Self as $crate::prefixed_id::PrefixedId>::SHAPE,
                        ),
                    )),
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl $crate::prefixed_id::PrefixedId for $name {
            const NOUN: &'static str = $noun;
            const SHAPE: &'static str =
                concat!($prefix, " followed by ", $chars, " letters or digits");

            fn parse(s: &str) -> Result<Self, $crate::error::Error> {
                Self::parse(s)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::PrefixedId;
    use crate::KeyId;
    use crate::clients::ClientId;
    use crate::error::Error;
    use crate::sessions::FamilyId;
    use crate::users::UserId;

    fn check<T: PrefixedId + std::fmt::Display + std::fmt::Debug + PartialEq>(
        generate: fn() -> Result<T, Error>,
        prefix: &str,
        field: &str,
        reason: &str,
    ) {
        let id = generate().unwrap();
        let text = id.to_string();
        assert!(text.starts_with(prefix), "{text}");
        assert_eq!(text.len(), prefix.len() + 16, "{text}");
        assert_eq!(T::parse(&text).unwrap(), id);
        let other = if prefix == "key_" { "usr_" } else { "key_" };
        let digits = "0123456789abcdef";
        for bad in [
            String::new(),
            prefix.to_owned(),
            format!("{other}{digits}"),
            format!("{prefix}{}", &digits[1..]),
            format!("{prefix}{digits}0"),
            format!("{prefix}0123456789abcde-"),
            format!("{prefix}0123456789abcdé"),
        ] {
            match T::parse(&bad) {
                Err(Error::Invalid {
                    field: f,
                    reason: r,
                }) => {
                    assert_eq!((f, r.as_str()), (field, reason), "{bad}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        assert!(T::parse(&format!("{prefix}{digits}")).is_ok());
    }

    #[test]
    fn each_id_is_its_prefix_and_sixteen_letters_or_digits() {
        check(
            KeyId::generate,
            "key_",
            "id",
            "a key id looks like key_ followed by 16 letters or digits",
        );
        check(
            ClientId::generate,
            "cli_",
            "id",
            "a client id looks like cli_ followed by 16 letters or digits",
        );
        check(
            UserId::generate,
            "usr_",
            "id",
            "a user id looks like usr_ followed by 16 letters or digits",
        );
        check(
            FamilyId::generate,
            "fam_",
            "family_id",
            "a family id looks like fam_ followed by 16 letters or digits",
        );
    }
}
