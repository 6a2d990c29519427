//! Request ids on both listeners: made random (a counter would show how
//! many requests the server handles and in what order), and a client's own
//! id kept only when it is short and plain.

use std::collections::HashSet;

use crate::gateway_upstream::Gw;
use crate::helpers::Response;
use crate::on_both_backends;

on_both_backends!(
    spawn = crate::gateway_upstream::spawn_gateway;
    request_ids_are_random_on_both_listeners,
);

fn id_of(res: &Response) -> String {
    res.headers["x-request-id"].to_str().unwrap().to_owned()
}

/// `req_` and 128 bits in hex; no two ids share any prefix worth naming.
fn assert_random(ids: &[String]) {
    let mut heads = HashSet::new();
    for id in ids {
        let hex = id.strip_prefix("req_").unwrap_or_else(|| panic!("{id}"));
        assert_eq!(hex.len(), 32, "{id}");
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        // 40 ids, 32-bit heads: a repeat has odds of about 2e-7.
        assert!(heads.insert(hex[..8].to_owned()), "{id} repeats a head");
    }
}

async fn request_ids_are_random_on_both_listeners(gw: Gw) {
    let mut admin = Vec::new();
    let mut gateway = Vec::new();
    for _ in 0..20 {
        let res = gw
            .app
            .raw(gw.app.http.get(format!("{}/healthz", gw.app.base)))
            .await;
        admin.push(id_of(&res));
        gateway.push(id_of(&gw.app.raw(gw.get("/open/id")).await));
    }
    assert_random(&[admin, gateway].concat());

    // A client's id is kept when plain, replaced when too long or odd.
    let kept = gw
        .app
        .raw(gw.get("/open/id").header("x-request-id", "trace-123"))
        .await;
    assert_eq!(id_of(&kept), "trace-123");
    for bad in ["a".repeat(129), "x\"y".into(), "é".into()] {
        let res = gw
            .app
            .raw(gw.get("/open/id").header("x-request-id", bad.as_str()))
            .await;
        assert_random(&[id_of(&res)]);
        let res = gw
            .app
            .raw(
                gw.app
                    .http
                    .get(format!("{}/healthz", gw.app.base))
                    .header("x-request-id", bad.as_str()),
            )
            .await;
        assert_random(&[id_of(&res)]);
    }
}
