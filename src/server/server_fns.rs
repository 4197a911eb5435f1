//! Glue between server functions and HTTP: the status of their errors, the client's address,
//! and cookies on their responses.

use std::net::{IpAddr, SocketAddr};

use axum::{
    body::{Body, to_bytes},
    extract::{ConnectInfo, Request},
    http::{HeaderValue, StatusCode, header, request::Parts},
    middleware::Next,
    response::Response,
};
use leptos::{prelude::*, server_fn::error::SERVER_FN_ERROR_HEADER};

use crate::error::AppError;

/// Largest error body read back to find its status.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Server functions answer every error with 500; this gives the response the status of the
/// [`AppError`] in its body instead (400, 401, 403, 404, 409, 429…), so that API clients and
/// logs see what happened.
pub async fn error_status(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR
        || !response.headers().contains_key(SERVER_FN_ERROR_HEADER)
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = to_bytes(body, ERROR_BODY_LIMIT).await.unwrap_or_default();
    if let Ok(error) = serde_json::from_slice::<AppError>(&bytes) {
        parts.status = error.status();
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The client address of the server function being run.
pub fn leptos_client_address() -> Option<IpAddr> {
    let parts = use_context::<Parts>()?;
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}

/// Adds a `Set-Cookie` header to the response of the server function being run.
pub fn set_leptos_cookie(cookie: &HeaderValue) {
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.append_header(header::SET_COOKIE, cookie.clone());
    }
}
