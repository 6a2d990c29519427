//! `docs/reference/configuration.md`, generated from the settings tables
//! (and, for the few settings outside them, from clap's own record of the
//! flag, so no flag or variable name is written twice). Regenerate with
//! `keygate config reference > docs/reference/configuration.md` or
//! `KEYGATE_BLESS=1 cargo test -p keygate --lib config::reference`.

use clap::{Args, Command};

use super::settings::SettingDoc;
use super::{ServeArgs, cluster::ClusterArgs, jwt::JwtArgs};

/// Every setting, top level first, then each table.
pub fn rows() -> Vec<SettingDoc> {
    let cmd = ServeArgs::augment_args(Command::new("keygate"));
    let mut rows = vec![from_clap(&cmd, "config", (None, "-"), "none")];
    rows.extend(super::ServeArgs::reference());
    rows.push(from_clap(
        &cmd,
        "allow_plain_http",
        (None, "allow_plain_http"),
        "false",
    ));
    rows.push(from_clap(&cmd, "tls_cert", (Some("tls"), "cert"), "none"));
    rows.push(from_clap(&cmd, "tls_key", (Some("tls"), "key"), "none"));
    rows.extend(super::tls::reference());
    rows.extend(super::tls::forward_auth_reference());
    rows.extend(super::KeyLimitsArgs::reference());
    rows.extend(JwtArgs::reference());
    rows.push(jwt_audiences());
    rows.extend(ClusterArgs::reference());
    rows.push(sessions());
    rows.push(dashboard());
    rows.push(ext_authz());
    rows.push(section(
        "limits",
        "Bounds on connections for both listeners (counts, timeouts, HTTP/2); see the \
         operations guide.",
    ));
    rows.extend(super::mtls::reference());
    rows.push(section(
        "gateway",
        "The authenticating reverse proxy: its listener and routes; see the gateway guide \
         and `keygate gateway check`.",
    ));
    rows.push(super::tls::gateway_reference());
    rows
}

/// A setting clap declares by itself (a switch, a pair of flags that is a
/// table in the file): its flag, variable and help are read back from clap.
fn from_clap(
    cmd: &Command,
    id: &str,
    (table, key): (Option<&str>, &str),
    default: &str,
) -> SettingDoc {
    let arg = cmd.get_arguments().find(|a| a.get_id() == id);
    let flag = arg.and_then(|a| a.get_long());
    let env = arg.and_then(|a| a.get_env()).map(|e| e.to_string_lossy());
    let help = arg
        .and_then(|a| a.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let mut row = SettingDoc::new(
        table,
        key,
        (env.as_deref(), flag),
        default.to_owned(),
        &[&help],
    );
    if key == "-" {
        row.name = id.to_owned();
    }
    row
}

/// `[sessions]`, whose keys and defaults are core's `SessionConfig`.
fn sessions() -> SettingDoc {
    let defaults = serde_json::to_value(keygate_core::sessions::SessionConfig::default())
        .ok()
        .and_then(|v| v.as_object().cloned())
        .map(|o| {
            o.iter()
                .map(|(k, v)| format!("`{k} = {v}`"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let mut row = section(
        "sessions",
        "Session lifetimes in seconds (absolute, idle, the reuse grace, how long dead \
         families are kept) and the live sessions one user may hold.",
    );
    row.default = defaults;
    row
}

/// `[dashboard]`, whose keys and defaults are `DashboardConfig`'s.
fn dashboard() -> SettingDoc {
    let mut row = section(
        "dashboard",
        "The admin dashboard at /dashboard on the admin listener: whether it is served, and \
         its sessions' idle and absolute lifetimes in seconds; see the dashboard guide.",
    );
    row.default = defaults_of(&super::dashboard::DashboardConfig::default());
    row
}

/// `[ext_authz]`, whose keys and defaults are `ExtAuthzFile`'s.
fn ext_authz() -> SettingDoc {
    let mut row = section(
        "ext_authz",
        "Envoy's external authorization over gRPC (envoy.service.auth.v3.Authorization/Check) \
         on its own listener, judged by the [gateway] routes as /v1/forward-auth is: `listen` \
         (off when unset), `tls` (serve with the [tls] certificate), `max_message_bytes` (a \
         larger CheckRequest is refused). Only trusted_proxies may ask; see the forward-auth \
         guide.",
    );
    row.default = defaults_of(&super::ext_authz::ExtAuthzFile::default());
    row
}

/// A section's defaults as `key = value` pairs, from its serialized form.
fn defaults_of(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .map(|o| {
            o.iter()
                .map(|(k, v)| format!("`{k} = {v}`"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn section(table: &str, meaning: &str) -> SettingDoc {
    let mut row = SettingDoc::new(None, "-", (None, None), "-".to_owned(), &[meaning]);
    row.name = format!("[{table}]");
    row.table = Some(table.to_owned());
    row.key = "*".to_owned();
    row
}

/// The reference page.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from the settings tables in crates/keygate/src/config; do not edit.\n     \
         Regenerate: keygate config reference > docs/reference/configuration.md\n     \
         (or KEYGATE_BLESS=1 cargo test -p keygate --lib config::reference) -->\n\n\
         Each setting is read, from lowest to highest precedence, from its default, the TOML \
         file named by `--config` (`KEYGATE_CONFIG`), its `KEYGATE_*` environment variable, \
         and its flag of `keygate serve` (and `keygate init`). A key in a table is written \
         under that table's header in the file (`[jwt]` then `issuer = ...`). Secrets have \
         no flag: a flag's value is visible to every user of the machine in `ps`; a config \
         file that holds one must be private (chmod 600). Unknown keys in the file are \
         refused.\n\n\
         | Setting | File key | Environment | Flag | Default | Meaning |\n\
         |---|---|---|---|---|---|\n",
    );
    for row in rows() {
        let file_key = match (row.table.as_deref(), row.key.as_str()) {
            (_, "-") => "-".to_owned(),
            (Some(t), "*") => format!("`[{t}]`"),
            (Some(t), k) => format!("`[{t}]` `{k}`"),
            (None, k) => format!("`{k}`"),
        };
        let code = |s: Option<&str>, prefix: &str| match s {
            Some(s) => format!("`{prefix}{s}`"),
            None => "-".to_owned(),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            row.name,
            file_key,
            code(row.env.as_deref(), ""),
            code(row.flag.as_deref(), "--"),
            cell(&row.default),
            cell(&row.meaning),
        ));
    }
    out
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// `[[jwt.audiences]]`, an array of tables outside the settings macro.
fn jwt_audiences() -> SettingDoc {
    SettingDoc::new(
        Some("jwt"),
        "audiences",
        (None, None),
        "[]".to_owned(),
        &[
            "`[[jwt.audiences]]`: audiences beyond `audience` a client may ask a token for \
         (RFC 8707 `resource`, an absolute URI): `audience`, optional `encrypt = { jwk | \
         jwk_file | jwks_url, kid?, enc? }` (its tokens are nested JWTs encrypted to that key) \
         and `decrypt_jwk_file` (a private JWK or PEM key keygate reads them with). See the \
         sessions and OAuth guide.",
        ],
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const PATH: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/reference/configuration.md"
    );

    #[test]
    fn the_reference_page_is_up_to_date() {
        let want = markdown();
        if std::env::var_os("KEYGATE_BLESS").is_some() {
            std::fs::write(PATH, &want).unwrap();
            return;
        }
        let have = std::fs::read_to_string(PATH).unwrap_or_default();
        assert!(
            have == want,
            "docs/reference/configuration.md is out of date with the settings tables; \
             regenerate it with `KEYGATE_BLESS=1 cargo test -p keygate --lib config::reference` \
             (or `keygate config reference > docs/reference/configuration.md`)"
        );
    }

    #[test]
    fn every_flag_of_serve_is_in_the_reference() {
        let rows = rows();
        let cmd = ServeArgs::augment_args(Command::new("keygate"));
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            assert!(
                rows.iter().any(|r| r.flag.as_deref() == Some(long)),
                "--{long} is missing from the reference"
            );
        }
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        for name in [
            "pepper",
            "master_key",
            "cluster.redis_url",
            "keys.max_per_tenant",
        ] {
            assert!(names.contains(&name), "{name}");
        }
    }

    #[test]
    fn help_carries_the_default_from_the_table() {
        let cmd = ServeArgs::augment_args(Command::new("keygate"));
        let help = |id: &str| {
            cmd.get_arguments()
                .find(|a| a.get_id() == id)
                .and_then(|a| a.get_help())
                .map(|h| h.to_string())
                .unwrap()
        };
        assert!(help("listen").ends_with("[default: 127.0.0.1:8080]"));
        assert!(help("body_limit_bytes").ends_with("[default: 65536]"));
        assert!(help("audience").ends_with("[default: the issuer]"));
    }
}
