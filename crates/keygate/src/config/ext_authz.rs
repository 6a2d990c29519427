//! `[ext_authz]`: Envoy's external authorization over gRPC on its own
//! listener (off unless `listen` is set), judged by the gateway's routes.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The section as written, with its defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExtAuthzFile {
    /// Address of the gRPC listener; none: not served.
    pub listen: Option<String>,
    /// Serve it with the `[tls]` certificate.
    pub tls: bool,
    /// The largest CheckRequest accepted, in bytes.
    pub max_message_bytes: usize,
}

impl Default for ExtAuthzFile {
    fn default() -> Self {
        Self {
            listen: None,
            tls: false,
            max_message_bytes: keygate_extauthz::DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// The section checked: present only when served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtAuthzConfig {
    pub listen: SocketAddr,
    pub tls: bool,
    pub max_message_bytes: usize,
}

/// What the check needs of the rest of the configuration.
pub struct Context {
    pub gateway: bool,
    pub tls: bool,
    pub trusted_proxies: bool,
    pub allow_plain_http: bool,
}

impl ExtAuthzFile {
    pub fn validate(self, cx: &Context) -> Result<Option<ExtAuthzConfig>, String> {
        let Some(listen) = self.listen else {
            return Ok(None);
        };
        let listen: SocketAddr = listen.parse().map_err(|_| {
            format!("[ext_authz] listen: {listen:?} is not an address such as 127.0.0.1:9191")
        })?;
        if !cx.gateway {
            return Err(
                "[ext_authz] needs a [gateway] section: its routes judge each check".into(),
            );
        }
        if !cx.trusted_proxies {
            return Err(
                "[ext_authz] needs trusted_proxies: only the proxies listed there \
                 (Envoy's addresses) may ask"
                    .into(),
            );
        }
        if self.tls && !cx.tls {
            return Err("[ext_authz] tls = true needs [tls] cert and key".into());
        }
        if !self.tls && !listen.ip().is_loopback() && !cx.allow_plain_http {
            return Err(format!(
                "refusing to serve ext_authz in clear text on the non-loopback address \
                 {listen}: checks carry credentials. Set [ext_authz] tls = true, set \
                 allow_plain_http = true on a private network, or listen on 127.0.0.1"
            ));
        }
        if !(1024..=4 * 1024 * 1024).contains(&self.max_message_bytes) {
            return Err("[ext_authz] max_message_bytes: between 1024 and 4194304".into());
        }
        Ok(Some(ExtAuthzConfig {
            listen,
            tls: self.tls,
            max_message_bytes: self.max_message_bytes,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> Context {
        Context {
            gateway: true,
            tls: false,
            trusted_proxies: true,
            allow_plain_http: false,
        }
    }

    fn file(text: &str) -> ExtAuthzFile {
        toml::from_str(text).unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn off_unless_listen_is_set() {
        assert_eq!(ExtAuthzFile::default().validate(&cx()), Ok(None));
    }

    #[test]
    fn each_requirement_is_named() {
        let local = file("listen = \"127.0.0.1:0\"");
        assert!(local.clone().validate(&cx()).is_ok_and(|c| c.is_some()));
        let no_gateway = Context {
            gateway: false,
            ..cx()
        };
        assert!(local.clone().validate(&no_gateway).is_err());
        let untrusting = Context {
            trusted_proxies: false,
            ..cx()
        };
        let err = local.clone().validate(&untrusting).unwrap_err();
        assert!(err.contains("trusted_proxies"), "{err}");
        let err = file("listen = \"10.0.0.1:9191\"")
            .validate(&cx())
            .unwrap_err();
        assert!(err.contains("clear text"), "{err}");
        assert!(
            file("listen = \"127.0.0.1:0\"\ntls = true")
                .validate(&cx())
                .is_err()
        );
        assert!(
            file("listen = \"127.0.0.1:0\"\nmax_message_bytes = 10")
                .validate(&cx())
                .is_err()
        );
        assert!(file("listen = \"nowhere\"").validate(&cx()).is_err());
        assert!(toml::from_str::<ExtAuthzFile>("bogus = 1").is_err());
    }
}
