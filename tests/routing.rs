//! Routing end to end: `skiff serve` (the router's Rust twin over a local tree), `publish
//! --verify` through it, and what a publish writes for clean URLs, `_redirects` and
//! `_headers` in place and in atomic mode.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use crate::harness::{Bucket, Site, command_at, endpoint, finish, skiff};
use crate::provision::{Site as Provisioned, kvs_contents};

/// `skiff serve DIR` on a free port, until dropped.
struct Server {
    child: Option<Child>,
    url: String,
}

impl Server {
    fn start(dir: &std::path::Path, config: Option<&str>) -> Self {
        let mut args =
            vec!["serve".to_string(), dir.to_str().unwrap().to_string(), "--port".into(), "0".into(), "--json".into()];
        if let Some(config) = config {
            args.extend(["-c".to_string(), config.to_string()]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut command: Command = command_at(&endpoint(), &refs);
        command.env("SKIFF_POLL_INTERVAL_MS", "50");
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        // The JSON document, however it is laid out.
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut text = String::new();
        let doc: serde_json::Value = loop {
            let read = reader.read_line(&mut text).unwrap();
            assert!(read > 0, "serve ended before it printed its URL: `{text}`");
            if let Ok(doc) = serde_json::from_str(&text) {
                break doc;
            }
        };
        Self { child: Some(child), url: doc["url"].as_str().unwrap().trim_end_matches('/').to_string() }
    }

    fn get(&self, path: &str) -> Answer {
        get(&self.url, path)
    }

    fn stop(mut self) -> crate::harness::Run {
        let child = self.child.take().unwrap();
        Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
        finish(child.wait_with_output().unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A plain HTTP/1.1 GET (no redirects followed).
fn get(base: &str, path: &str) -> Answer {
    let address = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer { status, headers, body: raw[split + 4..].to_vec() }
}

/// A skiff.toml of its own (kept while the guard lives), and its path.
fn write_config(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("skiff.toml");
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap().to_string();
    (dir, path)
}

/// A Next.js-style export with a `_redirects` and a `_headers`.
fn routed_site() -> Site {
    Site::new(&[
        ("index.html", b"<h1>home</h1>"),
        ("about.html", b"<h1>about</h1>"),
        ("blog/first.html", b"<h1>first</h1>"),
        ("docs/index.html", b"<h1>docs</h1>"),
        ("404.html", b"<h1>missing</h1>"),
        ("_next/static/app.js", b"console.log(1)"),
        (
            "_redirects",
            b"# moved\n/old /about 301\n/blog/:slug/amp /blog/:slug 302\n/news/* /blog/:splat 308\n/team /about 301\n",
        ),
        ("_headers", b"/_next/static/*\n  Cache-Control: public, max-age=31536000, immutable\n"),
    ])
}

#[test]
fn serve_routes_as_the_edge_does_and_reloads() {
    let site = routed_site();
    let (_guard, config) = write_config("[site]\nclean_urls = true\n");
    let server = Server::start(site.path(), Some(&config));

    let page = server.get("/about");
    assert_eq!((page.status, page.text().as_str()), (200, "<h1>about</h1>"));
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let html = server.get("/about.html?x=1");
    assert_eq!((html.status, html.header("location")), (301, Some("/about?x=1")));
    assert_eq!(server.get("/blog/first").text(), "<h1>first</h1>");
    let folder = server.get("/docs");
    assert_eq!((folder.status, folder.header("location")), (301, Some("/docs/")));
    assert_eq!(server.get("/docs/").text(), "<h1>docs</h1>");
    let old = server.get("/old?ref=a");
    assert_eq!((old.status, old.header("location")), (301, Some("/about?ref=a")));
    let amp = server.get("/blog/first/amp");
    assert_eq!((amp.status, amp.header("location")), (302, Some("/blog/first")));
    let news = server.get("/news/2024/x");
    assert_eq!((news.status, news.header("location")), (308, Some("/blog/2024/x")));
    let asset = server.get("/_next/static/app.js");
    assert_eq!(asset.header("cache-control"), Some("public, max-age=31536000, immutable"));
    let missing = server.get("/nothing/here.css");
    assert_eq!((missing.status, missing.text().as_str()), (404, "<h1>missing</h1>"));
    for hidden in ["/_redirects", "/_headers", "/../skiff.toml", "/%2e%2e/skiff.toml"] {
        assert_eq!(server.get(hidden).status, 404, "{hidden}");
    }

    // A change on disk is served without a restart; a broken _redirects keeps the last good routing.
    site.write("_redirects", b"/old /docs/ 308\n");
    crate::harness::wait_until("serve reloads _redirects", || server.get("/old").header("location") == Some("/docs/"));
    site.write("_redirects", b"/old /docs/ 404\n");
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_eq!(server.get("/old").header("location"), Some("/docs/"));
    let run = server.stop();
    assert!(run.stderr.contains("not reloaded:") && run.stderr.contains("_redirects:1: 404"), "{}", run.stderr);
}

#[test]
fn serve_answers_a_single_page_app_with_its_root_page() {
    let site = Site::new(&[("index.html", b"<div id=app>"), ("assets/app.js", b"app()")]);
    let (_guard, config) = write_config("[site]\nspa = true\n");
    let server = Server::start(site.path(), Some(&config));
    for deep in ["/settings/profile", "/settings/profile/", "/x"] {
        let answer = server.get(deep);
        assert_eq!((answer.status, answer.text().as_str()), (200, "<div id=app>"), "{deep}");
    }
    assert_eq!(server.get("/assets/app.js").text(), "app()");
    assert_eq!(server.get("/assets/missing.js").status, 404, "a missing file with an extension stays missing");
}

#[test]
fn a_bad_routing_file_is_refused_naming_its_line_and_nothing_is_written() {
    let bucket = Bucket::new("badroute");
    let site =
        Site::new(&[("index.html", b"x"), ("_headers", b"/*\n  Cache-Control: no-cache\n  X-Frame-Options: DENY\n")]);
    skiff(&["publish", site.path().to_str().unwrap(), "--bucket", &bucket.name])
        .failure(2, &["_headers:3: `X-Frame-Options` is not supported", "response headers policy"]);
    assert!(bucket.keys().is_empty());
    site.write("_headers", b"/*\n  Cache-Control: no-cache\n");
    site.write("_redirects", b"/a /b 302 Country=us\n");
    skiff(&["publish", site.path().to_str().unwrap(), "--bucket", &bucket.name])
        .failure(2, &["_redirects:1: `Country=us`: conditions (country, language, role, cookie) are not supported"]);
    assert!(bucket.keys().is_empty());
}

#[test]
fn in_place_clean_urls_store_the_page_at_its_clean_key_and_redirects_are_refused() {
    let bucket = Bucket::new("cleanip");
    let site = Site::new(&[
        ("index.html", b"home"),
        ("about.html", b"about"),
        ("_headers", b"/about\n  Cache-Control: no-cache\n"),
    ]);
    let (_guard, config) = write_config("[site]\nclean_urls = true\n");
    skiff(&["publish", site.path().to_str().unwrap(), "--bucket", &bucket.name, "-c", &config]).success();
    let objects = bucket.objects();
    assert_eq!(
        objects.keys().map(String::as_str).collect::<Vec<_>>(),
        [".skiff/manifest.json", "about", "about.html", "index.html"]
    );
    assert_eq!(objects["about"].bytes, b"about");
    assert_eq!(objects["about"].content_type.as_deref(), Some("text/html; charset=utf-8"));
    assert_eq!(objects["about"].cache_control.as_deref(), Some("no-cache"), "_headers applies to the clean key too");

    site.write("_redirects", b"/old /about\n");
    skiff(&["publish", site.path().to_str().unwrap(), "--bucket", &bucket.name, "-c", &config])
        .failure(1, &["_redirects:1: redirects need skiff's router", "skiff provision"]);
    assert_eq!(bucket.objects()["about"].bytes, b"about", "nothing changed");
}

#[test]
fn verify_passes_through_a_server_of_the_published_tree_and_reports_one_that_differs() {
    let bucket = Bucket::new("verify");
    let site =
        Site::new(&[("index.html", b"home"), ("docs/index.html", b"docs"), ("a.css", b"a{}"), ("gone.txt", b"bye")]);
    let same = Server::start(site.path(), None);
    let (_guard, config) = write_config(&format!("[site]\nurl = \"{}/\"\n", same.url));
    skiff(&["publish", site.path().to_str().unwrap(), "--bucket", &bucket.name, "-c", &config]).success();
    site.write("a.css", b"a{color:red}");
    site.remove("gone.txt");
    std::fs::write(site.path().join("new.txt"), b"new").unwrap();
    let run = skiff(&["publish", site.path().to_str().unwrap(), "--bucket", &bucket.name, "-c", &config, "--verify"])
        .success();
    assert!(run.stderr.contains("verify: all 3 URLs serve what was published"), "{}", run.stderr);
    drop(same);

    // A server of another tree: the changed file differs, the deleted one is still there.
    let other = Site::new(&[("index.html", b"home"), ("a.css", b"a{}"), ("gone.txt", b"bye"), ("new.txt", b"new")]);
    let stale = Server::start(other.path(), None);
    let (_guard2, config) = write_config(&format!("[site]\nurl = \"{}/\"\n", stale.url));
    site.write("a.css", b"a{color:blue}");
    site.write("gone.txt", b"back");
    site.remove("new.txt");
    let run = skiff(&[
        "publish",
        site.path().to_str().unwrap(),
        "--bucket",
        &bucket.name,
        "-c",
        &config,
        "--verify-timeout",
        "1s",
    ])
    .failure(1, &["verify: 3 of 3 still not serving what was published"]);
    for line in [
        "/a.css: answers 200 with other bytes",
        "/gone.txt: answers 200 with other bytes",
        "/new.txt: answers 200; it was deleted",
    ] {
        assert!(run.stderr.contains(line), "{line}\n{}", run.stderr);
    }
    assert_eq!(bucket.objects()["a.css"].bytes, b"a{color:blue}", "the publish itself went through");
}

#[test]
fn an_atomic_deploy_carries_its_routing_and_takes_it_along_when_it_expires() {
    let site = Provisioned::new("routing");
    let config = site.dir.path().join("skiff.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace("[site]\n", "[site]\nclean_urls = true\n");
    std::fs::write(&config, format!("{text}\n[deploy]\nkeep = 1\n")).unwrap();
    site.skiff(&["provision"]).success();
    let public = site.dir.path().join("public");
    std::fs::create_dir_all(public.join("blog")).unwrap();
    for (path, body) in [
        ("index.html", "home"),
        ("about.html", "about"),
        ("blog/post.html", "post"),
        ("_redirects", "/team /about 301\n/blog/:slug/amp /blog/:slug 302\n/about /elsewhere 301\n"),
    ] {
        std::fs::write(public.join(path), body).unwrap();
    }
    let run = site.skiff(&["publish"]).success();
    assert!(run.stderr.contains("`/about` never applies: the site has a file there"), "{}", run.stderr);
    let state = site.state();
    let first = state["targets"]["production"]["live"].as_str().unwrap().to_string();
    let arn = state["resources"]["kvs_arn"].as_str().unwrap().to_string();
    let kvs = kvs_contents()[&arn].clone();
    let table: serde_json::Value = serde_json::from_str(kvs[&format!("routes:{first}")].as_str().unwrap()).unwrap();
    assert_eq!(table["c"], 1);
    assert_eq!(table["p"], serde_json::json!([["/blog/:slug/amp", "/blog/:slug", 302]]));
    assert_eq!(kvs[&format!("r:{first}:/team")], "301 /about");
    assert_eq!(kvs[&format!("r:{first}:/about")], "-");
    assert!(kvs.as_object().unwrap().keys().any(|k| k.starts_with(&format!("i:{first}:"))));

    let objects = crate::harness::client_for(&endpoint());
    let prefix = format!("_deploys/production/{first}/");
    let keys: Vec<String> = crate::harness::runtime().block_on(async {
        let page = objects.list_objects_v2().bucket(&site.bucket).prefix(&prefix).send().await.unwrap();
        page.contents().iter().map(|o| o.key().unwrap().trim_start_matches(&prefix).to_string()).collect()
    });
    assert_eq!(
        keys,
        ["about", "about.html", "blog/post", "blog/post.html", "index.html"],
        "no _redirects, clean copies"
    );

    // Two more deploys with keep = 1: the first expires, and its routing keys with it.
    // (The second a full deploy, so that no deploy kept stands on the first.)
    std::fs::write(public.join("index.html"), "home 2").unwrap();
    site.skiff(&["publish", "--force"]).success();
    std::fs::write(public.join("index.html"), "home 3").unwrap();
    site.skiff(&["publish"]).success();
    let kvs = kvs_contents()[&arn].clone();
    let left: Vec<&String> = kvs.as_object().unwrap().keys().filter(|k| k.contains(&first)).collect();
    assert!(left.is_empty(), "{left:?}");
}

/// What the router (router/router.js, run by node as CloudFront would) answers for `uri` on
/// production, over the store as the double holds it.
fn edge(site: &Provisioned, uri: &str, cookie: Option<&str>, random: f64) -> serde_json::Value {
    let arn = site.state()["resources"]["kvs_arn"].as_str().unwrap().to_string();
    let mut cookies = serde_json::Map::new();
    if let Some(cohort) = cookie {
        cookies.insert("skiff-canary".into(), cohort.into());
    }
    let input = serde_json::json!({
        "kvs": kvs_contents()[&arn].clone(),
        "host": site.domain,
        "uri": uri,
        "cookies": cookies,
        "random": random,
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/harness/edge.mjs");
    let mut child = Command::new("node").arg(script).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "node failed");
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn a_delta_deploy_is_served_from_itself_and_its_base_through_the_router() {
    let site = Provisioned::new("delta");
    site.skiff(&["provision"]).success();
    let public = site.dir.path().join("public");
    std::fs::create_dir_all(public.join("a")).unwrap();
    std::fs::create_dir_all(public.join("about")).unwrap();
    for i in 0..150 {
        std::fs::write(public.join(format!("a/{i}.css")), format!("a{{n:{i}}}")).unwrap();
    }
    for (path, body) in [("index.html", "home"), ("about/index.html", "about"), ("404.html", "gone")] {
        std::fs::write(public.join(path), body).unwrap();
    }
    let publish = |args: &[&str]| site.skiff(&[&["publish", "--json"], args].concat()).success();
    let id = |run: &crate::harness::Run| run.json()["deploy_id"].as_str().unwrap().to_string();
    let first = id(&publish(&[]));

    std::fs::write(public.join("about/index.html"), "about us").unwrap();
    std::fs::remove_file(public.join("a/0.css")).unwrap();
    let run = publish(&[]);
    let second = id(&run);
    assert_eq!(
        (run.json()["summary"]["uploaded"].as_u64(), run.json()["summary"]["copied"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(
        run.json()["invalidation"]["paths"],
        serde_json::json!(["/_skiff/404.html"]),
        "the 404 page, from the base"
    );
    let at = |uri: &str| edge(&site, uri, None, 0.5)["uri"].as_str().unwrap_or_default().to_string();
    assert_eq!(at("/about/"), format!("/_deploys/production/{second}/about/index.html"));
    assert_eq!(at("/a/1.css"), format!("/_deploys/production/{first}/a/1.css"));
    assert_eq!(at("/"), format!("/_deploys/production/{first}/index.html"));
    // A file deleted since the base is looked up where the deploy holds nothing.
    assert_eq!(at("/a/0.css"), format!("/_deploys/production/{second}/a/0.css"));
    let s3 = crate::harness::client_for(&endpoint());
    let gone = crate::harness::runtime()
        .block_on(s3.head_object().bucket(&site.bucket).key(format!("_deploys/production/{second}/a/0.css")).send());
    assert!(gone.is_err(), "nothing there: the origin answers 404");

    // More than a fifth of the site changed: a full deploy, the new base.
    for i in 1..150 {
        std::fs::write(public.join(format!("a/{i}.css")), format!("b{{n:{i}}}")).unwrap();
    }
    let run = publish(&[]);
    assert!(run.stderr.contains("a full deploy (a new base)"), "{}", run.stderr);
    let third = id(&run);
    assert_eq!(run.json()["summary"]["copied"].as_u64(), Some(3), "index, about and 404 copied");
    assert_eq!(at("/"), format!("/_deploys/production/{third}/index.html"));
    let state = site.state();
    let record = state["targets"]["production"]["deploys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == third.as_str())
        .unwrap()
        .clone();
    assert!(record.get("base").is_none(), "{record}");

    // A router that predates delta deploys (a site provisioned by an older skiff) gets full
    // deploys, and the hint to update it.
    let mut state = site.state();
    state["resources"].as_object_mut().unwrap().remove("router");
    crate::harness::runtime()
        .block_on(
            s3.put_object()
                .bucket(&site.bucket)
                .key("_skiff/state.json")
                .body(state.to_string().into_bytes().into())
                .send(),
        )
        .unwrap();
    std::fs::write(public.join("index.html"), "home 2").unwrap();
    let run = publish(&[]);
    assert!(run.stderr.contains("predates delta deploys") && run.stderr.contains("skiff provision"), "{}", run.stderr);
    assert_eq!(run.json()["summary"]["copied"].as_u64(), Some(151));
    // Provision updates it; delta deploys again.
    site.skiff(&["provision"]).success();
    assert_eq!(site.state()["resources"]["router"], 2);
    std::fs::write(public.join("index.html"), "home 3").unwrap();
    assert_eq!(publish(&[]).json()["summary"]["copied"].as_u64(), Some(0));
}

fn served_id(answer: &serde_json::Value) -> String {
    let uri = answer["uri"].as_str().unwrap_or_else(|| panic!("not forwarded: {answer}"));
    uri.trim_start_matches("/_deploys/production/").split('/').next().unwrap().to_string()
}

#[test]
fn a_canary_serves_its_share_until_it_is_promoted_or_ended() {
    let site = Provisioned::new("canary");
    site.skiff(&["provision"]).success();
    let public = site.dir.path().join("public");
    std::fs::create_dir_all(&public).unwrap();
    let publish = |body: &str, extra: &[&str]| -> (String, crate::harness::Run) {
        std::fs::write(public.join("index.html"), body).unwrap();
        let run = site.skiff(&[&["publish", "--json"][..], extra].concat()).success();
        (run.json()["deploy_id"].as_str().unwrap().to_string(), run)
    };
    let (first, _) = publish("one", &[]);
    let (second, run) = publish("two", &["--canary", "10"]);
    assert!(run.stderr.contains(&format!("deploy {second} serves 10 % of production's visitors")), "{}", run.stderr);
    let arn = site.state()["resources"]["kvs_arn"].as_str().unwrap().to_string();
    let store = kvs_contents()[&arn].clone();
    assert_eq!(
        (store["production"].as_str(), store["canary"].as_str()),
        (Some(first.as_str()), Some(&*format!("{second} 10")))
    );

    // Visitors: by their cookie's cohort, else by the dice, which the cookie then keeps.
    assert_eq!(served_id(&edge(&site, "/", Some("5"), 0.5)), second);
    assert_eq!(served_id(&edge(&site, "/", Some("50"), 0.01)), first);
    let newcomer = edge(&site, "/", None, 0.07);
    assert_eq!(served_id(&newcomer), second);
    assert_eq!(newcomer["headers"]["x-skiff-cohort"]["value"], "7");
    assert_eq!(served_id(&edge(&site, "/", None, 0.5)), first);

    let deploys = site.skiff(&["deploys"]).success();
    assert!(
        deploys.stdout.lines().any(|l| l.contains(&second) && l.contains("canary: 10 % of visitors")),
        "{}",
        deploys.stdout
    );
    let status = site.skiff(&["status"]).success();
    assert!(status.stdout.contains(&format!("canary        {second} (10 % of visitors)")), "{}", status.stdout);

    // Promote: production for everyone, the canary key gone.
    site.skiff(&["promote"]).success();
    let store = kvs_contents()[&arn].clone();
    assert_eq!(store["production"].as_str(), Some(second.as_str()));
    assert!(store.get("canary").is_none());
    assert!(site.state()["targets"]["production"].get("canary").is_none());
    assert_eq!(served_id(&edge(&site, "/", Some("5"), 0.5)), second);
    site.skiff(&["promote"]).failure(1, &["production has no canary to promote", "--canary"]);

    // Rollback ends a canary and leaves production as it was.
    let (third, _) = publish("three", &["--canary", "50"]);
    let run = site.skiff(&["rollback"]).success();
    assert!(run.stderr.contains(&format!("the canary of deploy {third} (50 %) ended")), "{}", run.stderr);
    let store = kvs_contents()[&arn].clone();
    assert_eq!(store["production"].as_str(), Some(second.as_str()));
    assert!(store.get("canary").is_none());

    // A plain publish during a canary ends it in the same write that switches production.
    let (fourth, _) = publish("four", &["--canary", "20"]);
    let (fifth, run) = publish("five", &[]);
    assert!(run.stderr.contains(&format!("the canary of deploy {fourth} (20 %) ended")), "{}", run.stderr);
    let store = kvs_contents()[&arn].clone();
    assert_eq!(store["production"].as_str(), Some(fifth.as_str()));
    assert!(store.get("canary").is_none());

    site.skiff(&["publish", "--canary", "10", "--preview", "feat"]).failure(2, &["--canary", "--preview"]);
    site.skiff(&["publish", "--canary", "100"]).failure(2, &["100"]);
}

#[test]
fn in_place_spa_says_what_the_distribution_lacks_until_its_error_responses_serve_the_root_page() {
    use aws_sdk_cloudfront::types::{CustomErrorResponse, CustomErrorResponses};
    let bucket = Bucket::new("spa-in-place");
    let site = Site::new(&[("index.html", b"<div id=app>")]);
    let (_guard, config) = write_config("[site]\nspa = true\nprefix = \"app/\"\n");
    let distribution = crate::harness::Distribution::new(&bucket.name, "/app", true);
    let publish = || {
        skiff(&[
            "publish",
            site.path().to_str().unwrap(),
            "--bucket",
            &bucket.name,
            "-c",
            &config,
            "--distribution-id",
            &distribution.id,
        ])
        .success()
    };
    let run = publish();
    assert!(
        run.stderr
            .contains(&format!("distribution {} does not answer missing paths with /index.html", distribution.id))
            && run.stderr.contains("response code 200"),
        "{}",
        run.stderr
    );

    // Set them as the hint says (the origin path /app maps the prefix away).
    crate::harness::runtime().block_on(async {
        let got = distribution.client.get_distribution_config().id(&distribution.id).send().await.unwrap();
        let mut config = got.distribution_config().unwrap().clone();
        let errors = [403, 404]
            .map(|code| {
                CustomErrorResponse::builder()
                    .error_code(code)
                    .response_page_path("/index.html")
                    .response_code("200")
                    .error_caching_min_ttl(10)
                    .build()
                    .unwrap()
            })
            .to_vec();
        config.custom_error_responses =
            Some(CustomErrorResponses::builder().quantity(2).set_items(Some(errors)).build().unwrap());
        distribution
            .client
            .update_distribution()
            .id(&distribution.id)
            .if_match(got.e_tag().unwrap())
            .distribution_config(config)
            .send()
            .await
            .unwrap();
    });
    site.write("index.html", b"<div id=app2>");
    let run = publish();
    assert!(!run.stderr.contains("`[site] spa`"), "{}", run.stderr);
}
