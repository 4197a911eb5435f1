//! The one error type that crosses the wire: server functions return it to the UI, and REST
//! handlers render it as `{"error": "...", "code": "..."}` with the matching HTTP status.

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", content = "message", rename_all = "snake_case")]
pub enum AppError {
    /// The request was understood but its content is not acceptable; the text names the field.
    #[error("{0}")]
    BadRequest(String),
    /// The object does not exist, or belongs to somebody else.
    #[error("not found")]
    NotFound,
    /// A dependency (the database) does not answer; retrying later may work.
    #[error("service unavailable: {0}")]
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
            AppError::NotFound => "not_found",
            AppError::Unavailable(_) => "unavailable",
            AppError::Internal => "internal",
            AppError::Network(_) => "network",
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
        http::StatusCode,
        response::{IntoResponse, Response},
    };

    use super::AppError;

    impl AppError {
        pub fn status(&self) -> StatusCode {
            match self {
                AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
                AppError::NotFound => StatusCode::NOT_FOUND,
                AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                AppError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
                // Only ever built in the browser; a server that sees one failed to reach itself.
                AppError::Network(_) => StatusCode::BAD_GATEWAY,
            }
        }
    }

    impl IntoResponse for AppError {
        fn into_response(self) -> Response {
            let body = serde_json::json!({ "error": self.to_string(), "code": self.code() });
            (self.status(), Json(body)).into_response()
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
