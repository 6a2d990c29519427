//! `[mtls]`: the named CAs client certificates may chain to, and the CRLs
//! that revoke them. The client registry's patterns name these CAs; the
//! TLS listener's handshake may use the same bundles. Read at start, and
//! the same files reread on SIGHUP (a renewed CRL, an added intermediate):
//! adding or renaming a CA needs a restart.

use std::collections::BTreeMap;
use std::path::PathBuf;

use keygate_core::clients::ClientCas;
use serde::Deserialize;

use super::settings::SettingDoc;

/// The section as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MtlsFile {
    /// CA name → PEM bundle file: `cas = { mesh = "/etc/keygate/mesh-ca.pem" }`.
    pub cas: BTreeMap<String, PathBuf>,
    /// CRL files, DER or PEM, of any of the CAs.
    pub crl_files: Vec<PathBuf>,
}

/// The section, resolved: paths as given, relative to keygate's working
/// directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MtlsConfig {
    pub cas: Vec<(String, PathBuf)>,
    pub crl_files: Vec<PathBuf>,
}

/// Why the CAs could not be loaded: refused at start, logged (the old
/// ones kept) on SIGHUP.
#[derive(Debug, thiserror::Error)]
pub enum MtlsError {
    #[error("[mtls] cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("[mtls] {0}")]
    Ca(#[from] keygate_core::clients::CaError),
}

impl MtlsFile {
    pub fn resolve(self) -> Result<MtlsConfig, String> {
        for name in self.cas.keys() {
            keygate_core::clients::CaName::parse(name).map_err(|e| format!("[mtls] cas: {e}"))?;
        }
        Ok(MtlsConfig {
            cas: self.cas.into_iter().collect(),
            crl_files: self.crl_files,
        })
    }
}

fn read(path: &PathBuf) -> Result<Vec<u8>, MtlsError> {
    std::fs::read(path).map_err(|source| MtlsError::Read {
        path: path.clone(),
        source,
    })
}

impl MtlsConfig {
    /// Reads the files and checks every certificate and CRL in them.
    pub fn load(&self) -> Result<ClientCas, MtlsError> {
        let bundles = self
            .cas
            .iter()
            .map(|(name, path)| Ok((name.as_str(), read(path)?)))
            .collect::<Result<Vec<_>, MtlsError>>()?;
        let crls = self
            .crl_files
            .iter()
            .map(read)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ClientCas::new(
            bundles.iter().map(|(n, b)| (*n, b.as_slice())),
            crls.iter().map(Vec::as_slice),
        )?)
    }
}

/// The reference rows of `[mtls]`.
pub(super) fn reference() -> Vec<SettingDoc> {
    vec![
        SettingDoc::new(
            Some("mtls"),
            "cas",
            (None, None),
            "none".to_owned(),
            &[
                "Named CAs for mTLS clients: `cas = { mesh = \"/etc/keygate/mesh-ca.pem\" }`, \
                 each a PEM bundle; a client registered with a name pattern must chain to its \
                 CA. Also the TLS handshake's CAs when `[tls] client_ca_files` is not given. \
                 Reread on SIGHUP; a new or renamed CA needs a restart. See the mTLS guide.",
            ],
        ),
        SettingDoc::new(
            Some("mtls"),
            "crl_files",
            (None, None),
            "[]".to_owned(),
            &[
                "CRL files (DER or PEM) of any of the `[mtls]` CAs: a certificate a CRL lists is \
                 refused (`mtls_revoked_cert`); with any, a certificate whose issuer has none \
                 here is refused too (`mtls_revocation_unknown`), as in the TLS handshake. Also \
                 the TLS handshake's CRLs when neither `[tls] client_ca_files` nor `[tls] \
                 crl_files` is given. Reread on SIGHUP.",
            ],
        ),
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_section_parses_and_refuses_what_it_does_not_know() {
        let f: MtlsFile =
            toml::from_str("cas = { mesh = \"/a.pem\" }\ncrl_files = [\"/c.crl\"]").unwrap();
        let c = f.resolve().unwrap();
        assert_eq!(c.cas, vec![("mesh".to_owned(), PathBuf::from("/a.pem"))]);
        assert!(toml::from_str::<MtlsFile>("bogus = 1").is_err());
        let bad: MtlsFile = toml::from_str("cas = { \"no spaces\" = \"/a.pem\" }").unwrap();
        assert!(bad.resolve().is_err());
    }

    #[test]
    fn missing_or_bad_files_are_named() {
        let c = MtlsConfig {
            cas: vec![("mesh".into(), PathBuf::from("/nonexistent/ca.pem"))],
            crl_files: Vec::new(),
        };
        let e = c.load().unwrap_err().to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pem");
        std::fs::write(&p, "not a certificate").unwrap();
        let c = MtlsConfig {
            cas: vec![("mesh".into(), p)],
            crl_files: Vec::new(),
        };
        assert!(c.load().unwrap_err().to_string().contains("mesh"));
    }
}
