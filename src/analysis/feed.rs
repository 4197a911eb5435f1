//! The articles of an RSS or Atom feed (also RSS 1.0 and JSON Feed, which `feed-rs` reads too).

use chrono::{DateTime, Utc};
use feed_rs::model::{Entry, Link};
use url::Url;

use super::extract::fragment_text;

/// One article announced by a feed.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedItem {
    /// The article's page, absolute.
    pub url: Url,
    /// Empty when the feed gives none; the page's own title can stand in.
    pub title: String,
    pub published: Option<DateTime<Utc>>,
    /// As plain text: feeds mostly put HTML here.
    pub summary: Option<String>,
}

/// A feed that could not be read, with its URL.
#[derive(Debug, thiserror::Error)]
#[error("{url}: not a readable RSS or Atom feed: {reason}")]
pub struct FeedError {
    pub url: Url,
    pub reason: String,
}

/// The items of the feed `body` fetched from `feed_url`, in feed order. The raw bytes are
/// parsed, so that the XML declaration decides the encoding. Relative links are resolved
/// against `feed_url` (and `xml:base`); items without an http(s) link are skipped, since there
/// is nothing to fetch for them.
pub fn parse_feed(body: &[u8], feed_url: &Url) -> Result<Vec<FeedItem>, FeedError> {
    let feed = feed_rs::parser::Builder::new()
        .base_uri(Some(feed_url.as_str()))
        .build()
        .parse(body)
        .map_err(|error| FeedError {
            url: feed_url.clone(),
            reason: error.to_string(),
        })?;
    Ok(feed
        .entries
        .into_iter()
        .filter_map(|entry| feed_item(entry, feed_url))
        .collect())
}

fn feed_item(entry: Entry, feed_url: &Url) -> Option<FeedItem> {
    let url = article_link(&entry.links, feed_url)?;
    let summary = entry
        .summary
        .map(|summary| fragment_text(&summary.content))
        .filter(|summary| !summary.is_empty());
    Some(FeedItem {
        url,
        title: entry
            .title
            .map(|title| fragment_text(&title.content))
            .unwrap_or_default(),
        published: entry.published.or(entry.updated),
        summary,
    })
}

/// The link to the article itself: Atom's `alternate` link (a link without `rel` means the
/// same), else the first link.
fn article_link(links: &[Link], feed_url: &Url) -> Option<Url> {
    let is_alternate = |link: &&Link| link.rel.as_deref().is_none_or(|rel| rel == "alternate");
    let link = links.iter().find(is_alternate).or(links.first())?;
    let url = feed_url.join(link.href.trim()).ok()?;
    matches!(url.scheme(), "http" | "https").then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_url() -> Url {
        Url::parse("https://news.example/feeds/main.xml").unwrap()
    }

    #[test]
    fn rss_items_become_feed_items() {
        let rss = br#"<?xml version="1.0" encoding="UTF-8"?>
            <rss version="2.0"><channel><title>City News</title><link>https://news.example/</link>
              <item>
                <title>Council approves tram line</title>
                <link>https://news.example/2025/tram</link>
                <description>&lt;p&gt;The council &lt;b&gt;approved&lt;/b&gt; it.&lt;/p&gt;</description>
                <pubDate>Tue, 04 Mar 2025 10:30:00 +0100</pubDate>
              </item>
              <item><title>No link, so skipped</title><description>Nothing to fetch</description></item>
              <item><title>Relative</title><link>/2025/relative</link></item>
            </channel></rss>"#;
        let items = parse_feed(rss, &feed_url()).unwrap();
        assert_eq!(
            items,
            [
                FeedItem {
                    url: Url::parse("https://news.example/2025/tram").unwrap(),
                    title: "Council approves tram line".into(),
                    published: Some("2025-03-04T09:30:00Z".parse().unwrap()),
                    summary: Some("The council approved it.".into()),
                },
                FeedItem {
                    url: Url::parse("https://news.example/2025/relative").unwrap(),
                    title: "Relative".into(),
                    published: None,
                    summary: None,
                },
            ]
        );
    }

    #[test]
    fn atom_entries_use_their_alternate_link_and_fall_back_to_updated() {
        let atom = br#"<?xml version="1.0" encoding="utf-8"?>
            <feed xmlns="http://www.w3.org/2005/Atom">
              <title>Example</title><id>urn:example</id><updated>2025-03-05T08:00:00Z</updated>
              <entry>
                <title type="html">Trams &amp;amp; buses</title>
                <id>urn:example:1</id>
                <link rel="edit" href="https://news.example/edit/1"/>
                <link rel="alternate" href="articles/1.html"/>
                <updated>2025-03-05T08:00:00Z</updated>
                <summary>Plain summary.</summary>
              </entry>
              <entry>
                <title>Only an enclosure</title><id>urn:example:2</id>
                <link rel="enclosure" href="mailto:editor@news.example"/>
                <updated>2025-03-05T08:00:00Z</updated>
              </entry>
            </feed>"#;
        let items = parse_feed(atom, &feed_url()).unwrap();
        assert_eq!(
            items,
            [FeedItem {
                url: Url::parse("https://news.example/feeds/articles/1.html").unwrap(),
                title: "Trams & buses".into(),
                published: Some("2025-03-05T08:00:00Z".parse().unwrap()),
                summary: Some("Plain summary.".into()),
            }]
        );
    }

    #[test]
    fn malformed_xml_is_a_feed_error_naming_the_feed() {
        let error = parse_feed(b"<rss><channel><item><title>Broken</ite", &feed_url()).unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with(
                "https://news.example/feeds/main.xml: not a readable RSS or Atom feed: "
            ),
            "{message}"
        );
    }

    #[test]
    fn an_html_page_is_not_a_feed() {
        assert!(parse_feed(b"<!doctype html><html><body>Hi</body></html>", &feed_url()).is_err());
    }
}
