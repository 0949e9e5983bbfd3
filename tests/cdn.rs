//! CloudFront invalidation after a publish, and `skiff invalidate`, against the emulator.

use std::time::Duration;

use crate::harness::proxy::Proxy;
use crate::harness::{Bucket, Distribution, Site, endpoint, skiff, skiff_at};

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}

fn publish(site: &Site, bucket: &Bucket, distribution: &str, extra: &[&str]) -> crate::harness::Run {
    let mut args =
        vec!["publish", site.path().to_str().unwrap(), "--bucket", &bucket.name, "--distribution-id", distribution];
    args.extend_from_slice(extra);
    skiff(&args)
}

#[test]
fn invalidates_exactly_what_changed_or_was_deleted_and_nothing_for_a_noop() {
    let bucket = Bucket::new("cdn-exact");
    let cdn = Distribution::new(&bucket.name, "", true);
    let site = Site::example();
    publish(&site, &bucket, &cdn.id, &[]).success();
    assert_eq!(cdn.invalidations(), Vec::<Vec<String>>::new(), "a first publish only adds keys: nothing can be cached");

    site.write("index.html", b"<p>new home</p>");
    site.write("blog/hello-world/index.html", b"<p>edited post</p>");
    site.write("assets/css/site.css", b"body{}");
    site.remove("robots.txt");
    site.write("blog/second post/index.html", b"<p>new post</p>");
    let doc = publish(&site, &bucket, &cdn.id, &["--json"]).success().json();
    let expected = strings(&[
        "/",
        "/assets/css/site.css",
        "/blog/hello-world/",
        "/blog/hello-world/index.html",
        "/index.html",
        "/robots.txt",
    ]);
    assert_eq!(cdn.invalidations(), std::slice::from_ref(&expected));
    assert_eq!(doc["invalidation"]["paths"], serde_json::json!(expected));
    assert!(doc["invalidation"]["id"].is_string());
    assert_eq!(
        (doc["mode"].as_str(), doc["bucket"].as_str(), doc["prefix"].as_str()),
        (Some("in-place"), Some(bucket.name.as_str()), Some(""))
    );
    let rows = doc["actions"].as_array().unwrap();
    assert!(rows.iter().all(|a| a["status"] == "done" && a.get("from").is_none()), "{doc}");
    let ops: Vec<(&str, &str)> = rows.iter().map(|a| (a["op"].as_str().unwrap(), a["key"].as_str().unwrap())).collect();
    assert!(
        ops.contains(&("delete", "robots.txt")) && ops.contains(&("upload", "blog/second post/index.html")),
        "{ops:?}"
    );

    let doc = publish(&site, &bucket, &cdn.id, &["--json"]).success().json();
    assert_eq!(doc["invalidation"], serde_json::Value::Null);
    assert_eq!(cdn.invalidations().len(), 1, "a no-op publish creates no invalidation");
}

#[test]
fn header_change_unicode_and_spaces_are_invalidated_encoded() {
    let bucket = Bucket::new("cdn-encoding");
    let cdn = Distribution::new(&bucket.name, "", true);
    let site = Site::new(&[("dir with space/é.html", b"x"), ("a+b/100%.txt", b"y"), ("keep.txt", b"z")]);
    publish(&site, &bucket, &cdn.id, &[]).success();
    let config = site.path().parent().unwrap().join(format!("cdn-encoding-{}.toml", std::process::id()));
    std::fs::write(&config, "[[rules]]\nmatch = \"{dir with space,a+b}/**\"\ncache_control = \"max-age=9\"\n").unwrap();
    let config = config.to_str().unwrap();
    skiff(&[
        "-c",
        config,
        "publish",
        site.path().to_str().unwrap(),
        "--bucket",
        &bucket.name,
        "--distribution-id",
        &cdn.id,
    ])
    .success();
    assert_eq!(cdn.invalidations(), [strings(&["/a+b/100%25.txt", "/dir%20with%20space/%C3%A9.html"])]);
}

#[test]
fn origin_path_maps_the_prefix_away() {
    let bucket = Bucket::new("cdn-origin-path");
    let cdn = Distribution::new(&bucket.name, "/site", true);
    let site = Site::new(&[("index.html", b"<h1>home</h1>"), ("docs/index.html", b"<h1>docs</h1>")]);
    let first = publish(&site, &bucket, &cdn.id, &["--prefix", "site/"]).success();
    let url = first.stdout.trim();
    assert!(
        url.starts_with("https://") && url.ends_with(".cloudfront.net/"),
        "the origin path serves the prefix at /: {url}"
    );
    // Other bytes and other sizes: the objects under the prefix change, and the paths
    // invalidated are the viewer's (the origin path is taken away).
    site.write("index.html", b"<h1>home, second</h1>");
    site.write("docs/index.html", b"<h1>docs, second edition</h1>");
    publish(&site, &bucket, &cdn.id, &["--prefix", "site/"]).success();
    assert_eq!(cdn.invalidations(), [strings(&["/", "/docs/", "/docs/index.html", "/index.html"])]);
    let objects = bucket.objects();
    assert_eq!(objects["site/index.html"].bytes, b"<h1>home, second</h1>");
    assert_eq!(objects["site/docs/index.html"].bytes, b"<h1>docs, second edition</h1>");
    assert!(!objects.contains_key("index.html"), "nothing outside the prefix");
}

#[test]
fn many_changes_in_one_directory_become_one_wildcard() {
    let bucket = Bucket::new("cdn-compact");
    let cdn = Distribution::new(&bucket.name, "", true);
    let mut files: Vec<(String, Vec<u8>)> = (0..60).map(|i| (format!("posts/p{i}.html"), b"v1".to_vec())).collect();
    files.push(("index.html".into(), b"home".to_vec()));
    files.push(("about.html".into(), b"about".to_vec()));
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
    let site = Site::new(&refs);
    publish(&site, &bucket, &cdn.id, &[]).success();
    for i in 0..60 {
        site.write(&format!("posts/p{i}.html"), b"v2");
    }
    site.write("about.html", b"about v2");
    let doc = publish(&site, &bucket, &cdn.id, &["--json"]).success().json();
    assert_eq!(cdn.invalidations(), [strings(&["/about.html", "/posts/*"])]);
    assert_eq!(doc["invalidation"]["wildcards"], 1);
    assert_eq!(doc["invalidation"]["requested_paths"], 61);
}

#[test]
fn dry_run_and_no_invalidate_create_none() {
    let bucket = Bucket::new("cdn-dry");
    let cdn = Distribution::new(&bucket.name, "", true);
    let site = Site::new(&[("a.html", b"1")]);
    publish(&site, &bucket, &cdn.id, &[]).success();
    site.write("a.html", b"2");
    let run = publish(&site, &bucket, &cdn.id, &["--dry-run", "--json"]).success();
    assert!(run.stderr.contains("would invalidate /a.html"), "{}", run.stderr);
    assert_eq!(run.json()["invalidation"]["paths"], serde_json::json!(["/a.html"]));
    publish(&site, &bucket, &cdn.id, &["--no-invalidate"]).success();
    assert_eq!(cdn.invalidations(), Vec::<Vec<String>>::new());
}

#[test]
fn distribution_without_an_origin_on_the_bucket_is_skipped_with_a_warning() {
    let bucket = Bucket::new("cdn-elsewhere");
    let cdn = Distribution::new("some-other-bucket", "", true);
    let site = Site::new(&[("a.html", b"1")]);
    publish(&site, &bucket, &cdn.id, &[]).success();
    site.write("a.html", b"2");
    let run = publish(&site, &bucket, &cdn.id, &[]).success();
    assert!(run.stderr.contains("no origin of CloudFront distribution"), "{}", run.stderr);
    assert_eq!(cdn.invalidations(), Vec::<Vec<String>>::new());
}

#[test]
fn unknown_or_disabled_distribution_keeps_the_upload_and_exits_1() {
    let bucket = Bucket::new("cdn-unknown");
    let site = Site::new(&[("a.html", b"1")]);
    publish(&site, &bucket, "E000000NOSUCH", &["--no-invalidate"]).success();
    site.write("a.html", b"2");
    let run = publish(&site, &bucket, "E000000NOSUCH", &["--json"]);
    run.failure(1, &["E000000NOSUCH", "does not exist", "the files were published"]);
    assert_eq!(bucket.objects()["a.html"].bytes, b"2", "the upload is kept");
    assert_eq!(bucket.manifest("")["files"]["a.html"]["size"], 1);

    let disabled = Distribution::new(&bucket.name, "", false);
    site.write("a.html", b"3");
    publish(&site, &bucket, &disabled.id, &[]).failure(1, &[&disabled.id, "disabled"]);
    assert_eq!(bucket.objects()["a.html"].bytes, b"3");
}

#[test]
fn too_many_invalidations_in_progress_is_retried() {
    let bucket = Bucket::new("cdn-busy");
    let cdn = Distribution::new(&bucket.name, "", true);
    let site = Site::new(&[("a.html", b"1")]);
    publish(&site, &bucket, &cdn.id, &[]).success();
    site.write("a.html", b"2");
    let proxy = Proxy::start(&endpoint());
    let body = "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\"><Error><Type>Sender</Type><Code>TooManyInvalidationsInProgress</Code><Message>Processing your request will cause you to exceed the maximum number of in-progress wildcard invalidations.</Message></Error><RequestId>injected</RequestId></ErrorResponse>";
    proxy.fail_next("POST", &format!("/distribution/{}/invalidation", cdn.id), 1, 400, body);
    let started = std::time::Instant::now();
    let run = skiff_at(
        &proxy.endpoint,
        &["publish", site.path().to_str().unwrap(), "--bucket", &bucket.name, "--distribution-id", &cdn.id],
        None,
    )
    .success();
    assert!(run.stderr.contains("too many invalidations in progress"), "{}", run.stderr);
    assert!(started.elapsed() >= Duration::from_secs(2), "it backed off before trying again");
    assert_eq!(cdn.invalidations(), [strings(&["/a.html"])]);
}

#[test]
fn invalidate_command_encodes_compacts_and_waits() {
    let bucket = Bucket::new("cdn-command");
    let cdn = Distribution::new(&bucket.name, "", true);
    let run =
        skiff(&["invalidate", "--distribution-id", &cdn.id, "/a b/é.html", "/docs/*", "--wait", "--json"]).success();
    let doc = run.json();
    assert_eq!(doc["invalidation"]["status"].as_str().map(str::to_ascii_lowercase).as_deref(), Some("completed"));
    assert!(run.stderr.contains("completed"), "{}", run.stderr);
    let many: Vec<String> = (0..40).map(|i| format!("/blog/{i}.html")).collect();
    let mut args = vec!["invalidate", "--distribution-id", cdn.id.as_str()];
    args.extend(many.iter().map(String::as_str));
    skiff(&args).success();
    args.push("--no-compact");
    skiff(&args).success();
    skiff(&["invalidate", "--distribution-id", &cdn.id, "/*"]).success();
    let all = cdn.invalidations();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0], strings(&["/a%20b/%C3%A9.html", "/docs/*"]));
    assert_eq!(all[1], strings(&["/blog/*"]));
    assert_eq!(all[2].len(), 40);
    assert_eq!(all[3], strings(&["/*"]));

    skiff(&["invalidate", "--distribution-id", &cdn.id, "docs/"]).failure(2, &["docs/", "start with `/`"]);
    skiff(&["invalidate", "--distribution-id", &cdn.id, "/a*b"]).failure(2, &["only at the end"]);
    skiff(&["invalidate", "/x"]).failure(2, &["no distribution", "--distribution-id"]);
    skiff(&["invalidate", "--distribution-id", "lowercase", "/x"]).failure(2, &["--distribution-id", "lowercase"]);
    skiff(&["invalidate", "--distribution-id", &cdn.id, "/x", "--wait", "--wait-timeout", "soon"])
        .failure(2, &["--wait-timeout", "soon"]);
    let run = skiff(&["invalidate", "--distribution-id", &cdn.id, "/x", "--dry-run"]).success();
    assert!(run.stderr.contains("would invalidate /x"), "{}", run.stderr);
    assert_eq!(cdn.invalidations().len(), 4, "errors and dry runs send nothing");
}

#[test]
fn wait_needs_a_distribution() {
    let site = Site::new(&[("a.html", b"1")]);
    skiff(&["publish", site.path().to_str().unwrap(), "--bucket", "b-b-b", "--wait"])
        .failure(2, &["--wait", "no distribution"]);
}

#[test]
fn access_denied_names_the_distribution_and_the_permissions() {
    let bucket = Bucket::new("cdn-denied");
    let cdn = Distribution::new(&bucket.name, "", true);
    let site = Site::new(&[("a.html", b"1")]);
    publish(&site, &bucket, &cdn.id, &[]).success();
    site.write("a.html", b"2");
    let proxy = Proxy::start(&endpoint());
    let denied = "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/ci is not authorized to perform: cloudfront:GetDistribution</Message></Error><RequestId>injected</RequestId></ErrorResponse>";
    proxy.fail_next("GET", &format!("/distribution/{}", cdn.id), 1, 403, denied);
    let args = ["publish", site.path().to_str().unwrap(), "--bucket", &bucket.name, "--distribution-id", &cdn.id];
    skiff_at(&proxy.endpoint, &args, None)
        .failure(1, &["access denied", &cdn.id, "cloudfront:CreateInvalidation", "the files were published"]);
    assert_eq!(bucket.objects()["a.html"].bytes, b"2");
    assert_eq!(cdn.invalidations(), Vec::<Vec<String>>::new());
}

/// The retry command printed after a failed invalidation works when pasted into a shell.
#[test]
fn the_printed_invalidate_command_works_when_pasted() {
    let bucket = Bucket::new("cdn-retry");
    let cdn = Distribution::new(&bucket.name, "", true);
    let mut files: Vec<(String, Vec<u8>)> = (0..60).map(|i| (format!("posts/p{i}.html"), b"v1".to_vec())).collect();
    files.push(("index.html".into(), b"home".to_vec()));
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
    let site = Site::new(&refs);
    publish(&site, &bucket, &cdn.id, &[]).success();
    for i in 0..60 {
        site.write(&format!("posts/p{i}.html"), b"v2");
    }
    site.write("index.html", b"home v2");
    let proxy = crate::harness::proxy::Proxy::start(&endpoint());
    let failed = "<?xml version=\"1.0\"?><ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code><Message>down</Message></Error></ErrorResponse>";
    proxy.fail_next("POST", "/invalidation", 10, 503, failed);
    let args = ["publish", site.path().to_str().unwrap(), "--bucket", &bucket.name, "--distribution-id", &cdn.id];
    let run = crate::harness::skiff_at(&proxy.endpoint, &args, None).failure(1, &["invalidation failed"]);
    let pasted = run
        .stderr
        .split("run `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_else(|| panic!("no command in: {}", run.stderr))
        .to_string();
    assert!(pasted.starts_with("skiff invalidate "), "{pasted}");
    assert!(cdn.invalidations().is_empty());
    // Pasted into a shell as printed (the paths are quoted: zsh refuses an unmatched bare
    // `/posts/*`, and a matching one would be expanded).
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_skiff")).parent().unwrap().to_path_buf();
    let mut shell = std::process::Command::new("/bin/sh");
    shell.env_clear().arg("-c").arg(&pasted).current_dir(site.path());
    for (key, value) in crate::harness::command_at(&endpoint(), &[]).get_envs() {
        if let Some(value) = value {
            shell.env(key, value);
        }
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    shell.env("PATH", path);
    crate::harness::finish(shell.output().unwrap()).success();
    assert_eq!(cdn.invalidations(), [strings(&["/", "/index.html", "/posts/*"])]);
}

/// In place, with a distribution, the site's URL is the distribution's: on stdout, in
/// `GITHUB_OUTPUT` and in the step summary.
#[test]
fn an_in_place_publish_tells_the_distributions_url_and_writes_the_ci_outputs() {
    let bucket = Bucket::new("cdn-url");
    let cdn = Distribution::new(&bucket.name, "", true);
    let site = Site::new(&[("index.html", b"<p>x</p>")]);
    let files = tempfile::tempdir().unwrap();
    let (outputs, summary) = (files.path().join("output"), files.path().join("summary"));
    let args = ["publish", site.path().to_str().unwrap(), "--bucket", &bucket.name, "--distribution-id", &cdn.id];
    let mut command = crate::harness::command_at(&endpoint(), &args);
    command.env("GITHUB_OUTPUT", &outputs).env("GITHUB_STEP_SUMMARY", &summary);
    let run = crate::harness::finish(command.output().unwrap()).success();
    let url = run.stdout.trim().to_string();
    assert!(url.starts_with("https://") && url.ends_with(".cloudfront.net/"), "{url}");
    assert_eq!(std::fs::read_to_string(&outputs).unwrap(), format!("url={url}\n"));
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(summary.contains("### skiff: published") && summary.contains(&url), "{summary}");
}
