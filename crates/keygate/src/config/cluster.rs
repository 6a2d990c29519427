//! The `[cluster]` settings: this node's id, the staleness bound S and what
//! happens past it, and the shared Redis. Flags are `--cluster-<name>` (and
//! `--node-id`), the environment `KEYGATE_NODE_ID`,
//! `KEYGATE_CLUSTER_<NAME>` and `KEYGATE_REDIS_URL` (environment only: a
//! Redis URL may carry a password, and a flag's value shows in `ps`).

use keygate_core::freshness::StalePolicy;
use keygate_core::ratelimit::Unavailable;

use super::error::ConfigError;
use super::settings::settings;

/// S by default: how long a node may answer from its caches without
/// having confirmed it applied every committed change.
pub const DEFAULT_CONFIRM_WITHIN_MS: u64 = 2000;
const CONFIRM_WITHIN_RANGE: std::ops::RangeInclusive<u64> = 500..=30_000;
const DEFAULT_STALE_SERVE_MAX_SECS: u64 = 600;
const DEFAULT_REDIS_TIMEOUT_MS: u64 = 50;
/// A node whose heartbeat is older than this is not live (for `?wait=all`,
/// `/v1/cluster` and the limiter's share), unless S + 1 s is longer: a node
/// must not drop out of `wait=all` while it may still serve from cache.
const MIN_LIVE_TIMEOUT_MS: u64 = 3000;

settings! {
    table: Some("cluster");
    pub struct ClusterArgs {}
    /// `[cluster]` in the TOML file.
    pub struct ClusterFile {}
    /// The `[cluster]` settings layered, before they are checked.
    pub struct ClusterLayered;
    fixed {
        /// S: the longest a node answers from its caches without confirming
        /// it applied every committed change, 500 to 30000 ms.
        confirm_within_ms: u64 = DEFAULT_CONFIRM_WITHIN_MS,
            flag "cluster-confirm-within-ms", env "KEYGATE_CLUSTER_CONFIRM_WITHIN_MS",
            value "MS";
        /// Past S without confirmation: fail_closed (503) or serve_cached.
        stale_policy: String = "fail_closed".to_owned(),
            flag "cluster-stale-policy", env "KEYGATE_CLUSTER_STALE_POLICY", value "POLICY";
    }
    derived {
        /// This node's name in the cluster: 1 to 128 of A-Z a-z 0-9 _ - . :
        node_id: String = "`<hostname>-<pid>-<random>`",
            flag "node-id", env "KEYGATE_NODE_ID", value "ID";
    }
    secret {
        /// The shared Redis (redis://, rediss:// or unix://); it may carry a
        /// password, so the file holding it must be private (chmod 600).
        redis_url: String, env "KEYGATE_REDIS_URL";
    }
    file_only {
        /// With stale_policy = serve_cached: the longest a node serves from
        /// its caches past S, 1 to 86400 seconds.
        stale_serve_max_seconds: u64 = DEFAULT_STALE_SERVE_MAX_SECS;
        /// Every key keygate writes in Redis starts with `<prefix>:`.
        redis_prefix: String = "kg".to_owned();
        /// How long a Redis call may take before it counts as failed, 1 to
        /// 5000 ms.
        redis_timeout_ms: u64 = DEFAULT_REDIS_TIMEOUT_MS;
        /// What Redis-limited rate limits do while Redis cannot answer:
        /// local_share, deny or allow (routes may say otherwise).
        on_limiter_unavailable: String = "local_share".to_owned();
    }
}

impl ClusterArgs {
    /// Takes the Redis URL from KEYGATE_REDIS_URL.
    pub fn with_secrets_from_env(mut self) -> Self {
        self.secrets_from_env();
        self
    }
}

impl ClusterFile {
    /// A Redis URL with a password: the file must then be private.
    pub fn holds_secret(&self) -> bool {
        self.redis_url.as_deref().is_some_and(|u| u.contains('@'))
    }
}

/// The shared Redis; the URL may hold a password and never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisSettings {
    pub url: zeroize::Zeroizing<String>,
    /// Every key keygate writes starts with `<prefix>:`.
    pub prefix: String,
    pub timeout_ms: u64,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("prefix", &self.prefix)
            .field("timeout_ms", &self.timeout_ms)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub node_id: String,
    /// S, in milliseconds.
    pub confirm_within_ms: i64,
    pub stale_policy: StalePolicy,
    pub redis: Option<RedisSettings>,
    /// What Redis-limited limits do while Redis cannot answer (routes may
    /// say otherwise).
    pub on_limiter_unavailable: Unavailable,
}

impl ClusterConfig {
    /// How old a heartbeat may be for its node to count as live.
    pub fn live_timeout_ms(&self) -> i64 {
        self.confirm_within_ms
            .saturating_add(1000)
            .max(MIN_LIVE_TIMEOUT_MS as i64)
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        resolve(&ClusterArgs::default(), ClusterFile::default()).unwrap_or(Self {
            node_id: "keygate".into(),
            confirm_within_ms: DEFAULT_CONFIRM_WITHIN_MS as i64,
            stale_policy: StalePolicy::FailClosed,
            redis: None,
            on_limiter_unavailable: Unavailable::LocalShare,
        })
    }
}

pub fn resolve(args: &ClusterArgs, mut file: ClusterFile) -> Result<ClusterConfig, ConfigError> {
    let l = args.layer(&mut file);
    let node_id = match l.node_id {
        Some(id) => check_node_id(id)?,
        None => default_node_id(),
    };
    if !CONFIRM_WITHIN_RANGE.contains(&l.confirm_within_ms) {
        return Err(ConfigError::invalid(
            "cluster.confirm_within_ms: between 500 and 30000",
        ));
    }
    let stale_policy = stale_policy(&l.stale_policy, l.stale_serve_max_seconds)?;
    let fallback = l.on_limiter_unavailable.as_str();
    let on_limiter_unavailable = Unavailable::parse(fallback).ok_or_else(|| {
        ConfigError::invalid(format!(
            "cluster.on_limiter_unavailable: {fallback:?} is not local_share, deny or allow"
        ))
    })?;
    let redis = redis_settings(l.redis_url, l.redis_prefix, l.redis_timeout_ms)?;
    Ok(ClusterConfig {
        node_id,
        confirm_within_ms: i64::try_from(l.confirm_within_ms).unwrap_or(2000),
        stale_policy,
        redis,
        on_limiter_unavailable,
    })
}

fn stale_policy(name: &str, max_stale_secs: u64) -> Result<StalePolicy, ConfigError> {
    if !(1..=86_400).contains(&max_stale_secs) {
        return Err(ConfigError::invalid(
            "cluster.stale_serve_max_seconds: between 1 and 86400",
        ));
    }
    match name {
        "fail_closed" => Ok(StalePolicy::FailClosed),
        "serve_cached" => Ok(StalePolicy::ServeCached {
            max_ms: i64::try_from(max_stale_secs).unwrap_or(600) * 1000,
        }),
        other => Err(ConfigError::invalid(format!(
            "cluster.stale_policy: {other:?} is not fail_closed or serve_cached"
        ))),
    }
}

fn redis_settings(
    url: Option<String>,
    prefix: String,
    timeout_ms: u64,
) -> Result<Option<RedisSettings>, ConfigError> {
    let Some(url) = url.filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    if !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("unix://"))
    {
        return Err(ConfigError::invalid(
            "cluster.redis_url: must start with redis://, rediss:// or unix://",
        ));
    }
    if prefix.is_empty()
        || prefix.len() > 64
        || !prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    {
        return Err(ConfigError::invalid(
            "cluster.redis_prefix: 1 to 64 of A-Z a-z 0-9 _ - .",
        ));
    }
    if !(1..=5000).contains(&timeout_ms) {
        return Err(ConfigError::invalid(
            "cluster.redis_timeout_ms: between 1 and 5000",
        ));
    }
    Ok(Some(RedisSettings {
        url: url.into(),
        prefix,
        timeout_ms,
    }))
}

fn check_node_id(id: String) -> Result<String, ConfigError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b));
    if ok {
        Ok(id)
    } else {
        Err(ConfigError::invalid(
            "cluster.node_id: 1 to 128 of A-Z a-z 0-9 _ - . :",
        ))
    }
}

/// `<hostname>-<pid>-<random>`: unique even for two processes started on one
/// machine with the same pid namespace reused.
fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| {
            h.trim()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
                .take(64)
                .collect::<String>()
        })
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "keygate".to_owned());
    let random = keygate_core::keys::apikey::random_id("", 6).unwrap_or_default();
    format!("{host}-{}-{random}", std::process::id())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn file(toml: &str) -> ClusterFile {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn defaults_are_fail_closed_two_seconds_and_no_redis() {
        let c = resolve(&ClusterArgs::default(), ClusterFile::default()).unwrap();
        assert_eq!(c.confirm_within_ms, 2000);
        assert_eq!(c.stale_policy, StalePolicy::FailClosed);
        assert!(c.redis.is_none());
        assert_eq!(c.on_limiter_unavailable, Unavailable::LocalShare);
        assert_eq!(c.live_timeout_ms(), 3000);
        assert!(c.node_id.contains(&std::process::id().to_string()));
        assert!(check_node_id(c.node_id).is_ok());
    }

    #[test]
    fn the_file_is_read_and_flags_win() {
        let f = file(
            "node_id = \"a\"\nconfirm_within_ms = 5000\nstale_policy = \"serve_cached\"\n\
             stale_serve_max_seconds = 60\nredis_url = \"redis://:pw@h:6379\"\nredis_prefix = \"t1\"\n\
             on_limiter_unavailable = \"deny\"\n",
        );
        let args = ClusterArgs {
            node_id: Some("b".into()),
            ..ClusterArgs::default()
        };
        let c = resolve(&args, f).unwrap();
        assert_eq!(c.node_id, "b");
        assert_eq!(c.confirm_within_ms, 5000);
        assert_eq!(c.live_timeout_ms(), 6000);
        assert_eq!(c.stale_policy, StalePolicy::ServeCached { max_ms: 60_000 });
        let redis = c.redis.unwrap();
        assert_eq!(redis.prefix, "t1");
        assert_eq!(redis.timeout_ms, 50);
        assert!(!format!("{redis:?}").contains("pw"), "the URL never prints");
        assert_eq!(c.on_limiter_unavailable, Unavailable::Deny);
    }

    #[test]
    fn bad_values_are_explained() {
        for (toml, needle) in [
            ("confirm_within_ms = 100", "confirm_within_ms"),
            ("confirm_within_ms = 30001", "confirm_within_ms"),
            ("stale_policy = \"sometimes\"", "stale_policy"),
            ("redis_url = \"http://x\"", "redis_url"),
            (
                "redis_url = \"redis://x\"\nredis_prefix = \"a b\"",
                "redis_prefix",
            ),
            (
                "on_limiter_unavailable = \"maybe\"",
                "on_limiter_unavailable",
            ),
            ("node_id = \"a b\"", "node_id"),
        ] {
            let err = resolve(&ClusterArgs::default(), file(toml)).unwrap_err();
            assert!(err.to_string().contains(needle), "{toml}: {err}");
        }
        assert!(toml::from_str::<ClusterFile>("nope = 1").is_err());
    }
}
