//! Command-line clients of a running keygate (`keys`, `users`), and `token`
//! for JWTs offline.
//! Command-line clients of a running keygate, `token` for JWTs offline, and
//! `sign` for HMAC-signed requests (RFC 9421).

pub mod client;
pub mod clients;
pub mod gateway;
pub mod keys;
mod render;
pub mod sign;
pub mod table;
pub mod token;
pub mod users;

use keygate_core::PrefixedId;

/// Refuses anything that is not a `T` before it becomes part of a URL path,
/// in the words the server would use.
fn checked_id<T: PrefixedId>(id: &str) -> Result<&str, String> {
    T::parse(id)
        .map(|_| id)
        .map_err(|_| format!("{id:?} is not {} ({})", T::NOUN, T::SHAPE))
}

#[cfg(test)]
mod tests {
    use keygate_core::KeyId;
    use keygate_core::clients::ClientId;

    #[test]
    fn an_id_that_is_not_one_is_refused_in_the_servers_words() {
        assert_eq!(
            super::checked_id::<KeyId>("key_0123456789abcdef"),
            Ok("key_0123456789abcdef")
        );
        assert_eq!(
            super::checked_id::<KeyId>("key_0123456789abcde/"),
            Err(
                "\"key_0123456789abcde/\" is not a key id (key_ followed by 16 letters or digits)"
                    .into()
            )
        );
        assert_eq!(
            super::checked_id::<ClientId>("../admin"),
            Err("\"../admin\" is not a client id (cli_ followed by 16 letters or digits)".into())
        );
    }
}
