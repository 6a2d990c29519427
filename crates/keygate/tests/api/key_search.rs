//! `GET /v1/keys?q=&status=&expires_before=`: search and filters over
//! HTTP, and the 400s for values that cannot be meant.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;

crate::on_both_backends!(list_searches_and_filters, bad_filter_values_are_400s);

fn names(res: &Value) -> Vec<String> {
    res["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn list_searches_and_filters(app: TestApp) {
    let soon = time::OffsetDateTime::now_utc() + time::Duration::days(2);
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(30);
    let rfc = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    app.create_key(json!({"name": "Billing API", "owner": "alice", "expires_at": rfc(soon)}))
        .await;
    app.create_key(json!({"name": "50%_off", "owner": "bob", "expires_at": rfc(later)}))
        .await;
    let (gone, _) = app
        .create_key(json!({"name": "billing old", "owner": "carol"}))
        .await;
    app.post(&format!("/v1/keys/{gone}/revoke"), json!({}))
        .await;

    let res = app.get("/v1/keys?q=BILLING").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(names(&res.body), ["Billing API"]);
    let res = app.get("/v1/keys?q=billing&status=revoked").await;
    assert_eq!(names(&res.body), ["billing old"]);
    // `%` is literal (sent encoded), not a wildcard.
    let res = app.get("/v1/keys?q=%25_").await;
    assert_eq!(names(&res.body), ["50%_off"]);
    let res = app.get("/v1/keys?q=CAROL&include_revoked=true").await;
    assert_eq!(names(&res.body), ["billing old"]);
    let before = rfc(time::OffsetDateTime::now_utc() + time::Duration::days(7));
    let res = app
        .get(&format!("/v1/keys?status=active&expires_before={before}"))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(names(&res.body), ["Billing API"]);
    let res = app.get("/v1/keys?status=expired").await;
    assert!(names(&res.body).is_empty());
}

async fn bad_filter_values_are_400s(app: TestApp) {
    let long = "x".repeat(300);
    for query in [
        "status=gone",
        "status=",
        "expires_before=tomorrow",
        "expires_before=1700000000",
        "q=a%00b",
        &format!("q={long}"),
    ] {
        let res = app.get(&format!("/v1/keys?{query}")).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{query}: {}", res.body);
    }
}
