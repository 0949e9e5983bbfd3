//! CI integration: when `GITHUB_OUTPUT` is set, a publish appends `url`, `deploy-id` and
//! (previews) `preview-url` to it; when `GITHUB_STEP_SUMMARY` is set, a short Markdown
//! summary. Failing to write either is a warning, never a failed publish.

use std::io::Write as _;

use crate::deploys::Resolved;
use crate::output::{Output, bytes};
use crate::plan::Counts;

/// The `GITHUB_OUTPUT` lines of a publish.
pub fn outputs(resolved: &Resolved, id: &str) -> String {
    let mut text = format!("url={}\ndeploy-id={id}\n", resolved.url);
    if resolved.branch.is_some() {
        text.push_str(&format!("preview-url={}\n", resolved.url));
    }
    text
}

/// The step summary of a publish (Markdown).
pub fn summary(resolved: &Resolved, id: &str, counts: &Counts) -> String {
    let what = match &resolved.branch {
        Some(branch) => format!("Preview of `{}`", branch.replace('`', "'")),
        None => "Production".to_string(),
    };
    format!(
        "### skiff: {what} is live\n\n| | |\n|---|---|\n| URL | {url} |\n| Deploy | `{id}` |\n| Files | {files} ({size}) |\n| Uploaded | {uploaded} ({uploaded_bytes}) |\n| Copied unchanged | {copied} |\n\n",
        url = resolved.url,
        files = counts.files,
        size = bytes(counts.bytes),
        uploaded = counts.uploaded,
        uploaded_bytes = bytes(counts.uploaded_bytes),
        copied = counts.copied,
    )
}

/// The step summary of an in-place publish (Markdown).
pub fn summary_in_place(url: &str, counts: &Counts) -> String {
    format!(
        "### skiff: published\n\n| | |\n|---|---|\n| URL | {url} |\n| Files | {files} ({size}) |\n| Uploaded | {uploaded} ({uploaded_bytes}) |\n| Headers updated | {updated} |\n| Deleted | {deleted} |\n\n",
        files = counts.files,
        size = bytes(counts.bytes),
        uploaded = counts.uploaded,
        uploaded_bytes = bytes(counts.uploaded_bytes),
        updated = counts.metadata_updated,
        deleted = counts.deleted,
    )
}

/// Append to the files GitHub Actions names, when it names them.
pub fn write(resolved: &Resolved, id: &str, counts: &Counts, out: &Output) {
    append(&[("GITHUB_OUTPUT", outputs(resolved, id)), ("GITHUB_STEP_SUMMARY", summary(resolved, id, counts))], out);
}

/// In place there is no deploy: the outputs are the URL alone.
pub fn write_in_place(url: &str, counts: &Counts, out: &Output) {
    append(&[("GITHUB_OUTPUT", format!("url={url}\n")), ("GITHUB_STEP_SUMMARY", summary_in_place(url, counts))], out);
}

fn append(files: &[(&str, String)], out: &Output) {
    for (variable, text) in files {
        let Some(path) = std::env::var_os(variable).filter(|p| !p.is_empty()) else { continue };
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(text.as_bytes()));
        if let Err(err) = written {
            out.warn(&format!("could not write ${variable} ({}): {err}", std::path::Path::new(&path).display()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_name_the_url_and_the_deploy() {
        let production = Resolved { name: "production".into(), branch: None, url: "https://example.com/".into() };
        assert_eq!(outputs(&production, "d1"), "url=https://example.com/\ndeploy-id=d1\n");
        let preview = Resolved {
            name: "preview-x".into(),
            branch: Some("x".into()),
            url: "https://x.preview.example.com/".into(),
        };
        assert!(outputs(&preview, "d2").ends_with("preview-url=https://x.preview.example.com/\n"));
        let text = summary(&preview, "d2", &Counts { files: 3, uploaded: 1, copied: 2, ..Counts::default() });
        assert!(text.contains("Preview of `x`") && text.contains("| Copied unchanged | 2 |"), "{text}");
    }
}
