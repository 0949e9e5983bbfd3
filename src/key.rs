//! Turning file paths into S3 keys: `/`-separated, Unicode NFC, relative to the site root,
//! no `.`/`..` segments, no control characters, within S3's 1,024-byte limit.
//! Also the percent-encoding S3 wants in `x-amz-copy-source`.

use std::path::{Component, Path};

use unicode_normalization::UnicodeNormalization;

/// S3's limit on the length of a key, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// The directory (relative to the prefix) where skiff keeps its own state.
pub const STATE_DIR: &str = ".skiff/";

/// The site key of the file at `relative` (a path relative to the site root), or why it
/// cannot be one. `prefix_len` is the length of the bucket prefix the key will be stored under.
pub fn from_relative_path(relative: &Path, prefix_len: usize) -> Result<String, String> {
    let mut segments = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => {
                let Some(part) = part.to_str() else {
                    return Err(format!(
                        "the name `{}` is not valid UTF-8, and S3 keys must be: rename the file or exclude it",
                        part.to_string_lossy()
                    ));
                };
                if part.chars().any(char::is_control) {
                    return Err(format!(
                        "the name `{}` contains control characters, which S3 keys and URLs cannot carry safely: rename the file or exclude it",
                        part.escape_debug()
                    ));
                }
                segments.push(part.nfc().collect::<String>());
            }
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err("the path leaves the site directory".to_string());
            }
        }
    }
    if segments.is_empty() {
        return Err("the path is empty".to_string());
    }
    let key = segments.join("/");
    if key.len() + prefix_len > MAX_KEY_BYTES {
        return Err(format!(
            "its key is {} bytes long with the prefix, more than S3's limit of {MAX_KEY_BYTES}: shorten the path",
            key.len() + prefix_len
        ));
    }
    Ok(key)
}

/// Whether a key (relative to the prefix) is skiff's own state, which is never published
/// over, planned for deletion or listed as site content.
pub fn is_state(key: &str) -> bool {
    key.starts_with(STATE_DIR)
}

/// Whether any directory of a key is skiff's state directory (`.skiff`): such a key can never
/// be site content, at the top or in a sub-prefix another skiff site may publish to.
pub fn has_state_segment(key: &str) -> bool {
    let name = STATE_DIR.trim_end_matches('/');
    key.split('/').rev().skip(1).any(|segment| segment == name)
}

/// Percent-encode `bucket/key` for `x-amz-copy-source`: everything but unreserved
/// characters and `/` (S3 needs `+`, `%`, spaces and non-ASCII encoded there).
pub fn copy_source(bucket: &str, key: &str) -> String {
    let mut out = String::with_capacity(bucket.len() + key.len() + 8);
    out.push_str(bucket);
    out.push('/');
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn keys_use_slashes_and_nfc() {
        let decomposed = PathBuf::from("caf\u{65}\u{301}/index.html");
        assert_eq!(from_relative_path(&decomposed, 0).unwrap(), "caf\u{e9}/index.html");
        assert_eq!(from_relative_path(Path::new("./a/b c+d%.txt"), 0).unwrap(), "a/b c+d%.txt");
    }

    #[test]
    fn bad_names_are_refused_with_a_reason() {
        assert!(from_relative_path(Path::new("a/../b"), 0).unwrap_err().contains("leaves"));
        assert!(from_relative_path(Path::new("a\tb.html"), 0).unwrap_err().contains("control"));
        let long = "x".repeat(1000);
        assert!(from_relative_path(Path::new(&long), 30).unwrap_err().contains("1024"));
        assert!(from_relative_path(Path::new(&long), 24).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_names_are_refused() {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9.html");
        assert!(from_relative_path(Path::new(name), 0).unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn copy_source_is_percent_encoded() {
        assert_eq!(copy_source("b", "a b/c+d%e/é.html"), "b/a%20b/c%2Bd%25e/%C3%A9.html");
        assert_eq!(copy_source("b", "x-y_z.~/f.js"), "b/x-y_z.~/f.js");
    }

    #[test]
    fn state_keys() {
        assert!(is_state(".skiff/manifest.json"));
        assert!(!is_state("docs/.skiff/x"));
        assert!(!is_state(".skiffx"));
        assert!(has_state_segment(".skiff/manifest.json") && has_state_segment("docs/.skiff/x"));
        assert!(!has_state_segment("docs/.skiff") && !has_state_segment("a/.skiffx/b"));
    }
}
