//! Reading the signature fields, building the signature base (RFC 9421
//! §2.5) and the HMAC over it. Signer and verifier share `signature_base`,
//! so they cannot disagree about a byte.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::structured::{
    BareItem, Dictionary, Item, Member, Params, is_sf_string, parse_dictionary, write_params,
    write_string,
};
use super::{ALG_HMAC_SHA256, HeaderLookup, RequestView, SigCode, SignatureRefusal};

/// Derived components keygate can compute for a request.
pub const DERIVED: [&str; 7] = [
    "@method",
    "@authority",
    "@scheme",
    "@path",
    "@query",
    "@target-uri",
    "@request-target",
];

const HMAC_LEN: usize = 32;
/// Longest component name accepted; errors quote names, so this also
/// bounds what a client can make us echo.
pub const MAX_COMPONENT_LEN: usize = 128;

/// One signature's covered components and parameters, as in
/// `Signature-Input` (order kept: it is part of what is signed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureParams {
    pub components: Vec<String>,
    pub params: Params,
}

impl SignatureParams {
    /// For signing: the components, then `created`, `nonce`, `keyid`, `alg`.
    pub fn new(components: &[&str], created: i64, nonce: &str, keyid: &str) -> Self {
        Self {
            components: components.iter().map(|c| (*c).to_owned()).collect(),
            params: vec![
                ("created".into(), BareItem::Integer(created)),
                ("nonce".into(), BareItem::String(nonce.to_owned())),
                ("keyid".into(), BareItem::String(keyid.to_owned())),
                ("alg".into(), BareItem::String(ALG_HMAC_SHA256.to_owned())),
            ],
        }
    }

    pub fn param(&self, name: &str) -> Option<&BareItem> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    pub fn covers(&self, component: &str) -> bool {
        self.components.iter().any(|c| c == component)
    }

    /// The inner list as it appears in `Signature-Input` and on the
    /// `@signature-params` line.
    pub fn serialize(&self) -> String {
        let mut out = String::from("(");
        for (i, c) in self.components.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            write_string(&mut out, c);
        }
        out.push(')');
        write_params(&mut out, &self.params);
        out
    }
}

/// A signature found in the request: its label, parameters and bytes.
#[derive(Debug, Clone)]
pub struct ReceivedSignature {
    pub label: String,
    pub params: SignatureParams,
    pub signature: Vec<u8>,
}

/// All values of a field joined with ", " (how several lines of one
/// structured field combine), refusing anything that is not visible ASCII.
fn joined(headers: &dyn HeaderLookup, name: &str) -> Result<Option<String>, SignatureRefusal> {
    let values = headers.values(name);
    if values.is_empty() {
        return Ok(None);
    }
    let mut out = String::new();
    for (i, v) in values.iter().enumerate() {
        let v = std::str::from_utf8(v)
            .ok()
            .filter(|s| s.bytes().all(|b| b == b'\t' || (0x20..=0x7e).contains(&b)))
            .ok_or_else(|| {
                SignatureRefusal::malformed(format!("`{name}` holds bytes other than ASCII"))
            })?;
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(v.trim_matches([' ', '\t']));
    }
    Ok(Some(out))
}

/// Every signature of the request, in `Signature-Input` order.
pub fn received_signatures(
    headers: &dyn HeaderLookup,
) -> Result<Vec<ReceivedSignature>, SignatureRefusal> {
    let (input, sigs) = signature_fields(headers)?;
    let mut out = Vec::with_capacity(input.len());
    for (label, member) in input {
        let Member::InnerList(items, params) = member else {
            return Err(SignatureRefusal::malformed(format!(
                "`Signature-Input` member `{label}` must be an inner list of components"
            )));
        };
        let components = items
            .into_iter()
            .map(|item| component_name(&label, item))
            .collect::<Result<Vec<_>, _>>()?;
        let signature = signature_bytes(&sigs, &label)?;
        out.push(ReceivedSignature {
            label,
            params: SignatureParams { components, params },
            signature,
        });
    }
    Ok(out)
}

/// `Signature-Input` and `Signature`, both present and parsed, with at
/// least one signature input.
fn signature_fields(
    headers: &dyn HeaderLookup,
) -> Result<(Dictionary, Dictionary), SignatureRefusal> {
    let input = joined(headers, "signature-input")?;
    let sigs = joined(headers, "signature")?;
    let (input, sigs) = match (input, sigs) {
        (None, None) => {
            return Err(SignatureRefusal::new(
                SigCode::SignatureMissing,
                "sign the request: send `Signature-Input` and `Signature` (RFC 9421)",
            ));
        }
        (Some(i), Some(s)) => (i, s),
        (Some(_), None) => {
            return Err(SignatureRefusal::malformed(
                "`Signature-Input` without `Signature`",
            ));
        }
        (None, Some(_)) => {
            return Err(SignatureRefusal::malformed(
                "`Signature` without `Signature-Input`",
            ));
        }
    };
    let input = parse_dictionary(&input)
        .map_err(|e| SignatureRefusal::malformed(format!("`Signature-Input` is malformed: {e}")))?;
    let sigs = parse_dictionary(&sigs)
        .map_err(|e| SignatureRefusal::malformed(format!("`Signature` is malformed: {e}")))?;
    if input.is_empty() {
        return Err(SignatureRefusal::new(
            SigCode::SignatureMissing,
            "`Signature-Input` is empty",
        ));
    }
    Ok((input, sigs))
}

/// The bytes of the `Signature` member labelled `label`.
fn signature_bytes(sigs: &Dictionary, label: &str) -> Result<Vec<u8>, SignatureRefusal> {
    match sigs.iter().find(|(l, _)| l == label) {
        Some((
            _,
            Member::Item(Item {
                value: BareItem::Bytes(b),
                ..
            }),
        )) => Ok(b.clone()),
        Some(_) => Err(SignatureRefusal::malformed(format!(
            "`Signature` member `{label}` must be a byte sequence (`:base64:`)"
        ))),
        None => Err(SignatureRefusal::malformed(format!(
            "`Signature` has no member `{label}`"
        ))),
    }
}

fn component_name(label: &str, item: Item) -> Result<String, SignatureRefusal> {
    let BareItem::String(name) = item.value else {
        return Err(SignatureRefusal::malformed(format!(
            "the components of `{label}` must be strings"
        )));
    };
    if name.len() > MAX_COMPONENT_LEN {
        return Err(SignatureRefusal::malformed(format!(
            "a component name of `{label}` is longer than {MAX_COMPONENT_LEN} characters"
        )));
    }
    if let Some((param, _)) = item.params.first() {
        return Err(SignatureRefusal::malformed(format!(
            "component parameters such as `;{param}` on `{name}` are not supported"
        )));
    }
    Ok(name)
}

/// The signature base of `params` over `req`, exactly as RFC 9421 §2.5.
pub fn signature_base(
    req: &RequestView<'_>,
    params: &SignatureParams,
) -> Result<String, SignatureRefusal> {
    let mut base = String::with_capacity(256);
    for (i, name) in params.components.iter().enumerate() {
        if params.components[..i].contains(name) {
            return Err(SignatureRefusal::malformed(format!(
                "`{name}` is covered twice"
            )));
        }
        let value = component_value(req, name)?;
        write_string(&mut base, name);
        base.push_str(": ");
        base.push_str(&value);
        base.push('\n');
    }
    base.push_str("\"@signature-params\": ");
    base.push_str(&params.serialize());
    Ok(base)
}

fn component_value(req: &RequestView<'_>, name: &str) -> Result<String, SignatureRefusal> {
    if name.starts_with('@') {
        return derived(req, name);
    }
    let is_token = !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        });
    if !is_token {
        return Err(SignatureRefusal::malformed(format!(
            "`{name}` is not a lowercase header field name"
        )));
    }
    if name == "signature" || name == "signature-input" {
        return Err(SignatureRefusal::malformed(format!(
            "`{name}` cannot be covered"
        )));
    }
    joined(req.headers, name)?.ok_or_else(|| {
        SignatureRefusal::new(
            SigCode::SignatureInvalid,
            format!("the covered field `{name}` is not in the request"),
        )
    })
}

fn derived(req: &RequestView<'_>, name: &str) -> Result<String, SignatureRefusal> {
    let path = if req.path.is_empty() { "/" } else { req.path };
    let query = req.query.map(|q| format!("?{q}"));
    let value = match name {
        "@method" => req.method.to_owned(),
        "@scheme" => req.scheme.to_ascii_lowercase(),
        "@authority" => normalize_authority(req.scheme, req.authority)?,
        "@path" => path.to_owned(),
        "@query" => query.unwrap_or_else(|| "?".to_owned()),
        "@request-target" => format!("{path}{}", query.unwrap_or_default()),
        "@target-uri" => format!(
            "{}://{}{path}{}",
            req.scheme.to_ascii_lowercase(),
            normalize_authority(req.scheme, req.authority)?,
            query.unwrap_or_default()
        ),
        "@signature-params" => {
            return Err(SignatureRefusal::malformed(
                "`@signature-params` cannot be covered",
            ));
        }
        other => {
            return Err(SignatureRefusal::malformed(format!(
                "the derived component `{other}` is not supported on requests here (use one of {})",
                DERIVED.join(", ")
            )));
        }
    };
    if !is_sf_string(&value) {
        return Err(SignatureRefusal::malformed(format!(
            "`{name}` is not visible ASCII"
        )));
    }
    Ok(value)
}

/// The host lowercased and a default port removed (HTTP §4.2.3).
pub fn normalize_authority(scheme: &str, authority: &str) -> Result<String, SignatureRefusal> {
    let lower = authority.to_ascii_lowercase();
    let ok = !lower.is_empty()
        && lower
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:[]".contains(&b));
    if !ok {
        return Err(SignatureRefusal::malformed(
            "the request's authority is not a host[:port]",
        ));
    }
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return Ok(lower),
    };
    Ok(match lower.strip_suffix(default) {
        Some(host) if !host.is_empty() && (host.ends_with(']') || !host.contains(':')) => {
            host.to_owned()
        }
        _ => lower,
    })
}

fn mac(secret: &[u8], base: &str) -> Result<Hmac<Sha256>, SignatureRefusal> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|_| SignatureRefusal::new(SigCode::SignatureInvalid, "unusable secret"))?;
    mac.update(base.as_bytes());
    Ok(mac)
}

/// Checks `sig.signature` over `req` under `secret`, in constant time.
pub fn check_hmac(
    req: &RequestView<'_>,
    sig: &ReceivedSignature,
    secret: &[u8],
) -> Result<(), SignatureRefusal> {
    let base = signature_base(req, &sig.params)?;
    let invalid = || {
        SignatureRefusal::new(
            SigCode::SignatureInvalid,
            "the signature does not match the request",
        )
    };
    if sig.signature.len() != HMAC_LEN {
        return Err(invalid());
    }
    mac(secret, &base)?
        .verify_slice(&sig.signature)
        .map_err(|_| invalid())
}

/// The protocol alone, with no keygate policy: verifies the signature
/// `label` (or the only one) under `secret`, and returns its parameters.
/// The algorithm comes from the caller, never from the message; an `alg`
/// parameter naming another one is refused.
pub fn verify_hmac_sha256(
    req: &RequestView<'_>,
    label: Option<&str>,
    secret: &[u8],
) -> Result<SignatureParams, SignatureRefusal> {
    let sigs = received_signatures(req.headers)?;
    let sig = match label {
        Some(l) => sigs.iter().find(|s| s.label == l),
        None if sigs.len() == 1 => sigs.first(),
        None => {
            return Err(SignatureRefusal::malformed(
                "several signatures: name the label to verify",
            ));
        }
    }
    .ok_or_else(|| {
        SignatureRefusal::new(SigCode::SignatureMissing, "no signature with that label")
    })?;
    match sig.params.param("alg") {
        None => {}
        Some(BareItem::String(a)) if a == ALG_HMAC_SHA256 => {}
        Some(_) => return Err(SignatureRefusal::malformed("`alg` is not hmac-sha256")),
    }
    check_hmac(req, sig, secret)?;
    Ok(sig.params.clone())
}

/// Signs `req`: returns the `Signature-Input` and `Signature` field values.
pub fn sign_hmac_sha256(
    req: &RequestView<'_>,
    label: &str,
    params: &SignatureParams,
    secret: &[u8],
) -> Result<(String, String), SignatureRefusal> {
    let base = signature_base(req, params)?;
    let tag = mac(secret, &base)?.finalize().into_bytes();
    let mut signature = format!("{label}=");
    super::structured::write_bare_item(&mut signature, &BareItem::Bytes(tag.to_vec()));
    Ok((format!("{label}={}", params.serialize()), signature))
}
