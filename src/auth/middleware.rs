//! The request middleware of authentication: refuses cross-site state changes, resolves the
//! caller from an API token or the session cookie, and sends anonymous visitors of pages to
//! the login (or first-run setup) page.

use axum::{
    extract::{Request, State},
    http::{HeaderMap, Method, Uri, header},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};

use super::{CurrentUser, NewSession, SESSION_COOKIE};
use crate::{error::AppError, server::AppState, services::accounts};

pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if is_cross_site_change(request.method(), request.headers()) {
        return AppError::Forbidden("cross-site request refused".into()).into_response();
    }
    // Static files (the WASM bundle, styles, icons) are public: looking up the session for
    // each of them would cost a database query per file on every page load.
    if is_static_file(request.uri().path()) {
        return next.run(request).await;
    }
    let (caller, renewed) = match resolve_caller(&state, request.headers()).await {
        Ok(resolved) => resolved,
        Err(error) => return error.into_response(),
    };
    let signed_in = caller.is_some();
    if let Some(caller) = caller {
        request.extensions_mut().insert(caller);
    }
    let page = (request.method() == Method::GET || request.method() == Method::HEAD)
        .then(|| request.uri().clone())
        .filter(|uri| is_page(uri.path()));
    if let Some(redirect) = page_redirect(&state, page, signed_in).await {
        return redirect;
    }
    let mut response = next.run(request).await;
    if let Some(session) = renewed {
        response
            .headers_mut()
            .append(header::SET_COOKIE, state.auth.session_cookie(&session));
    }
    response
}

/// The caller named by `Authorization: Bearer` (which wins) or by the session cookie, and a
/// renewed session whose cookie must be sent back.
async fn resolve_caller(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Option<CurrentUser>, Option<NewSession>), AppError> {
    if let Some(authorization) = headers.get(header::AUTHORIZATION) {
        let token = authorization
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                AppError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
            })?;
        let caller = accounts::authenticate_api_token(&state.db, token).await?;
        return match caller {
            Some(caller) => Ok((Some(caller), None)),
            None => Err(AppError::Unauthorized("the API token is not valid".into())),
        };
    }
    let Some(token) = session_token(headers) else {
        return Ok((None, None));
    };
    Ok(match accounts::authenticate_session(state, &token).await? {
        Some((caller, renewed)) => (Some(caller), renewed),
        None => (None, None),
    })
}

fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == SESSION_COOKIE && !cookie.value().is_empty())
        .map(|cookie| cookie.value().to_owned())
}

/// Whether a request that changes state comes from another site: its `Origin` (or, without
/// one, its `Referer`) names another host, or the browser says it is cross-site. Requests
/// carrying an `Authorization` header are not ambient-credential requests and pass.
fn is_cross_site_change(method: &Method, headers: &HeaderMap) -> bool {
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    !safe && !headers.contains_key(header::AUTHORIZATION) && !is_same_origin(headers)
}

/// Whether the request comes from a page of this site, as far as the browser tells: no
/// `Sec-Fetch-Site: cross-site`, and an `Origin` or `Referer` (if any) naming our own host.
/// Requests from non-browser clients carry neither and pass.
pub fn is_same_origin(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|value| value.to_str().ok());
    if matches!(
        text(header::HeaderName::from_static("sec-fetch-site")),
        Some("cross-site" | "same-site")
    ) {
        return false;
    }
    let Some(source) = text(header::ORIGIN).or_else(|| text(header::REFERER)) else {
        return true;
    };
    let host = text(header::HOST);
    source
        .parse::<axum::http::Uri>()
        .ok()
        .and_then(|uri| {
            uri.authority()
                .map(|authority| authority.as_str().to_owned())
        })
        .is_some_and(|authority| Some(authority.as_str()) == host)
}

/// Pages need a signed-in user: anonymous visitors go to `/login?next=…`, or to `/setup` while
/// no user exists. `page` is the address of a page being loaded (`None` for anything else: API
/// routes, the WebSocket and static files answer for themselves).
async fn page_redirect(state: &AppState, page: Option<Uri>, signed_in: bool) -> Option<Response> {
    let page = page?;
    let path = page.path();
    let users_exist = match state.auth.users_exist(&state.db).await {
        Ok(exist) => exist,
        Err(error) => return Some(error.into_response()),
    };
    let target = match (path, users_exist, signed_in) {
        ("/setup", false, _) => return None,
        (_, false, _) => "/setup".to_owned(),
        ("/setup" | "/login", true, true) => "/".to_owned(),
        ("/setup", true, false) => "/login".to_owned(),
        ("/login", true, false) => return None,
        (_, true, false) => {
            let next = page.path_and_query().map_or(path, |p| p.as_str());
            format!(
                "/login?next={}",
                form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            )
        }
        (_, true, true) => return None,
    };
    Some(Redirect::to(&target).into_response())
}

/// Whether a path names a file of the site (its last segment has an extension); pages and
/// endpoints never do.
fn is_static_file(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|last| last.contains('.'))
}

/// Whether a path names a page of the UI (not the API, the sockets, health checks or files).
fn is_page(path: &str) -> bool {
    !(is_static_file(path)
        || path.starts_with("/api/")
        || path == "/ws"
        || path.starts_with("/ws/")
        || path == "/healthz"
        || path == "/readyz")
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    header::HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[test]
    fn same_origin_requests_pass_and_cross_site_ones_do_not() {
        let host = ("host", "127.0.0.1:3000");
        assert!(is_same_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:3000")
        ])));
        assert!(is_same_origin(&headers(&[
            host,
            ("referer", "http://127.0.0.1:3000/tasks")
        ])));
        assert!(
            is_same_origin(&headers(&[host])),
            "non-browser clients send neither"
        );
        assert!(!is_same_origin(&headers(&[
            host,
            ("origin", "http://evil.example")
        ])));
        assert!(!is_same_origin(&headers(&[host, ("origin", "null")])));
        assert!(!is_same_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:3001")
        ])));
        assert!(!is_same_origin(&headers(&[
            host,
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(
            !is_same_origin(&headers(&[("origin", "http://127.0.0.1:3000")])),
            "no Host"
        );
    }

    #[test]
    fn only_state_changes_are_checked_and_bearer_requests_pass() {
        let cross = [("host", "a.example"), ("origin", "http://b.example")];
        assert!(is_cross_site_change(&Method::POST, &headers(&cross)));
        assert!(is_cross_site_change(&Method::DELETE, &headers(&cross)));
        assert!(!is_cross_site_change(&Method::GET, &headers(&cross)));
        let bearer = [cross[0], cross[1], ("authorization", "Bearer tdg_x")];
        assert!(!is_cross_site_change(&Method::POST, &headers(&bearer)));
    }

    #[test]
    fn pages_are_told_apart_from_files_and_endpoints() {
        for page in ["/", "/tasks", "/login", "/setup", "/admin/users"] {
            assert!(is_page(page), "{page}");
        }
        for other in [
            "/api/auth/me",
            "/ws",
            "/ws/progress/1",
            "/healthz",
            "/readyz",
            "/pkg/tidings.js",
            "/favicon.svg",
        ] {
            assert!(!is_page(other), "{other}");
        }
    }

    proptest::proptest! {
        #[test]
        fn origin_checks_take_any_header_values(origin in "\\PC{0,64}", host in "\\PC{0,32}") {
            let mut map = HeaderMap::new();
            if let (Ok(origin), Ok(host)) = (HeaderValue::from_str(&origin), HeaderValue::from_str(&host)) {
                map.insert(header::ORIGIN, origin);
                map.insert(header::HOST, host);
            }
            let _ = is_same_origin(&map);
            let _ = session_token(&map);
        }
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let found = session_token(&headers(&[(
            "cookie",
            "theme=dark; tidings_session=abc; x=1",
        )]));
        assert_eq!(found.as_deref(), Some("abc"));
        assert_eq!(
            session_token(&headers(&[("cookie", "tidings_session=")])),
            None
        );
        assert_eq!(session_token(&headers(&[])), None);
    }
}
