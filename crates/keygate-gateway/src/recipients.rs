//! The upstream keys routes fetch from a JWKS URL (`internal_token_encryption
//! = { jwks_url = ... }`): started with the route table, kept across a
//! reload when a route still names the same source, fetched at start.
//!
//! Why a reload keeps them: a new `RemoteRecipient` has no key until its
//! first fetch, and its route would answer 503 for that long; a SIGHUP
//! that changes nothing about a route's key must not do that.

use std::sync::Arc;

use super::config::Route;

/// For each route with a `jwks_url` key: the one an old route had for the
/// same source, if any, else a new one whose refresher starts now (when a
/// tokio runtime runs; `keygate gateway check` has none and fetches
/// nothing).
pub(crate) fn adopt(routes: &mut [Route], old: &[Arc<Route>]) {
    let runtime = tokio::runtime::Handle::try_current().is_ok();
    for route in routes {
        let Some(new) = &route.internal_token_encryption else {
            continue;
        };
        if new.remote().is_none() {
            continue;
        }
        let kept = old
            .iter()
            .filter_map(|r| r.internal_token_encryption.as_ref())
            .find(|enc| enc.same_remote(new))
            .cloned();
        match kept {
            Some(kept) => route.internal_token_encryption = Some(kept),
            None => {
                if let (true, Some(remote)) = (runtime, new.remote()) {
                    // The task ends once the route's last table is dropped.
                    drop(remote.spawn_refresher());
                }
            }
        }
    }
}

/// Fetches every route's `jwks_url` key not fetched yet, all at once; a
/// failure is logged by the fetch and leaves its route answering 503
/// `upstream_key_unavailable` until the refresher gets the key.
pub(crate) async fn fetch_missing(routes: &[Arc<Route>]) {
    let mut fetches = tokio::task::JoinSet::new();
    for remote in routes
        .iter()
        .filter_map(|r| r.internal_token_encryption.as_ref()?.remote())
        .filter(|remote| remote.encrypter().is_none())
    {
        let remote = remote.clone();
        fetches.spawn(async move {
            let _ = remote.refresh().await;
        });
    }
    while fetches.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn routes(url: &str, kid: &str) -> Vec<Route> {
        let text = format!(
            "[gateway]\n[[gateway.routes]]\nname = \"r\"\nmatch = {{ path_prefix = \"/r\" }}\n\
             upstream = \"http://h:1\"\nauth = \"api_key\"\n\
             internal_token_encryption = {{ jwks_url = \"{url}\", kid = \"{kid}\" }}\n"
        );
        crate::config::parse_text(&text).unwrap().unwrap().routes
    }

    fn encryption(route: &Route) -> &Arc<crate::config::TokenEncryption> {
        route.internal_token_encryption.as_ref().unwrap()
    }

    /// A reload that leaves a route's source alone keeps the key fetched
    /// for it (no 503 while refetching); a changed source starts afresh.
    #[test]
    fn a_reload_keeps_the_key_of_an_unchanged_source() {
        let url = "https://up.internal/jwks";
        let old: Vec<Arc<Route>> = routes(url, "a").into_iter().map(Arc::new).collect();
        let mut same = routes(url, "a");
        adopt(&mut same, &old);
        assert!(Arc::ptr_eq(encryption(&same[0]), encryption(&old[0])));
        let mut other_kid = routes(url, "b");
        adopt(&mut other_kid, &old);
        assert!(!Arc::ptr_eq(encryption(&other_kid[0]), encryption(&old[0])));
        let mut other_url = routes("https://up2.internal/jwks", "a");
        adopt(&mut other_url, &old);
        assert!(!Arc::ptr_eq(encryption(&other_url[0]), encryption(&old[0])));
    }
}
