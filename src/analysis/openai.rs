//! An optional analyser backed by an OpenAI-compatible chat-completions endpoint (OpenAI
//! itself, or a local server such as llama.cpp, Ollama or vLLM). Off unless configured; wrap it
//! in a [`FallbackAnalyser`](super::analyser::FallbackAnalyser) so that articles are still
//! analysed when the service is down.

use std::time::Duration;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::{
    analyser::{Analyser, AnalyserError, Analysis},
    relevance::{Relevance, TopicProfile, relevance},
};

/// Where the service is and which model to ask.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenAiSettings {
    /// Up to the version, e.g. `https://api.openai.com/v1`; `/chat/completions` is appended.
    pub base_url: Url,
    /// Sent as a bearer token; local servers often need none.
    pub api_key: Option<String>,
    pub model: String,
    pub timeout: Duration,
}

/// Longer article texts are cut to this many characters before they are sent: the start of
/// an article says what it is about, and prompts cost by length.
const MAX_PROMPT_TEXT_CHARS: usize = 12_000;

const INSTRUCTIONS: &str = "You judge how relevant a news article is to a topic and summarise \
    it. Answer with one JSON object and nothing else: {\"relevance\": a number from 0 (unrelated) \
    to 1 (entirely about the topic), \"summary\": at most three sentences in the article's \
    language}.";

pub struct OpenAiAnalyser {
    client: reqwest::Client,
    endpoint: String,
    settings: OpenAiSettings,
}

impl OpenAiAnalyser {
    pub fn new(settings: OpenAiSettings) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()?;
        let endpoint = format!(
            "{}/chat/completions",
            settings.base_url.as_str().trim_end_matches('/')
        );
        Ok(OpenAiAnalyser {
            client,
            endpoint,
            settings,
        })
    }

    async fn ask(
        &self,
        profile: &TopicProfile,
        title: &str,
        text: &str,
    ) -> Result<Analysis, AnalyserError> {
        let mut request = self.client.post(&self.endpoint).json(&json!({
            "model": self.settings.model,
            "temperature": 0,
            "messages": [
                { "role": "system", "content": INSTRUCTIONS },
                { "role": "user", "content": prompt(profile, title, text) },
            ],
        }));
        if let Some(key) = &self.settings.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(AnalyserError::Unreachable)?;
        if !response.status().is_success() {
            return Err(AnalyserError::Status(response.status().as_u16()));
        }
        let completion: Completion = response.json().await.map_err(AnalyserError::Unreachable)?;
        let verdict = verdict(&completion)?;
        Ok(Analysis {
            // The model scores; which keywords occur is a fact the deterministic matcher knows.
            relevance: Relevance {
                score: verdict.relevance,
                matched_keywords: relevance(profile, title, text).matched_keywords,
            },
            summary: verdict.summary,
        })
    }
}

impl Analyser for OpenAiAnalyser {
    fn analyse<'a>(
        &'a self,
        profile: &'a TopicProfile,
        title: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<Analysis, AnalyserError>> {
        Box::pin(self.ask(profile, title, text))
    }
}

fn prompt(profile: &TopicProfile, title: &str, text: &str) -> String {
    let text = text
        .char_indices()
        .nth(MAX_PROMPT_TEXT_CHARS)
        .map_or(text, |(end, _)| &text[..end]);
    format!(
        "Topic: {}\nDescription: {}\nKeywords: {}\n\nArticle title: {title}\n\nArticle text:\n{text}",
        profile.name,
        profile.description,
        profile.keywords.join(", "),
    )
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    content: String,
}

#[derive(Deserialize)]
struct Verdict {
    relevance: f64,
    summary: String,
}

/// The JSON object in the first choice's message; models sometimes wrap it in prose or a code
/// fence, so the text from the first `{` to the last `}` is parsed.
fn verdict(completion: &Completion) -> Result<Verdict, AnalyserError> {
    let invalid = |reason: &str| AnalyserError::InvalidAnswer(reason.to_owned());
    let content = &completion
        .choices
        .first()
        .ok_or_else(|| invalid("no choices"))?
        .message
        .content;
    let object = content
        .find('{')
        .zip(content.rfind('}'))
        .and_then(|(start, end)| content.get(start..=end))
        .ok_or_else(|| invalid("no JSON object in the message"))?;
    let verdict: Verdict =
        serde_json::from_str(object).map_err(|error| invalid(&error.to_string()))?;
    if !(0.0..=1.0).contains(&verdict.relevance) {
        return Err(invalid("relevance outside 0..=1"));
    }
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use axum::{Json, Router, http::HeaderMap, http::StatusCode, routing::post};
    use serde_json::Value;

    use super::*;
    use crate::analysis::analyser::{FallbackAnalyser, LocalAnalyser};

    /// Mimics `/v1/chat/completions`: checks the key and the model, answers with the reply
    /// `reply` builds from the user prompt.
    async fn serve_chat_completions(reply: fn(&str) -> Option<String>) -> Url {
        let handler = move |headers: HeaderMap, Json(request): Json<Value>| async move {
            let authorised = headers
                .get("authorization")
                .is_some_and(|value| value == "Bearer test-key");
            let prompt = request["messages"][1]["content"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            match reply(&prompt) {
                Some(content) if authorised && request["model"] == "test-model" => Ok(Json(
                    json!({ "choices": [{ "message": { "role": "assistant", "content": content } }] }),
                )),
                Some(_) => Err(StatusCode::UNAUTHORIZED),
                None => Err(StatusCode::INTERNAL_SERVER_ERROR),
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = Router::new().route("/v1/chat/completions", post(handler));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Url::parse(&format!("http://{address}/v1")).unwrap()
    }

    fn analyser(base_url: Url) -> OpenAiAnalyser {
        OpenAiAnalyser::new(OpenAiSettings {
            base_url,
            api_key: Some("test-key".into()),
            model: "test-model".into(),
            timeout: Duration::from_secs(5),
        })
        .unwrap()
    }

    fn topic() -> TopicProfile {
        TopicProfile {
            name: "Trams".into(),
            keywords: vec!["tram line".into()],
            ..Default::default()
        }
    }

    const TEXT: &str = "The new tram line opens in May. Buses will run less often.";

    #[tokio::test]
    async fn the_models_score_and_summary_come_back_with_the_matched_keywords() {
        let base_url = serve_chat_completions(|prompt| {
            assert!(
                prompt.contains("Topic: Trams") && prompt.contains("Article title: Trams"),
                "{prompt}"
            );
            Some("```json\n{\"relevance\": 0.8, \"summary\": \"A tram line opens.\"}\n```".into())
        })
        .await;
        let analysis = analyser(base_url)
            .analyse(&topic(), "Trams are back", TEXT)
            .await
            .unwrap();
        assert_eq!(
            analysis,
            Analysis {
                relevance: Relevance {
                    score: 0.8,
                    matched_keywords: vec!["tram line".into()]
                },
                summary: "A tram line opens.".into(),
            }
        );
    }

    #[tokio::test]
    async fn failures_are_errors_that_the_fallback_replaces_with_the_local_analysis() {
        let broken = serve_chat_completions(|_| None).await;
        let out_of_range =
            serve_chat_completions(|_| Some(r#"{"relevance": 7, "summary": "?"}"#.into())).await;
        let prose = serve_chat_completions(|_| Some("I cannot help with that.".into())).await;
        let local = LocalAnalyser::default();
        let expected = local.analyse_now(&topic(), "Trams are back", TEXT);
        for (base_url, error) in [
            (broken, "HTTP status 500"),
            (out_of_range, "relevance outside 0..=1"),
            (prose, "no JSON object"),
        ] {
            let failure = analyser(base_url.clone())
                .analyse(&topic(), "Trams are back", TEXT)
                .await
                .unwrap_err();
            assert!(failure.to_string().contains(error), "{failure}");
            let fallback = FallbackAnalyser::new(analyser(base_url), local.clone());
            assert_eq!(
                fallback
                    .analyse(&topic(), "Trams are back", TEXT)
                    .await
                    .unwrap(),
                expected
            );
        }
    }

    #[tokio::test]
    async fn a_wrong_key_is_refused_by_the_endpoint() {
        let base_url = serve_chat_completions(|_| Some("{}".into())).await;
        let mut settings = analyser(base_url).settings;
        settings.api_key = None;
        let failure = OpenAiAnalyser::new(settings)
            .unwrap()
            .analyse(&topic(), "", TEXT)
            .await
            .unwrap_err();
        assert!(matches!(failure, AnalyserError::Status(401)), "{failure}");
    }
}
