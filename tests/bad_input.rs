//! The bad-input catalogue: each case is a wrong configuration, flag, file tree or AWS
//! answer. Each one must exit non-zero with a message that names its subject, and must
//! leave the bucket exactly as it was (no write request reaches the emulator).

use std::path::Path;

use crate::harness::proxy::Proxy;
use crate::harness::{Bucket, Site, endpoint};

/// One case: what to set up and run, and what must come out.
struct Case {
    name: &'static str,
    /// `skiff.toml` text, written to the case's directory when given.
    config: Option<&'static str>,
    /// Arguments; `{site}` is the site directory, `{bucket}` the bucket.
    args: &'static [&'static str],
    /// Change the site tree before the run.
    prepare: fn(&Path),
    /// Faults for the proxy: (method, target contains, count, status, body).
    faults: &'static [(&'static str, &'static str, usize, u16, &'static str)],
    /// Environment changes.
    env: &'static [(&'static str, &'static str)],
    code: i32,
    needles: &'static [&'static str],
}

fn nothing(_: &Path) {}

const DENIED: &str = "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>x</RequestId></Error>";
const EXPIRED: &str = "<?xml version=\"1.0\"?><Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message><RequestId>x</RequestId></Error>";
const SLOW: &str = "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>x</RequestId></Error>";

fn case(name: &'static str, args: &'static [&'static str], code: i32, needles: &'static [&'static str]) -> Case {
    Case { name, config: None, args, prepare: nothing, faults: &[], env: &[], code, needles }
}

fn catalogue() -> Vec<Case> {
    let publish: &'static [&'static str] = &["publish", "{site}", "--bucket", "{bucket}"];
    let with_config = |name, config, needles| Case { config: Some(config), ..case(name, publish, 2, needles) };
    vec![
        // ---- skiff.toml ----
        with_config("unknown key", "[site]\nbuckett = \"x\"\n", &["buckett", "skiff.toml"]),
        with_config("unknown section", "[sites]\ndir = \"x\"\n", &["sites", "skiff.toml"]),
        with_config("bad TOML", "[site\n", &["skiff.toml"]),
        with_config("wrong type", "[deploy]\nconcurrency = \"many\"\n", &["concurrency", "skiff.toml"]),
        with_config("bad glob", "[[rules]]\nmatch = \"a/[b\"\ncache_control = \"x\"\n", &["rules[0].match"]),
        with_config("rule that sets nothing", "[[rules]]\nmatch = \"*.html\"\n", &["rules[0]", "sets nothing"]),
        with_config("invalid bucket name", "[site]\nbucket = \"Bad_Name\"\n", &["site.bucket", "Bad_Name"]),
        with_config(
            "redirect status",
            "[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nstatus = 404\n",
            &["redirects[0].status"],
        ),
        with_config(
            "redirect path",
            "[[redirects]]\nfrom = \"a\"\nto = \"/b\"\nstatus = 301\n",
            &["redirects[0].from"],
        ),
        with_config("max paths", "[cdn]\nmax_paths = 0\n", &["cdn.max_paths"]),
        with_config("delete_after", "[deploy]\ndelete_after = \"soon\"\n", &["deploy.delete_after", "soon"]),
        with_config("include glob", "[deploy]\ninclude = [\"a/[b\"]\n", &["deploy.include", "a/[b"]),
        with_config("site url", "[site]\nurl = \"www.example.com\"\n", &["site.url", "www.example.com"]),
        Case {
            config: Some("[[rules]]\nmatch = \"**/*.css\"\ngzip = true\n"),
            env: &[("TMPDIR", "/nonexistent/skiff-tmp")],
            ..case("no temporary directory for gzip copies", publish, 1, &["/nonexistent/skiff-tmp", "TMPDIR"])
        },
        with_config("multipart threshold", "[deploy]\nmultipart_threshold_mib = 1\n", &["multipart_threshold_mib"]),
        with_config("domain name", "[domain]\nname = \"not a host\"\n", &["domain.name"]),
        with_config(
            "header with a newline",
            "[[rules]]\nmatch = \"*\"\ncache_control = \"a\\nb\"\n",
            &["rules[0].cache_control"],
        ),
        Case {
            config: Some("[site]\nbucket = \"some-bucket-name\"\n"),
            ..case("provision without a domain", &["provision"], 2, &["no domain to provision", "[domain]"])
        },
        case(
            "missing config file",
            &["-c", "no-such-skiff.toml", "publish", "{site}", "--bucket", "{bucket}"],
            2,
            &["no-such-skiff.toml"],
        ),
        // ---- flags ----
        case(
            "zero concurrency",
            &["publish", "{site}", "--bucket", "{bucket}", "--concurrency", "0"],
            2,
            &["--concurrency"],
        ),
        case(
            "no-invalidate with wait",
            &["publish", "{site}", "--bucket", "{bucket}", "--no-invalidate", "--wait"],
            2,
            &["--no-invalidate"],
        ),
        case(
            "empty preview branch",
            &["publish", "{site}", "--bucket", "{bucket}", "--preview", ""],
            2,
            &["--preview"],
        ),
        case(
            "bad lock timeout",
            &["publish", "{site}", "--bucket", "{bucket}", "--lock-timeout", "soon"],
            2,
            &["--lock-timeout"],
        ),
        case(
            "bad wait timeout",
            &["publish", "{site}", "--bucket", "{bucket}", "--wait", "--wait-timeout", "5x"],
            2,
            &["--wait-timeout"],
        ),
        case("quiet and verbose", &["-q", "-v", "publish", "{site}", "--bucket", "{bucket}"], 2, &["--quiet"]),
        case("invalid --bucket", &["publish", "{site}", "--bucket", "Bad_Bucket"], 2, &["--bucket", "Bad_Bucket"]),
        case("invalid --prefix", &["publish", "{site}", "--bucket", "{bucket}", "--prefix", "../up"], 2, &["--prefix"]),
        case("invalidation path", &["invalidate", "docs", "--distribution-id", "E123"], 2, &["docs"]),
        case("unknown command", &["publsh"], 2, &["publsh"]),
        case(
            "bad prune duration",
            &["previews", "prune", "--older-than", "fortnight", "--bucket", "{bucket}"],
            2,
            &["--older-than"],
        ),
        // ---- the file tree ----
        case(
            "missing directory",
            &["publish", "{site}/no-such-dir", "--bucket", "{bucket}"],
            1,
            &["no-such-dir", "does not exist"],
        ),
        Case {
            prepare: |dir| std::fs::write(dir.join("plain-file"), b"x").unwrap(),
            ..case(
                "a file, not a directory",
                &["publish", "{site}/plain-file", "--bucket", "{bucket}"],
                1,
                &["plain-file", "not a directory"],
            )
        },
        Case {
            prepare: |dir| {
                for entry in std::fs::read_dir(dir).unwrap() {
                    let path = entry.unwrap().path();
                    if path.is_dir() {
                        std::fs::remove_dir_all(path).unwrap();
                    } else {
                        std::fs::remove_file(path).unwrap();
                    }
                }
            },
            ..case("empty directory", publish, 1, &["no files to publish"])
        },
        Case {
            prepare: |dir| {
                let mut deep = dir.to_path_buf();
                for _ in 0..9 {
                    deep.push("d".repeat(120));
                }
                std::fs::create_dir_all(&deep).unwrap();
                std::fs::write(deep.join("page.html"), b"x").unwrap();
            },
            ..case("key over 1,024 bytes", publish, 1, &["page.html", "1024"])
        },
        Case {
            prepare: |dir| std::fs::write(dir.join("bell\u{7}.html"), b"x").unwrap(),
            ..case("control character in a name", publish, 1, &["control character"])
        },
        Case {
            prepare: |dir| {
                use std::os::unix::ffi::OsStrExt as _;
                std::fs::write(dir.join(std::ffi::OsStr::from_bytes(b"latin1-\xe9.html")), b"x").unwrap();
            },
            ..case("name that is not UTF-8", publish, 1, &["latin1-", "UTF-8"])
        },
        Case {
            prepare: |dir| std::os::unix::fs::symlink("/etc/hostname", dir.join("escape.txt")).unwrap(),
            ..case("symlink out of the site", publish, 1, &["escape.txt"])
        },
        Case {
            prepare: |dir| std::os::unix::fs::symlink(dir, dir.join("loop")).unwrap(),
            ..case("symlink loop", publish, 1, &["loop"])
        },
        Case {
            prepare: |dir| std::os::unix::fs::symlink(dir.join("gone.html"), dir.join("dangling.html")).unwrap(),
            ..case("broken symlink", publish, 1, &["dangling.html"])
        },
        // ---- AWS ----
        case(
            "no such bucket",
            &["publish", "{site}", "--bucket", "skiff-no-such-bucket-anywhere"],
            1,
            &["skiff-no-such-bucket-anywhere", "does not exist"],
        ),
        Case {
            faults: &[("GET", "list-type=2", 1, 403, DENIED)],
            ..case("access denied on the listing", publish, 1, &["access denied", "{bucket}"])
        },
        Case {
            faults: &[("GET", "manifest.json", 2, 403, DENIED)],
            ..case("access denied on the manifest", publish, 1, &["access denied", ".skiff/manifest.json"])
        },
        Case {
            faults: &[("GET", "list-type=2", 1, 400, EXPIRED)],
            ..case("expired credentials", publish, 1, &["ExpiredToken", "{bucket}"])
        },
        Case {
            faults: &[("GET", "list-type=2", 10, 503, SLOW)],
            ..case("throttling beyond the retries", publish, 1, &["throttling", "{bucket}"])
        },
        Case {
            env: &[("AWS_ACCESS_KEY_ID", ""), ("AWS_SECRET_ACCESS_KEY", "")],
            ..case("no credentials", publish, 1, &["credentials were missing", "AWS_PROFILE"])
        },
        Case {
            // A port nothing listens on: the real SDK error of a refused connection.
            env: &[("AWS_ENDPOINT_URL", "http://127.0.0.1:9")],
            ..case("unreachable endpoint", publish, 1, &["could not reach", "Connection refused", "--endpoint-url"])
        },
        case(
            "unknown profile",
            &["publish", "{site}", "--bucket", "{bucket}", "--profile", "no-such-profile"],
            1,
            &["profile `no-such-profile`", "not defined", "aws configure"],
        ),
        case(
            "distribution not found",
            &["invalidate", "/index.html", "--distribution-id", "E000000NOSUCH"],
            1,
            &["E000000NOSUCH"],
        ),
        case(
            "rollback on a bucket that is not a site",
            &["rollback", "--bucket", "{bucket}"],
            1,
            &["not a provisioned skiff site", "{bucket}"],
        ),
        case(
            "status of a bucket that is not a site",
            &["status", "--bucket", "{bucket}"],
            1,
            &["{bucket}", "skiff provision"],
        ),
        // ---- a newcomer's first commands ----
        case(
            "another tool's command",
            &["deploy", "{site}"],
            2,
            &["no `deploy` command", "did you mean `skiff publish`"],
        ),
        case("another tool's sync", &["sync"], 2, &["did you mean `skiff publish`"]),
        case("a misspelt command", &["pubish"], 2, &["unrecognized subcommand", "publish"]),
        Case {
            prepare: |dir| {
                std::fs::write(dir.join("package.json"), "{}").unwrap();
                std::fs::create_dir_all(dir.join("dist")).unwrap();
                std::fs::write(dir.join("dist/index.html"), "x").unwrap();
            },
            ..case("a project's root", publish, 2, &["looks like a project's root", "`package.json`", "dist"])
        },
    ]
}

#[test]
fn every_bad_input_exits_non_zero_names_its_subject_and_changes_nothing() {
    let bucket = Bucket::new("bad-input");
    let base = Site::new(&[("index.html", b"<h1>live</h1>"), ("assets/a.css", b"a{}")]);
    crate::harness::skiff(&["publish", base.path().to_str().unwrap(), "--bucket", &bucket.name]).success();
    let before = bucket.objects();
    let cases = catalogue();
    assert!(cases.len() >= 30, "the catalogue has {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let site = Site::new(&[("index.html", b"<h1>new</h1>"), ("assets/a.css", b"b{}")]);
        (case.prepare)(site.path());
        let work = tempfile::tempdir().unwrap();
        if let Some(config) = case.config {
            std::fs::write(work.path().join("skiff.toml"), config).unwrap();
        }
        let fill = |s: &str| s.replace("{site}", site.path().to_str().unwrap()).replace("{bucket}", &bucket.name);
        let args: Vec<String> = case.args.iter().map(|a| fill(a)).collect();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let proxy = Proxy::start(&endpoint());
        for (method, target, count, status, body) in case.faults {
            proxy.fail_next(method, target, *count, *status, body);
        }
        let mut command = crate::harness::command_at(&proxy.endpoint, &refs);
        command.current_dir(work.path());
        for (key, value) in case.env {
            command.env(key, value);
        }
        let run = crate::harness::finish(command.output().unwrap());
        let mut problems = Vec::new();
        if run.code != case.code {
            problems.push(format!("exit {} (expected {})", run.code, case.code));
        }
        for needle in case.needles {
            let needle = fill(needle);
            if !run.stderr.contains(&needle) {
                problems.push(format!("no `{needle}` in the message"));
            }
        }
        if !run.stderr.contains("error") {
            problems.push("no error line".to_string());
        }
        // An SDK error's Debug text is not a cause a person can act on.
        if ["Unknown }", "})", "Some(", "ErrorMetadata"].iter().any(|junk| run.stderr.contains(junk)) {
            problems.push("an SDK error's Debug text was printed".to_string());
        }
        if !proxy.writes().is_empty() {
            problems.push(format!("wrote: {:?}", proxy.writes()));
        }
        if bucket.objects() != before {
            problems.push("the bucket changed".to_string());
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}\n    stderr: {}", case.name, problems.join("; "), run.stderr.trim()));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// With `--json`, a failure is a JSON document on stdout as well as the message on stderr.
#[test]
fn a_failure_with_json_is_a_json_document_on_stdout() {
    let site = Site::new(&[("index.html", b"<p>x</p>")]);
    let dir = site.path().to_str().unwrap().to_string();
    let run = crate::harness::skiff(&["publish", &dir, "--bucket", "no-such-bucket-here", "--json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let doc = run.json();
    assert_eq!(doc["error"]["kind"], "failure", "{doc}");
    assert_eq!(doc["error"]["exit_code"], 1, "{doc}");
    assert!(doc["error"]["message"].as_str().unwrap().contains("no-such-bucket-here"), "{doc}");
    let usage = crate::harness::skiff(&["publish", &dir, "--json"]);
    assert_eq!(usage.code, 2);
    assert_eq!(usage.json()["error"]["kind"], "usage");
}
