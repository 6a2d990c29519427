//! `[tls]`: the listeners' certificate and key, and the client
//! certificates their handshakes ask for (`client_auth`). The certificate
//! and key may also come from flags; the client settings only from here.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;
use super::mtls::MtlsConfig;
use super::settings::SettingDoc;
use crate::gateway::forward_auth::{ForwardAuthFile, ProxyCertHeader};
use crate::tls::{ClientAuth, ClientAuthMode, TlsFiles};

/// `[tls]` as written: the certificate and key both or neither.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsFile {
    cert: PathBuf,
    key: PathBuf,
    #[serde(default)]
    client_auth: ClientAuthMode,
    /// None: `[mtls]`'s CAs, when `client_auth` asks.
    #[serde(default)]
    client_ca_files: Option<Vec<PathBuf>>,
    /// None: `[mtls]`'s CRLs, when the CAs are `[mtls]`'s too.
    #[serde(default)]
    crl_files: Option<Vec<PathBuf>>,
    #[serde(default)]
    client_auth_self_signed: bool,
}

/// The TLS files: the flags' certificate and key over the file's, and the
/// file's client settings either way.
pub(super) fn resolve(
    flags: Option<(PathBuf, PathBuf)>,
    file: Option<TlsFile>,
    mtls: &MtlsConfig,
) -> Result<Option<TlsFiles>, ConfigError> {
    let client = file
        .as_ref()
        .map_or_else(ClientAuth::default, |f| client_auth(f, mtls));
    client.validate()?;
    let pair = flags.or_else(|| file.map(|f| (f.cert, f.key)));
    Ok(pair.map(|(cert, key)| TlsFiles { cert, key, client }))
}

/// The handshake's client settings. When `client_auth` asks and no
/// `client_ca_files` are written, the CAs are `[mtls]`'s, so a CA is named
/// in one place; its CRLs then default to `[mtls]`'s too. With CAs of its
/// own, `[tls]` takes no CRL it was not given: a CA without a CRL fails
/// every handshake, and `[mtls]`'s CRLs need not cover other CAs.
fn client_auth(f: &TlsFile, mtls: &MtlsConfig) -> ClientAuth {
    let asks = f.client_auth != ClientAuthMode::Off;
    let (ca_files, from_mtls) = match &f.client_ca_files {
        Some(files) => (files.clone(), false),
        None if asks => (mtls.cas.iter().map(|(_, p)| p.clone()).collect(), true),
        None => (Vec::new(), false),
    };
    let crl_files = match &f.crl_files {
        Some(files) => files.clone(),
        None if from_mtls && !ca_files.is_empty() => mtls.crl_files.clone(),
        None => Vec::new(),
    };
    ClientAuth {
        mode: f.client_auth,
        ca_files,
        crl_files,
        self_signed: f.client_auth_self_signed,
    }
}

/// `[forward_auth]`: which proxy's client certificate header is read.
pub(super) fn forward_auth(file: Option<ForwardAuthFile>) -> Result<ProxyCertHeader, ConfigError> {
    ProxyCertHeader::resolve(&file.unwrap_or_default())
        .map_err(|e| ConfigError::invalid(e.to_string()))
}

/// The reference rows of the client settings (file only).
pub(super) fn reference() -> Vec<SettingDoc> {
    let row = |key: &str, default: &str, doc: &[&str]| {
        SettingDoc::new(Some("tls"), key, (None, None), default.to_owned(), doc)
    };
    vec![
        row(
            "client_auth",
            "\"off\"",
            &[
                "Client certificates on both listeners' TLS: \"off\", \"request\" (asked for; \
                 a client without one connects, one that fails verification is refused in \
                 the handshake) or \"require\" (a client without one is refused with a TLS \
                 alert); see the TLS guide.",
            ],
        ),
        row(
            "client_ca_files",
            "[mtls] cas",
            &[
                "PEM bundles of the CAs that vouch for client certificates; reloaded on SIGHUP. \
                 Not given (and client_auth asks): the files of `[mtls] cas`.",
            ],
        ),
        row(
            "crl_files",
            "[mtls] crl_files",
            &[
                "CRLs (PEM or DER) of those CAs, checked for every certificate of the chain; a \
                 certificate whose issuer has no CRL here is refused. Reloaded on SIGHUP. Not \
                 given, and client_ca_files not given either: `[mtls] crl_files`.",
            ],
        ),
        row(
            "client_auth_self_signed",
            "false",
            &[
                "Also take a certificate no configured CA issued, proving only that the client \
                 holds its key (RFC 8705 self_signed_tls_client_auth): such a chain is marked \
                 unverified and counts only where its thumbprint is pinned.",
            ],
        ),
        SettingDoc::new(
            Some("forward_auth"),
            "client_cert_header",
            (None, None),
            "\"none\"".to_owned(),
            &[
                "Which proxy passes forward-auth the client certificate it verified: \"nginx\" \
               ($ssl_client_escaped_cert in X-SSL-Client-Cert), \"envoy\" \
               (X-Forwarded-Client-Cert), \"traefik\" (X-Forwarded-Tls-Client-Cert) or \
               \"none\"; read only from trusted_proxies. See the forward-auth guide.",
            ],
        ),
        SettingDoc::new(
            Some("forward_auth"),
            "client_cert_header_name",
            (None, None),
            "the proxy's own".to_owned(),
            &["The header's name, for a proxy configured to send it under another one."],
        ),
    ]
}
