//! A verdict as forward-auth's HTTP answer: what `/v1/forward-auth` sends,
//! and what the gRPC adapter translates, so the two cannot drift apart.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::Verdict;
use crate::outcome::{Failure, Outcome};

impl Verdict {
    /// The HTTP answer every adapter gives, with what the log phase
    /// records of it.
    pub fn answer(self, outcome: &mut Outcome) -> Response {
        match self {
            Verdict::Allow { headers, identity } => {
                outcome.identity = Some(identity);
                let mut res = StatusCode::OK.into_response();
                *res.headers_mut() = *headers;
                res
            }
            Verdict::Refuse(refusal) => {
                outcome.refused(&refusal);
                refusal.into_response()
            }
            Verdict::Unjudgeable(why) => {
                outcome.failure = Some(Failure::Unjudgeable(why));
                keygate_http::ApiError::new(StatusCode::FORBIDDEN, why.code(), why.detail())
                    .into_response()
            }
            Verdict::Failed(e) => keygate_http::ApiError::from(e).into_response(),
        }
    }
}
