//! `Config::load`: layering, defaults and the messages of refusals.
#![allow(clippy::unwrap_used)]
use super::*;

#[test]
fn defaults_need_nothing() {
    let c = Config::load(&ServeArgs::default()).unwrap();
    assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(c.database_url.expose(), DEFAULT_DATABASE_URL);
    assert_eq!(
        c.pepper,
        PepperSource::BesideDatabase("keygate.db.pepper".into())
    );
    assert_eq!(c.body_limit, DEFAULT_API_BODY_LIMIT);
}

#[test]
fn flags_beat_the_file_and_the_file_beats_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:9000\"\ncache_ttl_seconds = 10\n",
    )
    .unwrap();
    let mut args = ServeArgs {
        config: Some(path.clone()),
        ..ServeArgs::default()
    };
    let c = Config::load(&args).unwrap();
    assert_eq!(c.listen.port(), 9000);
    assert_eq!(c.cache.ttl_ms, 10_000);
    args.listen = Some("127.0.0.1:9001".into());
    assert_eq!(Config::load(&args).unwrap().listen.port(), 9001);
}

#[test]
fn bad_settings_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.toml");
    std::fs::write(&path, "lisen = \"x\"\n").unwrap();
    let err = Config::load(&ServeArgs {
        config: Some(path),
        ..ServeArgs::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("lisen"), "{err}");
    let err = Config::load(&ServeArgs {
        listen: Some("0.0.0.0:8080".into()),
        ..ServeArgs::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("--allow-plain-http"), "{err}");
    // With TLS a public address needs no exception, and the default
    // issuer is https.
    let c = Config::load(&ServeArgs {
        listen: Some("0.0.0.0:8443".into()),
        tls_cert: Some("c.pem".into()),
        tls_key: Some("k.pem".into()),
        ..ServeArgs::default()
    })
    .unwrap();
    assert_eq!(c.jwt.issuer, "https://0.0.0.0:8443");
    let err = Config::load(&ServeArgs {
        database_url: Some("postgres://db/keygate".into()),
        ..ServeArgs::default()
    })
    .map(|c| c.pepper)
    .unwrap();
    assert_eq!(err, PepperSource::Missing);
    let err = Config::load(&ServeArgs {
        hmac_max_skew_seconds: Some(0),
        ..ServeArgs::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("hmac_max_skew_seconds"), "{err}");
    let ok = Config::load(&ServeArgs {
        hmac_max_skew_seconds: Some(60),
        ..ServeArgs::default()
    })
    .unwrap();
    assert_eq!(ok.hmac.max_skew_secs, 60);
    let err = Config::load(&ServeArgs {
        audit_retention_days: Some(0),
        ..ServeArgs::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("audit_retention_days"), "{err}");
    assert_eq!(
        Config::load(&ServeArgs::default())
            .unwrap()
            .audit
            .retention_days,
        90
    );
    assert_eq!(ok.hmac.nonces_per_key, DEFAULT_NONCES_PER_KEY);
    assert!(ok.hmac.cover_content_headers);
    let err = Config::load(&ServeArgs {
        hmac_nonces_per_key: Some(0),
        ..ServeArgs::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("hmac_nonces_per_key"), "{err}");
}

#[test]
fn origins_are_checked_by_their_parts_never_sliced_mid_character() {
    for good in [
        "https://app.example.com",
        "http://localhost:3000",
        "http://é.example",
    ] {
        assert!(super::is_origin(good), "{good}");
    }
    for bad in [
        "https://app.example.com/",
        "https://app.example.com/path",
        "http://",
        "ftp://x",
        "app.example.com",
        "http://é/x",
        "http:/é",
    ] {
        assert!(!super::is_origin(bad), "{bad}");
    }
}

#[test]
fn debug_prints_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.toml");
    std::fs::write(
        &path,
        "pepper = \"pepper-in-the-file-0123456789abcdef\"\n\
         [cluster]\nredis_url = \"redis://:redis-password@cache:6379\"\n",
    )
    .unwrap();
    set_private(&path);
    let c = Config::load(&ServeArgs {
        config: Some(path),
        database_url: Some("postgres://keygate:db-password@db:5432/keygate".into()),
        master_key: Some("master-key-value-0123456789abcdef".into()),
        ..ServeArgs::default()
    })
    .unwrap();
    assert!(c.cluster.redis.is_some());
    let printed = format!("{c:?} {c:#?}");
    for secret in [
        "db-password",
        "redis-password",
        "pepper-in-the-file",
        "master-key-value",
    ] {
        assert!(!printed.contains(secret), "{secret} printed: {printed}");
    }
    assert!(printed.contains("listen"), "{printed}");
}

fn set_private(path: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// A file setting of every kind (top level, a table, a file-only key) is
/// read, and a flag (or its environment variable: clap's layer) wins.
#[test]
fn every_layer_reaches_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.toml");
    std::fs::write(
        &path,
        "cache_capacity = 7\nallowed_origins = [\"https://a.example\"]\n\
         [jwt]\nleeway_seconds = 10\n[keys]\nmax_per_tenant = 5\n\
         [cluster]\nredis_timeout_ms = 20\n",
    )
    .unwrap();
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }
    use clap::Parser;
    let parse = |extra: &[&str]| {
        let mut argv = vec!["keygate", "--config", path.to_str().unwrap()];
        argv.extend(extra);
        Cli::try_parse_from(argv).unwrap().serve
    };
    let c = Config::load(&parse(&[])).unwrap();
    assert_eq!(c.cache.capacity, 7);
    assert_eq!(c.jwt.leeway, 10);
    assert_eq!(c.max_keys_per_tenant, 5);
    assert_eq!(c.allowed_origins, ["https://a.example"]);
    let c = Config::load(&parse(&[
        "--cache-capacity",
        "9",
        "--jwt-leeway-seconds",
        "20",
        "--allowed-origin",
        "https://b.example,https://c.example",
    ]))
    .unwrap();
    assert_eq!(c.cache.capacity, 9);
    assert_eq!(c.jwt.leeway, 20);
    assert_eq!(
        c.allowed_origins,
        ["https://b.example", "https://c.example"]
    );
    let err = Config::load(&parse(&["--log-format", "yaml"])).unwrap_err();
    assert!(matches!(err, ConfigError::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("log_format"), "{err}");
}

/// Within one layer a value beats a file; any flag or variable beats the
/// config file, so a pepper file given by flag wins over a value in it.
#[test]
fn a_flag_pepper_file_beats_a_pepper_value_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.toml");
    std::fs::write(&path, "pepper = \"pepper-in-the-file-0123456789abcdef\"\n").unwrap();
    set_private(&path);
    let mut args = ServeArgs {
        config: Some(path),
        ..ServeArgs::default()
    };
    assert!(matches!(
        Config::load(&args).unwrap().pepper,
        SecretSource::Value(_)
    ));
    args.pepper_file = Some("flag.pepper".into());
    assert_eq!(
        Config::load(&args).unwrap().pepper,
        SecretSource::File("flag.pepper".into())
    );
}

#[test]
fn unknown_keys_and_unreadable_files_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.toml");
    std::fs::write(&path, "[jwt]\nisuer = \"x\"\n").unwrap();
    let err = Config::load(&ServeArgs {
        config: Some(path),
        ..ServeArgs::default()
    })
    .unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }), "{err:?}");
    assert!(err.to_string().contains("isuer"), "{err}");
    let err = Config::load(&ServeArgs {
        config: Some(dir.path().join("missing.toml")),
        ..ServeArgs::default()
    })
    .unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
}

#[test]
fn a_non_ascii_issuer_gives_its_origin_whole() {
    let origins = super::allowed_origins(None, "https://é.example/realm").unwrap();
    assert_eq!(origins, ["https://é.example"]);
    let refused = super::allowed_origins(Some(vec!["https://é.example/ü".into()]), "https://a");
    assert!(refused.is_err());
}

fn load_text(text: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(&ServeArgs {
        config: Some(path),
        ..ServeArgs::default()
    })
}

#[test]
fn client_certificates_are_read_from_tls() {
    let tls = "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n";
    let c = load_text(tls).unwrap();
    assert_eq!(c.tls.unwrap().client, crate::tls::ClientAuth::default());
    let c = load_text(&format!(
        "{tls}client_auth = \"require\"\nclient_ca_files = [\"ca.pem\"]\ncrl_files = [\"a.crl\"]\n"
    ))
    .unwrap();
    let client = c.tls.unwrap().client;
    assert_eq!(client.mode, crate::tls::ClientAuthMode::Require);
    assert_eq!(client.ca_files, vec![PathBuf::from("ca.pem")]);
    assert_eq!(client.crl_files, vec![PathBuf::from("a.crl")]);
    let err = load_text(&format!("{tls}client_auth = \"require\"\n")).unwrap_err();
    assert!(err.to_string().contains("client_ca_files"), "{err}");
    let err = load_text(&format!("{tls}client_auth = \"sometimes\"\n")).unwrap_err();
    assert!(err.to_string().contains("sometimes"), "{err}");
}

#[test]
fn the_handshake_takes_the_mtls_cas_and_crls_unless_told_otherwise() {
    let tls = "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n";
    let mtls = "[mtls]\ncas = { mesh = \"mesh.pem\", partners = \"p.pem\" }\n\
                crl_files = [\"mesh.crl\"]\n";
    let client = |text: &str| load_text(text).unwrap().tls.unwrap().client;
    let paths = |names: &[&str]| names.iter().map(PathBuf::from).collect::<Vec<_>>();
    // Named once, in [mtls]: the handshake asks for certificates of those CAs.
    for mode in ["request", "require"] {
        let c = client(&format!("{tls}client_auth = \"{mode}\"\n{mtls}"));
        assert_eq!(c.ca_files, paths(&["mesh.pem", "p.pem"]));
        assert_eq!(c.crl_files, paths(&["mesh.crl"]));
    }
    // Explicit settings win, and CAs of its own take no [mtls] CRL.
    let c = client(&format!(
        "{tls}client_auth = \"request\"\nclient_ca_files = [\"own.pem\"]\n{mtls}"
    ));
    assert_eq!(c.ca_files, paths(&["own.pem"]));
    assert!(c.crl_files.is_empty());
    let c = client(&format!(
        "{tls}client_auth = \"request\"\ncrl_files = [\"own.crl\"]\n{mtls}"
    ));
    assert_eq!(c.ca_files, paths(&["mesh.pem", "p.pem"]));
    assert_eq!(c.crl_files, paths(&["own.crl"]));
    let c = client(&format!(
        "{tls}client_auth = \"request\"\nclient_ca_files = []\n\
         client_auth_self_signed = true\n{mtls}"
    ));
    assert!(c.ca_files.is_empty() && c.crl_files.is_empty());
    // Not asking: nothing is taken, and nothing is refused.
    assert_eq!(
        client(&format!("{tls}{mtls}")),
        crate::tls::ClientAuth::default()
    );
    // Asking with no CA anywhere still says where one goes.
    let err = load_text(&format!("{tls}client_auth = \"require\"\n[mtls]\n")).unwrap_err();
    assert!(err.to_string().contains("[mtls] cas"), "{err}");
}

#[test]
fn the_gateway_listener_may_ask_for_client_certificates_on_its_own_terms() {
    use crate::tls::ClientAuthMode::{Off, Request, Require};
    let tls = "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n";
    let mtls = "[mtls]\ncas = { mesh = \"mesh.pem\" }\ncrl_files = [\"mesh.crl\"]\n";
    let gateway =
        |mode: &str| format!("[gateway]\nlisten = \"127.0.0.1:0\"\nclient_auth = \"{mode}\"\n");
    let files = |text: &str| load_text(text).unwrap().tls.unwrap();
    // The admin listener requests, the gateway's requires: same CAs.
    let f = files(&format!(
        "{tls}client_auth = \"request\"\n{mtls}{}",
        gateway("require")
    ));
    assert_eq!(f.client.mode, Request);
    let g = f.gateway_client.unwrap();
    assert_eq!(g.mode, Require);
    assert_eq!(
        (g.ca_files, g.crl_files),
        (f.client.ca_files, f.client.crl_files)
    );
    // No certificates asked on the admin listener at all.
    let f = files(&format!("{tls}{mtls}{}", gateway("require")));
    assert_eq!(f.client, crate::tls::ClientAuth::default());
    let g = f.gateway_client.unwrap();
    assert_eq!(
        (g.mode, g.ca_files),
        (Require, vec![PathBuf::from("mesh.pem")])
    );
    // Files given in [tls] serve a gateway that asks though [tls] does not.
    let f = files(&format!(
        "{tls}client_ca_files = [\"own.pem\"]\n{}",
        gateway("request")
    ));
    assert_eq!(
        f.gateway_client.unwrap().ca_files,
        vec![PathBuf::from("own.pem")]
    );
    // The other way round, and the same mode twice: one configuration.
    let f = files(&format!(
        "{tls}client_auth = \"require\"\n{mtls}{}",
        gateway("off")
    ));
    assert_eq!(f.gateway_client.unwrap().mode, Off);
    let f = files(&format!(
        "{tls}client_auth = \"request\"\n{mtls}{}",
        gateway("request")
    ));
    assert!(f.gateway_client.is_none());
}

#[test]
fn a_gateway_on_a_public_address_needs_tls_or_the_plain_http_exception() {
    let gateway = "[gateway]\nlisten = \"0.0.0.0:8443\"\n";
    let err = load_text(gateway).unwrap_err().to_string();
    assert!(
        err.contains("refusing to serve the gateway over plain HTTP"),
        "{err}"
    );
    let tls = "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n";
    assert!(load_text(&format!("{tls}{gateway}")).is_ok());
    assert!(load_text(&format!("allow_plain_http = true\n{gateway}")).is_ok());
}

#[test]
fn a_gateway_client_auth_that_could_not_work_is_refused() {
    let tls = "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n";
    let mtls = "[mtls]\ncas = { mesh = \"mesh.pem\" }\n";
    let gateway =
        |mode: &str| format!("[gateway]\nlisten = \"127.0.0.1:0\"\nclient_auth = \"{mode}\"\n");
    let refused = |text: String, why: &str| {
        let err = load_text(&text).unwrap_err().to_string();
        assert!(err.contains(why), "{err}");
    };
    refused(format!("{mtls}{}", gateway("require")), "needs TLS");
    refused(
        format!("{tls}{mtls}[gateway]\nclient_auth = \"require\"\n"),
        "needs [gateway] listen",
    );
    refused(
        format!("{tls}{}", gateway("require")),
        "[gateway] client_auth = \"require\" needs",
    );
    refused(
        format!("{tls}client_ca_files = [\"own.pem\"]\n{}", gateway("off")),
        "client_ca_files, crl_files",
    );
    refused(format!("{tls}{mtls}{}", gateway("sometimes")), "sometimes");
}

#[test]
fn forward_auth_reads_no_certificate_header_unless_told() {
    use crate::gateway::forward_auth::ProxyCertFormat;
    let c = load_text("").unwrap();
    assert_eq!(c.forward_auth.format(), ProxyCertFormat::None);
    let c = load_text("[forward_auth]\nclient_cert_header = \"envoy\"\n").unwrap();
    assert_eq!(c.forward_auth.format(), ProxyCertFormat::Envoy);
    let err = load_text("[forward_auth]\nclient_cert_header_name = \"x-a\"\n").unwrap_err();
    assert!(err.to_string().contains("client_cert_header"), "{err}");
    assert!(load_text("[forward_auth]\nclient_cert_header = \"apache\"\n").is_err());
}
