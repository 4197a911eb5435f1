//! The one error type that crosses the wire: server functions return it to the UI, and REST
//! handlers render it as `{"error": "...", "code": "..."}` with the matching HTTP status.

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

/// On the wire (server functions and REST alike) an error is `{"error": "<text>", "code":
/// "<code>"}`, plus `retry_after_secs` for [`AppError::TooManyRequests`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(into = "WireError", from = "WireError")]
pub enum AppError {
    /// The request was understood but its content is not acceptable; the text names the field.
    #[error("{0}")]
    BadRequest(String),
    /// No valid session or API token came with the request.
    #[error("{0}")]
    Unauthorized(String),
    /// The caller is known but may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The object does not exist, or belongs to somebody else.
    #[error("not found")]
    NotFound,
    /// The request conflicts with the current state (a name already taken, setup already done).
    #[error("{0}")]
    Conflict(String),
    /// The request body is too large.
    #[error("{0}")]
    TooLarge(String),
    /// The request body is well-formed but does not fit the expected shape (wrong types).
    #[error("{0}")]
    Unprocessable(String),
    /// Too many attempts; the caller may try again after this many seconds.
    #[error("too many attempts; try again in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    /// A dependency (the database) does not answer; retrying later may work.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; the details are in the server log, not in the response.
    #[error("internal error")]
    Internal,
    /// The browser could not reach the server or read its answer.
    #[error("could not reach the server: {0}")]
    Network(String),
}

impl AppError {
    /// Stable machine-readable code, the `code` field of JSON errors.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad_request",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::TooLarge(_) => "too_large",
            AppError::Unprocessable(_) => "unprocessable",
            AppError::TooManyRequests { .. } => "rate_limited",
            AppError::Unavailable(_) => "unavailable",
            AppError::Internal => "internal",
            AppError::Network(_) => "network",
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
struct WireError {
    error: String,
    code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after_secs: Option<u64>,
}

impl From<AppError> for WireError {
    fn from(error: AppError) -> Self {
        let retry_after_secs = match error {
            AppError::TooManyRequests { retry_after_secs } => Some(retry_after_secs),
            _ => None,
        };
        WireError {
            error: error.to_string(),
            code: error.code().to_owned(),
            retry_after_secs,
        }
    }
}

impl From<WireError> for AppError {
    fn from(wire: WireError) -> Self {
        let WireError {
            error,
            code,
            retry_after_secs,
        } = wire;
        match code.as_str() {
            "bad_request" => AppError::BadRequest(error),
            "unauthorized" => AppError::Unauthorized(error),
            "forbidden" => AppError::Forbidden(error),
            "not_found" => AppError::NotFound,
            "conflict" => AppError::Conflict(error),
            "too_large" => AppError::TooLarge(error),
            "unprocessable" => AppError::Unprocessable(error),
            "rate_limited" => AppError::TooManyRequests {
                retry_after_secs: retry_after_secs.unwrap_or(1),
            },
            "unavailable" => AppError::Unavailable(error),
            "network" => AppError::Network(error),
            _ => AppError::Internal,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(error: ServerFnErrorErr) -> Self {
        match error {
            ServerFnErrorErr::Args(message) | ServerFnErrorErr::MissingArg(message) => {
                AppError::BadRequest(message)
            }
            ServerFnErrorErr::Request(message) | ServerFnErrorErr::Deserialization(message) => {
                AppError::Network(message)
            }
            _ => AppError::Internal,
        }
    }
}

#[cfg(feature = "ssr")]
mod http {
    use axum::{
        Json,
        http::{StatusCode, header},
        response::{IntoResponse, Response},
    };

    use super::AppError;

    impl AppError {
        pub fn status(&self) -> StatusCode {
            match self {
                AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
                AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
                AppError::Forbidden(_) => StatusCode::FORBIDDEN,
                AppError::NotFound => StatusCode::NOT_FOUND,
                AppError::Conflict(_) => StatusCode::CONFLICT,
                AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
                AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
                AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
                AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                AppError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
                // Only ever built in the browser; a server that sees one failed to reach itself.
                AppError::Network(_) => StatusCode::BAD_GATEWAY,
            }
        }
    }

    impl IntoResponse for AppError {
        fn into_response(self) -> Response {
            let mut response = (self.status(), Json(&self)).into_response();
            if let AppError::TooManyRequests { retry_after_secs } = self {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, retry_after_secs.into());
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_server_fn_encoding() {
        for error in [
            AppError::BadRequest("topic must not be empty".into()),
            AppError::NotFound,
        ] {
            assert_eq!(AppError::de(error.ser()), error);
        }
    }

    #[test]
    fn argument_errors_are_bad_requests() {
        let error = AppError::from_server_fn_error(ServerFnErrorErr::Args("nonce".into()));
        assert_eq!(error.code(), "bad_request");
    }
}
