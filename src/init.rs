//! `skiff init`: recognise the site's framework from its files, then write a commented
//! `skiff.toml` for it (the output directory, a placeholder bucket, Cache-Control rules for
//! the pages and for the framework's content-hashed files). Detection is pure, over a
//! [`Project`]; only [`init`] touches the disk. It sends no request and never overwrites a
//! file unless told to.

use std::collections::BTreeSet;
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::Serialize;

use crate::config::{ConfigError, DEFAULT_EXCLUDES, DEFAULT_FILE, DEFAULT_MAX_DELETES};
use crate::output::{Output, Render};

/// The bucket name the written file suggests, commented out.
const BUCKET_PLACEHOLDER: &str = "my-site-bucket";
/// Cache-Control for content-hashed files: a changed file gets a new name.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Cache-Control for pages: browsers check back every time.
const REVALIDATE: &str = "public, max-age=0, must-revalidate";

/// Framework configuration files, in the order they are looked for. They come before
/// package.json (a configuration file is the stronger sign) and before Vite's, because
/// Docusaurus, Astro and others build with Vite and may carry a Vite file or dependency.
const CONFIG_FILES: &[(Framework, &[&str])] = &[
    (Framework::Docusaurus, &["docusaurus.config.js", "docusaurus.config.ts", "docusaurus.config.mjs"]),
    (
        Framework::Astro,
        &["astro.config.mjs", "astro.config.js", "astro.config.ts", "astro.config.mts", "astro.config.cjs"],
    ),
    (Framework::Next, &["next.config.js", "next.config.mjs", "next.config.ts"]),
    (
        Framework::Eleventy,
        &[".eleventy.js", "eleventy.config.js", "eleventy.config.mjs", "eleventy.config.cjs", "eleventy.config.ts"],
    ),
    (Framework::MkDocs, &["mkdocs.yml", "mkdocs.yaml"]),
];

/// Dependencies in package.json that name a framework, when no configuration file did.
const PACKAGES: &[(Framework, &str)] = &[
    (Framework::Docusaurus, "@docusaurus/core"),
    (Framework::Astro, "astro"),
    (Framework::Next, "next"),
    (Framework::Eleventy, "@11ty/eleventy"),
];

/// Vite's configuration files: looked for after every other sign.
const VITE_FILES: &[&str] = &["vite.config.js", "vite.config.ts", "vite.config.mjs", "vite.config.mts"];

/// What `skiff init` works from.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The project directory; `None` for the current directory.
    pub dir: Option<PathBuf>,
    /// Replace an existing skiff.toml.
    pub force: bool,
}

/// What detection may look at in a project directory, by names relative to it
/// (`package.json`, `content`): the disk for `skiff init`, a list in the tests.
pub trait Project {
    /// Whether `name` is a file.
    fn is_file(&self, name: &str) -> bool;
    /// Whether `name` is a directory.
    fn is_dir(&self, name: &str) -> bool;
    /// The text of file `name`, when there is one and it can be read.
    fn read(&self, name: &str) -> Option<String>;
}

/// A project directory on disk.
struct Disk<'a>(&'a Path);

impl Project for Disk<'_> {
    fn is_file(&self, name: &str) -> bool {
        self.0.join(name).is_file()
    }

    fn is_dir(&self, name: &str) -> bool {
        self.0.join(name).is_dir()
    }

    fn read(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.0.join(name)).ok()
    }
}

/// A static site generator (or bundler) that `skiff init` recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Framework {
    /// Hugo: `hugo` writes `public/`.
    Hugo,
    /// Astro: `astro build` writes `dist/`.
    Astro,
    /// Next.js with `output: 'export'`: `next build` writes `out/`.
    Next,
    /// Vite: `vite build` writes `dist/`.
    Vite,
    /// Eleventy: `eleventy` writes `_site/`.
    Eleventy,
    /// Jekyll: `jekyll build` writes `_site/`.
    Jekyll,
    /// Docusaurus: `docusaurus build` writes `build/`.
    Docusaurus,
    /// MkDocs: `mkdocs build` writes `site/`.
    MkDocs,
}

impl Framework {
    /// Its name for people.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hugo => "Hugo",
            Self::Astro => "Astro",
            Self::Next => "Next.js",
            Self::Vite => "Vite",
            Self::Eleventy => "Eleventy",
            Self::Jekyll => "Jekyll",
            Self::Docusaurus => "Docusaurus",
            Self::MkDocs => "MkDocs",
        }
    }

    /// Where its build writes the site, relative to the project.
    pub fn dir(self) -> &'static str {
        match self {
            Self::Hugo => "public",
            Self::Astro | Self::Vite => "dist",
            Self::Next => "out",
            Self::Eleventy | Self::Jekyll => "_site",
            Self::Docusaurus => "build",
            Self::MkDocs => "site",
        }
    }

    /// The usual command that builds the site.
    pub fn build(self) -> &'static str {
        match self {
            Self::Hugo => "hugo",
            Self::Astro | Self::Next | Self::Vite | Self::Docusaurus => "npm run build",
            Self::Eleventy => "npx @11ty/eleventy",
            Self::Jekyll => "bundle exec jekyll build",
            Self::MkDocs => "mkdocs build",
        }
    }

    /// The folder of the built site that holds only files with a content hash in their
    /// names, when the framework has one.
    pub fn hashed_dir(self) -> Option<&'static str> {
        match self {
            Self::Astro => Some("_astro"),
            Self::Next => Some("_next/static"),
            Self::Vite | Self::Docusaurus => Some("assets"),
            Self::Hugo | Self::Eleventy | Self::Jekyll | Self::MkDocs => None,
        }
    }
}

/// What detection found in a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// The framework; `None` when nothing was recognised.
    pub framework: Option<Framework>,
    /// What gave it away, for people: `astro.config.mjs`, `` `next` in package.json ``.
    pub evidence: String,
    /// Where the built site is, relative to the project.
    pub dir: &'static str,
    /// The framework's configuration file, when it was recognised by one.
    pub config_file: Option<&'static str>,
    /// Next.js only: its configuration does not set `output: 'export'` (or there is none),
    /// so `next build` would write no static site.
    pub needs_export: bool,
}

impl Detection {
    fn found(framework: Framework, evidence: String, config_file: Option<&'static str>) -> Self {
        Self { framework: Some(framework), evidence, dir: framework.dir(), config_file, needs_export: false }
    }
}

/// Recognise the framework of a project and where its build writes the site. Specific
/// frameworks are looked for before Vite, which several of them build with; with nothing
/// recognised, the site is assumed to be in `public/` when that exists, else in `dist/`.
pub fn detect(project: &impl Project) -> Detection {
    let Some(mut found) = recognise(project) else {
        let dir = if project.is_dir("public") { "public" } else { "dist" };
        let evidence = if dir == "public" { "`public/` exists" } else { "there is no `public/`" };
        return Detection {
            framework: None,
            evidence: evidence.to_string(),
            dir,
            config_file: None,
            needs_export: false,
        };
    };
    if found.framework == Some(Framework::Next) {
        let config = found.config_file.and_then(|name| project.read(name));
        found.needs_export = config.is_none_or(|text| !sets_static_export(&text));
    }
    found
}

fn recognise(project: &impl Project) -> Option<Detection> {
    for (framework, names) in CONFIG_FILES {
        if let Some(name) = first_file(project, names) {
            return Some(Detection::found(*framework, name.to_string(), Some(name)));
        }
    }
    if let Some(evidence) = hugo(project) {
        return Some(Detection::found(Framework::Hugo, evidence, None));
    }
    if let Some(evidence) = jekyll(project) {
        return Some(Detection::found(Framework::Jekyll, evidence, None));
    }
    let packages = dependencies(project);
    for (framework, package) in PACKAGES {
        if packages.contains(*package) {
            return Some(Detection::found(*framework, format!("`{package}` in package.json"), None));
        }
    }
    if let Some(name) = first_file(project, VITE_FILES) {
        return Some(Detection::found(Framework::Vite, name.to_string(), Some(name)));
    }
    if packages.contains("vite") {
        return Some(Detection::found(Framework::Vite, "`vite` in package.json".to_string(), None));
    }
    None
}

fn first_file(project: &impl Project, names: &[&'static str]) -> Option<&'static str> {
    names.iter().copied().find(|name| project.is_file(name))
}

/// Hugo: its own configuration file, or an older `config.toml`/`config.yaml` that sets
/// `baseURL` beside one of Hugo's folders (a bare `config.toml` is too common to count).
fn hugo(project: &impl Project) -> Option<String> {
    if let Some(name) = first_file(project, &["hugo.toml", "hugo.yaml", "hugo.json"]) {
        return Some(name.to_string());
    }
    let config = first_file(project, &["config.toml", "config.yaml"])?;
    let base_url = project.read(config).is_some_and(|text| text.to_ascii_lowercase().contains("baseurl"));
    let folder = ["content", "layouts", "themes"].into_iter().find(|folder| project.is_dir(folder))?;
    base_url.then(|| format!("{config} with baseURL, and {folder}/"))
}

/// Jekyll: `_config.yml` with a Gemfile or one of Jekyll's folders.
fn jekyll(project: &impl Project) -> Option<String> {
    let config = first_file(project, &["_config.yml", "_config.yaml"])?;
    if project.is_file("Gemfile") {
        return Some(format!("{config} and Gemfile"));
    }
    let folder = ["_posts", "_layouts"].into_iter().find(|folder| project.is_dir(folder))?;
    Some(format!("{config} and {folder}/"))
}

/// The names in package.json's `dependencies` and `devDependencies` (none when there is no
/// package.json or it is not JSON).
fn dependencies(project: &impl Project) -> BTreeSet<String> {
    let text = project.read("package.json").unwrap_or_default();
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
        return BTreeSet::new();
    };
    ["dependencies", "devDependencies"]
        .into_iter()
        .filter_map(|section| value.get(section).and_then(serde_json::Value::as_object))
        .flat_map(|packages| packages.keys().cloned())
        .collect()
}

/// Whether a Next.js configuration sets `output: 'export'` (with any quotes and spacing).
fn sets_static_export(config: &str) -> bool {
    let compact: String = config.chars().filter(|c| !c.is_whitespace()).collect();
    ["output:'export'", "output:\"export\"", "output:`export`", "\"output\":\"export\"", "'output':'export'"]
        .into_iter()
        .any(|form| compact.contains(form))
}

/// The text of the `skiff.toml` that `skiff init` writes for what it found: every line
/// explained for someone who has never seen the file.
pub fn config_text(found: &Detection) -> String {
    let mut text = String::from("# skiff.toml: what `skiff publish` uploads, where to, and with which headers.\n");
    if let Some(framework) = found.framework {
        text.push_str(&format!(
            "# `skiff init` wrote it for this {} site (it found {}).\n",
            framework.name(),
            found.evidence
        ));
    } else {
        text.push_str("# `skiff init` wrote it, but recognised no framework here.\n");
    }
    text.push_str(
        "# A line that starts with `#` is a comment: remove the `#` in front of a setting to\n\
         # use it. Flags (`--bucket`, `--region`, ...) win over this file. Every setting is\n\
         # described in skiff's README, under \"Configuration: skiff.toml\".\n\
         \n\
         [site]\n\
         # The folder your build writes the finished site to (relative to this file):\n\
         # skiff uploads what is inside it.\n",
    );
    if let Some(framework) = found.framework {
        text.push_str(&format!("# Build the site before you publish it: `{}`.\n", framework.build()));
    } else {
        text.push_str(&format!(
            "# skiff assumed `{}/` ({}): change it if your build writes elsewhere.\n",
            found.dir, found.evidence
        ));
    }
    if found.framework == Some(Framework::Next) {
        next_notes(&mut text, found);
    }
    text.push_str(&format!("dir = \"{}\"\n", found.dir));
    text.push_str(&format!(
        "\n\
         # The S3 bucket to publish to: set it here (and remove the `#`), or pass\n\
         # `--bucket NAME` to `skiff publish`. The bucket must exist already, or\n\
         # `skiff provision` creates it (with CloudFront, a certificate and DNS).\n\
         # bucket = \"{BUCKET_PLACEHOLDER}\"\n\
         \n\
         # The bucket's AWS region. Without it, skiff takes AWS_REGION or your AWS profile's\n\
         # region, and follows the bucket if it turns out to be in another one.\n\
         # region = \"eu-west-1\"\n\
         \n\
         # A CloudFront distribution that serves the bucket: after each publish, skiff\n\
         # invalidates the paths that changed on it, so visitors get the new files. (A site\n\
         # that `skiff provision` set up needs none: each publish goes live in one step.)\n\
         # distribution_id = \"E2QWRUHAPOMQZL\"\n\
         \n\
         [deploy]\n\
         # A publish that would delete more objects than this stops before it changes anything.\n\
         # max_deletes = {DEFAULT_MAX_DELETES}\n\
         # Files that are never uploaded, nor deleted from the bucket (these are the defaults).\n\
         # exclude = [{}]\n\
         \n",
        quoted_list(DEFAULT_EXCLUDES)
    ));
    text.push_str(
        "# Cache-Control, by file. For each header, the first rule that matches a file wins,\n\
         # so keep narrow rules above broad ones. Globs are relative to `dir`: `*` stays within\n\
         # one folder, `**` crosses folders (`**/*.html` matches `index.html` too), and `{a,b}`\n\
         # is a choice. A file that no rule matches gets no Cache-Control header: browsers and\n\
         # CloudFront then choose how long to keep it.\n\
         \n\
         # Pages: browsers ask again every time (a quick 304 when nothing changed), so a\n\
         # publish shows at once.\n",
    );
    rule(&mut text, "", "**/*.html", REVALIDATE);
    text.push('\n');
    hashed_rule(&mut text, found);
    text
}

/// What a Next.js project needs for a static export, as comments above `dir`.
fn next_notes(text: &mut String, found: &Detection) {
    text.push_str("# Next.js writes a static site to `out/` only when its configuration sets\n# `output: 'export'`.\n");
    match (found.config_file, found.needs_export) {
        (Some(file), true) => {
            text.push_str(&format!("# {file} does not set it yet: add it, or `next build` writes no `out/`.\n"));
        }
        (Some(file), false) => text.push_str(&format!("# {file} sets it.\n")),
        (None, _) => text.push_str(
            "# There is no next.config.js yet: create one that holds\n\
             # `module.exports = { output: 'export' };`, or `next build` writes no `out/`.\n",
        ),
    }
    text.push_str(
        "# Set `trailingSlash: true` there too: each page is then `about/index.html`, which a\n\
         # site that `skiff provision` set up serves at `/about/` (it would not find `about.html`).\n",
    );
}

/// The rule (or the explanation of why there is none) for the framework's hashed files.
fn hashed_rule(text: &mut String, found: &Detection) {
    let Some(framework) = found.framework else {
        text.push_str(
            "# As no framework was recognised, nothing here is marked immutable. If your build\n\
             # puts files with a content hash in their names in one folder (Vite: `assets/`,\n\
             # Astro: `_astro/`, Next.js: `_next/static/`), remove the `#` in front of these\n\
             # three lines and name that folder:\n",
        );
        rule(text, "# ", "assets/**", IMMUTABLE);
        return;
    };
    if let Some(folder) = framework.hashed_dir() {
        text.push_str(&format!(
            "# {} puts the files it bundles (CSS, JavaScript, images) in `{folder}/`,\n\
             # each with a hash of its content in its name: a changed file gets a new name, so\n\
             # browsers and CloudFront may keep these for a year without asking again.\n",
            framework.name()
        ));
        match framework {
            Framework::Vite => text.push_str(
                "# Vite copies `public/` as it is: keep files that change under the same name out\n\
                 # of `public/assets/`.\n",
            ),
            Framework::Docusaurus => text.push_str(
                "# Docusaurus copies `static/` as it is: keep files that change under the same name\n\
                 # out of `static/assets/`.\n",
            ),
            _ => {}
        }
        rule(text, "", &format!("{folder}/**"), IMMUTABLE);
    } else if framework == Framework::Hugo {
        text.push_str(
            "# Hugo adds a content hash to a file name only when a template pipes the file through\n\
             # `resources.Fingerprint` (`| fingerprint`), and the file keeps its folder\n\
             # (`css/main.min.<hash>.css`), so no folder is sure to hold only hashed files, and\n\
             # nothing here is marked immutable. If your templates fingerprint everything in a\n\
             # folder, say `css/`, remove the `#` in front of these three lines:\n",
        );
        rule(text, "# ", "css/**", IMMUTABLE);
    } else {
        text.push_str(&format!(
            "# {} keeps file names as they are: `css/style.css` has the same name after an\n\
             # edit, so no file is safe to keep for long, and nothing here is marked immutable.\n\
             # If a plugin or a bundler puts content-hashed names in one folder, say `assets/`,\n\
             # remove the `#` in front of these three lines:\n",
            framework.name()
        ));
        rule(text, "# ", "assets/**", IMMUTABLE);
    }
}

/// A `[[rules]]` entry with a Cache-Control, each line after `prefix` (`"# "`: commented out).
fn rule(text: &mut String, prefix: &str, glob: &str, cache_control: &str) {
    text.push_str(&format!(
        "{prefix}[[rules]]\n{prefix}match = \"{glob}\"\n{prefix}cache_control = \"{cache_control}\"\n"
    ));
}

/// `"a", "b"`: strings as a TOML array's items.
fn quoted_list(items: &[&str]) -> String {
    items.iter().fold(String::new(), |mut list, item| {
        if !list.is_empty() {
            list.push_str(", ");
        }
        list.push_str(&format!("\"{item}\""));
        list
    })
}

/// What `skiff init` did (also the `--json` document: `framework`, `dir`, `config`).
#[derive(Debug, Serialize)]
struct Report {
    /// The framework, `null` when none was recognised.
    framework: Option<Framework>,
    /// `[site] dir` as written.
    dir: String,
    /// The file written.
    config: String,
    #[serde(skip)]
    lines: Vec<String>,
    #[serde(skip)]
    warnings: Vec<String>,
}

impl Render for Report {
    fn lines(&self) -> Vec<String> {
        self.lines.clone()
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
}

/// `skiff init`: detect the framework in the project directory and write its skiff.toml,
/// refusing to replace one unless `force`.
pub fn init(settings: &Settings, out: &Output) -> Result<()> {
    let given = settings.dir.as_deref();
    let root = given.unwrap_or(Path::new("."));
    if !root.is_dir() {
        let what = if root.exists() { "is not a directory" } else { "does not exist" };
        let message = format!(
            "project directory `{}` {what}\nhint: give the folder that holds the site's sources (its `package.json`, `hugo.toml`, ...), or run `skiff init` inside it",
            root.display()
        );
        return Err(ConfigError::new(message).into());
    }
    let path = given.map_or_else(|| PathBuf::from(DEFAULT_FILE), |dir| dir.join(DEFAULT_FILE));
    let found = detect(&Disk(root));
    write(&path, &config_text(&found), settings.force)?;
    out.render(&report(&found, given, &path));
    Ok(())
}

/// Write the file; without `force`, only if there is none (checked by the create itself,
/// so a file that appears meanwhile is not replaced either).
fn write(path: &Path, text: &str, force: bool) -> Result<()> {
    let written = if force {
        std::fs::write(path, text)
    } else {
        std::fs::File::create_new(path).and_then(|mut file| file.write_all(text.as_bytes()))
    };
    match written {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == ErrorKind::AlreadyExists => bail!(
            "`{}` already exists; it was left as it is\nhint: pass `--force` to replace it with a new one, or edit it by hand",
            path.display()
        ),
        Err(err) => Err(anyhow::Error::new(err).context(format!("cannot write `{}`", path.display()))),
    }
}

fn report(found: &Detection, given: Option<&Path>, path: &Path) -> Report {
    let config = path.display().to_string();
    let mut lines = Vec::new();
    let mut warnings = Vec::new();
    if let Some(framework) = found.framework {
        lines.push(format!(
            "detected {} ({}): `{}` writes the site to `{}/`",
            framework.name(),
            found.evidence,
            framework.build(),
            found.dir
        ));
    } else {
        let place = given.map_or_else(|| "the current directory".to_string(), |dir| format!("`{}`", dir.display()));
        warnings.push(format!(
            "no framework recognised in {place}: assumed the site is built into `{}/` ({}); if it is not, change `dir` in `{config}`",
            found.dir,
            found.evidence
        ));
    }
    if found.needs_export {
        let missing = found
            .config_file
            .map_or_else(|| "there is no next.config.js".to_string(), |file| format!("{file} does not set it"));
        warnings.push(format!(
            "Next.js writes a static site to `out/` only with `output: 'export'` in its configuration, and {missing}: add it (`{config}` says how)"
        ));
    }
    let hashed = found.framework.and_then(Framework::hashed_dir);
    lines.push(format!(
        "wrote `{config}`: dir = \"{}\", Cache-Control for `**/*.html`{}",
        found.dir,
        hashed.map(|folder| format!(" and `{folder}/**`")).unwrap_or_default()
    ));
    lines.push("next steps:".to_string());
    lines.push(format!("  1. set `bucket` in `{config}` (or pass `--bucket NAME` to `skiff publish`)"));
    lines.push(match found.framework {
        Some(framework) => format!("  2. build the site: `{}`", framework.build()),
        None => format!("  2. build the site into `{}/`", found.dir),
    });
    let cd = given.map(|dir| format!("`cd {}`, then ", dir.display())).unwrap_or_default();
    lines.push(format!("  3. {cd}`skiff publish --dry-run` shows what would be uploaded; then `skiff publish`"));
    Report { framework: found.framework, dir: found.dir.to_string(), config, lines, warnings }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::Config;

    /// A project as a list of files (path, text); a directory is any prefix ending in `/`.
    struct Files(Vec<(&'static str, &'static str)>);

    impl Project for Files {
        fn is_file(&self, name: &str) -> bool {
            self.0.iter().any(|(path, _)| *path == name)
        }

        fn is_dir(&self, name: &str) -> bool {
            self.0.iter().any(|(path, _)| path.strip_prefix(name).is_some_and(|rest| rest.starts_with('/')))
        }

        fn read(&self, name: &str) -> Option<String> {
            self.0.iter().find(|(path, _)| *path == name).map(|(_, text)| (*text).to_string())
        }
    }

    fn detect_in(files: &[(&'static str, &'static str)]) -> Detection {
        detect(&Files(files.to_vec()))
    }

    const VITE_DEPS: &str = r#"{"devDependencies": {"vite": "^6.0.0"}}"#;

    #[test]
    fn each_framework_is_recognised_with_its_output_dir() {
        type Files = &'static [(&'static str, &'static str)];
        let cases: &[(Files, Framework, &str)] = &[
            (&[("hugo.toml", "baseURL = 'https://example.com/'\n")], Framework::Hugo, "public"),
            (&[("hugo.yaml", "")], Framework::Hugo, "public"),
            (&[("hugo.json", "{}")], Framework::Hugo, "public"),
            (
                &[("config.toml", "baseURL = 'https://example.com/'\n"), ("content/_index.md", "")],
                Framework::Hugo,
                "public",
            ),
            (
                &[("config.yaml", "baseurl: https://example.com/\n"), ("themes/ananke/theme.toml", "")],
                Framework::Hugo,
                "public",
            ),
            (&[("astro.config.mjs", "export default {}")], Framework::Astro, "dist"),
            (&[("astro.config.ts", "")], Framework::Astro, "dist"),
            (&[("astro.config.cjs", "")], Framework::Astro, "dist"),
            (&[("next.config.js", "module.exports = { output: 'export' }")], Framework::Next, "out"),
            (&[("next.config.ts", "")], Framework::Next, "out"),
            (&[("vite.config.ts", "")], Framework::Vite, "dist"),
            (&[("vite.config.mjs", "")], Framework::Vite, "dist"),
            (&[(".eleventy.js", "")], Framework::Eleventy, "_site"),
            (&[("eleventy.config.mjs", "")], Framework::Eleventy, "_site"),
            (&[("_config.yml", "title: x\n"), ("Gemfile", "gem 'jekyll'\n")], Framework::Jekyll, "_site"),
            (&[("_config.yaml", ""), ("_posts/2024-01-01-hello.md", "")], Framework::Jekyll, "_site"),
            (&[("_config.yml", ""), ("_layouts/default.html", "")], Framework::Jekyll, "_site"),
            (&[("docusaurus.config.js", "")], Framework::Docusaurus, "build"),
            (&[("docusaurus.config.ts", "")], Framework::Docusaurus, "build"),
            (&[("mkdocs.yml", "site_name: x\n")], Framework::MkDocs, "site"),
            (&[("mkdocs.yaml", "")], Framework::MkDocs, "site"),
        ];
        for (files, framework, dir) in cases {
            let found = detect_in(files);
            assert_eq!(found.framework, Some(*framework), "{files:?}");
            assert_eq!(found.dir, *dir, "{files:?}");
        }
    }

    #[test]
    fn package_json_is_the_fallback() {
        let cases: &[(&'static str, Framework)] = &[
            (r#"{"dependencies": {"astro": "^5.0.0", "vite": "^6.0.0"}}"#, Framework::Astro),
            (r#"{"dependencies": {"next": "15.0.0", "react": "19.0.0"}}"#, Framework::Next),
            (r#"{"devDependencies": {"@11ty/eleventy": "^3.0.0"}}"#, Framework::Eleventy),
            (r#"{"dependencies": {"@docusaurus/core": "3"}, "devDependencies": {"vite": "6"}}"#, Framework::Docusaurus),
            (VITE_DEPS, Framework::Vite),
        ];
        for (package, framework) in cases {
            let found = detect_in(&[("package.json", *package)]);
            assert_eq!(found.framework, Some(*framework), "{package}");
            assert!(found.evidence.ends_with("` in package.json"), "{}", found.evidence);
            assert_eq!(found.config_file, None);
        }
    }

    #[test]
    fn specific_frameworks_win_over_vite() {
        let cases: &[(&[(&'static str, &'static str)], Framework)] = &[
            (&[("docusaurus.config.js", ""), ("package.json", VITE_DEPS)], Framework::Docusaurus),
            (&[("docusaurus.config.ts", ""), ("vite.config.ts", "")], Framework::Docusaurus),
            (&[("astro.config.mjs", ""), ("vite.config.ts", ""), ("package.json", VITE_DEPS)], Framework::Astro),
            (&[("next.config.mjs", ""), ("vite.config.ts", "")], Framework::Next),
            (&[("eleventy.config.js", ""), ("vite.config.js", "")], Framework::Eleventy),
            (&[("_config.yml", ""), ("Gemfile", ""), ("vite.config.ts", "")], Framework::Jekyll),
            (&[("hugo.toml", ""), ("package.json", VITE_DEPS)], Framework::Hugo),
            (&[("mkdocs.yml", ""), ("package.json", VITE_DEPS)], Framework::MkDocs),
            // A Next.js app without next.config but with a Vite file (for Vitest, say).
            (&[("vite.config.ts", ""), ("package.json", r#"{"dependencies": {"next": "15"}}"#)], Framework::Next),
            (&[("vite.config.ts", ""), ("package.json", r#"{"dependencies": {"astro": "5"}}"#)], Framework::Astro),
        ];
        for (files, framework) in cases {
            assert_eq!(detect_in(files).framework, Some(*framework), "{files:?}");
        }
    }

    #[test]
    fn a_second_config_file_or_a_plain_vite_app() {
        let both = detect_in(&[("docusaurus.config.ts", ""), ("astro.config.mjs", "")]);
        assert_eq!(both.framework, Some(Framework::Docusaurus), "the more specific config file first");
        let vite = detect_in(&[("vite.config.ts", ""), ("package.json", r#"{"dependencies": {"react": "19"}}"#)]);
        assert_eq!(vite.framework, Some(Framework::Vite));
        assert_eq!(vite.config_file, Some("vite.config.ts"));
    }

    #[test]
    fn weak_signs_are_not_enough() {
        let cases: &[&[(&'static str, &'static str)]] = &[
            // config.toml without baseURL, or without a Hugo folder, is not Hugo.
            &[("config.toml", "[tool]\nx = 1\n"), ("content/a.md", "")],
            &[("config.toml", "baseURL = 'https://example.com/'\n")],
            // _config.yml alone is not Jekyll.
            &[("_config.yml", "title: x\n")],
            // package.json that is not JSON, or names no framework.
            &[("package.json", "{ not json")],
            &[("package.json", r#"{"dependencies": {"react": "19"}, "scripts": {"build": "vite build"}}"#)],
            &[],
        ];
        for files in cases {
            let found = detect_in(files);
            assert_eq!(found.framework, None, "{files:?}");
            assert_eq!(found.dir, "dist", "{files:?}");
        }
    }

    #[test]
    fn with_nothing_recognised_public_is_assumed_when_it_exists() {
        let found = detect_in(&[("public/index.html", "")]);
        assert_eq!((found.framework, found.dir), (None, "public"));
        assert!(found.evidence.contains("public/"));
        let found = detect_in(&[("index.html", "")]);
        assert_eq!((found.framework, found.dir), (None, "dist"));
    }

    #[test]
    fn next_needs_a_static_export() {
        let exported = [
            "module.exports = { output: 'export' }",
            "const nextConfig = {\n  output: \"export\",\n  trailingSlash: true,\n};\nexport default nextConfig;\n",
            "export default { output : 'export' }",
        ];
        for config in exported {
            let found = detect_in(&[("next.config.mjs", config)]);
            assert!(!found.needs_export, "{config}");
        }
        let found = detect_in(&[("next.config.js", "module.exports = { reactStrictMode: true }")]);
        assert_eq!((found.dir, found.needs_export), ("out", true));
        let found = detect_in(&[("package.json", r#"{"dependencies": {"next": "15"}}"#)]);
        assert_eq!((found.dir, found.needs_export, found.config_file), ("out", true, None));
        let astro = detect_in(&[("astro.config.mjs", "")]);
        assert!(!astro.needs_export, "only Next.js needs it");
    }

    /// One detection of each kind: every framework, Next.js with and without its export, and
    /// nothing recognised.
    fn every_kind() -> Vec<Detection> {
        let all = [
            Framework::Hugo,
            Framework::Astro,
            Framework::Next,
            Framework::Vite,
            Framework::Eleventy,
            Framework::Jekyll,
            Framework::Docusaurus,
            Framework::MkDocs,
        ];
        let mut kinds: Vec<Detection> = all.into_iter().map(|f| Detection::found(f, "a file".into(), None)).collect();
        kinds.push(detect_in(&[("next.config.js", "module.exports = {}")]));
        kinds.push(detect_in(&[("package.json", r#"{"dependencies": {"next": "15"}}"#)]));
        kinds.push(detect_in(&[("next.config.js", "module.exports = { output: 'export' }")]));
        kinds.push(detect_in(&[]));
        kinds.push(detect_in(&[("public/index.html", "")]));
        kinds
    }

    fn parse(text: &str) -> Config {
        Config::parse(text, Path::new("site/skiff.toml")).unwrap_or_else(|err| panic!("{err}\n{text}"))
    }

    fn cache_control(config: &Config, key: &str) -> Option<String> {
        config.rules.apply(key).cache_control.as_deref().map(str::to_string)
    }

    #[test]
    fn every_written_file_parses_and_its_rules_do_what_its_comments_say() {
        for found in every_kind() {
            let text = config_text(&found);
            let config = parse(&text);
            assert_eq!(config.site_dir, Some(Path::new("site").join(found.dir)), "{text}");
            assert_eq!(config.bucket, None, "the bucket is a placeholder, commented out");
            assert_eq!(config.region, None);
            assert_eq!(config.distribution_id, None);
            for page in ["index.html", "docs/index.html", "a/b/c.html"] {
                assert_eq!(cache_control(&config, page).as_deref(), Some(REVALIDATE), "{page}\n{text}");
            }
            let hashed = found.framework.and_then(Framework::hashed_dir);
            if let Some(folder) = hashed {
                let asset = format!("{folder}/index.3f2a9c1b.js");
                assert_eq!(cache_control(&config, &asset).as_deref(), Some(IMMUTABLE), "{text}");
                let nested = format!("{folder}/nested/logo.5d41402a.svg");
                assert_eq!(cache_control(&config, &nested).as_deref(), Some(IMMUTABLE));
            }
            for other in ["css/style.css", "favicon.ico", "img/a.png"] {
                assert_eq!(cache_control(&config, other), None, "{other} gets no Cache-Control\n{text}");
            }
            assert_eq!(text.contains("output: 'export'"), found.framework == Some(Framework::Next), "{text}");
        }
    }

    /// Whether a line is a setting (`key = …`) or a table header (`[site]`, `[[rules]]`).
    fn is_setting(line: &str) -> bool {
        let key = line.split_once(" = ").map_or("", |(key, _)| key);
        line.starts_with('[') || (!key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
    }

    /// Remove the `# ` in front of every commented-out setting (`# key = …`, `# [[rules]]`).
    fn uncommented(text: &str) -> String {
        text.lines().fold(String::new(), |mut out, line| {
            let rest = line.strip_prefix("# ").unwrap_or(line);
            out.push_str(if is_setting(rest) { rest } else { line });
            out.push('\n');
            out
        })
    }

    #[test]
    fn every_commented_out_setting_is_valid_once_uncommented() {
        for found in every_kind() {
            let text = uncommented(&config_text(&found));
            let config = parse(&text);
            assert_eq!(config.bucket.as_deref(), Some(BUCKET_PLACEHOLDER), "{text}");
            assert_eq!(config.region.as_deref(), Some("eu-west-1"));
            assert_eq!(config.distribution_id.as_deref(), Some("E2QWRUHAPOMQZL"));
            assert_eq!(config.max_deletes, DEFAULT_MAX_DELETES);
            if found.framework.and_then(Framework::hashed_dir).is_none() {
                let example = if found.framework == Some(Framework::Hugo) { "css/app.css" } else { "assets/app.js" };
                assert_eq!(cache_control(&config, example).as_deref(), Some(IMMUTABLE), "{text}");
            }
        }
    }

    #[test]
    fn quoted_lists_are_toml_arrays() {
        assert_eq!(quoted_list(&[]), "");
        assert_eq!(quoted_list(&["**/Thumbs.db", "**/.git/**"]), "\"**/Thumbs.db\", \"**/.git/**\"");
    }

    #[test]
    fn the_report_names_the_framework_the_dir_and_the_file() {
        let found = detect_in(&[("astro.config.mjs", "")]);
        let astro = report(&found, Some(Path::new("my-site")), Path::new("my-site/skiff.toml"));
        let json = serde_json::to_value(&astro).unwrap();
        assert_eq!(json, serde_json::json!({"framework": "astro", "dir": "dist", "config": "my-site/skiff.toml"}));
        let lines = astro.lines.join("\n");
        for needle in ["detected Astro (astro.config.mjs)", "`_astro/**`", "cd my-site", "--dry-run", "bucket"] {
            assert!(lines.contains(needle), "{needle}: {lines}");
        }
        assert!(astro.warnings.is_empty());
        let none = report(&detect_in(&[]), None, Path::new("skiff.toml"));
        assert_eq!(serde_json::to_value(&none).unwrap()["framework"], serde_json::Value::Null);
        assert!(none.warnings[0].contains("no framework recognised in the current directory"), "{:?}", none.warnings);
        assert!(none.warnings[0].contains("`dist/`"));
        assert!(!none.lines.join("\n").contains("cd "));
    }
}
