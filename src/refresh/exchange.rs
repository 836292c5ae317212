//! One exchange with records on: look up, answer from a record, or claim and call upstream.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use tokio::time::Instant;
use tower_service::Service;

use super::record::{self, verdict, Grant, Record, Subject, Verdict};
use super::report::{count, RefreshEvent, RefreshReport};
use super::settings::{used_key, Keys, Settings};
use crate::body::FullBody;
use crate::outcome::Outcome;
use crate::{oauth::GrantType, token_response::RewriteReport, ErrorCode, OAuthError, TokenRequest};

/// One exchange with records on: look the token up, answer from its record, or claim it and
/// call the upstream on a task of its own.
pub(super) async fn exchange<S>(
    settings: Arc<Settings>,
    inner: S,
    request: Request<FullBody>,
) -> Result<Response<FullBody>, S::Error>
where
    S: Service<Request<FullBody>, Response = Response<FullBody>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    let deadline = Instant::now() + settings.answer_deadline;
    let token_request = request.extensions().get::<TokenRequest>();
    let grant_type = token_request.map(|r| r.grant_type().clone());
    let subject = token_request.and_then(|r| Subject::of(r, &settings.index_key));
    let mut report = RefreshReport::default();
    let Some(subject) = subject else {
        return call(settings, inner, request, None, false, deadline, report).await;
    };
    let store = settings.store.clone();
    let keys = Keys::of(subject.id);
    if subject.grant == Grant::Refresh {
        // Alexa presents R2 only once it holds the answer that carried it: from now on the
        // record of R1 refuses R1.
        let used = used_key(subject.id);
        let _ = settings
            .op(
                "mark_used",
                store.set(&used, b"1", settings.grace),
                &mut report,
            )
            .await;
    }
    loop {
        let Ok(found) = settings
            .op("get", store.get(&keys.record), &mut report)
            .await
        else {
            return call(
                settings,
                inner,
                request,
                Some(subject),
                false,
                deadline,
                report,
            )
            .await;
        };
        if let Some(sealed) = found {
            let Ok(record) = Record::open(&sealed, &subject) else {
                tracing::warn!(
                    target: "account_link_bridge::refresh",
                    "a refresh record did not open: exchanging without it"
                );
                return call(settings, inner, request, None, false, deadline, report).await;
            };
            return Ok(answer_from(&settings, record, grant_type, report).await);
        }
        let claim = store.set_if_absent(&keys.claim, b"1", settings.claim_ttl());
        match settings.op("claim", claim, &mut report).await {
            Err(()) => {
                return call(
                    settings,
                    inner,
                    request,
                    Some(subject),
                    false,
                    deadline,
                    report,
                )
                .await
            }
            Ok(true) => {
                // A record made between the look above and the claim (its claim released
                // since) must not be followed by a second upstream call with the same token.
                let again = settings
                    .op("get", store.get(&keys.record), &mut report)
                    .await;
                if let Ok(Some(_)) = again {
                    let _ = settings
                        .op("release", store.delete(&keys.claim), &mut report)
                        .await;
                    continue;
                }
                return call(
                    settings,
                    inner,
                    request,
                    Some(subject),
                    true,
                    deadline,
                    report,
                )
                .await;
            }
            Ok(false) => {
                // Another request (here or on another replica) is calling the upstream with
                // this token: wait for its record, within this request's deadline.
                if Instant::now() + settings.poll >= deadline {
                    report.event = Some(RefreshEvent::AnswerPending);
                    count(RefreshEvent::AnswerPending);
                    let error = OAuthError::temporarily_unavailable(
                        StatusCode::GATEWAY_TIMEOUT,
                        "an exchange with the same token is in progress; retry shortly",
                    );
                    return Ok(answered(error, grant_type, report));
                }
                tokio::time::sleep(settings.poll).await;
            }
        }
    }
}

/// The answer a found record gives: the recorded one, or a refusal once its successor is used.
async fn answer_from(
    settings: &Settings,
    record: Record,
    grant_type: Option<GrantType>,
    mut report: RefreshReport,
) -> Response<FullBody> {
    let successor_used = match record.successor {
        None => false,
        Some(successor) => {
            let key = used_key(successor);
            match settings
                .op("get_used", settings.store.get(&key), &mut report)
                .await
            {
                Ok(marker) => marker.is_some(),
                Err(()) => {
                    let error = OAuthError::temporarily_unavailable(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the refresh record store is unavailable; retry shortly",
                    );
                    return answered(error, grant_type, report);
                }
            }
        }
    };
    match verdict(&record, successor_used) {
        Verdict::Replay => {
            report.event = Some(RefreshEvent::Replayed);
            count(RefreshEvent::Replayed);
            // The answer as it stands now: its expires_in lowered by the record's age.
            let elapsed_secs = record::now_ms().saturating_sub(record.recorded_at_ms) / 1000;
            let answer = match elapsed_secs {
                0 => record.answer,
                _ => crate::token_response::aged_answer(&record.answer, elapsed_secs)
                    .map_or(record.answer, Bytes::from),
            };
            let mut response = crate::token_response::token_response(answer);
            let mut rewrite = RewriteReport::new(None);
            rewrite.grant_type = grant_type;
            response.extensions_mut().insert(rewrite);
            response.extensions_mut().insert(report);
            response.extensions_mut().insert(Outcome::Token);
            response
        }
        Verdict::Refuse => {
            report.event = Some(RefreshEvent::ReplayRefused);
            count(RefreshEvent::ReplayRefused);
            let error = OAuthError::new(ErrorCode::INVALID_GRANT, StatusCode::BAD_REQUEST)
                .with_description("the grant was rotated and its new token has been used");
            answered(error, grant_type, report)
        }
    }
}

/// An answer of the records' own, with the reports diagnostics read.
fn answered(
    error: OAuthError,
    grant_type: Option<GrantType>,
    report: RefreshReport,
) -> Response<FullBody> {
    let outcome = match (report.event, error.status()) {
        (Some(RefreshEvent::ReplayRefused), _) => Outcome::Refused,
        (_, StatusCode::GATEWAY_TIMEOUT) => Outcome::Timeout,
        (_, StatusCode::SERVICE_UNAVAILABLE) => Outcome::StoreUnavailable,
        _ => Outcome::Unreachable,
    };
    let mut rewrite = RewriteReport::new(None);
    rewrite.grant_type = grant_type;
    rewrite.answered_error = Some(error.code().clone());
    let mut response: Response<FullBody> = error.into_response();
    response.extensions_mut().insert(rewrite);
    response.extensions_mut().insert(outcome);
    response.extensions_mut().insert(report);
    response
}

/// Whether an answer of the response layer is a token: a 200 it did not turn into an error.
fn is_token(response: &Response<FullBody>) -> bool {
    response.status() == StatusCode::OK
        && response
            .extensions()
            .get::<RewriteReport>()
            .is_some_and(|r| r.answered_error.is_none())
}

/// Calls the upstream on a task of its own, bounded by the completion timeout, records a token
/// answer (when `subject` is known) and releases the claim (when `claimed`); Alexa's request
/// waits for it until `deadline`.
async fn call<S>(
    settings: Arc<Settings>,
    mut inner: S,
    request: Request<FullBody>,
    subject: Option<Subject>,
    claimed: bool,
    deadline: Instant,
    mut report: RefreshReport,
) -> Result<Response<FullBody>, S::Error>
where
    S: Service<Request<FullBody>, Response = Response<FullBody>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    let grant_type = request
        .extensions()
        .get::<TokenRequest>()
        .map(|r| r.grant_type().clone());
    let (answer, answered_by) = tokio::sync::oneshot::channel();
    let completion = settings.completion_timeout;
    let answer_deadline = settings.answer_deadline;
    let future = inner.call(request);
    let task_grant = grant_type.clone();
    tokio::spawn(async move {
        let result = match tokio::time::timeout(completion, future).await {
            Ok(result) => result,
            Err(_) => Ok(answered(
                OAuthError::temporarily_unavailable(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!(
                        "upstream did not answer within {} ms",
                        completion.as_millis()
                    ),
                ),
                task_grant,
                RefreshReport::default(),
            )),
        };
        let mut task_report = RefreshReport::default();
        if let (Ok(response), Some(subject)) = (&result, &subject) {
            if is_token(response) {
                let answer = Bytes::copy_from_slice(response.body().as_bytes());
                let record = Record::of_answer(answer, subject, &settings.index_key);
                let key = Keys::of(subject.id).record;
                let sealed = record.seal(subject);
                let put = settings.store.set_if_absent(&key, &sealed, settings.grace);
                if let Ok(true) = settings.op("put", put, &mut task_report).await {
                    task_report.event = Some(RefreshEvent::Recorded);
                }
            }
        }
        if let (true, Some(subject)) = (claimed, &subject) {
            let key = Keys::of(subject.id).claim;
            let _ = settings
                .op("release", settings.store.delete(&key), &mut task_report)
                .await;
        }
        let recorded = task_report.event == Some(RefreshEvent::Recorded);
        if answer.send((result, task_report)).is_err() {
            if recorded {
                count(RefreshEvent::LateAnswerKept);
                tracing::info!(
                    target: "account_link_bridge::refresh",
                    event = RefreshEvent::LateAnswerKept.as_str(),
                    "an upstream answer that came after Alexa's request ended was recorded for its retry"
                );
            }
        } else if recorded {
            count(RefreshEvent::Recorded);
        }
    });
    match tokio::time::timeout_at(deadline, answered_by).await {
        Ok(Ok((result, task_report))) => result.map(|mut response| {
            report.event = task_report.event;
            report.store_errors += task_report.store_errors;
            response.extensions_mut().insert(report);
            response
        }),
        Ok(Err(_)) => Ok(answered(
            OAuthError::server_error("the upstream call ended without an answer"),
            grant_type,
            report,
        )),
        Err(_) => {
            report.event = Some(RefreshEvent::AnswerPending);
            count(RefreshEvent::AnswerPending);
            let error = OAuthError::temporarily_unavailable(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "upstream did not answer within {} ms; its answer is kept for the retry",
                    answer_deadline.as_millis()
                ),
            );
            Ok(answered(error, grant_type, report))
        }
    }
}
