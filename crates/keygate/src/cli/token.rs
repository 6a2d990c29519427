//! `keygate token ...`: verify or inspect a JWT from the shell, with
//! keygate-verify (the project's one verifier) and nothing else.
//!
//! Exit codes: 0 verified (or decoded), 1 the token was refused, 2 the
//! command could not run (usage, unreadable key file, unreachable JWKS).
//! Keys from a URL are imported strictly (public asymmetric keys only); a
//! local file may also hold `oct` secrets or private keys, of which only the
//! public part is used: the operator controls the file, not a network peer.

use std::io::Read;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Args, Subcommand};
use keygate_verify::{
    Clock as _, ImportOptions, Jwk, JwkSet, MAX_JWKS_LEN, SystemClock, Validation, Verifier,
};
use serde_json::{Map, Value, json};

/// Longest token read from an argument or stdin: past this it is not a JWT.
const MAX_INPUT_LEN: usize = 64 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Verify a JWT against a JWK or JWKS; prints its header and claims as
    /// JSON and exits 0, or prints why it was refused and exits 1.
    Verify {
        /// A file holding one JWK or a JWK set, or an https URL of a JWKS
        /// (http only for loopback hosts).
        #[arg(long, value_name = "FILE|URL")]
        jwks: String,
        /// The required `iss` (needed unless --signature-only).
        #[arg(long)]
        issuer: Option<String>,
        /// The required `aud` element (needed unless --signature-only).
        #[arg(long)]
        audience: Option<String>,
        /// Check the JWS layer and the key binding only, not the claims.
        #[arg(long)]
        signature_only: bool,
        /// Accept any header `typ` (by default `at+jwt` is required, as
        /// keygate's access tokens carry).
        #[arg(long)]
        any_typ: bool,
        /// The token, or `-` to read it from stdin (keeps it out of `ps`).
        token: String,
    },
    /// Show a token's header and payload WITHOUT verifying anything.
    Decode {
        /// The token, or `-` to read it from stdin.
        token: String,
    },
}

/// Runs a token command: `Ok((stdout, verified))`, or `Err` when the
/// command itself could not run.
pub async fn run(args: TokenArgs) -> Result<(String, bool), String> {
    match args.command {
        TokenCommand::Verify {
            jwks,
            issuer,
            audience,
            signature_only,
            any_typ,
            token,
        } => {
            let validation = validation(issuer, audience, signature_only, any_typ)?;
            let token = read_token(&token)?;
            let keys = load_keys(&jwks).await?;
            let verifier =
                Verifier::new(keys, validation).map_err(|e| format!("configuration: {e}"))?;
            Ok(verify(&verifier, &token, signature_only))
        }
        TokenCommand::Decode { token } => decode(&read_token(&token)?).map(|out| (out, true)),
    }
}

fn validation(
    issuer: Option<String>,
    audience: Option<String>,
    signature_only: bool,
    any_typ: bool,
) -> Result<Validation, String> {
    let mut validation = match (issuer, audience) {
        (Some(issuer), Some(audience)) => Validation::new(issuer, audience),
        // The verifier insists on both; with --signature-only neither is
        // ever compared, so placeholders stand in.
        (issuer, audience) if signature_only => Validation::new(
            issuer.unwrap_or_else(|| "-".to_owned()),
            audience.unwrap_or_else(|| "-".to_owned()),
        ),
        _ => {
            return Err(
                "--issuer and --audience are required to verify claims (or pass --signature-only to check the signature alone)"
                    .to_owned(),
            );
        }
    };
    if any_typ {
        validation.required_typ = None;
    }
    Ok(validation)
}

fn read_token(arg: &str) -> Result<String, String> {
    let token = if arg == "-" {
        let mut text = String::new();
        std::io::stdin()
            .take(MAX_INPUT_LEN as u64 + 1)
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read the token from stdin: {e}"))?;
        text.trim().to_owned()
    } else {
        arg.trim().to_owned()
    };
    if token.is_empty() {
        return Err("no token given".to_owned());
    }
    if token.len() > MAX_INPUT_LEN {
        return Err("the token is too large to be a JWT".to_owned());
    }
    Ok(token)
}

async fn load_keys(source: &str) -> Result<JwkSet, String> {
    let lower = source.to_ascii_lowercase();
    let set = if lower.starts_with("https://") || lower.starts_with("http://") {
        keygate_verify::fetch_jwks(source, FETCH_TIMEOUT)
            .await
            .map_err(|e| format!("JWKS {source}: {e}"))?
    } else {
        load_file(source)?
    };
    for skipped in set.skipped() {
        eprintln!(
            "keygate: warning: key {} ({}) skipped: {}",
            skipped.index,
            skipped.kid.as_deref().unwrap_or("no kid"),
            skipped.error
        );
    }
    if set.keys().is_empty() {
        return Err(format!("{source}: no usable key"));
    }
    Ok(set)
}

fn load_file(path: &str) -> Result<JwkSet, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    if bytes.len() > MAX_JWKS_LEN {
        return Err(format!("{path}: too large for a key set"));
    }
    let options = ImportOptions::local_file();
    let document: Value =
        serde_json::from_slice(&bytes).map_err(|_| format!("{path}: not JSON"))?;
    let set = if document.get("keys").is_some() {
        JwkSet::from_json(&bytes, &options)
    } else {
        Jwk::from_json(&bytes)
            .and_then(|jwk| jwk.import(&options))
            .and_then(|key| JwkSet::from_keys(vec![key]))
    };
    set.map_err(|e| format!("{path}: {e}"))
}

/// Verifies and renders the result: (stdout, verified). A refusal goes to
/// stderr as a fixed reason; the token itself is never printed back.
fn verify(verifier: &Verifier, token: &str, signature_only: bool) -> (String, bool) {
    let checked = verifier.verify_signature(token).and_then(|signed| {
        if !signature_only {
            verifier.verify(token, SystemClock.now_secs())?;
        }
        Ok(signed)
    });
    match checked {
        Ok((header, payload)) => {
            let out = json!({
                "verified": if signature_only { "signature" } else { "signature and claims" },
                "header": Value::Object(header.members),
                "claims": payload_json(&payload),
            });
            (pretty(&out), true)
        }
        Err(e) => {
            eprintln!("keygate: token refused: {e} ({})", e.code());
            (String::new(), false)
        }
    }
}

fn decode(token: &str) -> Result<String, String> {
    let segments: Vec<&str> = token.split('.').collect();
    if segments.len() != 3 {
        return Err(format!(
            "not a compact JWS: {} segments instead of 3",
            segments.len()
        ));
    }
    let part = |index: usize, name: &str| {
        URL_SAFE_NO_PAD
            .decode(segments[index])
            .map_err(|_| format!("the {name} is not base64url"))
    };
    let (header, payload) = (part(0, "header")?, part(1, "payload")?);
    eprintln!(
        "keygate: NOT VERIFIED: this is what the token says, unchecked; its signature and claims may be forged."
    );
    Ok(pretty(&json!({
        "verified": false,
        "header": payload_json(&header),
        "claims": payload_json(&payload),
        "signature_len": URL_SAFE_NO_PAD.decode(segments[2]).map_or(0, |s| s.len()),
    })))
}

/// JSON as JSON; anything else as a lossy string, marked as such.
fn payload_json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|_| {
        let mut map = Map::new();
        map.insert(
            "not_json".to_owned(),
            Value::String(String::from_utf8_lossy(bytes).into_owned()),
        );
        Value::Object(map)
    })
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}
