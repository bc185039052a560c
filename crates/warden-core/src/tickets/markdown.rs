//! A ticket body as HTML a page may show: CommonMark rendered by `pulldown-cmark` with raw
//! HTML turned into text, then cleaned by `ammonia` (an allow-list of tags and attributes;
//! links only to `http`, `https` and `mailto`, opened with `rel="noopener noreferrer
//! nofollow"`). A `<script>` in a body is shown as text; a `javascript:` link loses its
//! address.

use std::collections::HashSet;

use pulldown_cmark::{Event, Options, Parser, html};

/// Renders a Markdown body to safe HTML.
pub fn render(body: &str) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let events = Parser::new_ext(body, options).map(|event| match event {
        // Raw HTML in the source is shown, never interpreted.
        Event::Html(text) | Event::InlineHtml(text) => Event::Text(text),
        other => other,
    });
    let mut unsafe_html = String::with_capacity(body.len() * 3 / 2);
    html::push_html(&mut unsafe_html, events);
    ammonia::Builder::default()
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(&unsafe_html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn markdown_renders() {
        let html = render("# Title\n\n*some* `code` and [a link](https://example.com/x)");
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(html.contains("<em>some</em>"), "{html}");
        assert!(
            html.contains(r#"<a href="https://example.com/x" rel="noopener noreferrer nofollow">"#),
            "{html}"
        );
    }

    #[test]
    fn scripts_and_script_links_are_inert() {
        for body in [
            "<script>alert(1)</script>",
            "hi <img src=x onerror=alert(1)>",
            "[click](javascript:alert(1))",
            "[click](JaVaScRiPt:alert(1))",
            "[click](data:text/html;base64,PHNjcmlwdD4=)",
            "<a href=\"javascript:alert(1)\">x</a>",
            "![x](javascript:alert(1))",
        ] {
            let html = render(body);
            let lower = html.to_lowercase();
            assert!(!lower.contains("<script"), "{body} → {html}");
            // What stays of an attack is text (`&lt;a href=…`), never a tag that acts.
            assert!(!lower.contains("<a href=\"javascript"), "{body} → {html}");
            assert!(!lower.contains("<img src=\"javascript"), "{body} → {html}");
            assert!(!lower.contains("<img src=\"x\" onerror"), "{body} → {html}");
            assert!(!lower.contains("data:text/html"), "{body} → {html}");
        }
        assert!(render("<script>alert(1)</script>").contains("&lt;script&gt;"));
    }
}
