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
    /// None: `[mtls]`'s CAs, when a listener asks.
    #[serde(default)]
    client_ca_files: Option<Vec<PathBuf>>,
    /// None: `[mtls]`'s CRLs, when the CAs are `[mtls]`'s too.
    #[serde(default)]
    crl_files: Option<Vec<PathBuf>>,
    #[serde(default)]
    client_auth_self_signed: bool,
}

/// `[tls]`'s client certificate settings (none without the table: TLS
/// from the flags alone).
#[derive(Default)]
struct ClientFile {
    client_auth: ClientAuthMode,
    client_ca_files: Option<Vec<PathBuf>>,
    crl_files: Option<Vec<PathBuf>>,
    client_auth_self_signed: bool,
}

impl TlsFile {
    fn split(self) -> ((PathBuf, PathBuf), ClientFile) {
        let client = ClientFile {
            client_auth: self.client_auth,
            client_ca_files: self.client_ca_files,
            crl_files: self.crl_files,
            client_auth_self_signed: self.client_auth_self_signed,
        };
        ((self.cert, self.key), client)
    }
}

/// The TLS files: the flags' certificate and key over the file's, and the
/// file's client settings either way: the admin listener's under `[tls]
/// client_auth`, the gateway listener's under `gateway_mode` (`[gateway]
/// client_auth`) when that is set and differs.
pub(super) fn resolve(
    flags: Option<(PathBuf, PathBuf)>,
    file: Option<TlsFile>,
    gateway_mode: Option<ClientAuthMode>,
    mtls: &MtlsConfig,
) -> Result<Option<TlsFiles>, ConfigError> {
    let (pair, spec) = match file.map(TlsFile::split) {
        Some((pair, client)) => (Some(pair), client),
        None => (None, ClientFile::default()),
    };
    let admin = spec.for_listener(spec.client_auth, mtls);
    admin.validate("[tls] client_auth")?;
    let gateway = gateway_mode.map(|mode| spec.for_listener(mode, mtls));
    if let Some(g) = &gateway {
        g.validate("[gateway] client_auth")?;
    }
    spec.check_used(admin.mode.asks() || gateway.as_ref().is_some_and(|g| g.mode.asks()))?;
    let Some((cert, key)) = flags.or(pair) else {
        if gateway.is_some() {
            return Err(ConfigError::invalid(
                "[gateway] client_auth needs TLS: [tls] cert and key, or --tls-cert and --tls-key",
            ));
        }
        return Ok(None);
    };
    Ok(Some(TlsFiles {
        cert,
        key,
        gateway_client: gateway.filter(|g| *g != admin),
        client: admin,
    }))
}

impl ClientFile {
    /// A listener's client settings under `mode`. When it asks and no
    /// `client_ca_files` are written, the CAs are `[mtls]`'s, so a CA is
    /// named in one place; its CRLs then default to `[mtls]`'s too. With
    /// CAs of its own, `[tls]` takes no CRL it was not given: a CA without
    /// a CRL fails every handshake, and `[mtls]`'s CRLs need not cover
    /// other CAs. A listener that does not ask gets none of them.
    fn for_listener(&self, mode: ClientAuthMode, mtls: &MtlsConfig) -> ClientAuth {
        if !mode.asks() {
            return ClientAuth::default();
        }
        let (ca_files, from_mtls) = match &self.client_ca_files {
            Some(files) => (files.clone(), false),
            None => (mtls.cas.iter().map(|(_, p)| p.clone()).collect(), true),
        };
        let crl_files = match &self.crl_files {
            Some(files) => files.clone(),
            None if from_mtls && !ca_files.is_empty() => mtls.crl_files.clone(),
            None => Vec::new(),
        };
        ClientAuth {
            mode,
            ca_files,
            crl_files,
            self_signed: self.client_auth_self_signed,
        }
    }

    /// Client settings no listener asks for would silently do nothing.
    fn check_used(&self, some_listener_asks: bool) -> Result<(), ConfigError> {
        let given = |files: &Option<Vec<PathBuf>>| files.as_ref().is_some_and(|f| !f.is_empty());
        let set =
            given(&self.client_ca_files) || given(&self.crl_files) || self.client_auth_self_signed;
        if set && !some_listener_asks {
            return Err(ConfigError::invalid(
                "[tls] client_ca_files, crl_files and client_auth_self_signed need \
                 client_auth = \"request\" or \"require\" ([tls], or [gateway] for the \
                 gateway's listener)",
            ));
        }
        Ok(())
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
                 alert); the gateway's listener may ask otherwise ([gateway] client_auth). \
                 See the TLS guide.",
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
    ]
}

/// The reference rows of `[forward_auth]`'s certificate header (file only).
pub(super) fn forward_auth_reference() -> Vec<SettingDoc> {
    vec![
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

/// The reference row of `[gateway] client_auth`, which `resolve` reads.
pub(super) fn gateway_reference() -> SettingDoc {
    SettingDoc::new(
        Some("gateway"),
        "client_auth",
        (None, None),
        "[tls] client_auth".to_owned(),
        &[
            "Client certificates on the gateway listener's TLS, over [tls] client_auth: \
             \"off\", \"request\" or \"require\", with [tls]'s CAs, CRLs and self-signed \
             setting (for example: the gateway requires, the admin listener only requests). \
             Needs [gateway] listen and TLS; read at start.",
        ],
    )
}
