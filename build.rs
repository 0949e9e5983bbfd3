//! `skiff --version` names the commit it was built from: `SKIFF_COMMIT` when the release
//! workflow sets it, else `git rev-parse` of the checkout, else nothing (a crate download).

fn main() {
    println!("cargo:rerun-if-env-changed=SKIFF_COMMIT");
    println!("cargo:rerun-if-changed=.git/HEAD");
    if let Ok(head) = std::fs::read_to_string(".git/HEAD")
        && let Some(reference) = head.trim().strip_prefix("ref: ")
    {
        println!("cargo:rerun-if-changed=.git/{reference}");
    }
    let commit = std::env::var("SKIFF_COMMIT").ok().filter(|c| !c.is_empty()).or_else(|| {
        let output = std::process::Command::new("git").args(["rev-parse", "--short=9", "HEAD"]).output().ok()?;
        let text = String::from_utf8(output.stdout).ok()?;
        (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
    });
    let version = match commit {
        Some(commit) => format!("{} ({commit})", std::env::var("CARGO_PKG_VERSION").unwrap_or_default()),
        None => std::env::var("CARGO_PKG_VERSION").unwrap_or_default(),
    };
    println!("cargo:rustc-env=SKIFF_VERSION={version}");
}
