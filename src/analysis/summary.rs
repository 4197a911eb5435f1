//! Extractive summaries: the sentences of the article that best carry its topic and its most
//! frequent words, in their original order, so that the summary reads like the article.

use std::collections::HashMap;

use super::{
    relevance::{Term, TopicProfile, topic_terms},
    text::{count_phrase, is_significant, sentences, words},
};

/// Up to `max_sentences` sentences of `text`, chosen by [`sentence_score`] (the earlier
/// sentence wins a tie) and joined in the order they appear.
pub fn summarize(text: &str, profile: &TopicProfile, max_sentences: usize) -> String {
    let sentences: Vec<(&str, Vec<String>)> = sentences(text)
        .map(|sentence| (sentence, words(sentence)))
        .collect();
    let frequencies = word_frequencies(sentences.iter().flat_map(|(_, words)| words));
    let terms = topic_terms(profile);
    let mut ranked: Vec<(usize, f64)> = sentences
        .iter()
        .enumerate()
        .map(|(index, (_, words))| (index, sentence_score(words, &frequencies, &terms)))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut chosen: Vec<usize> = ranked
        .iter()
        .take(max_sentences)
        .map(|(index, _)| *index)
        .collect();
    chosen.sort_unstable();
    chosen
        .into_iter()
        .map(|index| sentences[index].0)
        .collect::<Vec<_>>()
        .join(" ")
}

/// How often each significant word occurs, relative to the most frequent one (0 to 1].
fn word_frequencies<'a>(words: impl Iterator<Item = &'a String>) -> HashMap<&'a str, f64> {
    let mut counts: HashMap<&str, f64> = HashMap::new();
    for word in words.filter(|word| is_significant(word)) {
        *counts.entry(word).or_default() += 1.0;
    }
    let most = counts.values().copied().fold(1.0, f64::max);
    counts.values_mut().for_each(|count| *count /= most);
    counts
}

/// The frequency of a sentence's distinct significant words, divided by the square root of its
/// length so that long sentences are not chosen for their length alone, plus the weight of each
/// topic term it contains, so that on-topic sentences come first.
fn sentence_score(words: &[String], frequencies: &HashMap<&str, f64>, terms: &[Term]) -> f64 {
    let mut distinct: Vec<&str> = words.iter().map(String::as_str).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let frequency: f64 = distinct
        .iter()
        .filter_map(|word| frequencies.get(word))
        .sum();
    let topic: f64 = terms
        .iter()
        .filter(|term| count_phrase(words, &term.words) > 0)
        .map(|term| term.weight)
        .sum();
    frequency / (words.len() as f64).sqrt() + topic
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARTICLE: &str = "The city council met on Tuesday. \
        Members discussed the new tram line through the old town. \
        Lunch was served at noon. \
        The tram line will open in 2027 and the tram depot moves north. \
        It rained in the evening.";

    fn tram_topic() -> TopicProfile {
        TopicProfile {
            name: "Public transport".into(),
            keywords: vec!["tram".into()],
            ..Default::default()
        }
    }

    #[test]
    fn picks_on_topic_sentences_in_their_original_order() {
        assert_eq!(
            summarize(ARTICLE, &tram_topic(), 2),
            "Members discussed the new tram line through the old town. \
             The tram line will open in 2027 and the tram depot moves north."
        );
    }

    #[test]
    fn without_topic_terms_frequent_words_decide() {
        let summary = summarize(ARTICLE, &TopicProfile::default(), 1);
        assert!(summary.contains("tram"), "{summary}");
    }

    #[test]
    fn a_short_text_is_its_own_summary() {
        let text = "One sentence. Two sentences.";
        assert_eq!(summarize(text, &tram_topic(), 5), text);
    }

    #[test]
    fn zero_sentences_or_no_text_give_an_empty_summary() {
        assert_eq!(summarize(ARTICLE, &tram_topic(), 0), "");
        assert_eq!(summarize("  \n ", &tram_topic(), 3), "");
    }

    #[test]
    fn ties_go_to_the_earlier_sentence() {
        assert_eq!(
            summarize("Alpha beta. Gamma delta.", &TopicProfile::default(), 1),
            "Alpha beta."
        );
    }
}
