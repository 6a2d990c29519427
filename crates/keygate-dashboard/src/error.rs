//! The one place errors become pages: a status and a message a person can
//! act on. A storage or internal failure shows a generic text; its cause is
//! logged, never shown.

use axum::http::StatusCode;

#[derive(Debug)]
pub enum PageError {
    BadRequest(String),
    /// A form without this session's token.
    Csrf,
    NotFound(&'static str),
    Forbidden(String),
    /// The form's values were refused; re-rendering the form is better when
    /// the handler can.
    Invalid(String),
    Conflict(String),
    Unavailable,
    Internal(String),
}

impl From<keygate_core::Error> for PageError {
    fn from(e: keygate_core::Error) -> Self {
        use keygate_core::Error as E;
        match e {
            E::MalformedKey => Self::Invalid(e.to_string()),
            E::Invalid { .. } => Self::Invalid(e.to_string()),
            E::NotFound(what) => Self::NotFound(what),
            E::Forbidden(why) => Self::Forbidden(why),
            E::Revoked => Self::Conflict("the key is revoked".into()),
            E::Conflict => Self::Conflict(e.to_string()),
            E::AlreadyExists(what) => Self::Conflict(format!("{what} already exists")),
            E::QuotaExceeded(why) => Self::Conflict(format!("quota exceeded: {why}")),
            E::Storage(cause) => {
                tracing::error!(%cause, "dashboard: storage failed");
                Self::Unavailable
            }
            E::KeyUnavailable(cause) => {
                tracing::error!(%cause, "dashboard: an encryption key is unavailable");
                Self::Unavailable
            }
            E::Internal(cause) => Self::Internal(cause),
        }
    }
}

impl PageError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Csrf | Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the page says.
    pub fn message(&self) -> String {
        match self {
            Self::BadRequest(m) | Self::Invalid(m) | Self::Conflict(m) => m.clone(),
            Self::Forbidden(m) => format!("Not allowed: {m}"),
            Self::Csrf => "This form has expired or did not come from this dashboard. \
                Go back, reload the page and try again."
                .into(),
            Self::NotFound(what) => format!("No such {what}."),
            Self::Unavailable => "Storage is unavailable; try again shortly.".into(),
            Self::Internal(_) => "Something went wrong on the server.".into(),
        }
    }
}
