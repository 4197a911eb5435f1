//! The title and main text of an HTML page, without the navigation, adverts, scripts and forms
//! around it, with paragraph breaks kept.

use std::sync::LazyLock;

use ego_tree::iter::Edge;
use scraper::{ElementRef, Html, Node, Selector};

use super::text::collapse_whitespace;

/// What a page says: its title, when it has one, and its main text, paragraphs separated by a
/// blank line.
#[derive(Clone, Debug, PartialEq)]
pub struct Extracted {
    pub title: Option<String>,
    pub text: String,
}

/// Elements that never hold the article: scripts and styles, page chrome and forms.
const DROPPED: &[&str] = &[
    "aside", "button", "footer", "form", "head", "header", "iframe", "nav", "noscript", "script",
    "select", "style", "svg", "template",
];

/// Elements that start and end a paragraph of the extracted text.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "blockquote",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "li",
    "main",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "td",
    "th",
    "tr",
    "ul",
];

fn selector(css: &str) -> Selector {
    Selector::parse(css).expect("a valid CSS selector")
}

static PARAGRAPHS: LazyLock<Selector> = LazyLock::new(|| selector("p"));
static OG_TITLE: LazyLock<Selector> = LazyLock::new(|| selector(r#"meta[property="og:title"]"#));
static TITLE: LazyLock<Selector> = LazyLock::new(|| selector("title"));
static H1: LazyLock<Selector> = LazyLock::new(|| selector("h1"));
/// Where sites put the article, most specific first.
static CONTAINERS: LazyLock<[Selector; 3]> = LazyLock::new(|| {
    [
        selector("article"),
        selector("main"),
        selector(r#"[role="main"]"#),
    ]
});

/// The title and main text of `html`. The main text is that of the first of `<article>`,
/// `<main>` or `role="main"` that holds at least half of the page's paragraph text (the richest
/// when there are several; a teaser card is not the article); failing that, of the element
/// whose own paragraphs hold the most text; failing that, of the whole page.
pub fn extract_article(html: &str) -> Extracted {
    let document = Html::parse_document(html);
    let main = main_container(&document).unwrap_or_else(|| document.root_element());
    Extracted {
        title: title(&document),
        text: render_text(main),
    }
}

/// The text of an HTML fragment, such as a feed entry's summary, with paragraph breaks kept.
/// Plain text comes out as it went in, with whitespace collapsed.
pub fn fragment_text(html: &str) -> String {
    render_text(Html::parse_fragment(html).root_element())
}

/// `og:title`, else `<title>`, else the first `<h1>`; the first that is not blank.
fn title(document: &Html) -> Option<String> {
    let og_title = document
        .select(&OG_TITLE)
        .filter_map(|meta| meta.attr("content"))
        .map(str::to_owned);
    let element_text = |selector| {
        document
            .select(selector)
            .map(|element: ElementRef| element.text().collect::<String>())
    };
    og_title
        .chain(element_text(&TITLE))
        .chain(element_text(&H1))
        .map(|title| collapse_whitespace(&title))
        .find(|title| !title.is_empty())
}

fn main_container(document: &Html) -> Option<ElementRef<'_>> {
    let page_chars = paragraph_chars(document.root_element());
    let holds_most_of_the_page = |(_, chars): &(ElementRef, usize)| 2 * chars >= page_chars;
    CONTAINERS
        .iter()
        .find_map(|container| {
            let candidates = document
                .select(container)
                .map(|element| (element, paragraph_chars(element)));
            richest(candidates).filter(holds_most_of_the_page)
        })
        .or_else(|| richest(paragraph_parents(document)))
        .map(|(element, _)| element)
}

/// The candidate with the most paragraph text, the first among equals, if any has some.
fn richest<'a>(
    candidates: impl Iterator<Item = (ElementRef<'a>, usize)>,
) -> Option<(ElementRef<'a>, usize)> {
    candidates
        .filter(|(_, chars)| *chars > 0)
        .reduce(|best, candidate| {
            if candidate.1 > best.1 {
                candidate
            } else {
                best
            }
        })
}

/// Each element that has paragraphs as children, with the text length of those paragraphs, in
/// document order.
fn paragraph_parents(document: &Html) -> impl Iterator<Item = (ElementRef<'_>, usize)> {
    let mut parents: Vec<(ElementRef, usize)> = Vec::new();
    for paragraph in kept_paragraphs(document.root_element()) {
        let Some(parent) = paragraph.parent().and_then(ElementRef::wrap) else {
            continue;
        };
        let chars = paragraph_text_chars(paragraph);
        match parents
            .iter_mut()
            .find(|(known, _)| known.id() == parent.id())
        {
            Some((_, total)) => *total += chars,
            None => parents.push((parent, chars)),
        }
    }
    parents.into_iter()
}

fn paragraph_chars(scope: ElementRef) -> usize {
    kept_paragraphs(scope).map(paragraph_text_chars).sum()
}

fn paragraph_text_chars(paragraph: ElementRef) -> usize {
    collapse_whitespace(&paragraph.text().collect::<String>())
        .chars()
        .count()
}

/// The paragraphs under `scope` that are not inside page chrome.
fn kept_paragraphs(scope: ElementRef<'_>) -> impl Iterator<Item = ElementRef<'_>> {
    scope.select(&PARAGRAPHS).filter(|paragraph| {
        !paragraph
            .ancestors()
            .filter_map(ElementRef::wrap)
            .any(|ancestor| DROPPED.contains(&ancestor.value().name()))
    })
}

/// The text under `root` without [`DROPPED`] elements, a blank line between [`BLOCKS`], and
/// whitespace collapsed within each paragraph. Walks the tree without recursion: pages are
/// untrusted and may nest deeply.
fn render_text(root: ElementRef) -> String {
    let mut paragraphs = Vec::new();
    let mut current = String::new();
    let mut dropped_subtree = None;
    let mut end_paragraph = |current: &mut String| {
        let paragraph = collapse_whitespace(current);
        if !paragraph.is_empty() {
            paragraphs.push(paragraph);
        }
        current.clear();
    };
    for edge in root.traverse() {
        match edge {
            Edge::Open(_) if dropped_subtree.is_some() => {}
            Edge::Open(node) => match node.value() {
                Node::Text(text) => current.push_str(text),
                Node::Element(element) if DROPPED.contains(&element.name()) => {
                    dropped_subtree = Some(node.id());
                }
                Node::Element(element) if BLOCKS.contains(&element.name()) => {
                    end_paragraph(&mut current);
                }
                _ => {}
            },
            Edge::Close(node) if dropped_subtree == Some(node.id()) => dropped_subtree = None,
            Edge::Close(node) => {
                let is_block = node
                    .value()
                    .as_element()
                    .is_some_and(|element| BLOCKS.contains(&element.name()));
                if dropped_subtree.is_none() && is_block {
                    end_paragraph(&mut current);
                }
            }
        }
    }
    end_paragraph(&mut current);
    paragraphs.join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEWS_PAGE: &str = r#"<!doctype html>
        <html><head>
          <title>Council approves tram line | City News</title>
          <meta property="og:title" content="Council approves  tram line">
          <style>p { color: red }</style>
          <script>var tracking = "Do not extract me";</script>
        </head><body>
          <header><nav><a href="/">Home</a> <a href="/city">City</a></nav></header>
          <div class="teaser"><p>Subscribe to our newsletter!</p></div>
          <article>
            <header><h1>Council approves tram line</h1><p>By A. Reporter</p></header>
            <p>The city council approved the
               new tram line on <b>Tuesday</b>.</p>
            <aside><p>Related: bus timetable changes</p></aside>
            <p>Construction starts next spring.<br>It will take two years.</p>
            <form><p>Rate this article</p><button>Send</button></form>
            <script>alert("no")</script>
          </article>
          <footer><p>© City News</p></footer>
        </body></html>"#;

    #[test]
    fn the_article_is_extracted_without_chrome_scripts_and_forms() {
        let extracted = extract_article(NEWS_PAGE);
        assert_eq!(
            extracted.title.as_deref(),
            Some("Council approves tram line")
        );
        assert_eq!(
            extracted.text,
            "The city council approved the new tram line on Tuesday.\n\n\
             Construction starts next spring.\n\nIt will take two years."
        );
    }

    #[test]
    fn of_several_articles_the_one_with_most_paragraph_text_wins() {
        let html = "<body><article><p>Short teaser.</p></article>\
            <article><p>The long story, with many more words in its paragraph.</p></article></body>";
        assert_eq!(
            extract_article(html).text,
            "The long story, with many more words in its paragraph."
        );
    }

    #[test]
    fn a_teaser_card_in_an_article_element_does_not_hide_the_story() {
        let html = r#"<body>
            <div class="story"><p>The story itself, told over two long paragraphs here.</p>
              <p>Its second paragraph, with more of the details of the story.</p></div>
            <article class="card"><p>Read also: another story.</p></article>
            </body>"#;
        assert_eq!(
            extract_article(html).text,
            "The story itself, told over two long paragraphs here.\n\n\
             Its second paragraph, with more of the details of the story."
        );
    }

    #[test]
    fn without_semantic_containers_the_element_with_most_paragraph_text_wins() {
        let html = r#"<body>
            <div id="menu"><p>Home</p><p>About</p></div>
            <div id="content"><div class="story">
              <p>First paragraph of the story is here.</p>
              <p>Second paragraph of the story is here.</p>
            </div><p>Share</p></div>
            </body>"#;
        assert_eq!(
            extract_article(html).text,
            "First paragraph of the story is here.\n\nSecond paragraph of the story is here."
        );
    }

    #[test]
    fn a_page_without_paragraphs_gives_all_its_visible_text() {
        let html = "<html><head><title>T</title></head><body><nav>Menu</nav>\
            <div>Line one</div><div>Line <i>two</i></div></body></html>";
        assert_eq!(extract_article(html).text, "Line one\n\nLine two");
    }

    #[test]
    fn the_title_falls_back_to_title_then_h1() {
        let title = |html| extract_article(html).title;
        assert_eq!(
            title("<title> A\n title </title><h1>H</h1>").as_deref(),
            Some("A title")
        );
        assert_eq!(
            title("<title> </title><h1>The <em>heading</em></h1>").as_deref(),
            Some("The heading")
        );
        assert_eq!(title("<p>No title at all</p>"), None);
    }

    #[test]
    fn fragments_keep_paragraphs_and_decode_entities() {
        assert_eq!(
            fragment_text("<p>Fish &amp; chips</p><p>Second <b>part</b></p>"),
            "Fish & chips\n\nSecond part"
        );
        assert_eq!(
            fragment_text("Plain  text,\n no markup"),
            "Plain text, no markup"
        );
    }
}
