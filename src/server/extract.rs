//! Request extractors of the REST API whose rejections are JSON errors like every other error.

use axum::{
    extract::{
        FromRequest, FromRequestParts,
        rejection::{JsonRejection, PathRejection, QueryRejection},
    },
    http::StatusCode,
};

use crate::error::AppError;

/// A JSON request body. Malformed JSON is 400, wrong types or missing fields 422, a body over
/// the limit 413, a missing `Content-Type: application/json` 400 — each with the parser's
/// explanation.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct ApiJson<T>(pub T);

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        let message = rejection.body_text();
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => AppError::TooLarge(message),
            StatusCode::UNPROCESSABLE_ENTITY => AppError::Unprocessable(message),
            _ => AppError::BadRequest(message),
        }
    }
}

/// Query parameters. A value of the wrong type is 400 with the parser's explanation.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct ApiQuery<T>(pub T);

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        AppError::BadRequest(rejection.body_text())
    }
}

/// A path parameter. A malformed one (a task id that is not a UUID) is 400.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct ApiPath<T>(pub T);

impl From<PathRejection> for AppError {
    fn from(rejection: PathRejection) -> Self {
        AppError::BadRequest(rejection.body_text())
    }
}
