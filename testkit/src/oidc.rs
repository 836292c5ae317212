//! A real authorization server for the tests, oidc-provider (npm, `tests/oidc`), started on
//! loopback, and a browser that walks its development login and consent pages.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use crate::{send, Reply};

/// A running oidc-provider; killed when dropped.
pub struct OidcProvider {
    child: Child,
    issuer: String,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tests/oidc` at the repository root, where `server.mjs` and its `package.json` are.
fn oidc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("tests")
        .join("oidc")
}

/// Installs oidc-provider into `tests/oidc` (`npm ci`) unless it is there; one install at a time
/// in this process (`npm ci` empties `node_modules` first).
fn install(dir: &Path) {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _installing = INSTALL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if dir.join("node_modules").join("oidc-provider").exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .expect("npm is installed (Node.js is needed for this test)");
    assert!(status.success(), "npm ci in {}", dir.display());
}

impl OidcProvider {
    /// Starts oidc-provider on a loopback port it chooses itself (see [`OidcProvider::issuer`])
    /// with one client (`alexa-bridge`, `client_secret`) whose redirect URI is `callback`;
    /// `rotate` turns refresh token rotation on (it then revokes the grant when an old refresh
    /// token comes back). Blocks until it listens.
    pub fn start(callback: &str, client_secret: &str, rotate: bool) -> Self {
        let dir = oidc_dir();
        install(&dir);
        let mut command = Command::new("node");
        command
            .arg("server.mjs")
            .current_dir(&dir)
            .env("CALLBACK", callback)
            .env("CLIENT_SECRET", client_secret)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if rotate {
            command.env("ROTATE_REFRESH_TOKENS", "1");
        }
        let mut child = command.spawn().expect("node starts");
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        for line in lines.by_ref() {
            let line = line.expect("oidc-provider prints");
            if let Some(port) = line.strip_prefix("oidc-provider listening on ") {
                // Keep reading: a closed pipe would kill node at its next log line.
                std::thread::spawn(move || lines.for_each(drop));
                let issuer = format!("http://127.0.0.1:{}", port.trim());
                return OidcProvider { child, issuer };
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("oidc-provider did not start");
    }

    /// [`start`](Self::start) from async code (on a blocking thread), for the callback of a
    /// bridge whose listener `listener` is already bound: `{http://addr}/callback`.
    pub async fn start_for(
        listener: &tokio::net::TcpListener,
        client_secret: &str,
        rotate: bool,
    ) -> Self {
        let callback = format!("http://{}/callback", listener.local_addr().expect("bound"));
        let secret = client_secret.to_string();
        tokio::task::spawn_blocking(move || OidcProvider::start(&callback, &secret, rotate))
            .await
            .expect("oidc-provider's start does not panic")
    }

    /// `http://127.0.0.1:PORT`: its endpoints are `/auth` and `/token` under it.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
}

/// A browser: follows nothing by itself, keeps cookies, posts oidc-provider's development login
/// and consent forms.
#[derive(Default)]
pub struct Browser {
    cookies: BTreeMap<String, String>,
}

impl Browser {
    /// One request with the browser's cookies (and a form body, if any); keeps the cookies set.
    pub async fn request(&mut self, method: &str, url: &str, form: Option<&str>) -> Reply {
        let mut builder = Request::builder().method(method).uri(url);
        if !self.cookies.is_empty() {
            let cookie = self
                .cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            builder = builder.header("cookie", cookie);
        }
        if form.is_some() {
            builder = builder.header("content-type", "application/x-www-form-urlencoded");
        }
        let body = Full::new(Bytes::from(form.unwrap_or("").to_string()));
        let reply = send(builder.body(body).expect("a valid request")).await;
        for value in reply.headers.get_all("set-cookie") {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            if let Some((name, value)) = pair.split_once('=') {
                self.cookies
                    .insert(name.trim().to_string(), value.to_string());
            }
        }
        reply
    }

    /// Alexa's side of a link through a bridge at `bridge_url` in front of oidc-provider: opens
    /// the bridge's `/authorize` as Alexa's app does (`state`, client `alexa-bridge`, response
    /// type `code`, scope `openid`, `redirect_uri`), walks oidc-provider's login and consent
    /// back to the bridge's `/callback`, and follows that. Returns the bridge's redirect to
    /// oidc-provider and its redirect to Alexa, for the caller to check.
    pub async fn link(
        &mut self,
        bridge_url: &str,
        state: &str,
        redirect_uri: &str,
    ) -> (String, String) {
        let authorize_url = format!(
            "{bridge_url}/authorize?{}",
            serde_urlencoded::to_string([
                ("state", state),
                ("client_id", "alexa-bridge"),
                ("response_type", "code"),
                ("scope", "openid"),
                ("redirect_uri", redirect_uri),
            ])
            .expect("a form")
        );
        let to_oidc = self.request("GET", &authorize_url, None).await;
        let to_oidc = to_oidc
            .header("location")
            .expect("redirected upstream")
            .to_string();
        let to_callback = self
            .walk(to_oidc.clone(), &format!("{bridge_url}/callback"))
            .await;
        let to_alexa = self.request("GET", &to_callback, None).await;
        let to_alexa = to_alexa
            .header("location")
            .expect("redirected to Alexa")
            .to_string();
        (to_oidc, to_alexa)
    }

    /// Follows redirects and posts the dev login and consent forms until the browser is sent to
    /// `stop` (a URL prefix); that URL.
    pub async fn walk(&mut self, mut url: String, stop: &str) -> String {
        for _ in 0..20 {
            if url.starts_with(stop) {
                return url;
            }
            let reply = self.request("GET", &url, None).await;
            if let Some(location) = reply.header("location") {
                url = absolute(&url, location);
                continue;
            }
            assert_eq!(
                reply.status,
                200,
                "{url}: {}",
                String::from_utf8_lossy(&reply.body)
            );
            // An interaction page: log in, then consent. The dev pages post to their own URL.
            let page = String::from_utf8_lossy(&reply.body).to_string();
            let form = if page.contains("name=\"login\"") {
                "prompt=login&login=alexa-user&password=any"
            } else {
                "prompt=consent"
            };
            let action = page
                .split("action=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .map(|a| absolute(&url, a))
                .unwrap_or_else(|| url.clone());
            let posted = self.request("POST", &action, Some(form)).await;
            url = absolute(
                &action,
                posted.header("location").expect("the form redirects"),
            );
        }
        panic!("no redirect to {stop}");
    }
}

/// `location` resolved against `base`.
pub fn absolute(base: &str, location: &str) -> String {
    url::Url::parse(base)
        .expect("an absolute URL")
        .join(location)
        .expect("a resolvable location")
        .to_string()
}

/// The query parameters of `url`, decoded.
pub fn query(url: &str) -> BTreeMap<String, String> {
    url::Url::parse(url)
        .expect("an absolute URL")
        .query_pairs()
        .into_owned()
        .collect()
}
