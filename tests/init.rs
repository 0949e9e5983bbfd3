//! `skiff init` on a small project tree per framework: it names the framework and the output
//! directory, writes a skiff.toml with that framework's cache rules that skiff itself reads
//! back, and never replaces a skiff.toml without `--force`. It sends no request, so these
//! runs point at a closed port instead of the emulator.

use std::path::Path;

use crate::harness::{Run, skiff_at};

/// Nothing listens here: `skiff init` must not need AWS.
const NO_AWS: &str = "http://127.0.0.1:9";
const IMMUTABLE: &str = "cache_control = \"public, max-age=31536000, immutable\"";
const REVALIDATE: &str = "cache_control = \"public, max-age=0, must-revalidate\"";

/// One framework's marker files, and what init must make of them.
struct Fixture {
    files: &'static [(&'static str, &'static str)],
    framework: &'static str,
    dir: &'static str,
    /// The folder of content-hashed files that gets the immutable rule, if any.
    hashed: Option<&'static str>,
}

const FIXTURES: &[Fixture] = &[
    Fixture {
        files: &[
            ("hugo.toml", "baseURL = 'https://example.org/'\ntitle = 'My site'\n"),
            ("content/_index.md", "# Hello\n"),
            ("layouts/index.html", "<h1>{{ .Title }}</h1>\n"),
        ],
        framework: "hugo",
        dir: "public",
        hashed: None,
    },
    Fixture {
        files: &[
            ("package.json", r#"{"scripts": {"build": "astro build"}, "dependencies": {"astro": "^5.0.0"}}"#),
            ("astro.config.mjs", "import { defineConfig } from 'astro/config';\nexport default defineConfig({});\n"),
            ("src/pages/index.astro", "<h1>Hello</h1>\n"),
        ],
        framework: "astro",
        dir: "dist",
        hashed: Some("_astro/**"),
    },
    Fixture {
        files: &[
            ("package.json", r#"{"dependencies": {"next": "15.0.0", "react": "19.0.0"}}"#),
            ("next.config.mjs", "export default { output: 'export', trailingSlash: true };\n"),
            ("app/page.tsx", "export default function Page() { return <h1>Hello</h1>; }\n"),
        ],
        framework: "next",
        dir: "out",
        hashed: Some("_next/static/**"),
    },
    Fixture {
        files: &[
            ("package.json", r#"{"devDependencies": {"vite": "^6.0.0"}}"#),
            ("vite.config.ts", "import { defineConfig } from 'vite';\nexport default defineConfig({});\n"),
            ("index.html", "<div id=\"app\"></div>\n"),
        ],
        framework: "vite",
        dir: "dist",
        hashed: Some("assets/**"),
    },
    Fixture {
        files: &[
            ("package.json", r#"{"devDependencies": {"@11ty/eleventy": "^3.0.0"}}"#),
            ("eleventy.config.js", "export default function (config) {}\n"),
            ("index.md", "# Hello\n"),
        ],
        framework: "eleventy",
        dir: "_site",
        hashed: None,
    },
    Fixture {
        files: &[
            ("_config.yml", "title: My blog\n"),
            ("Gemfile", "source \"https://rubygems.org\"\ngem \"jekyll\"\n"),
            ("_posts/2024-01-01-welcome.md", "---\ntitle: Welcome\n---\n"),
        ],
        framework: "jekyll",
        dir: "_site",
        hashed: None,
    },
    Fixture {
        files: &[
            ("package.json", r#"{"dependencies": {"@docusaurus/core": "3.6.0", "react": "18.3.1"}}"#),
            ("docusaurus.config.js", "module.exports = { title: 'My docs' };\n"),
            ("docs/intro.md", "# Intro\n"),
        ],
        framework: "docusaurus",
        dir: "build",
        hashed: Some("assets/**"),
    },
    Fixture {
        files: &[("mkdocs.yml", "site_name: My docs\n"), ("docs/index.md", "# Hello\n")],
        framework: "mkdocs",
        dir: "site",
        hashed: None,
    },
];

/// A project tree in a temporary folder.
fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    }
    dir
}

/// `skiff ARGS` run in `dir`.
fn skiff_in(dir: &Path, args: &[&str]) -> Run {
    skiff_at(NO_AWS, args, Some(dir))
}

fn written(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("skiff.toml")).unwrap()
}

/// Whether the file has `match = "GLOB"` followed by `cache_control`, not commented out.
fn has_rule(text: &str, glob: &str, cache_control: &str) -> bool {
    text.contains(&format!("[[rules]]\nmatch = \"{glob}\"\n{cache_control}\n"))
}

#[test]
fn each_framework_gets_its_output_dir_and_cache_rules() {
    for fixture in FIXTURES {
        let tree = project(fixture.files);
        let run = skiff_in(tree.path(), &["init", "--json"]).success();
        let json = run.json();
        assert_eq!(json["framework"], fixture.framework, "{}", run.stdout);
        assert_eq!(json["dir"], fixture.dir, "{}", run.stdout);
        assert_eq!(json["config"], "skiff.toml", "{}", run.stdout);

        let text = written(tree.path());
        let context = format!("{}:\n{text}", fixture.framework);
        assert!(text.contains(&format!("\ndir = \"{}\"\n", fixture.dir)), "{context}");
        assert!(text.contains("\n# bucket = \"my-site-bucket\"\n"), "the bucket is left to fill in: {context}");
        assert!(has_rule(&text, "**/*.html", REVALIDATE), "{context}");
        match fixture.hashed {
            Some(glob) => assert!(has_rule(&text, glob, IMMUTABLE), "{context}"),
            None => assert!(
                !text.lines().any(|line| line == IMMUTABLE),
                "no folder of {} is sure to hold only hashed files: {context}",
                fixture.framework
            ),
        }

        // skiff reads the file back (iam-policy loads ./skiff.toml and needs no AWS).
        skiff_in(tree.path(), &["iam-policy", "publish"]).success();
    }
}

#[test]
fn init_says_what_it_found_and_what_to_do_next_on_stderr_only() {
    let tree = project(FIXTURES[1].files);
    let run = skiff_in(tree.path(), &["init"]).success();
    assert_eq!(run.stdout, "", "stdout carries only data");
    let needles = ["detected Astro (astro.config.mjs)", "`dist/`", "wrote `skiff.toml`", "bucket", "--dry-run"];
    for needle in needles {
        assert!(run.stderr.contains(needle), "stderr should mention `{needle}`:\n{}", run.stderr);
    }
}

#[test]
fn a_project_dir_can_be_given() {
    let tree = project(FIXTURES[0].files);
    let elsewhere = tempfile::tempdir().unwrap();
    let target = tree.path().to_str().unwrap();
    let run = skiff_in(elsewhere.path(), &["init", target, "--json"]).success();
    let json = run.json();
    assert_eq!(json["framework"], "hugo");
    assert_eq!(Path::new(json["config"].as_str().unwrap()), tree.path().join("skiff.toml"));
    assert!(written(tree.path()).contains("\ndir = \"public\"\n"));
    assert!(!elsewhere.path().join("skiff.toml").exists(), "nothing is written where skiff ran");

    let again = project(FIXTURES[0].files);
    let run = skiff_in(elsewhere.path(), &["init", again.path().to_str().unwrap()]).success();
    assert!(run.stderr.contains(&format!("`cd {}`", again.path().display())), "{}", run.stderr);
}

#[test]
fn next_without_a_static_export_is_told_to_add_one() {
    let tree = project(&[
        ("package.json", r#"{"dependencies": {"next": "15.0.0"}}"#),
        ("next.config.js", "module.exports = { reactStrictMode: true };\n"),
    ]);
    let run = skiff_in(tree.path(), &["init"]).success();
    assert!(run.stderr.contains("output: 'export'"), "{}", run.stderr);
    assert!(run.stderr.contains("next.config.js does not set it"), "{}", run.stderr);
    let text = written(tree.path());
    assert!(text.contains("\ndir = \"out\"\n"), "{text}");
    assert!(text.contains("next.config.js does not set it yet"), "{text}");
    assert!(has_rule(&text, "_next/static/**", IMMUTABLE), "{text}");
}

#[test]
fn with_no_framework_recognised_it_says_which_dir_it_assumed() {
    let bare = project(&[("index.html", "<h1>Hello</h1>\n")]);
    let run = skiff_in(bare.path(), &["init"]).success();
    assert!(run.stderr.contains("no framework recognised"), "{}", run.stderr);
    assert!(run.stderr.contains("`dist/`"), "{}", run.stderr);
    assert!(written(bare.path()).contains("\ndir = \"dist\"\n"));

    let public = project(&[("public/index.html", "<h1>Hello</h1>\n")]);
    let json = skiff_in(public.path(), &["init", "--json"]).success().json();
    assert_eq!(json["framework"], serde_json::Value::Null);
    assert_eq!(json["dir"], "public");
    assert!(written(public.path()).contains("\ndir = \"public\"\n"));
}

#[test]
fn an_existing_skiff_toml_is_left_alone() {
    let tree = project(FIXTURES[1].files);
    let mine = "[site]\ndir = \"mine\"\n";
    std::fs::write(tree.path().join("skiff.toml"), mine).unwrap();
    let run = skiff_in(tree.path(), &["init"]).failure(1, &["`skiff.toml` already exists", "--force"]);
    assert_eq!(run.stdout, "");
    assert_eq!(written(tree.path()), mine, "the file is untouched");
}

#[test]
fn force_replaces_an_existing_skiff_toml() {
    let tree = project(FIXTURES[1].files);
    std::fs::write(tree.path().join("skiff.toml"), "[site]\ndir = \"mine\"\n").unwrap();
    let json = skiff_in(tree.path(), &["init", "--force", "--json"]).success().json();
    assert_eq!(json["framework"], "astro");
    let text = written(tree.path());
    assert!(text.contains("\ndir = \"dist\"\n") && !text.contains("\"mine\""), "{text}");
}

#[test]
fn a_missing_project_dir_is_a_usage_error() {
    let tree = project(&[]);
    let missing = tree.path().join("no-such-project");
    skiff_in(tree.path(), &["init", missing.to_str().unwrap()]).failure(2, &["no-such-project", "does not exist"]);
    assert!(!tree.path().join("skiff.toml").exists());
}

#[test]
fn publish_from_the_project_dir_reads_the_written_file_and_asks_for_the_bucket() {
    let tree = project(FIXTURES[1].files);
    skiff_in(tree.path(), &["init"]).success();
    // The bucket is still a placeholder: publish stops before any request and names the file.
    skiff_in(tree.path(), &["publish", "--dry-run"]).failure(2, &["no bucket to publish to", "`skiff.toml`"]);
    // From a directory below, the same file is found (as cargo finds Cargo.toml).
    let below = tree.path().join("src/pages");
    std::fs::create_dir_all(&below).unwrap();
    let found = tree.path().join("skiff.toml").display().to_string();
    skiff_in(&below, &["publish", "--dry-run"]).failure(2, &["no bucket to publish to", &found]);
}

#[test]
fn init_refuses_a_config_path_it_would_not_use() {
    let tree = project(FIXTURES[1].files);
    skiff_in(tree.path(), &["-c", "elsewhere.toml", "init"]).failure(2, &["`-c elsewhere.toml`", "skiff init DIR"]);
    assert!(!tree.path().join("skiff.toml").exists() && !tree.path().join("elsewhere.toml").exists());
}
