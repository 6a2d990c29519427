//! `keygate token verify|decode`: the real binary against keys and tokens
//! made here with aws-lc-rs, checking exit codes and messages.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _};
use aws_lc_rs::{encoding::AsBigEndian, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_keygate");
const ISS: &str = "https://auth.example.com";
const AUD: &str = "orders";

fn now() -> u64 {
    std::time::UNIX_EPOCH.elapsed().unwrap().as_secs()
}

fn claims(exp: u64) -> Value {
    json!({"iss": ISS, "aud": AUD, "sub": "user-1", "exp": exp, "iat": now() - 5})
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    )
}

struct Es256 {
    pair: EcdsaKeyPair,
}

impl Es256 {
    fn new() -> Self {
        let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        Self { pair }
    }
    fn public_jwk(&self) -> Value {
        let point = self.pair.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
               "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..])})
    }
    /// The JWK with its private scalar `d`, as a key file might hold it.
    fn private_jwk(&self) -> Value {
        let mut jwk = self.public_jwk();
        let d = self.pair.private_key().as_be_bytes().unwrap();
        jwk["d"] = json!(B64.encode(d.as_ref()));
        jwk
    }
    fn token(&self, claims: &Value) -> String {
        let header = json!({"alg": "ES256", "kid": "k1", "typ": "at+jwt"});
        let input = signing_input(&header, claims);
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }
}

fn write(dir: &Path, name: &str, value: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, value.to_string()).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Runs `keygate token ARGS`, feeding `stdin`: (exit code, stdout, stderr).
fn token_cmd(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .arg("token")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn verify_from_a_jwks_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = Es256::new();
    let jwks = write(
        dir.path(),
        "jwks.json",
        &json!({"keys": [key.public_jwk()]}),
    );
    let good = key.token(&claims(now() + 600));
    let full = [
        "verify",
        "--jwks",
        &jwks,
        "--issuer",
        ISS,
        "--audience",
        AUD,
    ];

    let (code, out, err) = token_cmd(&[&full[..], &[good.as_str()]].concat(), None);
    assert_eq!(code, 0, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["header"]["kid"], "k1");
    assert_eq!(shown["claims"]["sub"], "user-1");

    // The same from stdin.
    let (code, out, _) = token_cmd(&[&full[..], &["-"]].concat(), Some(&format!("{good}\n")));
    assert_eq!(code, 0);
    assert!(out.contains("user-1"));

    // Another key's signature: refused with the reason, exit 1.
    let forged = Es256::new().token(&claims(now() + 600));
    let (code, out, err) = token_cmd(&[&full[..], &[forged.as_str()]].concat(), None);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("bad signature"), "{err}");
    assert!(!err.contains(&forged));

    // Expired: refused; --signature-only still checks only the JWS layer.
    let expired = key.token(&claims(now() - 3600));
    let (code, _, err) = token_cmd(&[&full[..], &[expired.as_str()]].concat(), None);
    assert_eq!(code, 1);
    assert!(err.contains("token expired"), "{err}");
    let (code, out, err) = token_cmd(
        &["verify", "--jwks", &jwks, "--signature-only", &expired],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"signature\""));

    // Claims checks without --issuer/--audience: a clear usage error.
    let (code, _, err) = token_cmd(&["verify", "--jwks", &jwks, &good], None);
    assert_eq!(code, 2);
    assert!(
        err.contains("--issuer and --audience are required"),
        "{err}"
    );
}

#[test]
fn local_files_may_hold_oct_and_private_keys() {
    let dir = tempfile::tempdir().unwrap();
    let secret = [42u8; 32];
    let oct = write(
        dir.path(),
        "oct.json",
        &json!({"kty": "oct", "kid": "h1", "alg": "HS256", "k": B64.encode(secret)}),
    );
    let header = json!({"alg": "HS256", "kid": "h1", "typ": "at+jwt"});
    let input = signing_input(&header, &claims(now() + 600));
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &secret),
        input.as_bytes(),
    );
    let token = format!("{input}.{}", B64.encode(tag.as_ref()));
    let args = [
        "verify",
        "--jwks",
        &oct,
        "--issuer",
        ISS,
        "--audience",
        AUD,
        &token,
    ];
    let (code, out, err) = token_cmd(&args, None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("HS256"));

    // A private EC key: only its public part is used.
    let key = Es256::new();
    let private = write(dir.path(), "private.json", &key.private_jwk());
    let token = key.token(&claims(now() + 600));
    let args = [
        "verify",
        "--jwks",
        &private,
        "--issuer",
        ISS,
        "--audience",
        AUD,
        &token,
    ];
    let (code, _, err) = token_cmd(&args, None);
    assert_eq!(code, 0, "{err}");

    // A missing file is an error of the command, not of the token.
    let (code, _, err) = token_cmd(
        &[
            "verify",
            "--jwks",
            "/nonexistent/jwks.json",
            "--signature-only",
            &token,
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(err.contains("cannot read"), "{err}");
}

/// Serves `body` as a JWKS to `requests` connections on 127.0.0.1:0.
fn serve_jwks(body: String, requests: usize) -> String {
    use std::io::Read as _;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(response.as_bytes()).unwrap();
        }
    });
    url
}

#[test]
fn a_url_must_be_https_or_loopback_and_never_yields_oct_keys() {
    let key = Es256::new();
    let token = key.token(&claims(now() + 600));
    let (code, _, err) = token_cmd(
        &[
            "verify",
            "--jwks",
            "http://example.com/jwks.json",
            "--signature-only",
            &token,
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(err.contains("https"), "{err}");

    let url = serve_jwks(json!({"keys": [key.public_jwk()]}).to_string(), 1);
    let args = [
        "verify",
        "--jwks",
        &url,
        "--issuer",
        ISS,
        "--audience",
        AUD,
        &token,
    ];
    let (code, out, err) = token_cmd(&args, None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("user-1"));

    // The same oct key a local file may hold is refused from a URL, and so
    // is a private key.
    let oct = json!({"kty": "oct", "kid": "h1", "alg": "HS256", "k": B64.encode([42u8; 32])});
    for jwk in [oct, key.private_jwk()] {
        let url = serve_jwks(json!({ "keys": [jwk] }).to_string(), 1);
        let (code, _, err) = token_cmd(
            &["verify", "--jwks", &url, "--signature-only", &token],
            None,
        );
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("key set refused"), "{err}");
    }
}

#[test]
fn decode_says_not_verified() {
    let key = Es256::new();
    let token = key.token(&claims(now() - 3600));
    let (code, out, err) = token_cmd(&["decode", &token], None);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("NOT VERIFIED"), "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["verified"], false);
    assert_eq!(shown["header"]["alg"], "ES256");
    assert_eq!(shown["claims"]["sub"], "user-1");

    let (code, out, err) = token_cmd(&["decode", "-"], Some(&token));
    assert_eq!(code, 0);
    assert!(out.contains("user-1") && err.contains("NOT VERIFIED"));

    let (code, _, err) = token_cmd(&["decode", "a.b"], None);
    assert_eq!(code, 2);
    assert!(err.contains("not a compact JWS"), "{err}");
}
