//! `[tls]`: the listeners' certificate and key, and the client
//! certificates their handshakes ask for (`client_auth`). The certificate
//! and key may also come from flags; the client settings only from here.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;
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
    #[serde(default)]
    client_ca_files: Vec<PathBuf>,
    #[serde(default)]
    crl_files: Vec<PathBuf>,
    #[serde(default)]
    client_auth_self_signed: bool,
}

/// The TLS files: the flags' certificate and key over the file's, and the
/// file's client settings either way.
pub(super) fn resolve(
    flags: Option<(PathBuf, PathBuf)>,
    file: Option<TlsFile>,
) -> Result<Option<TlsFiles>, ConfigError> {
    let client = file
        .as_ref()
        .map_or_else(ClientAuth::default, |f| ClientAuth {
            mode: f.client_auth,
            ca_files: f.client_ca_files.clone(),
            crl_files: f.crl_files.clone(),
            self_signed: f.client_auth_self_signed,
        });
    client.validate()?;
    let pair = flags.or_else(|| file.map(|f| (f.cert, f.key)));
    Ok(pair.map(|(cert, key)| TlsFiles { cert, key, client }))
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
            "[]",
            &["PEM bundles of the CAs that vouch for client certificates; reloaded on SIGHUP."],
        ),
        row(
            "crl_files",
            "[]",
            &[
                "CRLs (PEM or DER) of those CAs, checked for every certificate of the chain; a \
                 certificate whose issuer has no CRL here is refused. Reloaded on SIGHUP.",
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
