//! Fetching and analysing articles for the ingest jobs: the pieces, each usable alone.
//!
//! A job fetches a feed or a page with [`fetch::Fetcher`] (timeouts, a size cap, a redirect
//! cap, charset decoding), lists a feed's articles with [`feed::parse_feed`], takes a page's
//! title and main text with [`extract::extract_article`], then judges the text:
//! [`relevance::relevance`] against a topic, [`summary::summarize`], [`quality::quality`] and
//! [`quality::content_fingerprint`] for duplicates. [`analyser::Analyser`] bundles relevance and
//! summary behind one interface so that an optional language model ([`openai::OpenAiAnalyser`])
//! can stand in for the deterministic [`analyser::LocalAnalyser`], which stays the fallback.

pub mod address;
pub mod analyser;
pub mod extract;
pub mod feed;
pub mod fetch;
pub mod openai;
pub mod quality;
pub mod relevance;
pub mod summary;
pub(crate) mod text;
