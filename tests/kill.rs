//! Kill tests: a publish SIGKILLed at many moments never leaves a broken site. In place, one
//! more publish makes the bucket equal the tree; atomic, the router always serves one
//! complete deploy, and the lock a killed run leaves behind does not block the next one.
//! `SKIFF_KILL_POINTS` sets the number of kill points (default 20; `scripts/kill-test` runs
//! a longer series).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::harness::proxy::{Moment, Proxy};
use crate::harness::{Bucket, Site, endpoint};

fn points() -> usize {
    std::env::var("SKIFF_KILL_POINTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20).max(2)
}

/// Change the tree a little (edits, an addition, a deletion), differently each round.
fn churn(root: &std::path::Path, round: usize) {
    std::fs::create_dir_all(root.join("assets")).unwrap();
    std::fs::create_dir_all(root.join("pages")).unwrap();
    for i in 0..5 {
        let n = (round * 7 + i * 3) % 40;
        std::fs::write(root.join(format!("assets/f{n:02}.css")), format!("/* round {round} */ .f{n}{{}}")).unwrap();
    }
    std::fs::write(root.join(format!("pages/p{round}.html")), format!("<p>{round}</p>")).unwrap();
    if round > 0 {
        let _ = std::fs::remove_file(root.join(format!("pages/p{}.html", round - 1)));
    }
    std::fs::write(root.join("index.html"), format!("<h1>round {round}</h1>")).unwrap();
}

fn tree(root: &std::path::Path) -> BTreeMap<String, Vec<u8>> {
    crate::harness::walk(root)
        .into_iter()
        .map(|path| {
            let key = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            let bytes = std::fs::read(&path).unwrap();
            (key, bytes)
        })
        .collect()
}

/// Start `args` through `proxy` in `dir`, SIGKILL it after `after`; returns whether it was
/// still running when killed.
fn kill_after(proxy: &Proxy, dir: Option<&std::path::Path>, args: &[&str], after: Duration) -> bool {
    let mut command = crate::harness::command_at(&proxy.endpoint, args);
    command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let mut child = command.spawn().unwrap();
    std::thread::sleep(after);
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    running
}

/// How long one publish through `proxy` takes.
fn timed(proxy: &Proxy, dir: Option<&std::path::Path>, args: &[&str]) -> Duration {
    let started = Instant::now();
    let mut command = crate::harness::command_at(&proxy.endpoint, args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let run = crate::harness::finish(command.output().unwrap());
    assert_eq!(run.code, 0, "{}", run.stderr);
    started.elapsed()
}

#[allow(clippy::print_stderr)]
#[test]
fn in_place_publishes_killed_at_any_moment_converge_on_the_next_run() {
    let rounds = points() / 2;
    let files: Vec<(String, Vec<u8>)> = (0..40).map(|i| (format!("assets/f{i:02}.css"), b"x".to_vec())).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
    let site = Site::new(&refs);
    let bucket = Bucket::new("kill-in-place");
    let dir = site.path().to_str().unwrap().to_string();
    let args = ["publish", dir.as_str(), "--bucket", bucket.name.as_str(), "--yes", "--concurrency", "4"];
    let slow = Proxy::start_with_delay(&endpoint(), Duration::from_millis(15));
    churn(site.path(), 0);
    crate::harness::skiff(&args).success();
    churn(site.path(), 1);
    let full = timed(&slow, None, &args);
    let mut killed = 0;
    for round in 2..=rounds + 1 {
        churn(site.path(), round);
        let after = full.mul_f64((round as f64 - 1.5) / rounds as f64);
        killed += usize::from(kill_after(&slow, None, &args, after));
        crate::harness::skiff(&args).success();
        let held: BTreeMap<String, Vec<u8>> = bucket
            .objects()
            .into_iter()
            .filter(|(k, _)| !k.starts_with(".skiff/"))
            .map(|(k, o)| (k, o.bytes))
            .collect();
        assert_eq!(held, tree(site.path()), "round {round} (killed after {after:?}): the bucket equals the tree");
    }
    eprintln!("in place: {rounds} kill points over {full:?}, {killed} while running");
    assert!(killed >= rounds / 2, "most kills landed while the publish ran ({killed} of {rounds})");
}

#[allow(clippy::print_stderr)]
#[test]
fn atomic_publishes_killed_at_any_moment_never_leave_a_broken_deploy_live() {
    let rounds = points() - points() / 2;
    let site = crate::provision::Site::new("kill-atomic");
    site.skiff(&["provision"]).success();
    let public = site.dir.path().join("public");
    std::fs::create_dir_all(public.join("assets")).unwrap();
    std::fs::create_dir_all(public.join("pages")).unwrap();
    for i in 0..40 {
        std::fs::write(public.join(format!("assets/f{i:02}.css")), b"x").unwrap();
    }
    churn(&public, 0);
    let args = ["publish", "--concurrency", "4", "--lock-timeout", "0s"];
    let slow = Proxy::start_with_delay(&endpoint(), Duration::from_millis(15));
    let full = timed(&slow, Some(site.dir.path()), &args);
    let mut published = vec![tree(&public)];
    let served = || crate::provision::served(&site);
    let mut killed = 0;
    for round in 1..=rounds {
        churn(&public, round);
        published.push(tree(&public));
        let after = full.mul_f64((round as f64 - 0.5) / rounds as f64);
        killed += usize::from(kill_after(&slow, Some(site.dir.path()), &args, after));
        let live = served();
        assert!(
            published.contains(&live),
            "round {round} (killed after {after:?}): the live deploy is one complete tree ({} files)",
            live.len()
        );
    }
    // The lock the last killed run may have left is stale (its process is gone): the next
    // publish takes it over at once and completes.
    site.skiff(&args).success();
    assert_eq!(served(), tree(&public));
    eprintln!("atomic: {rounds} kill points over {full:?}, {killed} while running");
    assert!(killed >= rounds / 2, "most kills landed while the publish ran ({killed} of {rounds})");
}

// ---- kills at every request boundary ----

/// A page that links the `assets` (absolute paths).
fn page(title: &str, assets: &[&str]) -> Vec<u8> {
    let links = assets.iter().fold(String::new(), |mut text, a| {
        text.push_str(&format!("<link href=\"{a}\">"));
        text
    });
    format!("<html><head>{links}</head><body>{title}</body></html>").into_bytes()
}

/// Lowercase hex SHA-256, as manifests write it.
fn sha256_hex(bytes: &[u8]) -> String {
    <sha2::Sha256 as sha2::Digest>::digest(bytes).iter().fold(String::new(), |mut hex, b| {
        hex.push_str(&format!("{b:02x}"));
        hex
    })
}

/// The assets a page links (`href="/…"`, `src="/…"`), as keys.
fn linked(html: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(html);
    let mut out = Vec::new();
    for attribute in ["href=\"/", "src=\"/"] {
        for part in text.split(attribute).skip(1) {
            out.push(part.split('"').next().unwrap_or_default().to_string());
        }
    }
    out
}

/// Run `args` with the proxy set to SIGKILL it at request `at`; whether it was killed.
fn killed_at(proxy: &Proxy, dir: Option<&std::path::Path>, args: &[&str], at: usize, moment: Moment) -> bool {
    let slot = proxy.kill_at(at, moment);
    let mut command = crate::harness::command_at(&proxy.endpoint, args);
    command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let mut child = command.spawn().unwrap();
    slot.store(child.id(), std::sync::atomic::Ordering::SeqCst);
    let status = child.wait().unwrap();
    status.code().is_none()
}

/// In place, a publish that uploads, updates headers, writes the manifest and deletes,
/// SIGKILLed at every request it makes, before the request is forwarded and after S3
/// applied it. After each kill: wherever the manifest vouches for an object (same ETag) it
/// has the object's hash, and every page in the bucket has its assets; the next publish
/// makes the bucket equal the tree byte for byte.
#[allow(clippy::print_stderr)]
#[test]
fn in_place_publish_killed_at_every_request_boundary_keeps_its_promises() {
    let old = Site::new(&[
        ("index.html", &page("home", &["/assets/a.css", "/assets/b.js"])),
        ("about/index.html", &page("about", &["/assets/a.css", "/assets/old.png"])),
        ("assets/a.css", b"a{color:red}"),
        ("assets/b.js", b"b()"),
        ("assets/old.png", b"png"),
        ("404.html", b"<p>gone</p>"),
    ]);
    let new = Site::new(&[
        ("index.html", &page("home, new", &["/assets/a.css", "/assets/b.js", "/assets/c.css"])),
        ("about/index.html", &page("about", &["/assets/a.css"])),
        ("assets/a.css", b"a{color:blue}"),
        ("assets/b.js", b"b()"),
        ("assets/c.css", b"c{}"),
        ("404.html", b"<p>gone</p>"),
    ]);
    // The new tree's scripts get other headers: an update of metadata, not an upload.
    let rules = new.path().parent().unwrap().join(format!("kill-rules-{}.toml", std::process::id()));
    std::fs::write(&rules, "[[rules]]\nmatch = \"**/*.js\"\ncache_control = \"public, max-age=60\"\n").unwrap();
    let bucket = Bucket::new("kill-boundaries");
    let publish_old =
        ["publish", old.path().to_str().unwrap(), "--bucket", &bucket.name, "--yes", "--concurrency", "1"];
    let publish_new = [
        "-c",
        rules.to_str().unwrap(),
        "publish",
        new.path().to_str().unwrap(),
        "--bucket",
        &bucket.name,
        "--yes",
        "--concurrency",
        "1",
    ];
    let held = || -> BTreeMap<String, Vec<u8>> {
        bucket.objects().into_iter().filter(|(k, _)| !k.starts_with(".skiff/")).map(|(k, o)| (k, o.bytes)).collect()
    };
    crate::harness::skiff(&publish_old).success();
    let counting = Proxy::start(&endpoint());
    crate::harness::skiff_at(&counting.endpoint, &publish_new, None).success();
    let boundaries = counting.requests().len();
    assert!(boundaries >= 6, "the flow reads, uploads, updates, writes the manifest and deletes: {boundaries}");

    let mut kills = 0;
    for at in 1..=boundaries {
        for moment in [Moment::Before, Moment::After] {
            crate::harness::skiff(&publish_old).success();
            assert_eq!(held(), tree(old.path()));
            let proxy = Proxy::start(&endpoint());
            kills += usize::from(killed_at(&proxy, None, &publish_new, at, moment));
            let context = format!("killed at request {at} of {boundaries} ({moment:?})");
            let objects = bucket.objects();
            if let Some(manifest) = objects.get(".skiff/manifest.json") {
                let manifest: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
                for (key, entry) in manifest["files"].as_object().unwrap() {
                    let Some(object) = objects.get(key) else { continue };
                    if entry["etag"].as_str() == Some(object.etag.as_str()) {
                        assert_eq!(
                            entry["sha256"].as_str(),
                            Some(sha256_hex(&object.bytes).as_str()),
                            "{context}: `{key}`"
                        );
                    }
                }
            }
            for (key, object) in objects.iter().filter(|(k, _)| k.to_ascii_lowercase().ends_with(".html")) {
                for asset in linked(&object.bytes) {
                    assert!(objects.contains_key(&asset), "{context}: `{key}` links `{asset}`, which is gone");
                }
            }
            crate::harness::skiff(&publish_new).success();
            assert_eq!(held(), tree(new.path()), "{context}: the next publish converges");
            assert_eq!(bucket.objects()["assets/b.js"].cache_control.as_deref(), Some("public, max-age=60"));
        }
    }
    eprintln!("in place: {boundaries} request boundaries × 2 moments, {kills} runs killed");
    assert!(kills >= boundaries, "the kills landed ({kills} of {})", 2 * boundaries);
}

/// Atomic, a publish (uploads, copies, the deploy manifest, the KVS switch, the state, the
/// 404 copy, the retention deletes), SIGKILLed at every request it makes, before and after.
/// After each kill the router's KVS names a complete deploy (every file of its manifest
/// there, byte for byte); the next publish takes the dead run's lock over at once, repairs
/// a state.json left behind the KVS (and says so), and makes the new tree live.
#[allow(clippy::print_stderr)]
#[test]
fn atomic_publish_killed_at_every_request_boundary_keeps_a_complete_deploy_live() {
    let site = crate::provision::Site::new("kill-boundaries-atomic");
    site.configure("\n[deploy]\nkeep = 1\n");
    site.skiff(&["provision"]).success();
    let public = site.dir.path().join("public");
    let write = |round: usize| {
        std::fs::create_dir_all(public.join("assets")).unwrap();
        std::fs::write(public.join("index.html"), page(&format!("round {round}"), &["/assets/a.css"])).unwrap();
        std::fs::write(public.join("assets/a.css"), format!("a{{--round:{}}}", round % 2)).unwrap();
        std::fs::write(public.join("assets/same.css"), b"same{}").unwrap();
        std::fs::write(public.join("404.html"), b"<p>gone</p>").unwrap();
    };
    let args = ["publish", "--yes", "--concurrency", "1", "--lock-timeout", "0s"];
    write(0);
    site.skiff(&args).success();
    write(1);
    let counting = Proxy::start(&endpoint());
    site.skiff_at(&counting.endpoint, &args).success();
    let boundaries = counting.requests().len();
    let complete = |context: &str| {
        let served = crate::provision::served(&site);
        let arn = site.state()["resources"]["kvs_arn"].as_str().unwrap().to_string();
        let id = crate::provision::kvs_contents()[&arn]["production"].as_str().unwrap().to_string();
        let manifest =
            crate::harness::Bucket { name: site.bucket.clone(), client: crate::harness::client_for(&endpoint()) }
                .objects()
                .remove(&format!("_deploys/production/{id}.json"))
                .unwrap_or_else(|| panic!("{context}: the live deploy {id} has a manifest"));
        let manifest: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
        for (key, entry) in manifest["files"].as_object().unwrap() {
            let bytes = served.get(key).unwrap_or_else(|| panic!("{context}: `{key}` of the live deploy is missing"));
            assert_eq!(entry["sha256"].as_str(), Some(sha256_hex(bytes).as_str()), "{context}: `{key}`");
        }
    };
    let mut kills = 0;
    let mut disagreements = 0;
    let mut round = 2;
    for at in 1..=boundaries {
        for moment in [Moment::Before, Moment::After] {
            write(round);
            round += 1;
            let proxy = Proxy::start(&endpoint());
            kills += usize::from(killed_at(&proxy, Some(site.dir.path()), &args, at, moment));
            let context = format!("killed at request {at} of {boundaries} ({moment:?})");
            complete(&context);
            let arn = site.state()["resources"]["kvs_arn"].as_str().unwrap().to_string();
            let routed = crate::provision::kvs_contents()[&arn]["production"].clone();
            let disagreed = site.state()["targets"]["production"]["live"] != routed;
            let next = site.skiff(&args).success();
            if disagreed {
                disagreements += 1;
                assert!(next.stderr.contains("now says"), "{context}: the repair is said: {}", next.stderr);
            }
            let routed = crate::provision::kvs_contents()[&arn]["production"].clone();
            assert_eq!(
                site.state()["targets"]["production"]["live"],
                routed,
                "{context}: state.json and the KVS agree"
            );
            assert_eq!(crate::provision::served(&site), tree(&public), "{context}: the next publish goes live");
        }
    }
    eprintln!(
        "atomic: {boundaries} request boundaries × 2 moments, {kills} runs killed, {disagreements} left state.json behind the KVS"
    );
    assert!(disagreements > 0, "some kill fell between the KVS write and the state write");
    assert!(kills >= boundaries, "the kills landed ({kills} of {})", 2 * boundaries);
}
