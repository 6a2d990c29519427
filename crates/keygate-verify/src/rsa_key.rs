//! Checks on RSA public key components before aws-lc-rs ever sees them.
//!
//! aws-lc-rs enforces the 2048-8192-bit range only when verifying; refusing at
//! import lets a JWKS client skip the key and say why. Beyond size we refuse
//! what no honest key generator produces: a leading zero byte (RFC 7518
//! §6.3.1.1 asks for the minimal encoding), an even modulus, a modulus with a
//! factor below 702, a public exponent outside [3, 2^33-1] or even (e = 1
//! makes every "signature" its own message), and moduli carrying the ROCA
//! fingerprint (CVE-2017-15361), whose private keys can be recovered.

use crate::Error;

const MIN_BITS: usize = 2048;
const MAX_BITS: usize = 8192;
/// ring and aws-lc accept exponents up to 2^33 - 1; nobody needs more.
const MAX_EXPONENT: u64 = (1 << 33) - 1;

/// Validates a modulus and exponent as decoded from a JWK (big-endian).
pub(crate) fn check_components(n: &[u8], e: &[u8]) -> Result<(), Error> {
    let (Some(&first), Some(&last)) = (n.first(), n.last()) else {
        return Err(Error::InvalidKey("RSA modulus is empty"));
    };
    if first == 0 {
        return Err(Error::InvalidKey("RSA modulus is not minimally encoded"));
    }
    let bits = (n.len() - 1) * 8 + (8 - first.leading_zeros() as usize);
    if !(MIN_BITS..=MAX_BITS).contains(&bits) {
        return Err(Error::InvalidKey("RSA modulus must be 2048 to 8192 bits"));
    }
    if last & 1 == 0 {
        return Err(Error::InvalidKey("RSA modulus is even"));
    }
    check_exponent(e)?;
    let primes = small_odd_primes();
    if primes.iter().any(|&p| mod_small(n, p) == 0) {
        return Err(Error::InvalidKey("RSA modulus has a small factor"));
    }
    if has_roca_fingerprint(n, &primes) {
        return Err(Error::InvalidKey("RSA modulus has the ROCA fingerprint"));
    }
    Ok(())
}

fn check_exponent(e: &[u8]) -> Result<(), Error> {
    let bad = Err(Error::InvalidKey("RSA public exponent out of range"));
    if e.is_empty() || e[0] == 0 || e.len() > 5 {
        return bad;
    }
    let value = e.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    if !(3..=MAX_EXPONENT).contains(&value) || value & 1 == 0 {
        return bad;
    }
    Ok(())
}

/// The odd primes up to 701. ROCA moduli of 1984 bits and more are built
/// from a primorial over the first 126 primes (2..=701), so every one of
/// these primes carries the fingerprint.
fn small_odd_primes() -> Vec<u32> {
    (3..=701u32)
        .step_by(2)
        .filter(|&c| {
            (3..)
                .step_by(2)
                .take_while(|d| d * d <= c)
                .all(|d| c % d != 0)
        })
        .collect()
}

/// `n mod p` for a big-endian integer and a small modulus.
fn mod_small(n: &[u8], p: u32) -> u32 {
    n.iter()
        .fold(0u32, |acc, &b| ((acc << 8) | u32::from(b)) % p)
}

/// ROCA keys satisfy `n mod p ∈ <65537 mod p>` for every prime above; a random
/// modulus does so with probability about 2^-167 for these primes.
fn has_roca_fingerprint(n: &[u8], primes: &[u32]) -> bool {
    primes.iter().all(|&p| {
        let target = mod_small(n, p);
        let generator = 65537 % p;
        let mut x = 1u32;
        loop {
            if x == target {
                return true;
            }
            x = x * generator % p;
            if x == 1 {
                return false;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primes_are_the_first_125_odd_primes() {
        let primes = small_odd_primes();
        assert_eq!(primes.len(), 125);
        assert_eq!(primes.first(), Some(&3));
        assert_eq!(primes.last(), Some(&701));
    }

    #[test]
    fn exponent_rules() {
        assert!(check_exponent(&[1, 0, 1]).is_ok());
        assert!(check_exponent(&[3]).is_ok());
        for bad in [
            &[][..],
            &[1],
            &[2],
            &[0, 3],
            &[1, 0, 0],
            &[2, 0, 0, 0, 1],
            &[1, 0, 0, 0, 0, 1],
        ] {
            assert!(check_exponent(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn size_and_encoding_rules() {
        let mut n = vec![0xffu8; 256];
        assert!(
            check_components(&n, &[1, 0, 1]).is_err(),
            "all-ones is divisible by 3 and 5"
        );
        n[0] = 0;
        assert_eq!(
            check_components(&n, &[1, 0, 1]),
            Err(Error::InvalidKey("RSA modulus is not minimally encoded"))
        );
        assert_eq!(
            check_components(&[0xc1; 128], &[1, 0, 1]),
            Err(Error::InvalidKey("RSA modulus must be 2048 to 8192 bits"))
        );
        assert_eq!(
            check_components(&[0xc1; 1025], &[1, 0, 1]),
            Err(Error::InvalidKey("RSA modulus must be 2048 to 8192 bits"))
        );
        let mut even = vec![0xc1u8; 256];
        even[255] = 0xc2;
        assert_eq!(
            check_components(&even, &[1, 0, 1]),
            Err(Error::InvalidKey("RSA modulus is even"))
        );
    }
}
