//! Issue 12's flow in a real browser: sign in with the root key, create a
//! key, see its secret once, copy it, find only the prefix afterwards,
//! verify it over the API, rotate with a grace period, revoke, and find
//! each step in the audit log under this session's key.

use super::Browser;
use super::dash::{self, url};
use crate::helpers::TestApp;

crate::on_both_backends!(a_key_from_creation_to_revocation);

async fn a_key_from_creation_to_revocation(app: TestApp) {
    let Some(b) = Browser::start().await else {
        return;
    };
    let root_id = dash::key_id_of(&app, &app.root_key).await;
    dash::sign_in(&b, &app, &app.root_key).await;
    b.click("a[href$='/dashboard/keys']").await;
    b.click("a[href$='/keys/new']").await;
    let secret = dash::create_key(&b, "browser flow", "qa-team", "orders:read").await;
    assert!(secret.starts_with("kg_live_"), "{secret}");
    let id = dash::shown_key_id(&b).await;
    let page_url = b.current_url().await;
    assert!(
        !page_url.contains(&secret) && !b.client().title().await.expect("title").contains(&secret)
    );
    assert_eq!(
        b.focused_id().await,
        "secret",
        "the secret box has the focus"
    );

    // Copy: the button appears with scripts on and fills the clipboard.
    b.grant_clipboard(&app.base).await;
    b.click("button.copy").await;
    b.wait_for(".copied:not(:empty)").await;
    assert_eq!(
        b.find(".copied").await.text().await.expect("status"),
        "Copied"
    );
    assert_eq!(b.clipboard().await, secret);

    // Leaving the page asks first (headless Chromium shows no dialog, so
    // the check is the cancelled beforeunload event itself).
    assert!(
        dash::leaving_is_warned(&b).await,
        "the show-once page warns before leaving"
    );

    // Afterwards: the prefix only, on the list and on the key's page.
    let prefix = &secret[..12];
    for path in ["/keys?status=all".to_owned(), format!("/keys/{id}")] {
        b.goto(&url(&app, &path)).await;
        b.client().refresh().await.expect("reload");
        let html = b.source().await;
        assert!(html.contains(prefix), "{path} shows the prefix");
        assert!(!html.contains(&secret), "{path} shows the secret again");
    }
    assert!(
        !dash::leaving_is_warned(&b).await,
        "only the show-once page warns"
    );
    assert_eq!(app.verify_code(&secret).await, "VALID");

    // Rotate with a 10-minute grace: both secrets verify.
    b.find("#grace")
        .await
        .select_by_value("600")
        .await
        .expect("grace");
    b.click("form[action$='/rotate'] button[type=submit]").await;
    b.wait_for("[data-show-once] #secret").await;
    let rotated = b.value("#secret").await;
    assert_ne!(rotated, secret);
    assert_eq!(app.verify_code(&rotated).await, "VALID");
    assert_eq!(
        app.verify_code(&secret).await,
        "VALID",
        "within the grace period"
    );
    b.click("a.done").await;

    // Revoke after the confirmation page.
    b.click("a[href$='/revoke']").await;
    b.wait_for("form[action$='/revoke'] button.danger").await;
    b.click("form[action$='/revoke'] button.danger").await;
    b.wait_for("h1 .badge.revoked").await;
    assert_eq!(app.verify_code(&rotated).await, "REVOKED");
    assert_eq!(app.verify_code(&secret).await, "REVOKED");

    // The audit page lists each step, with this session's key as actor.
    let events = dash::audit_of(&app, &id).await;
    b.goto(&url(&app, &format!("/audit?target={id}"))).await;
    let rows = b.find_all("table.audit tbody tr").await;
    let mut seen = Vec::new();
    for row in rows {
        let action = row
            .find(fantoccini::Locator::Css("th"))
            .await
            .expect("action")
            .text()
            .await
            .expect("text");
        let actor = row
            .find(fantoccini::Locator::Css("td:nth-of-type(2) code"))
            .await
            .expect("actor");
        assert_eq!(actor.text().await.expect("actor text"), root_id, "{action}");
        seen.push(action);
    }
    for action in ["key.created", "key.rotated", "key.revoked"] {
        assert!(
            seen.iter().any(|a| a == action),
            "{action} on the audit page: {seen:?}"
        );
    }
    assert_eq!(
        seen.len(),
        events.len(),
        "the page lists what the API does: {seen:?}"
    );
    b.finish().await;
}
