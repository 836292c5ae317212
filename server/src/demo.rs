//! A Salesforce-like authorization server on loopback, for trying the bridge without an org.
//!
//! Like Salesforce it wants a form with `Content-Type: application/x-www-form-urlencoded` and
//! credentials in the body, answers without `expires_in`, with an `instance_url`, and gives no
//! `refresh_token` on refresh. The code `expired-code`, and the code `bridge doctor` probes with
//! (which no server ever issued), get Salesforce's `invalid_grant`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

static ISSUED: AtomicU64 = AtomicU64::new(0);

/// Starts the demo upstream on a free loopback port and returns its address.
pub async fn start() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(answer);
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path().ends_with("/authorize") {
        return Ok(authorize(request.uri()));
    }
    let form_declared = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if !form_declared {
        return Ok(json(
            StatusCode::BAD_REQUEST,
            r#"{"error":"invalid_request","error_description":"unsupported content type"}"#.into(),
        ));
    }
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    if param("client_id").is_none() || param("client_secret").is_none() {
        return Ok(json(
            StatusCode::BAD_REQUEST,
            r#"{"error":"invalid_client","error_description":"invalid client credentials"}"#.into(),
        ));
    }
    let n = ISSUED.fetch_add(1, Ordering::Relaxed);
    let access_token = format!("00Dd0000000demo!AQ{n:08}DemoAccessToken");
    let common = format!(
        r#""access_token":"{access_token}","instance_url":"https://demo.my.salesforce.com","id":"https://login.salesforce.com/id/00Dd0000000demo/005d0000000demo","token_type":"Bearer","issued_at":"1700000000000","signature":"ZGVtbw==""#
    );
    let answer = match (param("grant_type"), param("code")) {
        // Like any authorization server, it refuses a code no server issued: here one that says
        // it is invalid (the doctor's probe code, `alexa-bridge-doctor-invalid-code`) or
        // expired; it takes any other, so that the curl line the bridge prints works.
        (Some("authorization_code"), Some(code))
            if code == "expired-code" || code.contains("invalid") =>
        {
            return Ok(json(
                StatusCode::BAD_REQUEST,
                r#"{"error":"invalid_grant","error_description":"authorization code expired"}"#
                    .into(),
            ))
        }
        (Some("authorization_code"), Some(_)) => {
            format!(
                r#"{{{common},"refresh_token":"5Aep861demoRefresh{n:08}","scope":"api refresh_token"}}"#
            )
        }
        (Some("refresh_token"), _) if param("refresh_token").is_some() => format!("{{{common}}}"),
        _ => return Ok(json(
            StatusCode::BAD_REQUEST,
            r#"{"error":"unsupported_grant_type","error_description":"grant type not supported"}"#
                .into(),
        )),
    };
    Ok(json(StatusCode::OK, answer))
}

/// The demo's authorization endpoint: the user "logs in" at once and is sent back to the
/// `redirect_uri` with a code and the `state`, as Salesforce's web server flow does.
fn authorize(uri: &hyper::Uri) -> Response<Full<Bytes>> {
    let params: Vec<(String, String)> =
        serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default();
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let Some(redirect_uri) = param("redirect_uri") else {
        return json(
            StatusCode::BAD_REQUEST,
            r#"{"error":"invalid_request","error_description":"redirect_uri is missing"}"#.into(),
        );
    };
    let n = ISSUED.fetch_add(1, Ordering::Relaxed);
    let mut back = vec![("code", format!("aPrxdemo{n:08}"))];
    if let Some(state) = param("state") {
        back.push(("state", state.to_string()));
    }
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    let location = format!(
        "{redirect_uri}{separator}{}",
        serde_urlencoded::to_string(&back).unwrap_or_default()
    );
    Response::builder()
        .status(StatusCode::FOUND)
        .header("location", location)
        .body(Full::new(Bytes::new()))
        .expect("a redirect is a valid response")
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json;charset=UTF-8")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}
