//! The dashboard's overview, users, signing keys, audit and routes pages,
//! and the usage charts on the keys pages, driven over HTTP as a browser
//! with scripts off would: a session cookie from the login form, the
//! same-origin `Origin` on every POST, the form token in every form.

mod charts;
mod pages;
mod render_times;
mod routes;
mod users;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use serde_json::json;

use crate::helpers::TestApp;

/// A signed-in dashboard session against one app.
pub struct Dash {
    pub base: String,
    http: reqwest::Client,
    cookie: String,
    pub csrf: String,
}

pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: String,
}

impl Dash {
    /// Signs in with `key` through the login form.
    pub async fn login(app: &TestApp, key: &str) -> Dash {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let res = http
            .post(format!("{}/dashboard/login", app.base))
            .header(ORIGIN, &app.base)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string([("key", key), ("next", "/dashboard")]).unwrap())
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_redirection(),
            "login answered {}",
            res.status()
        );
        let cookie = res
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("__Host-keygate-dash="))
            .and_then(|c| c.split(';').next())
            .expect("session cookie")
            .to_owned();
        let mut dash = Dash {
            base: app.base.clone(),
            http,
            cookie,
            csrf: String::new(),
        };
        let page = dash.get("/dashboard/keys").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        dash.csrf = form_token(&page.body).expect("form token on the page");
        dash
    }

    pub async fn get(&self, path: &str) -> Page {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .unwrap();
        Self::page(res).await
    }

    /// Posts a form, with this session's token added, from the dashboard's
    /// own origin.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &self.csrf));
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .header(ORIGIN, &self.base)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(&form).unwrap())
            .send()
            .await
            .unwrap();
        Self::page(res).await
    }

    async fn page(res: reqwest::Response) -> Page {
        let status = res.status();
        let location = res
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Page {
            status,
            location,
            body: res.text().await.unwrap(),
        }
    }
}

/// The value of the first `name="csrf"` field.
pub fn form_token(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")?;
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// A tenant admin key of `tenant`; returns (id, secret).
pub async fn tenant_admin(app: &TestApp, tenant: &str) -> (String, String) {
    app.create_key(json!({"name": format!("{tenant}-admin"), "owner": "ops", "scopes": ["admin"], "tenant": tenant}))
        .await
}

/// The id of the key a secret belongs to, as the API shows it.
pub async fn root_key_id(app: &TestApp) -> String {
    let res = app
        .post("/v1/keys/verify", json!({ "key": app.root_key }))
        .await;
    res.body["key_id"].as_str().expect("key_id").to_owned()
}
