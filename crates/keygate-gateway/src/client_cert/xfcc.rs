//! Envoy's `X-Forwarded-Client-Cert`: elements separated by `,`, each one
//! proxy's `Key=value` pairs separated by `;`, a value holding `,` `;` or
//! `=` in double quotes (a quote in it as `\"`). Each Envoy that forwards
//! with `APPEND_FORWARD` appends its element, so the last is the one the
//! proxy in front of keygate (the trusted one) wrote about the certificate
//! it verified itself; earlier ones are what proxies further out said, and
//! are not read. Written here, not taken from a crate: the one on
//! crates.io (`xfcc-parser`) parses with nom for the whole grammar, where
//! keygate needs three keys and must refuse rather than skip what it
//! cannot read.

use sha2::{Digest, Sha256};

use super::decode::{ProxyCertError, pem_chain, unescape};

/// The chain (leaf first) of the last element's `Chain`, or its `Cert`
/// alone; its `Hash`, when present, must be the leaf's SHA-256.
pub(super) fn client_chain(text: &str) -> Result<Vec<Vec<u8>>, ProxyCertError> {
    let elements = split_unquoted(text, b',')?;
    let last = elements.last().ok_or(ProxyCertError::Xfcc)?;
    let mut cert = None;
    let mut chain = None;
    let mut hash = None;
    for pair in split_unquoted(last, b';')? {
        let (key, value) = pair.split_once('=').ok_or(ProxyCertError::Xfcc)?;
        let key = key.trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ProxyCertError::Xfcc);
        }
        let slot = match key.to_ascii_lowercase().as_str() {
            "cert" => &mut cert,
            "chain" => &mut chain,
            "hash" => &mut hash,
            // By, Subject, URI, DNS: the registry reads them from the
            // certificate itself, not from the proxy's summary.
            _ => continue,
        };
        if slot.replace(unquote(value.trim())?).is_some() {
            return Err(ProxyCertError::Xfcc);
        }
    }
    let leaf = match cert {
        Some(cert) => {
            let mut one = pem_chain(&unescape(&cert)?)?;
            if one.len() != 1 {
                return Err(ProxyCertError::XfccInconsistent);
            }
            one.pop()
        }
        None => None,
    };
    let chain = match (chain, leaf) {
        (Some(chain), leaf) => {
            let chain = pem_chain(&unescape(&chain)?)?;
            if leaf.is_some_and(|leaf| chain.first() != Some(&leaf)) {
                return Err(ProxyCertError::XfccInconsistent);
            }
            chain
        }
        (None, Some(leaf)) => vec![leaf],
        (None, None) => return Err(ProxyCertError::XfccWithoutCert),
    };
    if let (Some(hash), Some(leaf)) = (hash, chain.first())
        && !hash.eq_ignore_ascii_case(&hex::encode(Sha256::digest(leaf)))
    {
        return Err(ProxyCertError::XfccInconsistent);
    }
    Ok(chain)
}

/// `text` cut at each `sep` outside double quotes; an empty piece or an
/// unterminated quote is malformed.
fn split_unquoted(text: &str, sep: u8) -> Result<Vec<&str>, ProxyCertError> {
    let mut pieces = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, b) in text.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            _ if b == sep && !quoted => {
                pieces.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted || escaped {
        return Err(ProxyCertError::Xfcc);
    }
    pieces.push(&text[start..]);
    if pieces.iter().any(|p| p.trim().is_empty()) {
        return Err(ProxyCertError::Xfcc);
    }
    Ok(pieces)
}

/// A value as written: bare, or in quotes with `\"` for a quote.
fn unquote(value: &str) -> Result<String, ProxyCertError> {
    let Some(inner) = value.strip_prefix('"') else {
        if value.contains(['"', '\\']) {
            return Err(ProxyCertError::Xfcc);
        }
        return Ok(value.to_owned());
    };
    let inner = inner.strip_suffix('"').ok_or(ProxyCertError::Xfcc)?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next().ok_or(ProxyCertError::Xfcc)?),
            '"' => return Err(ProxyCertError::Xfcc),
            c => out.push(c),
        }
    }
    Ok(out)
}
