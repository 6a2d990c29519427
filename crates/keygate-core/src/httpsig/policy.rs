//! keygate's rules on top of RFC 9421, which leaves them to the verifier:
//! which signature is taken, the parameters it must carry, what it must
//! cover, and how old it may be. Pure: no storage, time passed in.

use super::base::ReceivedSignature;
use super::structured::BareItem;
use super::{ALG_HMAC_SHA256, SigCode, SignatureRefusal};
use crate::error::Error;
use crate::keys::apikey::KeyId;

/// How far `created` may be from now, either way, by default.
pub const DEFAULT_SKEW_SECS: i64 = 300;
/// The widest window a configuration may set.
pub const MAX_SKEW_SECS: i64 = 3600;
pub const MAX_NONCE_LEN: usize = 128;
/// Live nonces one key may hold by default: a nonce lives about
/// `max_skew_secs` (300 s), so this admits some 330 signed requests per
/// second per key, sustained.
pub const DEFAULT_NONCES_PER_KEY: u32 = 100_000;
pub const MAX_NONCES_PER_KEY: u32 = 10_000_000;
/// The headers that say how to read a body: a signed request with a body
/// must cover those it sends, or an intermediary could change them.
pub const CONTENT_HEADERS: [&str; 2] = ["content-type", "content-encoding"];

#[derive(Debug, Clone, Copy)]
pub struct HmacPolicy {
    /// `created` must be within this many seconds of now; it also bounds
    /// how long nonces are remembered.
    pub max_skew_secs: i64,
    /// Most live nonces one key may hold; past it its signed requests are
    /// refused (429) until some expire.
    pub nonces_per_key: u32,
    /// With a body, the signature must cover `Content-Type` and
    /// `Content-Encoding` when the request sends them. A gateway route may
    /// say otherwise for itself.
    pub cover_content_headers: bool,
}

impl Default for HmacPolicy {
    fn default() -> Self {
        Self {
            max_skew_secs: DEFAULT_SKEW_SECS,
            nonces_per_key: DEFAULT_NONCES_PER_KEY,
            cover_content_headers: true,
        }
    }
}

impl HmacPolicy {
    pub fn validate(self) -> Result<Self, Error> {
        if !(1..=MAX_SKEW_SECS).contains(&self.max_skew_secs) {
            return Err(Error::invalid(
                "hmac_max_skew_seconds",
                format!("must be between 1 and {MAX_SKEW_SECS}"),
            ));
        }
        if !(1..=MAX_NONCES_PER_KEY).contains(&self.nonces_per_key) {
            return Err(Error::invalid(
                "hmac_nonces_per_key",
                format!("must be between 1 and {MAX_NONCES_PER_KEY}"),
            ));
        }
        Ok(self)
    }
}

/// The signature keygate will check, with its parameters read.
#[derive(Debug, Clone)]
pub struct Selected {
    pub sig: ReceivedSignature,
    pub key_id: KeyId,
    pub nonce: String,
    pub created: i64,
    /// When the nonce may be forgotten: the signature is dead by then.
    pub nonce_expires_at_ms: i64,
}

/// What the signature must cover beyond `@method`, `@authority`, `@path`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Required<'a> {
    pub query: bool,
    /// The request has a body: its `Content-Digest` must be covered.
    pub body: bool,
    /// Header fields the request sends that must be covered too.
    pub headers: &'a [&'a str],
}

/// Picks the first signature with `alg="hmac-sha256"` and checks what
/// keygate requires of it.
pub fn select(
    sigs: Vec<ReceivedSignature>,
    policy: HmacPolicy,
    must_cover: Required<'_>,
    now_secs: i64,
) -> Result<Selected, SignatureRefusal> {
    let sig = pick_hmac(&sigs)?;
    let params = read_params(&sig)?;
    check_covered(&sig, must_cover)?;
    let dead_at = check_window(&params, policy.max_skew_secs, now_secs)?;
    Ok(Selected {
        sig,
        key_id: params.key_id,
        nonce: params.nonce,
        created: params.created,
        nonce_expires_at_ms: dead_at.saturating_add(1).saturating_mul(1000),
    })
}

/// The first signature with `alg="hmac-sha256"`; without one, the refusal
/// names the algorithm offered, or says `alg` is missing.
fn pick_hmac(sigs: &[ReceivedSignature]) -> Result<ReceivedSignature, SignatureRefusal> {
    let is_hmac = |s: &&ReceivedSignature| matches!(s.params.param("alg"), Some(BareItem::String(a)) if a == ALG_HMAC_SHA256);
    if let Some(sig) = sigs.iter().find(is_hmac) {
        return Ok(sig.clone());
    }
    Err(match sigs.iter().find_map(|s| s.params.param("alg")) {
        Some(BareItem::String(alg)) if sigs.iter().all(|s| s.params.param("alg").is_some()) => {
            let shown: String = alg.chars().take(32).collect();
            SignatureRefusal::malformed(format!(
                "`alg=\"{}\"` is not accepted: keygate verifies hmac-sha256 only",
                shown.escape_default()
            ))
        }
        _ => SignatureRefusal::malformed(format!(
            "the signature parameters must include `alg=\"{ALG_HMAC_SHA256}\"`"
        )),
    })
}

/// The parameters keygate requires, read and typed.
struct Params {
    key_id: KeyId,
    created: i64,
    nonce: String,
    expires: Option<i64>,
}

fn read_params(sig: &ReceivedSignature) -> Result<Params, SignatureRefusal> {
    let label = sig.label.as_str();
    let key_id = match sig.params.param("keyid") {
        Some(BareItem::String(k)) => KeyId::parse(k).map_err(|_| {
            SignatureRefusal::new(
                SigCode::SignatureKeyUnknown,
                "`keyid` must be the id of a keygate API key (key_...)",
            )
        })?,
        Some(_) => return Err(SignatureRefusal::malformed("`keyid` must be a string")),
        None => {
            return Err(SignatureRefusal::malformed(format!(
                "`{label}` has no `keyid`"
            )));
        }
    };
    let created = match sig.params.param("created") {
        Some(BareItem::Integer(t)) => *t,
        Some(_) => return Err(SignatureRefusal::malformed("`created` must be an integer")),
        None => {
            return Err(SignatureRefusal::malformed(format!(
                "`{label}` has no `created`"
            )));
        }
    };
    let nonce = match sig.params.param("nonce") {
        Some(BareItem::String(n)) if (1..=MAX_NONCE_LEN).contains(&n.len()) => n.clone(),
        Some(_) => {
            return Err(SignatureRefusal::malformed(format!(
                "`nonce` must be a string of 1 to {MAX_NONCE_LEN} characters"
            )));
        }
        None => {
            return Err(SignatureRefusal::malformed(format!(
                "`{label}` has no `nonce`"
            )));
        }
    };
    let expires = match sig.params.param("expires") {
        Some(BareItem::Integer(t)) => Some(*t),
        Some(_) => return Err(SignatureRefusal::malformed("`expires` must be an integer")),
        None => None,
    };
    Ok(Params {
        key_id,
        created,
        nonce,
        expires,
    })
}

/// The signature covers `@method`, `@authority`, `@path` and what
/// `must_cover` adds; the refusal lists every component it lacks.
fn check_covered(
    sig: &ReceivedSignature,
    must_cover: Required<'_>,
) -> Result<(), SignatureRefusal> {
    let mut required = vec!["@method", "@authority", "@path"];
    if must_cover.query {
        required.push("@query");
    }
    if must_cover.body {
        required.push("content-digest");
    }
    required.extend(must_cover.headers);
    let missing: Vec<&str> = required
        .into_iter()
        .filter(|c| !sig.params.covers(c))
        .collect();
    if !missing.is_empty() {
        return Err(SignatureRefusal::new(
            SigCode::SignatureComponentMissing,
            format!("the signature must also cover {}", missing.join(", ")),
        ));
    }
    Ok(())
}

/// `created` is within `skew` of now and `expires` has not passed; answers
/// when the signature dies (so when its nonce may be forgotten).
fn check_window(params: &Params, skew: i64, now_secs: i64) -> Result<i64, SignatureRefusal> {
    let created = params.created;
    if (now_secs - created).abs() > skew {
        return Err(SignatureRefusal::new(
            SigCode::SignatureExpired,
            format!("`created` must be within {skew} seconds of the server's time"),
        ));
    }
    if params.expires.is_some_and(|e| e <= now_secs) {
        return Err(SignatureRefusal::new(
            SigCode::SignatureExpired,
            "the signature has expired (`expires`)",
        ));
    }
    Ok(params
        .expires
        .map_or(created + skew, |e| e.min(created + skew)))
}
