//! Fetching pages and feeds from the open web, which is slow, broken and hostile at times: every
//! request has timeouts, a body size cap enforced while reading (a `Content-Length` may be
//! absent or wrong), a redirect cap, and errors that name the URL.

use std::{sync::LazyLock, time::Duration};

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};
use reqwest::{StatusCode, header::CONTENT_TYPE, redirect};
use scraper::{Html, Selector};
use url::Url;

use super::address::{NotPublic, PublicResolver, is_private_literal};

/// The error of a redirect past the limit (classified by its kind, so it needs no text).
#[derive(Debug, thiserror::Error)]
#[error("too many redirects")]
struct TooManyRedirects;

/// The limits of a [`Fetcher`].
#[derive(Clone, Debug, PartialEq)]
pub struct FetchSettings {
    /// For the whole request, reading the body included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Bodies larger than this (after decompression) are refused.
    pub max_body_bytes: u64,
    pub max_redirects: usize,
    pub user_agent: String,
    /// Let URLs reach loopback, private and link-local addresses. Off by default: see
    /// [`super::address`].
    pub allow_private_addresses: bool,
}

impl Default for FetchSettings {
    fn default() -> Self {
        FetchSettings {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_body_bytes: 5 * 1024 * 1024,
            max_redirects: 5,
            user_agent: format!("Tidings/{}", crate::VERSION),
            allow_private_addresses: false,
        }
    }
}

/// A successful response.
#[derive(Clone, Debug, PartialEq)]
pub struct Fetched {
    /// Where the body came from, after redirects.
    pub url: Url,
    /// The `Content-Type` header as sent.
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Fetched {
    /// The body as text, decoded by (in order) a byte-order mark, the charset of the
    /// `Content-Type`, an HTML page's `<meta charset>`, else UTF-8 when the body is valid UTF-8
    /// and windows-1252 (the web's usual legacy encoding) when it is not.
    pub fn text(&self) -> String {
        let encoding = self
            .content_type
            .as_deref()
            .and_then(charset_of_content_type)
            .or_else(|| {
                self.may_be_html()
                    .then(|| meta_charset(&self.body))
                    .flatten()
            })
            .unwrap_or_else(|| guess_encoding(&self.body));
        encoding.decode(&self.body).0.into_owned()
    }

    fn may_be_html(&self) -> bool {
        self.content_type
            .as_deref()
            .and_then(|content_type| content_type.parse::<mime::Mime>().ok())
            .is_none_or(|mime| mime.subtype() == mime::HTML || mime.subtype() == "xhtml")
    }
}

/// Why a URL could not be fetched; its `Display` is "URL: reason".
#[derive(Debug, thiserror::Error)]
#[error("{url}: {kind}")]
pub struct FetchError {
    /// As it was asked for.
    pub url: String,
    pub kind: FetchErrorKind,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum FetchErrorKind {
    #[error("not a valid URL ({0})")]
    InvalidUrl(String),
    #[error("only http and https URLs can be fetched, not {0}")]
    UnsupportedScheme(String),
    #[error("timed out after {}", format_duration(.0))]
    Timeout(Duration),
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    #[error("the body is larger than {}", format_bytes(.0))]
    TooLarge(u64),
    #[error("HTTP status {}", format_status(.0))]
    Status(u16),
    #[error("connection failed: {0}")]
    Connection(String),
    #[error("{0}; only public addresses are fetched")]
    NotPublic(NotPublic),
}

/// An HTTP client for pages and feeds; cheap to clone, one connection pool for all clones.
#[derive(Clone, Debug)]
pub struct Fetcher {
    client: reqwest::Client,
    settings: FetchSettings,
}

impl Fetcher {
    pub fn new(settings: FetchSettings) -> Result<Self, reqwest::Error> {
        let max_redirects = settings.max_redirects;
        let public_only = !settings.allow_private_addresses;
        // A redirect to an address literal skips the resolver: it is checked here.
        let redirects = redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max_redirects {
                attempt.error(TooManyRedirects)
            } else if public_only && is_private_literal(attempt.url()) {
                let host = attempt.url().host_str().unwrap_or_default().to_owned();
                attempt.error(NotPublic { host })
            } else {
                attempt.follow()
            }
        });
        let mut builder = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .redirect(redirects)
            .user_agent(&settings.user_agent);
        if public_only {
            builder = builder.dns_resolver(PublicResolver::shared());
        }
        let client = builder.build()?;
        Ok(Fetcher { client, settings })
    }

    /// GETs `url` (http or https), following redirects, and reads its body up to the cap.
    pub async fn fetch(&self, url: &str) -> Result<Fetched, FetchError> {
        let failed = |kind| FetchError {
            url: url.to_owned(),
            kind,
        };
        let parsed = Url::parse(url)
            .map_err(|error| failed(FetchErrorKind::InvalidUrl(error.to_string())))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(failed(FetchErrorKind::UnsupportedScheme(
                parsed.scheme().to_owned(),
            )));
        }
        if !self.settings.allow_private_addresses && is_private_literal(&parsed) {
            let host = parsed.host_str().unwrap_or_default().to_owned();
            return Err(failed(FetchErrorKind::NotPublic(NotPublic { host })));
        }
        let mut response = self
            .client
            .get(parsed)
            .send()
            .await
            .map_err(|error| failed(self.classify(&error)))?;
        if !response.status().is_success() {
            return Err(failed(FetchErrorKind::Status(response.status().as_u16())));
        }
        let too_large = FetchErrorKind::TooLarge(self.settings.max_body_bytes);
        if response
            .content_length()
            .is_some_and(|length| length > self.settings.max_body_bytes)
        {
            return Err(failed(too_large));
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let final_url = response.url().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| failed(self.classify(&error)))?
        {
            if (body.len() + chunk.len()) as u64 > self.settings.max_body_bytes {
                return Err(failed(too_large));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            url: final_url,
            content_type,
            body,
        })
    }

    fn classify(&self, error: &reqwest::Error) -> FetchErrorKind {
        let not_public =
            std::iter::successors(Some(error as &(dyn std::error::Error + 'static)), |error| {
                error.source()
            })
            .find_map(|error| error.downcast_ref::<NotPublic>());
        if let Some(not_public) = not_public {
            FetchErrorKind::NotPublic(not_public.clone())
        } else if error.is_redirect() {
            FetchErrorKind::TooManyRedirects(self.settings.max_redirects)
        } else if error.is_timeout() && error.is_connect() {
            FetchErrorKind::Timeout(self.settings.connect_timeout)
        } else if error.is_timeout() {
            FetchErrorKind::Timeout(self.settings.timeout)
        } else {
            FetchErrorKind::Connection(root_cause(error))
        }
    }
}

/// The innermost error: reqwest's own message repeats the URL and hides the reason ("connection
/// refused", "unexpected end of file") in its sources.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    std::iter::successors(Some(error), |error| error.source())
        .last()
        .map_or_else(String::new, ToString::to_string)
}

fn charset_of_content_type(content_type: &str) -> Option<&'static Encoding> {
    let mime: mime::Mime = content_type.parse().ok()?;
    Encoding::for_label(mime.get_param(mime::CHARSET)?.as_str().as_bytes())
}

static META_CHARSET: LazyLock<Selector> = LazyLock::new(|| {
    Selector::parse("meta[charset], meta[http-equiv][content]").expect("a valid CSS selector")
});

/// The encoding an HTML page declares in a `<meta>` within its first 1024 bytes, where the HTML
/// standard requires it. Those bytes are read as windows-1252, which keeps the ASCII markup
/// intact whatever the real encoding.
fn meta_charset(body: &[u8]) -> Option<&'static Encoding> {
    let head = WINDOWS_1252
        .decode_without_bom_handling(&body[..body.len().min(1024)])
        .0;
    let document = Html::parse_document(&head);
    let declared = document
        .select(&META_CHARSET)
        .find_map(|meta| match meta.attr("charset") {
            Some(charset) => Encoding::for_label(charset.trim().as_bytes()),
            None if meta
                .attr("http-equiv")?
                .eq_ignore_ascii_case("content-type") =>
            {
                charset_of_content_type(meta.attr("content")?)
            }
            None => None,
        })?;
    // A page cannot really be UTF-16 if its meta tag was readable as ASCII; browsers read UTF-8.
    Some(declared.output_encoding())
}

fn guess_encoding(body: &[u8]) -> &'static Encoding {
    if std::str::from_utf8(body).is_ok() {
        UTF_8
    } else {
        WINDOWS_1252
    }
}

/// "10 s" for whole seconds, else "250 ms".
fn format_duration(duration: &Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

/// "5 MiB", "64 KiB" or "1000 bytes", whichever is exact.
fn format_bytes(bytes: &u64) -> String {
    let bytes = *bytes;
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    match bytes {
        0 => "0 bytes".to_owned(),
        _ if bytes.is_multiple_of(MIB) => format!("{} MiB", bytes / MIB),
        _ if bytes.is_multiple_of(KIB) => format!("{} KiB", bytes / KIB),
        _ => format!("{bytes} bytes"),
    }
}

/// "404 Not Found", or the bare code when it has no standard reason.
fn format_status(code: &u16) -> String {
    let code = *code;
    StatusCode::from_u16(code)
        .ok()
        .and_then(|status| status.canonical_reason())
        .map_or_else(|| code.to_string(), |reason| format!("{code} {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetched(content_type: Option<&str>, body: &[u8]) -> Fetched {
        Fetched {
            url: Url::parse("https://news.example/").unwrap(),
            content_type: content_type.map(str::to_owned),
            body: body.to_vec(),
        }
    }

    #[test]
    fn the_content_type_charset_decides_the_encoding() {
        let page = fetched(Some("text/html; charset=ISO-8859-1"), b"Caf\xe9 \x80");
        assert_eq!(page.text(), "Café €");
    }

    #[test]
    fn an_html_meta_charset_decides_when_the_header_has_none() {
        let body = b"<html><head><meta charset=\"windows-1252\"><title>Na\xefve</title>";
        assert!(
            fetched(Some("text/html"), body)
                .text()
                .ends_with("<title>Naïve</title>")
        );
        let http_equiv =
            b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-15\">\xa4";
        assert!(fetched(None, http_equiv).text().ends_with('€'));
    }

    #[test]
    fn a_byte_order_mark_wins_over_declarations() {
        let body = b"\xef\xbb\xbfCaf\xc3\xa9";
        assert_eq!(
            fetched(Some("text/html; charset=windows-1252"), body).text(),
            "Café"
        );
    }

    #[test]
    fn undeclared_bodies_are_utf8_when_valid_else_windows_1252() {
        assert_eq!(fetched(None, "Café".as_bytes()).text(), "Café");
        assert_eq!(fetched(Some("text/plain"), b"Caf\xe9").text(), "Café");
    }

    #[test]
    fn a_meta_tag_in_a_non_html_body_is_ignored() {
        let body = b"<meta charset=\"windows-1252\">Caf\xc3\xa9";
        assert_eq!(
            fetched(Some("application/xml"), body).text(),
            "<meta charset=\"windows-1252\">Café"
        );
    }

    #[test]
    fn errors_name_the_url_and_a_readable_reason() {
        let error = |kind| {
            FetchError {
                url: "https://x/y".into(),
                kind,
            }
            .to_string()
        };
        assert_eq!(
            error(FetchErrorKind::Timeout(Duration::from_secs(10))),
            "https://x/y: timed out after 10 s"
        );
        assert_eq!(
            error(FetchErrorKind::Timeout(Duration::from_millis(250))),
            "https://x/y: timed out after 250 ms"
        );
        assert_eq!(
            error(FetchErrorKind::TooLarge(5 * 1024 * 1024)),
            "https://x/y: the body is larger than 5 MiB"
        );
        assert_eq!(
            error(FetchErrorKind::TooLarge(1000)),
            "https://x/y: the body is larger than 1000 bytes"
        );
        assert_eq!(
            error(FetchErrorKind::Status(404)),
            "https://x/y: HTTP status 404 Not Found"
        );
        assert_eq!(
            error(FetchErrorKind::Status(599)),
            "https://x/y: HTTP status 599"
        );
        assert_eq!(
            error(FetchErrorKind::TooManyRedirects(5)),
            "https://x/y: more than 5 redirects"
        );
    }

    #[tokio::test]
    async fn only_http_and_https_urls_are_fetched() {
        let fetcher = Fetcher::new(FetchSettings::default()).unwrap();
        let error = fetcher
            .fetch("ftp://files.example/a.xml")
            .await
            .unwrap_err();
        assert_eq!(error.kind, FetchErrorKind::UnsupportedScheme("ftp".into()));
        assert_eq!(
            error.to_string(),
            "ftp://files.example/a.xml: only http and https URLs can be fetched, not ftp"
        );
        let error = fetcher.fetch("/relative/path").await.unwrap_err();
        assert!(
            matches!(error.kind, FetchErrorKind::InvalidUrl(_)),
            "{error}"
        );
    }
}
