//! Security headers on every response, including a Content-Security-Policy that lets only our
//! own scripts run: the WASM bundle and Leptos' inline hydration scripts, which carry a fresh
//! nonce per response.

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue, header},
    middleware::Next,
    response::Response,
};

use crate::auth::credentials::new_nonce;

/// The nonce of this response's inline scripts, passed to Leptos through request extensions.
#[derive(Clone, Debug)]
pub struct CspNonce(pub String);

pub async fn headers(mut request: Request, next: Next) -> Response {
    let nonce = new_nonce();
    request.extensions_mut().insert(CspNonce(nonce.clone()));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Ok(policy) = HeaderValue::try_from(content_security_policy(&nonce)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response
}

fn content_security_policy(nonce: &str) -> String {
    // `cargo leptos watch` reloads the page through a socket on its own port.
    let reload = std::env::var("LEPTOS_WATCH")
        .is_ok()
        .then(|| std::env::var("LEPTOS_RELOAD_PORT").unwrap_or_else(|_| "3001".into()))
        .map(|port| format!(" ws://127.0.0.1:{port} ws://localhost:{port}"))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'{reload}; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}
