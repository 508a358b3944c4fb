//! `-report-html`: an `index.html` beside each source's report, as go-iiif writes one, showing every derivative
//! with its label, size and path, the palette as swatches and the blurhash as the images' placeholder.
//!
//! The page is self-contained (styles inline, the placeholder a `data:` PNG, derivatives by relative path), so it
//! opens from a folder or a bucket with no network. Every name in it comes from files or reports that anyone may
//! have written, so all text is HTML-escaped, paths are percent-encoded, and colours are used in styles only when
//! they are well-formed hex.

use crate::report::{SourceReport, Swatch};
use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::fmt::Write;

/// The placeholder's long side in pixels: a blurhash holds at most 9x9 components, so more shows nothing new.
const PLACEHOLDER_SIZE: u32 = 32;

/// Characters a relative URL path segment keeps as they are (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Where the page for the report at `report_key` goes: `index.html` in the same folder.
pub fn index_key(report_key: &str) -> String {
    match report_key.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/index.html"),
        None => "index.html".to_string(),
    }
}

/// The page for one source. `index_key` is where it is written, relative to the derivatives root, as the report's
/// `uris` are.
pub fn render(source: &str, report: &SourceReport, index_key: &str) -> String {
    let dir = index_key.rsplit_once('/').map_or("", |(d, _)| d);
    // Largest first, as go-iiif orders them; then by label, so the page is the same on every run.
    let mut images: Vec<(&String, &String, [u32; 2])> = report
        .uris
        .iter()
        .filter_map(|(label, path)| report.dimensions.get(label).map(|d| (label, path, *d)))
        .collect();
    images.sort_by(|a, b| {
        let area = |d: [u32; 2]| u64::from(d[0]) * u64::from(d[1]);
        area(b.2).cmp(&area(a.2)).then_with(|| a.0.cmp(b.0))
    });
    let aspect = images.first().map_or([1, 1], |i| i.2);
    let placeholder = report
        .blurhash
        .as_deref()
        .and_then(|h| placeholder_png(h, aspect));

    let mut h = String::with_capacity(4096);
    let title = escape(source);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>\n{STYLE}"
    );
    if let Some(png) = &placeholder {
        let _ = writeln!(
            h,
            ".placeholder {{ background-image: url(\"data:image/png;base64,{png}\"); }}"
        );
    }
    let _ = writeln!(h, "</style>\n</head>\n<body>\n<h1>{title}</h1>");

    if let Some(palette) = &report.palette {
        h.push_str("<section class=\"palette\">\n<h2>Palette</h2>\n<ul>\n");
        for s in palette {
            swatch_item(&mut h, s);
        }
        h.push_str("</ul>\n</section>\n");
    }
    if let Some(hash) = &report.blurhash {
        h.push_str("<section class=\"blurhash\">\n<h2>Blurhash</h2>\n");
        if placeholder.is_some() {
            let (w, ht) = placeholder_size(aspect);
            let _ = writeln!(
                h,
                "<div class=\"placeholder\" style=\"width: {}px; height: {}px\"></div>",
                w * 4,
                ht * 4
            );
        }
        let _ = writeln!(h, "<p><code>{}</code></p>\n</section>", escape(hash));
    }
    if let Some(hashes) = &report.imagehash {
        h.push_str("<section class=\"imagehash\">\n<h2>Image hashes</h2>\n<ul>\n");
        for (k, v) in hashes {
            let _ = writeln!(h, "<li>{} <code>{}</code></li>", escape(k), escape(v));
        }
        h.push_str("</ul>\n</section>\n");
    }
    if !report.errors.is_empty() {
        h.push_str("<section class=\"errors\">\n<h2>Errors</h2>\n<ul>\n");
        for (label, e) in &report.errors {
            let _ = writeln!(h, "<li><b>{}</b>: {}</li>", escape(label), escape(e));
        }
        h.push_str("</ul>\n</section>\n");
    }
    let class = if placeholder.is_some() {
        "image placeholder"
    } else {
        "image"
    };
    for (label, path, [w, ht]) in images {
        let src = escape(&relative_url(dir, path));
        let _ = writeln!(
            h,
            "<section class=\"derivative\">\n<h2>{label} <code>{w} x {ht}</code></h2>\n\
             <p class=\"path\"><code>{path}</code></p>\n\
             <div class=\"{class}\"><img src=\"{src}\" width=\"{w}\" height=\"{ht}\" alt=\"{label}\"></div>\n\
             </section>",
            label = escape(label),
            path = escape(path),
        );
    }
    h.push_str("</body>\n</html>\n");
    h
}

const STYLE: &str = "body { font-family: sans-serif; margin: 2rem; color: #222; }
code { font-size: 0.9em; }
.derivative { margin: 2rem 0; }
.path { margin: 0.25rem 0 0.75rem; color: #555; word-break: break-all; }
.image { display: inline-block; max-width: 100%; border: thin solid #ccc; }
.image img { display: block; max-width: 100%; height: auto; }
.placeholder { background-size: 100% 100%; }
.palette ul, .imagehash ul { list-style: none; padding: 0; }
.palette li { display: flex; align-items: center; gap: 0.75rem; margin: 0.25rem 0; }
.swatch { display: inline-block; width: 3rem; height: 1.5rem; border: thin solid #999; }
.closest .swatch { width: 1rem; height: 1rem; }
";

fn swatch_item(h: &mut String, s: &Swatch) {
    let _ = write!(
        h,
        "<li>{}<code>{}</code> {} <span class=\"reference\">({})</span>",
        swatch_box(&s.hex),
        escape(&s.hex),
        escape(&s.name),
        escape(&s.reference)
    );
    for c in &s.closest {
        let _ = write!(
            h,
            " <span class=\"closest\">{} {} <small>{}</small></span>",
            swatch_box(&c.hex),
            escape(&c.name),
            escape(&c.reference)
        );
    }
    h.push_str("</li>\n");
}

/// A coloured box, only for a well-formed `#rrggbb`: anything else in a style attribute could be CSS.
fn swatch_box(hex: &str) -> String {
    let ok =
        hex.len() == 7 && hex.starts_with('#') && hex[1..].bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        format!("<span class=\"swatch\" style=\"background-color: {hex}\"></span>")
    } else {
        "<span class=\"swatch\"></span>".to_string()
    }
}

fn placeholder_size([w, h]: [u32; 2]) -> (u32, u32) {
    let long = w.max(h).max(1);
    let scale =
        |v: u32| (u64::from(v) * u64::from(PLACEHOLDER_SIZE) / u64::from(long)).max(1) as u32;
    (scale(w), scale(h))
}

/// The blurhash decoded to a small PNG, base64; None when the hash does not decode (an old or edited report).
fn placeholder_png(hash: &str, aspect: [u32; 2]) -> Option<String> {
    let (w, h) = placeholder_size(aspect);
    let rgba = blurhash::decode(hash, w, h, 1.0).ok()?;
    let mut png = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut png),
        &rgba,
        w,
        h,
        image::ExtendedColorType::Rgba8,
    )
    .ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(png))
}

/// `target` relative to the folder `dir` (both relative to the derivatives root, `/`-separated), percent-encoded
/// segment by segment. Report `uris` written as `file:///…` URIs are taken as root-relative paths.
fn relative_url(dir: &str, target: &str) -> String {
    let target = target.strip_prefix("file://").unwrap_or(target);
    let from: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
    let to: Vec<&str> = target.split('/').filter(|s| !s.is_empty()).collect();
    let common = from
        .iter()
        .zip(&to)
        .take_while(|(a, b)| a == b)
        .count()
        // The file name itself is never a folder to share.
        .min(to.len().saturating_sub(1));
    let mut parts: Vec<String> = vec!["..".to_string(); from.len() - common];
    parts.extend(
        to[common..]
            .iter()
            .map(|s| utf8_percent_encode(s, SEGMENT).to_string()),
    );
    parts.join("/")
}

/// Text and attribute values: the five characters that can end or open markup.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_to_the_page() {
        assert_eq!(
            relative_url("a/b.jpg", "a/b.jpg/full/max/0/default.jpg"),
            "full/max/0/default.jpg"
        );
        assert_eq!(
            relative_url("999/8", "999/8/9998_abc_k.jpg"),
            "9998_abc_k.jpg"
        );
        assert_eq!(relative_url("", "x/y.png"), "x/y.png");
        assert_eq!(relative_url("out/a", "out/b/c.jpg"), "../b/c.jpg");
        assert_eq!(relative_url("999/8", "file:///999/8/k.jpg"), "k.jpg");
        // A rewrite target that is the page's own folder name is still a file.
        assert_eq!(relative_url("a", "a"), "../a");
        // Reserved characters never start a scheme, query or fragment.
        assert_eq!(
            relative_url("", "c:d/é #?.jpg"),
            "c%3Ad/%C3%A9%20%23%3F.jpg"
        );
    }

    #[test]
    fn index_goes_beside_the_report() {
        assert_eq!(index_key("a/b.jpg/process.json"), "a/b.jpg/index.html");
        assert_eq!(index_key("x.process.json"), "index.html");
    }

    #[test]
    fn every_name_is_escaped() {
        let mut r = SourceReport::default();
        let evil = "<script>alert('x')</script>\"&";
        r.uris.insert(evil.into(), format!("{evil}/a.jpg"));
        r.dimensions.insert(evil.into(), [10, 20]);
        r.errors.insert("b".into(), evil.into());
        r.palette = Some(vec![Swatch {
            name: evil.into(),
            hex: "red;background:url(http://x)".into(),
            reference: evil.into(),
            closest: Vec::new(),
        }]);
        r.blurhash = Some(evil.into());
        let page = render(evil, &r, "index.html");
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("'x'"), "{page}");
        // A bad hex is shown as text, never used as a style.
        assert!(!page.contains("style=\"background-color: red"), "{page}");
        assert!(
            page.contains("<span class=\"swatch\"></span><code>red;"),
            "{page}"
        );
        assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;"));
        // An undecodable blurhash leaves no placeholder rather than failing the page.
        assert!(!page.contains("data:image/png"));
    }

    #[test]
    fn images_largest_first_with_a_decoded_placeholder() {
        let mut r = SourceReport::default();
        for (label, d) in [("s", [10, 10]), ("b", [300, 200]), ("m", [100, 50])] {
            r.uris.insert(label.into(), format!("src.jpg/{label}.jpg"));
            r.dimensions.insert(label.into(), d);
        }
        r.blurhash = Some("LEHV6nWB2yk8pyo0adR*.7kCMdnj".into());
        let page = render("src.jpg", &r, "src.jpg/index.html");
        let at = |s: &str| page.find(s).unwrap();
        assert!(
            at("src=\"b.jpg\"") < at("src=\"m.jpg\"") && at("src=\"m.jpg\"") < at("src=\"s.jpg\"")
        );
        assert!(page.contains("width=\"300\" height=\"200\""));
        assert!(page.contains("data:image/png;base64,iVBORw0KGgo"));
        assert!(!page.contains("http"), "self-contained: {page}");
    }
}
