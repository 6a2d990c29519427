//! Randomness written in base62: the bytes keys, ids and nonces are made
//! from, and uniformly random base62 ids.

use crate::error::Error;

pub(crate) const ALPHABET: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(buf).map_err(|e| Error::Internal(format!("OS random source failed: {e}")))
}

/// `prefix` followed by `chars` uniformly random base62 characters.
pub fn random_id(prefix: &str, chars: usize) -> Result<String, Error> {
    let mut out = String::with_capacity(prefix.len() + chars);
    out.push_str(prefix);
    let mut buf = [0u8; 64];
    while out.len() < prefix.len() + chars {
        random_bytes(&mut buf)?;
        // Rejection sampling keeps every character uniform: 248 = 4 * 62.
        for &b in buf.iter().filter(|&&b| b < 248) {
            if out.len() == prefix.len() + chars {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(b % 62)]));
        }
    }
    Ok(out)
}
