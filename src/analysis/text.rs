//! One notion of a "word" for every check: scoring, summaries, quality control and fingerprints
//! all see text through these functions, so a keyword matches the same way everywhere.

use unicode_normalization::{UnicodeNormalization, char::is_combining_mark};
use unicode_segmentation::UnicodeSegmentation;

/// English function words: they carry no topic, so names, descriptions and term frequencies
/// ignore them. Sorted, for the binary search.
const STOP_WORDS: &[&str] = &[
    "about", "after", "all", "also", "and", "any", "are", "because", "been", "before", "being",
    "between", "both", "but", "can", "could", "did", "does", "each", "for", "from", "had", "has",
    "have", "her", "here", "his", "how", "into", "its", "just", "more", "most", "not", "now",
    "only", "other", "our", "out", "over", "said", "she", "should", "some", "such", "than", "that",
    "the", "their", "them", "then", "there", "these", "they", "this", "those", "through", "under",
    "very", "was", "were", "what", "when", "where", "which", "while", "who", "why", "will", "with",
    "would", "you", "your",
];

/// Lower-cases and strips diacritics ("Café" → "cafe"), so that matching ignores both.
pub(crate) fn fold(text: &str) -> String {
    text.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The folded words of `text` in order, without punctuation or spaces (Unicode word
/// boundaries, so "don't" stays one word and "state-of-the-art" is four).
pub(crate) fn words(text: &str) -> Vec<String> {
    fold(text).unicode_words().map(str::to_owned).collect()
}

/// Whether a folded word can say something about a topic: not a function word, not a
/// one- or two-letter fragment.
pub(crate) fn is_significant(word: &str) -> bool {
    word.chars().count() > 2 && STOP_WORDS.binary_search(&word).is_err()
}

/// How often the word sequence `phrase` occurs in `words`.
pub(crate) fn count_phrase(words: &[String], phrase: &[String]) -> usize {
    if phrase.is_empty() {
        return 0;
    }
    words
        .windows(phrase.len())
        .filter(|window| *window == phrase)
        .count()
}

/// The sentences of `text`, trimmed, without those that hold no word.
pub(crate) fn sentences(text: &str) -> impl Iterator<Item = &str> {
    text.unicode_sentences()
        .map(str::trim)
        .filter(|sentence| sentence.unicode_words().next().is_some())
}

/// Runs of whitespace (line breaks included) as single spaces, trimmed.
pub(crate) fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_are_sorted_for_the_binary_search() {
        assert!(STOP_WORDS.is_sorted());
    }

    #[test]
    fn folding_ignores_case_and_diacritics() {
        assert_eq!(fold("Crème Brûlée À LA Façon"), "creme brulee a la facon");
        assert_eq!(
            words("Zürich's café, São-Paulo!"),
            ["zurich's", "cafe", "sao", "paulo"]
        );
    }

    #[test]
    fn phrases_match_only_as_consecutive_words() {
        let text =
            words("Machine learning helps; a machine can be learning too. Machine learning!");
        assert_eq!(count_phrase(&text, &words("machine learning")), 2);
        assert_eq!(count_phrase(&text, &words("learning")), 3);
        assert_eq!(count_phrase(&text, &[]), 0);
    }

    #[test]
    fn significant_words_skip_function_words_and_fragments() {
        assert!(is_significant("rust"));
        assert!(!is_significant("the"));
        assert!(!is_significant("of"));
    }

    #[test]
    fn sentences_are_trimmed_and_skip_punctuation_only_runs() {
        let found: Vec<_> = sentences("First one.  Second one?\n\n— \n Third.").collect();
        assert_eq!(found, ["First one.", "Second one?", "Third."]);
    }
}
