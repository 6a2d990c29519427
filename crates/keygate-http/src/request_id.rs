//! Request ids, shared by the admin API and the gateway: a client's own
//! `X-Request-Id` is kept when it is short and plain (1-128 of letters,
//! digits and `-_.:`), anything else is replaced by a random id.
//!
//! A fresh id is `req_` + 128 random bits in hex. A counter would tell any
//! client how many requests the server handles and in what order; random
//! ids tell nothing. The bits come from the OS generator in blocks held per
//! thread, so a request costs no system call of its own.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use keygate_core::keys::apikey::random_bytes;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request id, set by the `request_id` middleware on every request.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);
const ID_BYTES: usize = 16;
/// 256 ids per refill.
const BLOCK_BYTES: usize = 4096;

fn valid_request_id(v: &str) -> bool {
    (1..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

struct RandomBlock {
    bytes: Box<[u8; BLOCK_BYTES]>,
    used: usize,
}

impl RandomBlock {
    /// The next 16 unused random bytes; None if the OS generator failed.
    fn take(&mut self) -> Option<[u8; ID_BYTES]> {
        if self.used + ID_BYTES > BLOCK_BYTES {
            random_bytes(self.bytes.as_mut()).ok()?;
            self.used = 0;
        }
        let mut out = [0u8; ID_BYTES];
        out.copy_from_slice(&self.bytes[self.used..self.used + ID_BYTES]);
        // Spent bytes are wiped so no later reader of the block sees them.
        self.bytes[self.used..self.used + ID_BYTES].fill(0);
        self.used += ID_BYTES;
        Some(out)
    }
}

thread_local! {
    static BLOCK: RefCell<RandomBlock> = RefCell::new(RandomBlock {
        bytes: Box::new([0u8; BLOCK_BYTES]),
        used: BLOCK_BYTES,
    });
}

fn next_request_id() -> String {
    let random = BLOCK.with(|b| b.try_borrow_mut().ok().and_then(|mut b| b.take()));
    let bits = random.unwrap_or_else(|| {
        // The OS generator failing is not a reason to fail a request; an id
        // that is merely unique is then the best there is.
        static FALLBACK: AtomicU64 = AtomicU64::new(0);
        let mut out = [0u8; ID_BYTES];
        out[8..].copy_from_slice(&FALLBACK.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        out
    });
    // As `format!("req_{:032x}")` spells it, without the formatting
    // machinery: this runs on every request that brings no id.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(4 + 2 * ID_BYTES);
    id.push_str("req_");
    for b in bits {
        id.push(char::from(HEX[usize::from(b >> 4)]));
        id.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    id
}

/// A well-formed incoming `X-Request-Id`, or a new one.
pub fn request_id_of(headers: &HeaderMap) -> String {
    headers
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid_request_id(v))
        .map_or_else(next_request_id, str::to_owned)
}

/// As `request_id_of`, as the header value: a kept id shares the client's
/// bytes, a new one is moved in, not copied.
pub fn request_id_value(headers: &HeaderMap) -> HeaderValue {
    if let Some(v) = headers
        .get(&REQUEST_ID)
        .filter(|v| v.to_str().is_ok_and(valid_request_id))
    {
        return v.clone();
    }
    // A fresh id is ASCII letters and digits: always a header value.
    HeaderValue::try_from(next_request_id()).unwrap_or(HeaderValue::from_static("req_"))
}

/// Middleware: keeps a well-formed incoming `X-Request-Id`, or makes one,
/// puts it on the request as a `RequestId` and on the response.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = request_id_of(req.headers());
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut res = next.run(req).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_ids_are_128_random_bits_and_never_repeat() {
        let ids: Vec<String> = (0..600).map(|_| next_request_id()).collect();
        let mut seen = std::collections::HashSet::new();
        for id in &ids {
            assert_eq!(id.len(), 4 + 32, "{id}");
            assert!(id.starts_with("req_"));
            assert!(seen.insert(id.clone()), "{id} repeated");
        }
        // Across a refill (256 ids per block) nothing looks like a counter:
        // neighbours differ in their first bytes.
        assert!(ids.windows(2).all(|w| w[0][4..12] != w[1][4..12]));
    }

    #[test]
    fn client_ids_are_kept_only_when_plain() {
        let mut h = HeaderMap::new();
        h.insert(&REQUEST_ID, HeaderValue::from_static("trace-1:a.b_c"));
        assert_eq!(request_id_of(&h), "trace-1:a.b_c");
        for bad in ["", "has space", "quote\"", &"a".repeat(129)] {
            h.insert(
                &REQUEST_ID,
                HeaderValue::from_str(bad).unwrap_or(HeaderValue::from_static("x y")),
            );
            assert!(request_id_of(&h).starts_with("req_"), "{bad:?}");
        }
    }
}
