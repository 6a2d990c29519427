//! The routes page shows the gateway's own figures for the last minute.

use reqwest::StatusCode;

use super::Dash;
use crate::gateway_upstream::Gw;
use crate::on_both_backends;

on_both_backends!(spawn = crate::gateway_upstream::spawn_gateway; routes_show_rate_errors_and_p99_after_proxied_requests);

async fn routes_show_rate_errors_and_p99_after_proxied_requests(gw: Gw) {
    let dash = Dash::login(&gw.app, &gw.app.root_key).await;
    let before = dash.get("/dashboard/routes").await;
    assert_eq!(before.status, StatusCode::OK);
    assert!(
        before.body.contains("<th scope=\"row\">open</th>"),
        "{}",
        before.body
    );
    for _ in 0..10 {
        let res = gw.get("/open/anything").send().await.unwrap();
        assert!(res.status().is_success(), "{}", res.status());
    }
    for _ in 0..3 {
        let res = gw.get("/down/x").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    }
    let page = dash.get("/dashboard/routes").await;
    let row_of = |name: &str| {
        page.body
            .split("<tr>")
            .find(|r| r.contains(&format!("<th scope=\"row\">{name}</th>")))
            .unwrap()
            .to_owned()
    };
    let row = row_of("open");
    // Ten requests within the first window slot: a positive rate, no 5xx, a p99.
    assert!(!row.contains("<td class=\"num\">0.00</td>"), "{row}");
    assert!(row.contains("<td class=\"num\">0.0 %</td>"), "{row}");
    assert!(row.contains(" ms</td>"), "{row}");
    // Every answer of the unreachable upstream's route was a 502.
    let down = row_of("down");
    assert!(down.contains("<td class=\"num\">100.0 %</td>"), "{down}");
    // A route that served nothing: no rate, no p99.
    let quiet = row_of("strip");
    assert!(
        quiet.contains("<td class=\"num\">0.00</td>") && quiet.contains("<td class=\"num\">—</td>"),
        "{quiet}"
    );
}
