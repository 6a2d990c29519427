//! The usage charts show what verification counted: the key page's stacked
//! bars and table, and the keys table's sparklines (one per row).

use reqwest::StatusCode;
use serde_json::json;

use super::Dash;
use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    chart_bars_and_tables_equal_the_usage,
    keys_table_rows_have_sparklines
);

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

async fn chart_bars_and_tables_equal_the_usage(app: TestApp) {
    let (id, secret) = app
        .create_key(json!({"name": "charted", "owner": "o", "scopes": ["read"]}))
        .await;
    for _ in 0..3 {
        assert_eq!(app.verify_code(&secret).await, "VALID");
    }
    assert_eq!(
        app.verify(&secret, &["write"]).await["code"],
        "INSUFFICIENT_SCOPE"
    );
    app.post(&format!("/v1/keys/{id}/revoke"), json!({})).await;
    for _ in 0..2 {
        assert_eq!(app.verify_code(&secret).await, "REVOKED");
    }
    let dash = Dash::login(&app, &app.root_key).await;
    let page = dash.get(&format!("/dashboard/keys/{id}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let body = &page.body;
    // All in this hour: one bar, one segment per outcome seen.
    assert_eq!(count(body, "<rect class=\"seg o-valid\" x="), 1, "{body}");
    assert_eq!(
        count(body, "<rect class=\"seg o-insufficient-scope\" x="),
        1
    );
    assert_eq!(count(body, "<rect class=\"seg o-revoked\" x="), 1);
    assert_eq!(count(body, "<rect class=\"seg o-rate-limited\" x="), 0);
    assert!(
        body.contains("last 24 hours: 6 (VALID 3, REVOKED 2, INSUFFICIENT_SCOPE 1)"),
        "{body}"
    );
    // The table's total row: VALID, RATE_LIMITED, USAGE_EXCEEDED, REVOKED,
    // EXPIRED, INSUFFICIENT_SCOPE, total.
    assert!(body.contains(
        "<tfoot><tr><th scope=\"row\">Total</th><td>3</td><td>0</td><td>0</td><td>2</td><td>0</td><td>1</td><td>6</td></tr></tfoot>"
    ), "{body}");
    // 24 hourly rows in the table.
    assert_eq!(count(body, " UTC</th><td>"), 24);
    // The daily window: 7 rows, the same totals.
    let week = dash.get(&format!("/dashboard/keys/{id}?usage=7d")).await;
    assert_eq!(
        count(&week.body, "<tr><th scope=\"row\">20"),
        7,
        "{}",
        week.body
    );
    assert!(
        week.body
            .contains("last 7 days: 6 (VALID 3, REVOKED 2, INSUFFICIENT_SCOPE 1)")
    );
    assert_eq!(
        dash.get(&format!("/dashboard/keys/{id}?usage=1y"))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

async fn keys_table_rows_have_sparklines(app: TestApp) {
    let (_, busy) = app
        .create_key(json!({"name": "busy", "owner": "busy-owner"}))
        .await;
    app.create_key(json!({"name": "idle", "owner": "idle-owner"}))
        .await;
    for _ in 0..4 {
        app.verify_code(&busy).await;
    }
    let dash = Dash::login(&app, &app.root_key).await;
    let page = dash.get("/dashboard/keys?owner=busy-owner").await;
    assert!(
        page.body.contains(
            "<title>4 verifications in the last 24 hours, at most 4 in one interval</title>"
        ),
        "{}",
        page.body
    );
    assert_eq!(count(&page.body, "<rect class=\"spark-bar\""), 1);
    let page = dash.get("/dashboard/keys?owner=idle-owner").await;
    assert!(
        page.body
            .contains("<title>No verifications in the last 24 hours</title>")
    );
    // The overview's chart counts every key's verifications (the dashboard
    // login itself verifies the root key, so at least these four VALID).
    let overview = dash.get("/dashboard").await;
    assert!(
        overview
            .body
            .contains("Verifications by outcome, last 24 hours, all keys: "),
        "{}",
        overview.body
    );
}
