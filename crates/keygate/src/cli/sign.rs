//! `keygate sign`: signs one request with a key's HMAC secret (RFC 9421),
//! printing the headers to send. No server involved.
//!
//! The signature covers `@method`, `@authority`, `@path`, `@query` (when
//! the URL has one), `content-digest` (with `--body`) and every `--header`.
//! `created` is now and the nonce random, so each output is good for one
//! request within the server's window (±300 s by default).
//!
//! With a body, the server also wants `Content-Type` and `Content-Encoding`
//! signed when they are sent: pass them as `--header`. `--curl` then tells
//! curl not to add its own unsigned `Content-Type`.
//!
//! `--curl` prints the same as curl arguments, each quoted for the shell.
//! A shell does not re-read quotes inside `$(...)`'s output, and
//! `Signature-Input` always holds spaces, so let it parse them:
//! `eval "curl $(keygate sign ... --curl) 'URL'"`.

use std::io::Read;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use keygate_core::httpsig::base::SignatureParams;
use keygate_core::httpsig::{UrlParts, content_digest_sha256, sign_hmac_sha256};
use keygate_core::keys::apikey::random_id;
use keygate_core::{KeyId, MillisClock as _, SystemClock};
use zeroize::Zeroizing;

/// Largest secret file read: a base64 secret is 44 characters.
const MAX_SECRET_FILE: u64 = 4096;

#[derive(Args)]
pub struct SignArgs {
    /// The request method, sent as written.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// The full URL the request goes to, e.g. https://api.example.com/orders?id=7.
    #[arg(long)]
    pub url: String,
    /// A file holding the exact body to send; adds a signed Content-Digest.
    #[arg(long, value_name = "FILE")]
    pub body: Option<PathBuf>,
    /// The API key's id (key_...), the signature's `keyid`.
    #[arg(long, value_name = "KEY_ID")]
    pub key_id: String,
    /// A file holding the base64 signing secret from
    /// POST /v1/keys/{id}/signing-secret; `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    pub secret_file: PathBuf,
    /// Another header to send and sign, as `Name: value`; repeat for several.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Print curl arguments (-X, -H, --data-binary), quoted for `eval`.
    #[arg(long)]
    pub curl: bool,
    /// The signature's label.
    #[arg(long, default_value = "sig1")]
    pub label: String,
}

fn read_secret(path: &PathBuf) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut text = Zeroizing::new(String::new());
    let read = if path.as_os_str() == "-" {
        std::io::stdin()
            .take(MAX_SECRET_FILE)
            .read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX_SECRET_FILE).read_to_string(&mut text))
    };
    read.map_err(|e| format!("cannot read the secret file {}: {e}", path.display()))?;
    let secret = STANDARD
        .decode(text.trim())
        .map(Zeroizing::new)
        .map_err(|_| "the secret file must hold the base64 secret keygate returned".to_owned())?;
    if secret.len() < 32 {
        return Err("the secret is shorter than 256 bits: use the one keygate returned".into());
    }
    Ok(secret)
}

fn parse_header(raw: &str) -> Result<(String, String), String> {
    let (name, value) = raw
        .split_once(':')
        .ok_or_else(|| format!("--header {raw:?}: write it as `Name: value`"))?;
    let name = name.trim().to_ascii_lowercase();
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    let value = value.trim();
    if !token
        || value
            .bytes()
            .any(|b| !(b == b'\t' || (0x20..=0x7e).contains(&b)))
    {
        return Err(format!(
            "--header {raw:?}: a header name, `:`, then printable ASCII"
        ));
    }
    if ["signature", "signature-input", "content-digest"].contains(&name.as_str()) {
        return Err(format!("--header: keygate sign writes `{name}` itself"));
    }
    Ok((name, value.to_owned()))
}

/// POSIX shell single quotes: safe for any text.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn check_method(method: &str) -> Result<(), String> {
    let token = !method.is_empty()
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if token {
        Ok(())
    } else {
        Err(format!("--method {method:?} is not an HTTP method"))
    }
}

/// The `--header`s, each name once.
fn parse_headers(raw: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for raw in raw {
        let (name, value) = parse_header(raw)?;
        if headers.iter().any(|(n, _)| *n == name) {
            return Err(format!("--header `{name}` is given twice"));
        }
        headers.push((name, value));
    }
    Ok(headers)
}

/// What the signature covers, in order: the request line's parts, the
/// body's digest, then every other header sent.
fn covered_components(has_query: bool, headers: &[(String, String)]) -> Vec<&str> {
    let mut components = vec!["@method", "@authority", "@path"];
    if has_query {
        components.push("@query");
    }
    if headers.iter().any(|(n, _)| n == "content-digest") {
        components.push("content-digest");
    }
    components.extend(
        headers
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| *n != "content-digest"),
    );
    components
}

/// The headers to send as a person writes them, then the signature's two.
fn output_lines(
    headers: &[(String, String)],
    input: String,
    signature: String,
) -> Vec<(String, String)> {
    let display = |n: &str| match n {
        "content-digest" => "Content-Digest".to_owned(),
        other => other.to_owned(),
    };
    let mut lines: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (display(n), v.clone()))
        .collect();
    lines.push(("Signature-Input".into(), input));
    lines.push(("Signature".into(), signature));
    lines
}

/// The same request as curl arguments, each quoted for `eval`.
fn curl_words(args: &SignArgs, lines: &[(String, String)], headers: &[(String, String)]) -> String {
    let mut words = Vec::new();
    if args.method != "GET" {
        words.push(format!("-X {}", shell_quote(&args.method)));
    }
    for (n, v) in lines {
        words.push(format!("-H {}", shell_quote(&format!("{n}: {v}"))));
    }
    if let Some(path) = &args.body {
        // curl sends `Content-Type: application/x-www-form-urlencoded` with
        // a body unless told otherwise; unsigned, the server would refuse it.
        if !headers.iter().any(|(n, _)| n == "content-type") {
            words.push(format!("-H {}", shell_quote("Content-Type:")));
        }
        let arg = format!("@{}", path.display());
        words.push(format!("--data-binary {}", shell_quote(&arg)));
    }
    format!("{}\n", words.join(" "))
}

/// The headers to send, in order, or the curl arguments.
pub fn run(args: SignArgs) -> Result<String, String> {
    let key_id = KeyId::parse(&args.key_id).map_err(|e| format!("--key-id: {e}"))?;
    check_method(&args.method)?;
    let url = UrlParts::parse(&args.url).map_err(|e| format!("--url: {e}"))?;
    let secret = read_secret(&args.secret_file)?;
    let mut headers = parse_headers(&args.headers)?;
    if let Some(path) = &args.body {
        let body = std::fs::read(path)
            .map_err(|e| format!("cannot read the body file {}: {e}", path.display()))?;
        headers.push(("content-digest".into(), content_digest_sha256(&body)));
    }
    let components = covered_components(url.query.is_some(), &headers);
    let nonce = random_id("", 22).map_err(|e| e.to_string())?;
    let params = SignatureParams::new(&components, SystemClock.now_secs(), &nonce, key_id.as_str());
    let view = url.view(&args.method, &headers);
    let (input, signature) = sign_hmac_sha256(&view, &args.label, &params, &secret)
        .map_err(|r| format!("cannot sign: {}", r.detail))?;
    let lines = output_lines(&headers, input, signature);
    if args.curl {
        return Ok(curl_words(&args, &lines, &headers));
    }
    Ok(lines.iter().map(|(n, v)| format!("{n}: {v}\n")).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn quoting_and_header_parsing() {
        assert_eq!(shell_quote("a'b c"), "'a'\\''b c'");
        assert_eq!(
            parse_header("X-Req:  1 2 ").unwrap(),
            ("x-req".into(), "1 2".into())
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("Signature: x").is_err());
        assert!(parse_header("X: a\u{7f}").is_err());
    }

    #[test]
    fn the_digest_comes_before_other_headers_and_names_are_unique() {
        let headers =
            parse_headers(&["Content-Type: text/plain".into(), "X-Req: 1".into()]).unwrap();
        assert!(parse_headers(&["X-Req: 1".into(), "x-req: 2".into()]).is_err());
        let mut with_body = headers.clone();
        with_body.push(("content-digest".into(), "sha-256=:x:".into()));
        assert_eq!(
            covered_components(true, &with_body),
            [
                "@method",
                "@authority",
                "@path",
                "@query",
                "content-digest",
                "content-type",
                "x-req"
            ]
        );
        assert_eq!(
            covered_components(false, &headers),
            ["@method", "@authority", "@path", "content-type", "x-req"]
        );
        assert!(check_method("PATCH").is_ok());
        assert!(check_method("GE T").is_err() && check_method("").is_err());
    }
}
