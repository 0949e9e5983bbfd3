//! Content types from file extensions: a built-in table for the modern web that does not
//! depend on the operating system (`/etc/mime.types` differs between machines), with
//! `mime_guess`'s compiled-in table as a fallback and `charset=utf-8` on text types.

/// The type for files nobody recognises.
pub const UNKNOWN: &str = "application/octet-stream";

/// Extensions whose type browsers and CDNs care most about, checked before `mime_guess`
/// (whose answers are older for some: `application/javascript`, `image/vnd.microsoft.icon`).
const TABLE: &[(&str, &str)] = &[
    ("html", "text/html"),
    ("htm", "text/html"),
    ("css", "text/css"),
    ("js", "text/javascript"),
    ("mjs", "text/javascript"),
    ("cjs", "text/javascript"),
    ("json", "application/json"),
    ("map", "application/json"),
    ("jsonld", "application/ld+json"),
    ("webmanifest", "application/manifest+json"),
    ("xml", "application/xml"),
    ("rss", "application/rss+xml"),
    ("atom", "application/atom+xml"),
    ("xhtml", "application/xhtml+xml"),
    ("xsl", "application/xslt+xml"),
    ("txt", "text/plain"),
    ("md", "text/markdown"),
    ("csv", "text/csv"),
    ("ics", "text/calendar"),
    ("vtt", "text/vtt"),
    ("yaml", "application/yaml"),
    ("yml", "application/yaml"),
    ("toml", "application/toml"),
    ("svg", "image/svg+xml"),
    ("wasm", "application/wasm"),
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("ttf", "font/ttf"),
    ("otf", "font/otf"),
    ("eot", "application/vnd.ms-fontobject"),
    ("png", "image/png"),
    ("apng", "image/apng"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("avif", "image/avif"),
    ("jxl", "image/jxl"),
    ("ico", "image/x-icon"),
    ("bmp", "image/bmp"),
    ("tif", "image/tiff"),
    ("tiff", "image/tiff"),
    ("pdf", "application/pdf"),
    ("zip", "application/zip"),
    ("gz", "application/gzip"),
    ("tgz", "application/gzip"),
    ("tar", "application/x-tar"),
    ("mp4", "video/mp4"),
    ("m4v", "video/mp4"),
    ("webm", "video/webm"),
    ("ogv", "video/ogg"),
    ("mov", "video/quicktime"),
    ("mp3", "audio/mpeg"),
    ("m4a", "audio/mp4"),
    ("aac", "audio/aac"),
    ("ogg", "audio/ogg"),
    ("oga", "audio/ogg"),
    ("opus", "audio/ogg"),
    ("wav", "audio/wav"),
    ("flac", "audio/flac"),
    ("glb", "model/gltf-binary"),
    ("gltf", "model/gltf+json"),
];

/// Types outside `text/*` that are text and get `charset=utf-8`.
const TEXT_LIKE: &[&str] = &[
    "application/json",
    "application/ld+json",
    "application/manifest+json",
    "application/xml",
    "application/rss+xml",
    "application/atom+xml",
    "application/xhtml+xml",
    "application/xslt+xml",
    "application/yaml",
    "application/toml",
    "image/svg+xml",
    "model/gltf+json",
];

/// The `Content-Type` for a key, from its extension (case-insensitive).
pub fn content_type(key: &str) -> String {
    let name = key.rsplit('/').next().unwrap_or(key);
    let Some((stem, extension)) = name.rsplit_once('.') else {
        return UNKNOWN.to_string();
    };
    if stem.is_empty() {
        // A dot file such as `.htaccess`: no extension.
        return UNKNOWN.to_string();
    }
    let extension = extension.to_ascii_lowercase();
    let essence = TABLE
        .iter()
        .find(|(ext, _)| *ext == extension)
        .map(|(_, mime)| (*mime).to_string())
        .or_else(|| mime_guess::from_ext(&extension).first_raw().map(str::to_string))
        .unwrap_or_else(|| UNKNOWN.to_string());
    with_charset(essence)
}

/// Whether a content type is HTML (these go live last, after the assets they reference).
pub fn is_html(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("text/html") || essence.eq_ignore_ascii_case("application/xhtml+xml")
}

fn with_charset(essence: String) -> String {
    if essence.starts_with("text/") || TEXT_LIKE.contains(&essence.as_str()) {
        format!("{essence}; charset=utf-8")
    } else {
        essence
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modern_web_types() {
        let cases = [
            ("index.html", "text/html; charset=utf-8"),
            ("a/b/STYLE.CSS", "text/css; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("mod.mjs", "text/javascript; charset=utf-8"),
            ("data.json", "application/json; charset=utf-8"),
            ("app.js.map", "application/json; charset=utf-8"),
            ("logo.svg", "image/svg+xml; charset=utf-8"),
            ("m.wasm", "application/wasm"),
            ("site.webmanifest", "application/manifest+json; charset=utf-8"),
            ("f.woff", "font/woff"),
            ("f.woff2", "font/woff2"),
            ("p.avif", "image/avif"),
            ("p.webp", "image/webp"),
            ("favicon.ico", "image/x-icon"),
            ("sitemap.xml", "application/xml; charset=utf-8"),
            ("robots.txt", "text/plain; charset=utf-8"),
            ("doc.pdf", "application/pdf"),
            ("v.mp4", "video/mp4"),
            ("p.png", "image/png"),
            ("p.jpeg", "image/jpeg"),
            ("CNAME", "application/octet-stream"),
            (".htaccess", "application/octet-stream"),
            ("x.unknownext", "application/octet-stream"),
            ("b.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ];
        for (key, expected) in cases {
            assert_eq!(content_type(key), expected, "{key}");
        }
    }

    #[test]
    fn html_detection() {
        assert!(is_html("text/html; charset=utf-8"));
        assert!(is_html("TEXT/HTML"));
        assert!(!is_html("text/plain"));
    }
}
