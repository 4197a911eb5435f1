//! The fetcher and the feed parser against a fixture server started by each test: real HTTP on
//! a loopback port, with the slow, broken, oversized, looping and non-UTF-8 responses of the
//! open web.

use std::time::Duration;

use axum::{
    Router,
    body::{Body, Bytes},
    http::StatusCode,
    http::header::{CONTENT_TYPE, LOCATION},
    response::{IntoResponse, Response},
    routing::get,
};
use futures::stream;
use tidings::analysis::{
    extract::extract_article,
    feed::parse_feed,
    fetch::{FetchErrorKind, FetchSettings, Fetcher},
};

/// The body cap of these tests: small, so that oversized bodies are quick to send.
const MAX_BODY_BYTES: u64 = 64 * 1024;

const FEED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Fixture news</title><link>/</link>
  <item><title>Tram line approved</title><link>/articles/tram.html</link>
    <pubDate>Tue, 04 Mar 2025 10:30:00 GMT</pubDate></item>
  <item><title>Elsewhere</title><link>https://elsewhere.example/story</link></item>
</channel></rss>"#;

const PAGE: &str = "<html><head><title>Tram line approved</title></head><body>\
    <nav>Home</nav><article><p>The council approved the tram line.</p></article></body></html>";

async fn serve_fixtures() -> String {
    let app = Router::new()
        .route("/feed.xml", get(|| async { ([(CONTENT_TYPE, "application/rss+xml")], FEED) }))
        .route("/articles/tram.html", get(|| async { ([(CONTENT_TYPE, "text/html; charset=utf-8")], PAGE) }))
        .route("/hop/{n}", get(hop))
        .route("/loop", get(|| async { redirect("/loop") }))
        .route("/slow", get(|| async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            "too late"
        }))
        .route("/error", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }))
        .route("/broken", get(|| async { Body::from_stream(stream::iter(broken_body())) }))
        .route("/huge-streamed", get(|| async { Body::from_stream(stream::iter(huge_chunks())) }))
        .route("/huge", get(|| async { vec![b'a'; MAX_BODY_BYTES as usize + 1] }))
        .route("/latin1.html", get(|| async {
            ([(CONTENT_TYPE, "text/html; charset=windows-1252")], &b"<p>Caf\xe9 cr\xe8me \x80 5</p>"[..])
        }))
        .route("/meta-latin1.html", get(|| async {
            let page = &b"<html><head><meta charset=\"iso-8859-1\"><title>Z\xfcrich</title></head></html>"[..];
            ([(CONTENT_TYPE, "text/html")], page)
        }))
        .route("/malformed.xml", get(|| async {
            ([(CONTENT_TYPE, "application/rss+xml")], "<rss><channel><item><title>Cut off</ite")
        }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

fn redirect(to: &str) -> Response {
    (StatusCode::FOUND, [(LOCATION, to.to_owned())]).into_response()
}

/// `/hop/3` → `/hop/2` → `/hop/1` → `/hop/0` → the page.
async fn hop(axum::extract::Path(n): axum::extract::Path<u32>) -> Response {
    match n {
        0 => redirect("/articles/tram.html"),
        _ => redirect(&format!("/hop/{}", n - 1)),
    }
}

/// Some bytes, then a failure: the server aborts the response mid-body.
fn broken_body() -> Vec<Result<Bytes, std::io::Error>> {
    vec![
        Ok(Bytes::from_static(b"<html><body>start")),
        Err(std::io::Error::other("gone")),
    ]
}

/// Twice the cap, chunked, without a Content-Length.
fn huge_chunks() -> Vec<Result<Bytes, std::io::Error>> {
    (0..32)
        .map(|_| Ok(Bytes::from(vec![b'a'; 4 * 1024])))
        .collect()
}

fn fetcher() -> Fetcher {
    Fetcher::new(FetchSettings {
        timeout: Duration::from_millis(500),
        max_body_bytes: MAX_BODY_BYTES,
        max_redirects: 3,
        allow_private_addresses: true,
        ..FetchSettings::default()
    })
    .unwrap()
}

#[tokio::test]
async fn a_feed_and_its_article_are_fetched_parsed_and_extracted() {
    let base = serve_fixtures().await;
    let fetched = fetcher().fetch(&format!("{base}/feed.xml")).await.unwrap();
    assert_eq!(fetched.content_type.as_deref(), Some("application/rss+xml"));
    let items = parse_feed(&fetched.body, &fetched.url).unwrap();
    let urls: Vec<&str> = items.iter().map(|item| item.url.as_str()).collect();
    assert_eq!(
        urls,
        [
            format!("{base}/articles/tram.html").as_str(),
            "https://elsewhere.example/story"
        ]
    );

    let page = fetcher().fetch(items[0].url.as_str()).await.unwrap();
    let article = extract_article(&page.text());
    assert_eq!(article.title.as_deref(), Some("Tram line approved"));
    assert_eq!(article.text, "The council approved the tram line.");
}

#[tokio::test]
async fn by_default_only_public_addresses_are_fetched() {
    let base = serve_fixtures().await;
    let public_only = Fetcher::new(FetchSettings::default()).unwrap();
    let port = url::Url::parse(&base).unwrap().port().unwrap();
    for host in ["127.0.0.1", "localhost", "[::1]"] {
        let url = format!("http://{host}:{port}/feed.xml");
        let error = public_only.fetch(&url).await.unwrap_err();
        assert!(
            matches!(error.kind, FetchErrorKind::NotPublic(_)),
            "{url}: {error}"
        );
        assert!(
            error
                .to_string()
                .ends_with("only public addresses are fetched"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn redirects_are_followed_up_to_the_cap_and_the_final_url_is_kept() {
    let base = serve_fixtures().await;
    let fetched = fetcher().fetch(&format!("{base}/hop/2")).await.unwrap();
    assert_eq!(fetched.url.as_str(), format!("{base}/articles/tram.html"));

    let too_many = fetcher().fetch(&format!("{base}/hop/3")).await.unwrap_err();
    assert_eq!(too_many.kind, FetchErrorKind::TooManyRedirects(3));
}

#[tokio::test]
async fn a_redirect_loop_stops_at_the_cap() {
    let base = serve_fixtures().await;
    let url = format!("{base}/loop");
    let error = fetcher().fetch(&url).await.unwrap_err();
    assert_eq!(error.kind, FetchErrorKind::TooManyRedirects(3));
    assert_eq!(error.to_string(), format!("{url}: more than 3 redirects"));
}

#[tokio::test]
async fn a_slow_response_times_out() {
    let base = serve_fixtures().await;
    let url = format!("{base}/slow");
    let error = fetcher().fetch(&url).await.unwrap_err();
    assert_eq!(
        error.kind,
        FetchErrorKind::Timeout(Duration::from_millis(500))
    );
    assert_eq!(error.to_string(), format!("{url}: timed out after 500 ms"));
}

#[tokio::test]
async fn a_server_error_is_reported_with_its_status() {
    let base = serve_fixtures().await;
    let url = format!("{base}/error");
    let error = fetcher().fetch(&url).await.unwrap_err();
    assert_eq!(error.kind, FetchErrorKind::Status(500));
    assert_eq!(
        error.to_string(),
        format!("{url}: HTTP status 500 Internal Server Error")
    );
}

#[tokio::test]
async fn a_connection_broken_mid_body_or_refused_is_a_connection_error() {
    let base = serve_fixtures().await;
    let error = fetcher()
        .fetch(&format!("{base}/broken"))
        .await
        .unwrap_err();
    assert!(
        matches!(error.kind, FetchErrorKind::Connection(_)),
        "{error}"
    );

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let error = fetcher()
        .fetch(&format!("http://{address}/"))
        .await
        .unwrap_err();
    assert!(
        matches!(error.kind, FetchErrorKind::Connection(_)),
        "{error}"
    );
}

#[tokio::test]
async fn bodies_over_the_cap_are_refused_with_or_without_content_length() {
    let base = serve_fixtures().await;
    for path in ["/huge", "/huge-streamed"] {
        let url = format!("{base}{path}");
        let error = fetcher().fetch(&url).await.unwrap_err();
        assert_eq!(
            error.kind,
            FetchErrorKind::TooLarge(MAX_BODY_BYTES),
            "{path}"
        );
        assert_eq!(
            error.to_string(),
            format!("{url}: the body is larger than 64 KiB")
        );
    }
}

#[tokio::test]
async fn windows_1252_pages_are_decoded_by_header_or_meta_charset() {
    let base = serve_fixtures().await;
    let by_header = fetcher()
        .fetch(&format!("{base}/latin1.html"))
        .await
        .unwrap();
    assert_eq!(extract_article(&by_header.text()).text, "Café crème € 5");
    let by_meta = fetcher()
        .fetch(&format!("{base}/meta-latin1.html"))
        .await
        .unwrap();
    assert_eq!(
        extract_article(&by_meta.text()).title.as_deref(),
        Some("Zürich")
    );
}

#[tokio::test]
async fn malformed_xml_is_a_feed_error_naming_the_feed() {
    let base = serve_fixtures().await;
    let fetched = fetcher()
        .fetch(&format!("{base}/malformed.xml"))
        .await
        .unwrap();
    let error = parse_feed(&fetched.body, &fetched.url).unwrap_err();
    assert!(
        error.to_string().starts_with(&format!(
            "{base}/malformed.xml: not a readable RSS or Atom feed"
        )),
        "{error}"
    );
}
