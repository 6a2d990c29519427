//! The admin dashboard over plain HTTP (no browser): its security layer,
//! sign-in, and the keys pages. `Dash` plays a browser with scripts off: it
//! keeps the session cookie, sends Origin and Sec-Fetch-Site as a browser
//! does on same-origin posts, follows no redirects (tests look at them),
//! and scrapes the form token from pages.

mod keys;
mod login;
mod security;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

use crate::helpers::TestApp;

pub const COOKIE: &str = "__Host-keygate-dash";

pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The first `name="csrf"` value on the page.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("a form token on the page") + marker.len();
        let end = self.body[start..].find('"').expect("end of the token");
        self.body[start..start + end].to_owned()
    }
}

pub struct Dash {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: Option<String>,
}

impl Dash {
    pub fn new(app: &TestApp) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            http,
            base: app.base.clone(),
            cookie: None,
        }
    }

    /// Signed in with `key`, or a panic with the page that refused it.
    pub async fn signed_in(app: &TestApp, key: &str) -> Self {
        let mut dash = Self::new(app);
        let page = dash.login(key).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        dash
    }

    async fn collect(&mut self, res: reqwest::Response) -> Page {
        let status = res.status();
        let headers = res.headers().clone();
        for value in headers.get_all(SET_COOKIE) {
            let text = value.to_str().expect("cookie text");
            let pair = text.split(';').next().unwrap_or("");
            if let Some(v) = pair.strip_prefix(&format!("{COOKIE}=")) {
                self.cookie = (!v.is_empty()).then(|| v.to_owned());
            }
        }
        let body = res.text().await.expect("body");
        Page {
            status,
            headers,
            body,
        }
    }

    fn with_cookie(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cookie {
            Some(c) => req.header("cookie", format!("{COOKIE}={c}")),
            None => req,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let req = self.with_cookie(self.http.get(format!("{}{path}", self.base)));
        let res = req.send().await.expect("send");
        self.collect(res).await
    }

    /// A same-origin form post, as a browser sends it.
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let origin = self.base.clone();
        self.post_with(
            path,
            form,
            &[("origin", &origin), ("sec-fetch-site", "same-origin")],
        )
        .await
    }

    pub async fn post_with(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut req = self
            .with_cookie(self.http.post(format!("{}{path}", self.base)))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).expect("form"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.expect("send");
        self.collect(res).await
    }

    pub async fn login(&mut self, key: &str) -> Page {
        self.post("/dashboard/login", &[("key", key)]).await
    }

    /// The form token, read from the keys page.
    pub async fn csrf(&mut self) -> String {
        let page = self.get("/dashboard/keys").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.csrf()
    }

    /// Posts a form with this session's token.
    pub async fn submit(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let csrf = self.csrf().await;
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend_from_slice(form);
        self.post(path, &fields).await
    }
}

/// The key secret shown on a show-once page.
pub fn shown_secret(body: &str) -> String {
    let marker = "id=\"secret\" class=\"secret\" type=\"text\" readonly value=\"";
    let start = body.find(marker).expect("a secret on the page") + marker.len();
    let end = body[start..].find('"').expect("end of the secret");
    body[start..start + end].to_owned()
}

/// Creates an admin key for `tenant` as root: (id, secret).
pub async fn tenant_admin(app: &TestApp, tenant: &str) -> (String, String) {
    app.create_key(serde_json::json!({
        "name": format!("{tenant} admin"), "owner": "ops", "tenant": tenant, "scopes": ["admin"]
    }))
    .await
}
