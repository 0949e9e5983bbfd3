//! `skiff publish` (in-place) end to end against the emulator.

use std::io::Read as _;
use std::time::{Duration, SystemTime};

use crate::harness::proxy::Proxy;
use crate::harness::{Bucket, Site, command_at, endpoint, finish, skiff, skiff_at};

fn publish(site: &Site, bucket: &Bucket, extra: &[&str]) -> crate::harness::Run {
    let mut args = vec!["publish", site.path().to_str().unwrap(), "--bucket", &bucket.name];
    args.extend_from_slice(extra);
    skiff(&args)
}

fn publish_via(proxy: &Proxy, site: &Site, bucket: &Bucket, extra: &[&str]) -> crate::harness::Run {
    let mut args = vec!["publish", site.path().to_str().unwrap(), "--bucket", &bucket.name];
    args.extend_from_slice(extra);
    skiff_at(&proxy.endpoint, &args, None)
}

fn config_file(site: &Site, text: &str) -> String {
    let path = site
        .path()
        .parent()
        .unwrap()
        .join(format!("skiff-{}.toml", site.path().file_name().unwrap().to_str().unwrap()));
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn example_site_lands_with_its_bytes_and_content_types() {
    let bucket = Bucket::new("example");
    let site = Site::example();
    let run = publish(&site, &bucket, &[]).success();
    assert_eq!(run.stdout.trim(), format!("s3://{}/", bucket.name));
    let objects = bucket.objects();
    let expected_types = [
        ("index.html", "text/html; charset=utf-8"),
        ("404.html", "text/html; charset=utf-8"),
        ("about/index.html", "text/html; charset=utf-8"),
        ("blog/index.html", "text/html; charset=utf-8"),
        ("blog/hello-world/index.html", "text/html; charset=utf-8"),
        ("assets/css/site.css", "text/css; charset=utf-8"),
        ("assets/js/app.mjs", "text/javascript; charset=utf-8"),
        ("assets/js/format.js", "text/javascript; charset=utf-8"),
        ("assets/fonts/source-code-pro-500.woff2", "font/woff2"),
        ("assets/fonts/SOURCE-CODE-PRO-LICENSE.txt", "text/plain; charset=utf-8"),
        ("assets/images/logo.svg", "image/svg+xml; charset=utf-8"),
        ("assets/images/wave.png", "image/png"),
        ("data/stats.json", "application/json; charset=utf-8"),
        ("favicon.ico", "image/x-icon"),
        ("robots.txt", "text/plain; charset=utf-8"),
        ("site.webmanifest", "application/manifest+json; charset=utf-8"),
        ("sitemap.xml", "application/xml; charset=utf-8"),
    ];
    let files = site.files();
    assert_eq!(files.len(), expected_types.len(), "the table covers every file of site-example");
    for (key, content_type) in expected_types {
        let object = objects.get(key).unwrap_or_else(|| panic!("{key} missing"));
        assert_eq!(object.content_type.as_deref(), Some(content_type), "{key}");
        assert_eq!(object.bytes, files[key], "{key}");
        assert_eq!(object.content_encoding, None, "{key}");
    }
    let keys: Vec<_> = objects.keys().filter(|k| !k.starts_with(".skiff/")).cloned().collect();
    assert_eq!(keys, files.keys().cloned().collect::<Vec<_>>(), "the bucket holds exactly the site");
}

#[test]
fn second_publish_sends_no_writes() {
    let bucket = Bucket::new("noop");
    let site = Site::example();
    let proxy = Proxy::start(&endpoint());
    publish_via(&proxy, &site, &bucket, &[]).success();
    assert!(proxy.writes().len() >= 17);
    let before = bucket.objects();
    proxy.clear();
    let run = publish_via(&proxy, &site, &bucket, &["--json"]).success();
    assert_eq!(proxy.writes(), [], "a no-op publish writes nothing, not even the manifest");
    let reads = proxy.requests();
    assert_eq!(reads.len(), 2, "one GET of the manifest and one LIST: {reads:?}");
    assert_eq!(bucket.objects(), before);
    let doc = run.json();
    assert_eq!(doc["summary"]["uploaded"], 0);
    assert_eq!(doc["summary"]["unchanged"], 17);
    assert!(run.stderr.contains("up to date"), "{}", run.stderr);
}

#[test]
fn a_manifest_of_format_1_named_by_sha256_is_read_without_sending_the_site_again() {
    let bucket = Bucket::new("format1");
    let site = Site::example();
    let proxy = Proxy::start(&endpoint());
    publish_via(&proxy, &site, &bucket, &[]).success();
    // What skiff 0.1 wrote: format 1, each entry naming its bytes by SHA-256.
    let objects = bucket.objects();
    let mut manifest: serde_json::Value = serde_json::from_slice(&objects[".skiff/manifest.json"].bytes).unwrap();
    assert_eq!(manifest["format"], 2);
    manifest["format"] = 1.into();
    for (key, entry) in manifest["files"].as_object_mut().unwrap() {
        let entry = entry.as_object_mut().unwrap();
        assert!(entry.remove("blake3").is_some(), "`{key}` is named by BLAKE3");
        let sha256 = crate::harness::invariants::sha256_hex(&objects[key].bytes);
        entry.insert("sha256".into(), sha256.into());
    }
    bucket.put(".skiff/manifest.json", &serde_json::to_vec(&manifest).unwrap());
    std::fs::write(site.path().join("robots.txt"), "User-agent: *\nDisallow: /private/\n").unwrap();
    proxy.clear();
    let run = publish_via(&proxy, &site, &bucket, &["--json"]).success();
    let doc = run.json();
    assert_eq!((doc["summary"]["uploaded"].as_u64(), doc["summary"]["unchanged"].as_u64()), (Some(1), Some(16)));
    let writes: Vec<String> = proxy.writes().iter().map(|w| format!("{w:?}")).collect();
    assert_eq!(writes.len(), 2, "the changed file (its SHA-256 checked by the store) and the manifest: {writes:?}");
    let objects = bucket.objects();
    let manifest: serde_json::Value = serde_json::from_slice(&objects[".skiff/manifest.json"].bytes).unwrap();
    assert_eq!(manifest["format"], 2, "written again in the current format");
    for (key, entry) in manifest["files"].as_object().unwrap() {
        assert!(entry.get("sha256").is_none(), "`{key}`: {entry}");
        let blake3 = crate::harness::invariants::blake3_hex(&objects[key].bytes);
        assert_eq!(entry["blake3"].as_str(), Some(blake3.as_str()), "`{key}`");
    }
    assert_eq!(objects["robots.txt"].bytes, b"User-agent: *\nDisallow: /private/\n");
    // And from then on a no-op.
    proxy.clear();
    publish_via(&proxy, &site, &bucket, &[]).success();
    assert_eq!(proxy.writes(), []);
}

#[test]
fn the_manifest_is_written_without_a_temporary_directory_too() {
    // The manifest goes to S3 through a temporary file; with none to be had, from memory.
    let bucket = Bucket::new("no-tmp");
    let site = Site::new(&[("index.html", b"<p>hi</p>"), ("a.css", b"body{}")]);
    let mut args = vec!["publish", site.path().to_str().unwrap(), "--bucket", &bucket.name];
    let mut command = command_at(&endpoint(), &args);
    command.env("TMPDIR", "/nonexistent/skiff-tmp");
    finish(command.output().unwrap()).success();
    let manifest = bucket.manifest("");
    assert_eq!(manifest["files"].as_object().unwrap().len(), 2, "{manifest}");
    // The same bytes as through a file: the next run sees nothing to do.
    args.push("--json");
    let again = publish(&site, &bucket, &["--json"]).success().json();
    assert_eq!(again["summary"]["unchanged"], 2, "{again}");
    let mut command = command_at(&endpoint(), &args);
    command.env("TMPDIR", "/nonexistent/skiff-tmp");
    assert_eq!(finish(command.output().unwrap()).success().json()["summary"]["unchanged"], 2);
}

#[test]
fn a_manifest_cut_off_while_downloading_is_a_connection_error_and_nothing_is_written() {
    let bucket = Bucket::new("manifest-cut");
    let pages: Vec<(String, Vec<u8>)> =
        (0..40).map(|i| (format!("p{i}.html"), format!("<p>{i}</p>").into_bytes())).collect();
    let files: Vec<(&str, &[u8])> = pages.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
    let site = Site::new(&files);
    publish(&site, &bucket, &[]).success();
    site.write("p7.html", b"<p>seven</p>");
    let before = bucket.objects();
    let proxy = Proxy::start(&endpoint());
    // Both reads of the manifest (the mode check, then the publish's own) are cut short.
    proxy.truncate_next("GET", ".skiff/manifest.json", 2);
    let run = publish_via(&proxy, &site, &bucket, &[]).failure(1, &[".skiff/manifest.json", "could not reach S3"]);
    assert!(!run.stderr.contains("not valid"), "a cut-off download is not a broken manifest:\n{}", run.stderr);
    assert_eq!(proxy.writes(), [], "nothing is written on a half-read manifest");
    assert_eq!(bucket.objects(), before);
    // Once the network is back, the change goes out alone.
    let again = publish_via(&proxy, &site, &bucket, &["--json"]).success().json();
    assert_eq!(again["summary"]["uploaded"], 1, "{again}");
}

#[test]
fn same_size_change_with_older_mtime_is_uploaded() {
    let bucket = Bucket::new("same-size");
    let site = Site::new(&[("index.html", b"<p>version A</p>"), ("a.txt", b"aaaa")]);
    publish(&site, &bucket, &[]).success();
    site.write("index.html", b"<p>version B</p>");
    let old = SystemTime::now() - Duration::from_hours(24 * 365);
    std::fs::File::options().write(true).open(site.path().join("index.html")).unwrap().set_modified(old).unwrap();
    let doc = publish(&site, &bucket, &["--json"]).success().json();
    let actions = doc["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(actions[0]["key"], "index.html");
    assert_eq!(actions[0]["op"], "upload");
    assert_eq!(actions[0]["reason"], "changed");
    assert_eq!(bucket.objects()["index.html"].bytes, b"<p>version B</p>");
}

#[test]
fn rule_change_updates_headers_without_uploading() {
    let bucket = Bucket::new("rule-change");
    let site = Site::new(&[("index.html", b"<p>hi</p>"), ("assets/app.js", b"console.log(1)")]);
    publish(&site, &bucket, &[]).success();
    let config = config_file(
        &site,
        "[[rules]]\nmatch = \"assets/**\"\ncache_control = \"public, max-age=31536000, immutable\"\n",
    );
    let proxy = Proxy::start(&endpoint());
    let run = skiff_at(
        &proxy.endpoint,
        &["-c", &config, "--json", "publish", site.path().to_str().unwrap(), "--bucket", &bucket.name],
        None,
    )
    .success();
    let doc = run.json();
    assert_eq!(doc["summary"]["metadata_updated"], 1);
    assert_eq!(doc["summary"]["uploaded"], 0);
    assert_eq!(doc["actions"][0]["op"], "update-metadata");
    let writes = proxy.writes();
    let copies: Vec<_> = writes.iter().filter(|r| r.copy_source).collect();
    assert_eq!(copies.len(), 1, "{writes:?}");
    assert!(copies[0].target.contains("assets/app.js"));
    assert_eq!(writes.len(), 2, "the copy and the manifest, no upload: {writes:?}");
    let object = &bucket.objects()["assets/app.js"];
    assert_eq!(object.cache_control.as_deref(), Some("public, max-age=31536000, immutable"));
    assert_eq!(object.content_type.as_deref(), Some("text/javascript; charset=utf-8"), "REPLACE re-sends the type");
    assert_eq!(object.bytes, b"console.log(1)");
}

#[test]
fn deleted_files_are_deleted_and_too_many_deletes_abort_before_writing() {
    let bucket = Bucket::new("deletes");
    let files: Vec<(String, Vec<u8>)> =
        (0..6).map(|i| (format!("page{i}.html"), format!("<p>{i}</p>").into_bytes())).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
    let site = Site::new(&refs);
    publish(&site, &bucket, &[]).success();
    for i in 0..4 {
        site.remove(&format!("page{i}.html"));
    }
    site.write("page5.html", b"<p>changed</p>");
    let before = bucket.objects();
    let proxy = Proxy::start(&endpoint());
    let run = publish_via(&proxy, &site, &bucket, &["--max-deletes", "3"]);
    run.failure(1, &["deletes 4 objects", "limit of 3", "--max-deletes 4"]);
    assert_eq!(proxy.writes(), [], "nothing is written when the guard trips");
    assert_eq!(bucket.objects(), before);

    let doc = publish(&site, &bucket, &["--max-deletes", "4", "--json"]).success().json();
    assert_eq!(doc["summary"]["deleted"], 4);
    assert_eq!(bucket.keys(), [".skiff/manifest.json", "page4.html", "page5.html"]);
}

#[test]
fn max_deletes_comes_from_config() {
    let bucket = Bucket::new("deletes-config");
    let site = Site::new(&[("a.html", b"a"), ("b.html", b"b")]);
    publish(&site, &bucket, &[]).success();
    site.remove("b.html");
    let config = config_file(&site, "[deploy]\nmax_deletes = 0\n");
    skiff(&["-c", &config, "publish", site.path().to_str().unwrap(), "--bucket", &bucket.name])
        .failure(1, &["limit of 0"]);
    assert!(bucket.keys().contains(&"b.html".to_string()));
}

#[test]
fn dry_run_sends_only_reads() {
    let bucket = Bucket::new("dry-run");
    let site = Site::example();
    publish(&site, &bucket, &[]).success();
    site.write("index.html", b"<p>new home</p>");
    site.remove("robots.txt");
    site.write("new/page.html", b"<p>new</p>");
    let before = bucket.objects();
    let proxy = Proxy::start(&endpoint());
    let run = publish_via(&proxy, &site, &bucket, &["--dry-run", "--json"]).success();
    assert_eq!(proxy.writes(), []);
    assert_eq!(bucket.objects(), before);
    let doc = run.json();
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["summary"]["uploaded"], 2);
    assert_eq!(doc["summary"]["deleted"], 1);
    assert!(run.stderr.contains("would upload") && run.stderr.contains("would delete"), "{}", run.stderr);
}

#[test]
fn gzip_rule_stores_compressed_bytes_with_content_encoding() {
    let bucket = Bucket::new("gzip");
    let css = "body { color: #123456 }\n".repeat(200);
    let site = Site::new(&[("style.css", css.as_bytes()), ("logo.png", b"\x89PNG fake")]);
    let config = config_file(&site, "[[rules]]\nmatch = \"**/*.{css,js,html}\"\ngzip = true\n");
    skiff(&["-c", &config, "publish", site.path().to_str().unwrap(), "--bucket", &bucket.name]).success();
    let objects = bucket.objects();
    let object = &objects["style.css"];
    assert_eq!(object.content_encoding.as_deref(), Some("gzip"));
    assert_eq!(object.content_type.as_deref(), Some("text/css; charset=utf-8"));
    assert!(object.bytes.len() < css.len() / 4);
    let mut plain = String::new();
    flate2::read::GzDecoder::new(object.bytes.as_slice()).read_to_string(&mut plain).unwrap();
    assert_eq!(plain, css);
    assert_eq!(objects["logo.png"].content_encoding, None);
    let doc = skiff(&["-c", &config, "--json", "publish", site.path().to_str().unwrap(), "--bucket", &bucket.name])
        .success()
        .json();
    assert_eq!(doc["summary"]["unchanged"], 2, "gzip output is deterministic");
}

#[test]
fn a_multipart_upload_whose_part_fails_is_aborted() {
    let bucket = Bucket::new("multipart-abort");
    let big: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let site = Site::new(&[("video/big.mp4", &big)]);
    let config = config_file(&site, "[deploy]\nmultipart_threshold_mib = 5\n");
    let proxy = Proxy::start(&endpoint());
    let failed = "<?xml version=\"1.0\"?><Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>";
    proxy.fail_next("PUT", "partNumber=2", 20, 500, failed);
    let args = ["-c", &config, "publish", site.path().to_str().unwrap(), "--bucket", &bucket.name];
    skiff_at(&proxy.endpoint, &args, None).failure(1, &["video/big.mp4"]);
    assert!(proxy.requests().iter().any(|r| r.method == "DELETE" && r.target.contains("uploadId=")), "aborted");
    let open = crate::harness::runtime()
        .block_on(crate::harness::client_for(&endpoint()).list_multipart_uploads().bucket(&bucket.name).send())
        .unwrap();
    assert!(open.uploads().is_empty(), "no unfinished upload left to bill: {:?}", open.uploads());
}

#[test]
fn large_file_goes_up_in_parts() {
    let bucket = Bucket::new("multipart");
    let big: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let site = Site::new(&[("video/big.mp4", &big), ("index.html", b"<p>x</p>")]);
    let config = config_file(&site, "[deploy]\nmultipart_threshold_mib = 5\n");
    skiff(&["-c", &config, "publish", site.path().to_str().unwrap(), "--bucket", &bucket.name]).success();
    let object = &bucket.objects()["video/big.mp4"];
    assert!(object.etag.ends_with("-2\""), "8 MiB + 4 MiB parts: {}", object.etag);
    assert_eq!(object.content_type.as_deref(), Some("video/mp4"));
    assert!(object.bytes == big, "the reassembled bytes are the file's");
    let doc = skiff(&["-c", &config, "--json", "publish", site.path().to_str().unwrap(), "--bucket", &bucket.name])
        .success()
        .json();
    assert_eq!(doc["summary"]["uploaded"], 0, "a multipart ETag is tracked like any other");
}

/// How many checksummed requests the double refused per S3-compatible bucket.
fn refused_checksums(bucket: &str) -> u64 {
    let counts: serde_json::Value =
        serde_json::from_str(&crate::harness::double_hook("GET", "/__double/s3-compatible", "")).unwrap();
    counts[bucket].as_u64().unwrap_or(0)
}

#[test]
fn a_store_that_refuses_checksum_headers_gets_the_files_without_them_after_one_warning() {
    let bucket = Bucket::new("compat-store");
    crate::harness::double_hook("POST", "/__double/s3-compatible", &format!("{{\"bucket\": \"{}\"}}", bucket.name));
    let big: Vec<u8> = (0..6 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let site = Site::new(&[
        ("index.html", b"<p>x</p>"),
        ("a.css", b"a{}"),
        ("b.js", b"b()"),
        ("c.txt", b"c"),
        ("video/big.mp4", &big),
    ]);
    let config = config_file(&site, "[deploy]\nmultipart_threshold_mib = 5\nconcurrency = 1\n");
    let run = skiff(&["-c", &config, "publish", site.path().to_str().unwrap(), "--bucket", &bucket.name]).success();
    assert_eq!(run.stderr.matches("refused the upload's checksum").count(), 1, "one warning: {}", run.stderr);
    assert!(run.stderr.contains("checksums = false"), "the warning says how to stop it: {}", run.stderr);
    assert!(refused_checksums(&bucket.name) >= 1, "the store really refused a checksum");
    let objects = bucket.objects();
    for (path, bytes) in site.files() {
        assert!(objects[&path].bytes == bytes, "{path} holds the file's bytes");
    }
}

#[test]
fn checksums_off_in_the_config_are_never_sent() {
    let bucket = Bucket::new("compat-store-off");
    crate::harness::double_hook("POST", "/__double/s3-compatible", &format!("{{\"bucket\": \"{}\"}}", bucket.name));
    let big: Vec<u8> = (0..6 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let site = Site::new(&[("index.html", b"<p>x</p>"), ("video/big.mp4", &big)]);
    let config = config_file(&site, "[site]\nchecksums = false\n\n[deploy]\nmultipart_threshold_mib = 5\n");
    let run = skiff(&["-c", &config, "publish", site.path().to_str().unwrap(), "--bucket", &bucket.name]).success();
    assert!(!run.stderr.contains("checksum"), "{}", run.stderr);
    assert_eq!(refused_checksums(&bucket.name), 0, "no checksum header was sent");
    assert_eq!(bucket.objects().len(), 3, "two files and the manifest");
}

#[test]
fn unicode_spaces_plus_and_percent_in_names() {
    let bucket = Bucket::new("names");
    let names = [
        "dir with space/file name.html",
        "unicodé/日本語.html",
        "a+b/c+d.txt",
        "pct/100%.txt",
        "pct/%20literal.txt",
        "emoji/😀.txt",
    ];
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (*n, n.as_bytes())).collect();
    let site = Site::new(&files);
    publish(&site, &bucket, &[]).success();
    let objects = bucket.objects();
    for name in names {
        assert_eq!(objects.get(name).map(|o| o.bytes.as_slice()), Some(name.as_bytes()), "{name}");
    }
    // Header update (CopyObject, percent-encoded source) and delete work with such keys too.
    let config = config_file(&site, "[[rules]]\nmatch = \"**\"\ncache_control = \"max-age=5\"\n");
    site.remove("pct/100%.txt");
    let doc = skiff(&["-c", &config, "--json", "publish", site.path().to_str().unwrap(), "--bucket", &bucket.name])
        .success()
        .json();
    assert_eq!(doc["summary"]["metadata_updated"], 5);
    assert_eq!(doc["summary"]["deleted"], 1);
    let objects = bucket.objects();
    assert_eq!(objects["a+b/c+d.txt"].cache_control.as_deref(), Some("max-age=5"));
    assert!(!objects.contains_key("pct/100%.txt"));
}

#[cfg(unix)]
#[test]
fn unusable_names_are_refused_naming_the_file() {
    use std::os::unix::ffi::OsStrExt;
    let bucket = Bucket::new("bad-names");
    let site = Site::new(&[("index.html", b"x"), ("tab\there.html", b"x")]);
    publish(&site, &bucket, &[]).failure(1, &["tab\\there.html", "control characters"]);
    std::fs::remove_file(site.path().join("tab\there.html")).unwrap();
    let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9.html");
    std::fs::write(site.path().join(latin1), b"x").unwrap();
    publish(&site, &bucket, &[]).failure(1, &["caf", "not valid UTF-8"]);
    std::fs::remove_file(site.path().join(latin1)).unwrap();
    let long = format!("{}/{}.html", "d".repeat(200), "n".repeat(250));
    let deep = format!("{long}/{long}/{long}");
    site.write(&deep, b"x");
    publish(&site, &bucket, &[]).failure(1, &["1024"]);
    assert_eq!(bucket.keys(), Vec::<String>::new(), "nothing was uploaded");
}

#[test]
fn decomposed_unicode_names_become_nfc_keys() {
    let bucket = Bucket::new("nfc");
    let site = Site::new(&[("cafe\u{301}.html", b"x")]);
    publish(&site, &bucket, &[]).success();
    assert!(bucket.keys().contains(&"caf\u{e9}.html".to_string()));
}

#[test]
fn prefix_isolation() {
    let bucket = Bucket::new("prefix");
    bucket.put("outside.html", b"not ours");
    bucket.put("blog-old/x.html", b"not ours either");
    bucket.put("blog/stray.html", b"inside the prefix");
    let site = Site::new(&[("index.html", b"<p>blog</p>")]);
    let run = publish(&site, &bucket, &["--prefix", "blog", "--json"]).success();
    let doc = run.json();
    assert_eq!(doc["prefix"], "blog/");
    assert_eq!(doc["summary"]["deleted"], 1);
    assert_eq!(bucket.keys(), ["blog-old/x.html", "blog/.skiff/manifest.json", "blog/index.html", "outside.html"]);
    assert!(run.stderr.contains("no skiff manifest"), "{}", run.stderr);
    assert_eq!(bucket.manifest("blog/")["files"]["index.html"]["size"], 11);

    // Publishing the whole bucket's root leaves the skiff site under `blog/` alone.
    let root = Site::new(&[("index.html", b"<p>root</p>")]);
    let run = publish(&root, &bucket, &["--json"]).success();
    assert!(run.stderr.contains("another skiff site"), "{}", run.stderr);
    let keys = bucket.keys();
    assert!(
        keys.contains(&"blog/index.html".to_string()) && keys.contains(&"blog/.skiff/manifest.json".to_string()),
        "{keys:?}"
    );
    assert!(!keys.contains(&"outside.html".to_string()), "the root site owns the rest: {keys:?}");
}

#[test]
fn drift_is_repaired() {
    let bucket = Bucket::new("drift");
    let site = Site::new(&[("a.html", b"a"), ("b.css", b"b"), ("c.js", b"c")]);
    publish(&site, &bucket, &[]).success();
    bucket.delete("a.html");
    bucket.put("b.css", b"tampered");
    let doc = publish(&site, &bucket, &["--json"]).success().json();
    let mut drifted: Vec<_> = doc["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["key"].as_str().unwrap().to_string(), a["reason"].as_str().unwrap().to_string()))
        .collect();
    drifted.sort();
    assert_eq!(drifted, [("a.html".to_string(), "drift".to_string()), ("b.css".to_string(), "drift".to_string())]);
    let objects = bucket.objects();
    assert_eq!(objects["a.html"].bytes, b"a");
    assert_eq!(objects["b.css"].bytes, b"b");
}

#[test]
fn first_publish_onto_a_bucket_with_files_adopts_it() {
    let bucket = Bucket::new("adopt");
    bucket.put("index.html", b"old site");
    bucket.put("old-page.html", b"gone");
    let site = Site::new(&[("index.html", b"new site")]);
    let run = publish(&site, &bucket, &["--json"]).success();
    assert!(run.stderr.contains("no skiff manifest"), "{}", run.stderr);
    let doc = run.json();
    assert_eq!(doc["actions"][0]["reason"], "untracked");
    assert_eq!(bucket.keys(), [".skiff/manifest.json", "index.html"]);
}

#[test]
fn force_reuploads_everything() {
    let bucket = Bucket::new("force");
    let site = Site::new(&[("a.html", b"a"), ("b.css", b"b")]);
    publish(&site, &bucket, &[]).success();
    let doc = publish(&site, &bucket, &["--force", "--json"]).success().json();
    assert_eq!(doc["summary"]["uploaded"], 2);
    assert!(doc["actions"].as_array().unwrap().iter().all(|a| a["reason"] == "force"));
}

#[test]
fn html_goes_live_after_assets() {
    let bucket = Bucket::new("order");
    let site = Site::new(&[("a.html", b"a"), ("z.css", b"z"), ("m/index.html", b"m"), ("b.png", b"b")]);
    let proxy = Proxy::start(&endpoint());
    publish_via(&proxy, &site, &bucket, &["--concurrency", "1"]).success();
    let puts: Vec<String> = proxy.writes().into_iter().map(|r| r.target).collect();
    let position =
        |needle: &str| puts.iter().position(|t| t.contains(needle)).unwrap_or_else(|| panic!("{needle} in {puts:?}"));
    // Every asset before every page, every page before the manifest.
    for asset in ["z.css", "b.png"] {
        for page in ["a.html", "m/index.html"] {
            assert!(position(asset) < position(page), "{asset} before {page}: {puts:?}");
        }
    }
    for page in ["a.html", "m/index.html"] {
        assert!(position(page) < position(".skiff/manifest.json"), "{page} before the manifest: {puts:?}");
    }
}

#[test]
fn json_document_has_the_contract_fields() {
    let bucket = Bucket::new("json");
    let site = Site::new(&[("index.html", b"<p>x</p>")]);
    let doc = publish(&site, &bucket, &["--json"]).success().json();
    for field in ["target", "mode", "dry_run", "deploy_id", "url", "summary", "actions", "invalidation"] {
        assert!(doc.get(field).is_some(), "{field} missing: {doc}");
    }
    for field in ["files", "bytes", "uploaded", "uploaded_bytes", "copied", "metadata_updated", "deleted", "unchanged"]
    {
        assert!(doc["summary"].get(field).is_some(), "summary.{field} missing: {doc}");
    }
    assert_eq!(doc["mode"], "in-place");
    assert_eq!(
        doc["actions"][0],
        serde_json::json!({"op": "upload", "key": "index.html", "reason": "new", "bytes": 8, "status": "done"})
    );
}

#[test]
fn verbose_logs_never_show_credentials() {
    let bucket = Bucket::new("secrets");
    let site = Site::new(&[("index.html", b"x")]);
    // `skiff_at` asserts the secret key is in neither stream; check the session token too.
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_skiff"));
    let output = command
        .args(["-vv", "publish", site.path().to_str().unwrap(), "--bucket", &bucket.name])
        .env("AWS_ACCESS_KEY_ID", crate::harness::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", crate::harness::SECRET_KEY)
        .env("AWS_SESSION_TOKEN", "skiff-session-token-NEVER-PRINTED")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", endpoint())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{text}");
    assert!(text.lines().count() > 5, "-vv logs something: {text}");
    for secret in [crate::harness::SECRET_KEY, "skiff-session-token-NEVER-PRINTED"] {
        assert!(!text.contains(secret), "{secret} printed");
    }
}

#[test]
fn bad_config_exits_2_naming_the_key_and_file() {
    let site = Site::new(&[("index.html", b"x")]);
    let cases: &[(&str, &[&str])] = &[
        ("[site]\nbucket = \"b\"\ncolour = \"red\"\n", &["unknown field `colour`"]),
        ("[[rules]]\nmatch = \"[\"\ncache_control = \"x\"\n", &["rules[0].match", "["]),
        ("[deploy]\nconcurrency = \"many\"\n", &["invalid type"]),
        ("[site]\nbucket = \"UPPER\"\n", &["site.bucket", "UPPER"]),
        ("not toml at all", &["invalid config file"]),
    ];
    for (text, needles) in cases {
        let config = config_file(&site, text);
        let run = skiff(&["-c", &config, "publish", site.path().to_str().unwrap(), "--bucket", "some-bucket"]);
        let mut all = needles.to_vec();
        all.push(&config);
        run.failure(2, &all);
    }
}

#[test]
fn bad_flags_and_directories_are_refused() {
    let site = Site::new(&[("index.html", b"x")]);
    let dir = site.path().to_str().unwrap();
    skiff(&["publish", dir, "--bucket", "Bad_Bucket"]).failure(2, &["--bucket", "Bad_Bucket"]);
    skiff(&["publish", dir]).failure(2, &["no bucket", "--bucket"]);
    skiff(&["publish", "--bucket", "b-b-b"]).failure(2, &["no directory to publish"]);
    skiff(&["publish", dir, "--bucket", "b-b-b", "--concurrency", "0"]).failure(2, &["--concurrency"]);
    skiff(&["publish", dir, "--bucket", "b-b-b", "--prefix", "a/../b"]).failure(2, &["--prefix"]);
    skiff(&["--endpoint-url", "localhost:1", "publish", dir, "--bucket", "b-b-b"]).failure(2, &["--endpoint-url"]);
    skiff(&["publish", dir, "--bucket", "b-b-b", "--max-deletes", "many"]).failure(2, &["--max-deletes"]);
    let missing = format!("{dir}/nope");
    skiff(&["publish", &missing, "--bucket", "b-b-b"]).failure(1, &["does not exist", &missing]);
    let empty = Site::new(&[]);
    skiff(&["publish", empty.path().to_str().unwrap(), "--bucket", "b-b-b"]).failure(1, &["no files to publish"]);
}

#[test]
fn missing_bucket_is_named() {
    let site = Site::new(&[("index.html", b"x")]);
    let run = skiff(&["publish", site.path().to_str().unwrap(), "--bucket", "skiff-no-such-bucket-here"]);
    run.failure(1, &["bucket `skiff-no-such-bucket-here` does not exist"]);
}

#[test]
fn unreachable_endpoint_is_a_clear_error() {
    let site = Site::new(&[("index.html", b"x")]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let run = skiff_at(&dead, &["publish", site.path().to_str().unwrap(), "--bucket", "some-bucket"], None);
    run.failure(1, &["could not reach S3", "some-bucket"]);
}

#[cfg(unix)]
#[test]
fn symlink_escape_and_broken_link_name_the_path_and_write_nothing() {
    use std::os::unix::fs::symlink;
    let bucket = Bucket::new("symlinks");
    let outside = Site::new(&[("secret.txt", b"secret")]);
    let site = Site::new(&[("index.html", b"x")]);
    symlink(outside.path(), site.path().join("leak")).unwrap();
    publish(&site, &bucket, &[]).failure(1, &["leak", "outside the site directory"]);
    assert_eq!(bucket.keys(), Vec::<String>::new());
    std::fs::remove_file(site.path().join("leak")).unwrap();

    symlink(site.path().join("missing-target"), site.path().join("broken.html")).unwrap();
    publish(&site, &bucket, &[]).failure(1, &["broken.html", "broken symbolic link"]);
    assert_eq!(bucket.keys(), Vec::<String>::new());
}

#[test]
fn site_dir_and_bucket_from_config() {
    let bucket = Bucket::new("from-config");
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("public")).unwrap();
    std::fs::write(root.path().join("public/index.html"), "<p>x</p>").unwrap();
    std::fs::write(root.path().join("skiff.toml"), format!("[site]\ndir = \"public\"\nbucket = \"{}\"\n", bucket.name))
        .unwrap();
    skiff_at(&endpoint(), &["publish"], Some(root.path())).success();
    assert_eq!(bucket.keys(), [".skiff/manifest.json", "index.html"]);
}

#[test]
fn ctrl_c_stops_records_what_was_done_and_exits_130() {
    let bucket = Bucket::new("ctrl-c");
    let files: Vec<(String, Vec<u8>)> =
        (0..40).map(|i| (format!("f{i:02}.css"), format!("/* {i} */").into_bytes())).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
    let site = Site::new(&refs);
    let proxy = Proxy::start_with_delay(&endpoint(), Duration::from_millis(150));
    let dir = site.path().to_str().unwrap();
    let child = crate::harness::spawn(&mut command_at(
        &proxy.endpoint,
        &["publish", dir, "--bucket", &bucket.name, "--concurrency", "2"],
    ));
    crate::harness::wait_until("the publish never started writing", || proxy.writes().len() >= 4);
    let run = crate::harness::interrupt(child);
    assert_eq!(run.code, 130, "{}", run.stderr);
    assert!(run.stderr.contains("interrupted"), "{}", run.stderr);

    let uploaded: Vec<String> = bucket.keys().into_iter().filter(|k| !k.starts_with(".skiff/")).collect();
    assert!(!uploaded.is_empty() && uploaded.len() < 40, "stopped part way: {}", uploaded.len());
    let manifest = bucket.manifest("");
    let recorded = manifest["files"].as_object().unwrap().len();
    assert_eq!(recorded, uploaded.len(), "the manifest records exactly what went up");

    let doc = publish(&site, &bucket, &["--json"]).success().json();
    assert_eq!(doc["summary"]["uploaded"], 40 - uploaded.len(), "the next run uploads only the rest");
    assert_eq!(doc["summary"]["unchanged"], uploaded.len());
}

#[test]
fn excluded_files_stay_in_the_bucket() {
    let bucket = Bucket::new("exclude-keeps");
    let site = Site::new(&[("index.html", b"x"), ("downloads/big.zip", b"zip")]);
    publish(&site, &bucket, &[]).success();
    site.remove("downloads/big.zip");
    let config = config_file(&site, "[deploy]\nexclude = [\"downloads/**\"]\n");
    let doc = skiff(&["-c", &config, "--json", "publish", site.path().to_str().unwrap(), "--bucket", &bucket.name])
        .success()
        .json();
    assert_eq!(doc["summary"]["deleted"], 0);
    assert!(
        bucket.keys().contains(&"downloads/big.zip".to_string()),
        "excluding a file does not remove it from the live site"
    );
}

#[test]
fn dry_run_over_the_delete_limit_shows_the_plan_and_warns() {
    let bucket = Bucket::new("dry-limit");
    let site = Site::new(&[("a.html", b"a"), ("b.html", b"b"), ("c.html", b"c")]);
    publish(&site, &bucket, &[]).success();
    site.remove("b.html");
    site.remove("c.html");
    let run = publish(&site, &bucket, &["--dry-run", "--max-deletes", "1"]).success();
    assert!(run.stderr.contains("would delete") && run.stderr.contains("limit of 1"), "{}", run.stderr);
}

#[test]
fn a_bucket_set_up_for_atomic_deploys_is_not_published_over() {
    let bucket = Bucket::new("provisioned");
    bucket.put("_skiff/state.json", b"{}");
    let site = Site::new(&[("index.html", b"x")]);
    publish(&site, &bucket, &[]).failure(1, &["_skiff/state.json", &bucket.name]);
    assert_eq!(bucket.keys(), ["_skiff/state.json"]);
}

#[test]
fn a_manifest_from_a_newer_skiff_is_refused_and_a_broken_one_ignored() {
    let bucket = Bucket::new("manifest-versions");
    let site = Site::new(&[("index.html", b"x")]);
    bucket.put(".skiff/manifest.json", br#"{"format": 99, "files": {}}"#);
    publish(&site, &bucket, &[]).failure(1, &["format 99", "upgrade skiff", &bucket.name]);
    assert_eq!(bucket.keys(), [".skiff/manifest.json"]);
    bucket.put(".skiff/manifest.json", b"not json");
    let run = publish(&site, &bucket, &[]).success();
    assert!(run.stderr.contains("ignoring"), "{}", run.stderr);
    assert_eq!(bucket.manifest("")["format"], 2);
}

#[test]
fn access_denied_on_one_key_names_it_holds_back_html_and_the_next_run_finishes() {
    let bucket = Bucket::new("denied");
    let site = Site::new(&[("index.html", b"<p>1</p>"), ("a.css", b"a1"), ("b.css", b"b1"), ("old.txt", b"o")]);
    publish(&site, &bucket, &[]).success();
    site.write("index.html", b"<p>2</p>");
    site.write("a.css", b"a2");
    site.write("b.css", b"b2");
    site.remove("old.txt");
    let proxy = Proxy::start(&endpoint());
    let denied = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>injected</RequestId></Error>";
    proxy.fail_next("PUT", "/b.css", 1, 403, denied);
    let run = publish_via(&proxy, &site, &bucket, &["--json"]);
    let run = run.failure(1, &["b.css", "access denied", "held back"]);
    let doc = run.json();
    assert_eq!(doc["complete"], false);
    let objects = bucket.objects();
    assert_eq!(objects["a.css"].bytes, b"a2", "other assets went up");
    assert_eq!(objects["index.html"].bytes, b"<p>1</p>", "the page that may need b.css is held back");
    assert!(objects.contains_key("old.txt"), "deletes are held back");
    assert_eq!(bucket.manifest("")["files"]["a.css"]["size"], 2, "what succeeded is recorded");

    let doc = publish(&site, &bucket, &["--json"]).success().json();
    let mut keys: Vec<String> =
        doc["actions"].as_array().unwrap().iter().map(|a| a["key"].as_str().unwrap().to_string()).collect();
    keys.sort();
    assert_eq!(keys, ["b.css", "index.html", "old.txt"], "a.css is not uploaded again");
    assert_eq!(bucket.objects()["index.html"].bytes, b"<p>2</p>");
}

#[test]
fn throttling_beyond_retries_is_named() {
    let bucket = Bucket::new("throttled");
    let site = Site::new(&[("a.css", b"a")]);
    let proxy = Proxy::start(&endpoint());
    let slow_down = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
    proxy.fail_next("PUT", "/a.css", 2, 503, slow_down);
    publish_via(&proxy, &site, &bucket, &[]).failure(1, &["a.css", "throttling", "--concurrency"]);
    publish(&site, &bucket, &[]).success();
}

#[test]
fn missing_credentials_are_explained() {
    let site = Site::new(&[("a.css", b"a")]);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_skiff"))
        .args(["publish", site.path().to_str().unwrap(), "--bucket", "some-bucket"])
        .env_clear()
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("HOME", site.path())
        .output()
        .unwrap();
    let run = finish(output);
    run.failure(1, &["credentials", "AWS_PROFILE"]);
}

#[test]
fn a_bucket_in_another_region_is_followed_there() {
    let bucket = Bucket::new("other-region");
    let site = Site::new(&[("index.html", b"<p>x</p>")]);
    let proxy = Proxy::start(&endpoint());
    // What S3 answers a request sent to the wrong region.
    let moved = "<?xml version=\"1.0\"?><Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint.</Message></Error>";
    proxy.fail_next_with_headers("GET", "list-type=2", 1, 301, moved, &[("x-amz-bucket-region", "eu-west-1")]);
    let run = publish_via(&proxy, &site, &bucket, &[]).success();
    assert_eq!(bucket.objects()["index.html"].bytes, b"<p>x</p>", "{}", run.stderr);
    let writes = proxy.writes();
    assert!(!writes.is_empty());
    assert!(
        writes.iter().all(|r| r.region.as_deref() == Some("eu-west-1")),
        "every write signed for the bucket's region: {writes:?}"
    );
}

#[test]
fn two_publishes_at_once_one_wins_the_other_says_so_and_the_next_converges() {
    let bucket = Bucket::new("two-at-once");
    let files: Vec<(String, Vec<u8>)> =
        (0..8).map(|i| (format!("p{i}.html"), format!("<p>{i}</p>").into_bytes())).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
    let first = Site::new(&refs);
    let second = Site::new(&[("other.html", b"<p>other</p>")]);
    // Slow requests: both read the (missing) manifest before either writes one.
    let proxy = Proxy::start_with_delay(&endpoint(), Duration::from_millis(150));
    let start = |site: &Site| {
        let args = ["publish", site.path().to_str().unwrap(), "--bucket", &bucket.name, "--concurrency", "1"];
        crate::harness::spawn(&mut command_at(&proxy.endpoint, &args))
    };
    let (a, b) = (start(&first), start(&second));
    let (a, b) = (finish(a.wait_with_output().unwrap()), finish(b.wait_with_output().unwrap()));
    let mut codes = [a.code, b.code];
    codes.sort_unstable();
    assert_eq!(codes, [0, 1], "one wins, one fails:\n{}\n{}", a.stderr, b.stderr);
    let loser = if a.code == 1 { &a } else { &b };
    assert!(loser.stderr.contains("another publish"), "it says why: {}", loser.stderr);
    // The next publish of either tree makes the bucket exactly that tree.
    publish(&first, &bucket, &[]).success();
    let keys: Vec<String> = bucket.keys().into_iter().filter(|k| !k.starts_with(".skiff/")).collect();
    assert_eq!(keys, files.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>());
}

#[test]
fn an_explicit_profile_wins_over_keys_in_the_environment() {
    let bucket = Bucket::new("profile-wins");
    let site = Site::new(&[("a.css", b"a")]);
    let home = tempfile::tempdir().unwrap();
    let credentials = home.path().join("credentials");
    std::fs::write(
        &credentials,
        "[site-deployer]\naws_access_key_id = AKIAPROFILEKEY000001\naws_secret_access_key = profile-secret-DO-NOT-PRINT\n",
    )
    .unwrap();
    let proxy = Proxy::start(&endpoint());
    let mut command = crate::harness::command_at(
        &proxy.endpoint,
        &["publish", site.path().to_str().unwrap(), "--bucket", &bucket.name, "--profile", "site-deployer"],
    );
    // The environment's keys (ACCESS_KEY) are set by `command_at`, as a CI runner's would be.
    command.env("AWS_SHARED_CREDENTIALS_FILE", &credentials);
    let run = finish(command.output().unwrap()).success();
    assert!(!run.stderr.contains("profile-secret"), "{}", run.stderr);
    let keys: std::collections::BTreeSet<Option<String>> = proxy.requests().into_iter().map(|r| r.access_key).collect();
    assert_eq!(keys, [Some("AKIAPROFILEKEY000001".to_string())].into(), "every request signed as the profile");

    // Without `--profile`, the environment's keys are used.
    let proxy = Proxy::start(&endpoint());
    let mut command = crate::harness::command_at(
        &proxy.endpoint,
        &["publish", site.path().to_str().unwrap(), "--bucket", &bucket.name],
    );
    command.env("AWS_SHARED_CREDENTIALS_FILE", &credentials);
    finish(command.output().unwrap()).success();
    assert!(proxy.requests().iter().all(|r| r.access_key.as_deref() == Some(crate::harness::ACCESS_KEY)));
}

#[test]
fn the_opt_in_hash_cache_skips_reading_files_whose_stamp_holds_and_the_default_reads_every_byte() {
    let bucket = Bucket::new("hash-cache");
    let site = Site::new(&[("index.html", b"<h1>one</h1>"), ("a.css", b"a{color:red}")]);
    let cache = tempfile::tempdir().unwrap();
    let old = std::time::SystemTime::now() - Duration::from_hours(1);
    let age = |path: &str| {
        let file = std::fs::File::options().write(true).open(site.path().join(path)).unwrap();
        file.set_modified(old).unwrap();
    };
    age("index.html");
    age("a.css");
    let dir = site.path().to_str().unwrap().to_string();
    let run = |extra: &[&str]| {
        let mut args = vec!["publish", dir.as_str(), "--bucket", bucket.name.as_str(), "--json"];
        args.extend_from_slice(extra);
        let mut command = crate::harness::command_at(&endpoint(), &args);
        command.env("SKIFF_CACHE_DIR", cache.path());
        crate::harness::finish(command.output().unwrap()).success().json()
    };
    assert_eq!(run(&["--hash-cache"])["summary"]["uploaded"], 2);
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 1, "the cache was written");
    assert_eq!(run(&["--hash-cache"])["summary"]["uploaded"], 0);
    // A real edit changes the time stamp: the cache sees it.
    site.write("index.html", b"<h1>two</h1>");
    assert_eq!(run(&["--hash-cache"])["summary"]["uploaded"], 1);
    // Same size, same time stamp, same inode: the cache trusts it (rsync's quick check) …
    std::fs::write(site.path().join("a.css"), b"a{color:red}".map(|b| if b == b'r' { b'R' } else { b })).unwrap();
    age("a.css");
    assert_eq!(run(&["--hash-cache"])["summary"]["uploaded"], 0, "the documented trade-off of the cache");
    // … and the default, exact scan does not.
    let exact = run(&[]);
    assert_eq!(exact["summary"]["uploaded"], 1, "{exact}");
    assert_eq!(exact["actions"][0]["key"], "a.css");
}

#[test]
fn json_into_a_closed_pipe_publishes_and_exits_quietly() {
    let bucket = Bucket::new("json-closed-pipe");
    let site = Site::new(&[("index.html", b"<h1>hi</h1>"), ("a.css", b"a{}")]);
    // `skiff publish --json | head -0`: the reader is gone before skiff writes.
    let mut child = crate::harness::spawn(&mut command_at(
        &endpoint(),
        &["publish", site.path().to_str().unwrap(), "--bucket", &bucket.name, "--json"],
    ));
    drop(child.stdout.take());
    let run = finish(child.wait_with_output().unwrap());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("panicked") && !run.stderr.contains("could not be written"), "{}", run.stderr);
    assert_eq!(bucket.objects()["index.html"].bytes, b"<h1>hi</h1>");
}

/// At a terminal, a publish that would delete asks first; "n" changes nothing (no write at
/// all) and says how to skip the question; "y" goes ahead.
#[test]
fn declining_the_delete_question_at_a_terminal_changes_nothing() {
    let bucket = Bucket::new("delete-prompt");
    let site = Site::new(&[("index.html", b"<p>home</p>"), ("old.html", b"<p>old</p>")]);
    publish(&site, &bucket, &[]).success();
    site.remove("old.html");
    site.write("index.html", b"<p>home, new</p>");
    let before = bucket.objects();
    let proxy = Proxy::start(&endpoint());
    let dir = site.path().to_str().unwrap().to_string();
    let args = ["publish", dir.as_str(), "--bucket", bucket.name.as_str()];
    let declined = crate::harness::in_terminal(&crate::harness::command_at(&proxy.endpoint, &args), "n\n");
    assert_eq!(declined.code, 1, "{}", declined.stdout);
    for needle in
        [&format!("delete 1 object from s3://{}/", bucket.name) as &str, "[y/N]", "nothing was changed", "--yes"]
    {
        assert!(declined.stdout.contains(needle), "the terminal shows `{needle}`:\n{}", declined.stdout);
    }
    assert_eq!(proxy.writes(), [], "nothing is written when the question is declined");
    assert_eq!(bucket.objects(), before);

    let accepted = crate::harness::in_terminal(&crate::harness::command_at(&endpoint(), &args), "y\n");
    assert_eq!(accepted.code, 0, "{}", accepted.stdout);
    assert_eq!(bucket.keys(), [".skiff/manifest.json", "index.html"]);
}

/// In place the URL comes from `[site] url` when set, else the bucket; the CI outputs name
/// it; `--no-delete` leaves the objects of removed files, and says so, until a publish
/// without it.
#[test]
fn the_site_url_ci_outputs_and_no_delete_in_place() {
    let bucket = Bucket::new("url-no-delete");
    let site = Site::new(&[("index.html", b"<p>home</p>"), ("old.html", b"<p>old</p>")]);
    let run = publish(&site, &bucket, &[]).success();
    assert_eq!(run.stdout.trim(), format!("s3://{}/", bucket.name), "no URL known: the bucket");

    let config = tempfile::tempdir().unwrap();
    std::fs::write(config.path().join("skiff.toml"), "[site]\nurl = \"https://www.example.com/\"\n").unwrap();
    let outputs = config.path().join("github-output");
    site.remove("old.html");
    let dir = site.path().to_str().unwrap().to_string();
    let mut command =
        crate::harness::command_at(&endpoint(), &["publish", &dir, "--bucket", &bucket.name, "--no-delete"]);
    command.current_dir(config.path()).env("GITHUB_OUTPUT", &outputs);
    let run = crate::harness::finish(command.output().unwrap()).success();
    assert_eq!(run.stdout.trim(), "https://www.example.com/");
    assert_eq!(std::fs::read_to_string(&outputs).unwrap(), "url=https://www.example.com/\n");
    assert!(run.stderr.contains("--no-delete: kept 1 object whose file is gone"), "{}", run.stderr);
    assert!(bucket.keys().contains(&"old.html".to_string()), "kept");
    publish(&site, &bucket, &[]).success();
    assert!(!bucket.keys().contains(&"old.html".to_string()), "the next publish deletes it");
}

/// `--version` names the commit; completions and the man page are generated; the help
/// puts the global options under their own heading, with examples.
#[test]
fn version_completions_man_page_and_help() {
    let version = crate::harness::skiff(&["--version"]).success();
    let text = version.stdout.trim();
    assert!(text.starts_with(&format!("skiff {} (", env!("CARGO_PKG_VERSION"))), "{text}");
    let bash = crate::harness::skiff(&["completions", "bash"]).success();
    assert!(bash.stdout.contains("_skiff") && bash.stdout.contains("publish"), "{}", bash.stdout);
    let zsh = crate::harness::skiff(&["completions", "zsh"]).success();
    assert!(zsh.stdout.contains("#compdef skiff"), "{}", zsh.stdout);
    let man = crate::harness::skiff(&["man"]).success();
    assert!(man.stdout.contains(".TH skiff") && man.stdout.contains("publish"), "{}", man.stdout);
    let help = crate::harness::skiff(&["publish", "--help"]).success();
    assert!(help.stdout.contains("Global options:") && help.stdout.contains("--endpoint-url"), "{}", help.stdout);
    assert!(help.stdout.contains("Examples:") && help.stdout.contains("skiff publish --dry-run"), "{}", help.stdout);
    let dry = crate::harness::skiff(&[
        "publish",
        crate::harness::example_dir().to_str().unwrap(),
        "--bucket",
        "nothing-here-yet",
        "--dry-run",
    ]);
    assert!(!dry.stderr.contains("deleted"), "a dry run never says deleted: {}", dry.stderr);
}

/// At a terminal a publish shows a bar, then lists the first 20 changes and how many more;
/// with `TERM=dumb` (or no terminal) every change is a plain line.
#[test]
fn a_terminal_gets_a_bar_and_a_short_list_and_a_dumb_one_plain_lines() {
    let files: Vec<(String, Vec<u8>)> =
        (0..25).map(|i| (format!("f{i:02}.css"), format!("f{i}{{}}").into_bytes())).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
    let site = Site::new(&refs);
    let bucket = Bucket::new("progress");
    let dir = site.path().to_str().unwrap().to_string();
    let args = ["publish", dir.as_str(), "--bucket", bucket.name.as_str()];
    let run = crate::harness::in_terminal(&crate::harness::command_at(&endpoint(), &args), "");
    assert_eq!(run.code, 0, "{}", run.stdout);
    let listed = run.stdout.matches("upload          ").count();
    assert_eq!(listed, 20, "the first 20 changes: {}", run.stdout);
    assert!(run.stdout.contains("and 5 more"), "then a count: {}", run.stdout);
    assert!(run.stdout.contains("B/s") && run.stdout.contains("eta"), "a bar in bytes: {}", run.stdout);
    assert!(run.stdout.contains(&format!("scanning {dir}")), "the phases: {}", run.stdout);
    assert!(run.stdout.contains("published 25 files"), "{}", run.stdout);

    for (i, (key, _)) in files.iter().enumerate() {
        site.write(key, format!("changed {i}").as_bytes());
    }
    let mut dumb = crate::harness::command_at(&endpoint(), &args);
    dumb.env("TERM", "dumb");
    let run = crate::harness::in_terminal(&dumb, "");
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("f24.css (changed"), "every change is a line: {}", run.stdout);
    assert!(!run.stdout.contains("more"), "{}", run.stdout);
}

/// Skew protection: with `[deploy] delete_after`, an object whose file left the site stays
/// (recorded in the manifest with when it left) until it has been gone that long.
#[test]
fn delete_after_keeps_removed_files_for_a_while_then_deletes_them() {
    let bucket = Bucket::new("delete-after");
    let site = Site::new(&[("index.html", b"<p>v1</p>"), ("assets/app.1.js", b"one()")]);
    let config = tempfile::tempdir().unwrap();
    std::fs::write(config.path().join("skiff.toml"), "[deploy]\ndelete_after = \"1h\"\n").unwrap();
    let dir = site.path().to_str().unwrap().to_string();
    let run = || {
        let mut command = crate::harness::command_at(&endpoint(), &["publish", &dir, "--bucket", &bucket.name]);
        crate::harness::finish(command.current_dir(config.path()).output().unwrap()).success()
    };
    run();
    site.remove("assets/app.1.js");
    site.write("assets/app.2.js", b"two()");
    site.write("index.html", b"<p>v2</p>");
    let kept = run();
    assert!(kept.stderr.contains("delete_after: kept 1 object whose file is gone"), "{}", kept.stderr);
    assert!(bucket.keys().contains(&"assets/app.1.js".to_string()), "old HTML still finds its script");
    let manifest = bucket.manifest("");
    let since = manifest["retired"]["assets/app.1.js"].as_i64().unwrap_or_else(|| panic!("recorded: {manifest}"));
    assert!(manifest["files"].get("assets/app.1.js").is_none());
    // A run within the hour keeps it, and keeps when it left.
    run();
    assert!(bucket.keys().contains(&"assets/app.1.js".to_string()));
    assert_eq!(bucket.manifest("")["retired"]["assets/app.1.js"], since);
    // Two hours later (the manifest says it left then), the next run deletes it.
    let mut manifest = bucket.manifest("");
    manifest["retired"]["assets/app.1.js"] = serde_json::json!(since - 7200);
    bucket.put(".skiff/manifest.json", manifest.to_string().as_bytes());
    run();
    assert!(!bucket.keys().contains(&"assets/app.1.js".to_string()), "deleted after an hour");
    assert!(bucket.manifest("").get("retired").is_none(), "and forgotten");
}

#[test]
fn a_large_listing_runs_as_parallel_ranges_and_finds_exactly_what_one_listing_would() {
    // 2,500 files: the manifest splits the listing at its 1,000th and 2,000th keys.
    let files: Vec<(String, Vec<u8>)> =
        (0..2500).map(|i| (format!("p/{i:05}.txt"), format!("file {i}").into_bytes())).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
    let site = Site::new(&refs);
    let bucket = Bucket::new("ranged");
    publish(&site, &bucket, &[]).success();
    let lists = |proxy: &Proxy| -> Vec<String> {
        proxy
            .requests()
            .into_iter()
            .filter(|r| r.method == "GET" && r.target.contains("list-type=2"))
            .map(|r| r.target)
            .collect()
    };
    // A no-op: the first page (read with the manifest) and one page per range after it.
    let proxy = Proxy::start(&endpoint());
    publish_via(&proxy, &site, &bucket, &[]).success();
    let noop = lists(&proxy);
    assert_eq!(noop.len(), 3, "{noop:?}");
    assert_eq!(noop.iter().filter(|t| t.contains("start-after=")).count(), 2, "{noop:?}");

    // Behind skiff's back: objects it never wrote, before, between and after the split keys
    // and beyond the manifest's last key; and objects of the site gone.
    for extra in ["a-first.txt", "p/00998x.txt", "p/00999.txt.bak", "p/01500x.txt", "p/01999 x.txt", "zz-last.txt"] {
        bucket.put(extra, b"stray");
    }
    // Keys at the ranges' ends stay: a range that lost its upper bound would miss them.
    for gone in ["p/00000.txt", "p/00998.txt", "p/02000.txt", "p/02499.txt"] {
        bucket.delete(gone);
    }
    let proxy = Proxy::start(&endpoint());
    let run = publish_via(&proxy, &site, &bucket, &["--dry-run", "--json"]).success();
    let seen = lists(&proxy);
    assert!(seen.iter().filter(|t| t.contains("start-after=")).count() >= 2, "ranges in parallel: {seen:?}");
    let actions = run.json()["actions"].as_array().unwrap().clone();
    let of = |op: &str| -> std::collections::BTreeSet<String> {
        actions.iter().filter(|a| a["op"] == op).map(|a| a["key"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(
        of("delete"),
        ["a-first.txt", "p/00998x.txt", "p/00999.txt.bak", "p/01500x.txt", "p/01999 x.txt", "zz-last.txt"]
            .map(String::from)
            .into(),
    );
    assert_eq!(of("upload"), ["p/00000.txt", "p/00998.txt", "p/02000.txt", "p/02499.txt"].map(String::from).into());
    assert_eq!(actions.len(), 10, "nothing else: {actions:?}");
}
