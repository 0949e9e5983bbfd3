//! Reliability under faults: a seeded fault-injecting proxy between skiff and the emulator
//! (500, 503 SlowDown, resets before and after the request is applied, truncated responses,
//! latency). A publish either succeeds with the bucket equal to the local tree, byte for
//! byte, or fails with a message and leaves the live site as it was; re-running converges.

use std::collections::BTreeMap;

use crate::harness::proxy::{Kind, Proxy};
use crate::harness::{Bucket, Site, endpoint};

/// Files of a small site: assets, pages, a nested directory.
fn files() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = (0..24)
        .map(|i| (format!("assets/f{i:02}.css"), format!("/* {i} */ body{{margin:{i}px}}").into_bytes()))
        .collect();
    files.extend((0..8).map(|i| (format!("docs/page-{i}/index.html"), format!("<h1>page {i}</h1>").into_bytes())));
    files.push(("index.html".into(), b"<h1>home</h1>".to_vec()));
    files.push(("404.html".into(), b"<h1>missing</h1>".to_vec()));
    files
}

/// Run `args` through `proxy` until it succeeds (at most `tries` times); every failure must
/// be exit 1 with an `error:` message, and `check` must hold after each one. The first run
/// gets one attempt per request (`AWS_MAX_ATTEMPTS=1`), so a fault outlasts the retries and
/// the failure path runs; the later ones get four. Returns the runs and the failed runs.
fn converge(
    proxy: &Proxy,
    tries: usize,
    dir: Option<&std::path::Path>,
    args: &[&str],
    mut check: impl FnMut(),
) -> (usize, usize) {
    for attempt in 1..=tries {
        let mut command = crate::harness::command_at(&proxy.endpoint, args);
        let attempts = if attempt == 1 { "1" } else { "4" };
        command.env("AWS_MAX_ATTEMPTS", attempts).env("SKIFF_POLL_INTERVAL_MS", "50");
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        let run = crate::harness::finish(command.output().unwrap());
        if run.code == 0 {
            return (attempt, attempt - 1);
        }
        assert_eq!(run.code, 1, "a failure under faults exits 1:\n{}", run.stderr);
        assert!(run.stderr.contains("error:"), "a failure says what went wrong:\n{}", run.stderr);
        check();
    }
    panic!("no success in {tries} runs under faults");
}

/// The figures go to the test log (`--nocapture`), for the record. Latency is injected
/// but is not a fault.
#[allow(clippy::print_stderr)]
fn report(what: &str, proxy: &Proxy, attempts: usize, failed: usize) {
    let (injected, requests) = proxy.calm();
    let total: usize = injected.iter().filter(|(kind, _)| **kind != Kind::Latency).map(|(_, n)| n).sum();
    eprintln!(
        "chaos: {what}: {total} faults in {requests} requests over {attempts} runs, {failed} failed and held: {injected:?}"
    );
    assert!(total > 0, "the proxy injected no fault");
}

#[test]
fn in_place_publishes_under_ten_percent_faults_converge_byte_for_byte() {
    let mut failures = 0;
    for seed in [11, 23, 37] {
        let bucket = Bucket::new(&format!("chaos-inplace-{seed}"));
        let contents = files();
        let refs: Vec<(&str, &[u8])> = contents.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        let site = Site::new(&refs);
        let proxy = Proxy::start(&endpoint());
        proxy.chaos(seed, 10);
        let dir = site.path().to_str().unwrap().to_string();
        let args = ["publish", dir.as_str(), "--bucket", bucket.name.as_str(), "--yes"];
        let check = || crate::harness::invariants::in_place(&bucket, &format!("seed {seed}"));
        let (attempts, failed) = converge(&proxy, 8, None, &args, check);
        // Change some files and delete one, still under faults.
        site.write("assets/f03.css", b"/* changed */");
        site.write("docs/page-2/index.html", b"<h1>changed</h1>");
        site.remove("assets/f10.css");
        let (more, more_failed) = converge(&proxy, 8, None, &args, check);
        report(&format!("in-place seed {seed}"), &proxy, attempts + more, failed + more_failed);
        failures += failed + more_failed;
        let held: BTreeMap<String, Vec<u8>> = bucket
            .objects()
            .into_iter()
            .filter(|(k, _)| !k.starts_with(".skiff/"))
            .map(|(k, o)| (k, o.bytes))
            .collect();
        assert_eq!(held, site.files(), "seed {seed}: the bucket equals the tree");
        // And a calm re-run has nothing left to do.
        let doc = crate::harness::skiff(&["publish", &dir, "--bucket", &bucket.name, "--json"]).success().json();
        assert_eq!(doc["summary"]["uploaded"], 0, "seed {seed}: {doc}");
        assert_eq!(doc["summary"]["deleted"], 0, "seed {seed}: {doc}");
    }
    assert!(failures > 0, "some runs failed, and their invariants held");
}

#[test]
fn atomic_publishes_under_ten_percent_faults_never_leave_a_half_deploy_live() {
    use crate::provision::Site as Provisioned;
    let mut failures = 0;
    for seed in [5, 19] {
        let site = Provisioned::new(&format!("chaos-atomic-{seed}"));
        site.skiff(&["provision"]).success();
        let public = site.dir.path().join("public");
        let write = |files: &[(String, Vec<u8>)]| {
            for (key, body) in files {
                let path = public.join(key);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, body).unwrap();
            }
        };
        let first = files();
        write(&first);
        site.skiff(&["publish"]).success();
        let tree = |files: &[(String, Vec<u8>)]| files.iter().cloned().collect::<BTreeMap<String, Vec<u8>>>();
        let old = tree(&first);
        let mut second = first.clone();
        second[3].1 = b"/* v2 */".to_vec();
        second[30].1 = b"<h1>v2</h1>".to_vec();
        write(&second);
        let new = tree(&second);

        // After every failed run, what the router serves is one complete tree: old or new.
        let live_tree = || crate::provision::served(&site);
        let proxy = Proxy::start(&endpoint());
        proxy.chaos(seed, 10);
        let (attempts, failed) =
            converge(&proxy, 8, Some(site.dir.path()), &["publish", "--lock-timeout", "0s"], || {
                crate::harness::invariants::complete(&site, "production", &format!("seed {seed}"));
                let served = live_tree();
                assert!(served == old || served == new, "seed {seed}: the live deploy is a complete tree");
            });
        report(&format!("atomic seed {seed}"), &proxy, attempts, failed);
        failures += failed;
        assert_eq!(live_tree(), new, "seed {seed}: the new deploy is live and complete");
        let held = Bucket { name: site.bucket.clone(), client: crate::harness::client_for(&endpoint()) };
        assert!(!held.keys().iter().any(|k| k.starts_with("_skiff/lock")), "seed {seed}: no lock left behind");
    }
    assert!(failures > 0, "some runs failed, and their invariants held");
}

#[test]
fn the_fault_kinds_are_all_exercised() {
    // A guard on the proxy itself: a high rate over enough requests hits every kind.
    let proxy = Proxy::start(&endpoint());
    proxy.chaos(99, 100);
    let bucket = Bucket::new("chaos-kinds");
    // One attempt per call: the point is the proxy's faults, not the SDK's retries.
    let client = crate::harness::client_for(&proxy.endpoint);
    let config = client.config().to_builder().retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled()).build();
    let client = aws_sdk_s3::Client::from_conf(config);
    for _ in 0..60 {
        let _ = crate::harness::runtime().block_on(client.head_bucket().bucket(&bucket.name).send());
    }
    let (injected, _) = proxy.calm();
    for kind in
        [Kind::InternalError, Kind::SlowDown, Kind::ResetBefore, Kind::ResetAfter, Kind::Truncated, Kind::Latency]
    {
        assert!(injected.get(&kind).copied().unwrap_or(0) > 0, "{kind:?} never injected: {injected:?}");
    }
}

/// Start `args` through `proxy` and return the child once a write under `marker` was seen.
fn started_writing(proxy: &Proxy, dir: Option<&std::path::Path>, args: &[&str], marker: &str) -> std::process::Child {
    let mut command = crate::harness::command_at(&proxy.endpoint, args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let child = crate::harness::spawn(&mut command);
    crate::harness::wait_until(&format!("the run never wrote under {marker}"), || {
        proxy.writes().iter().any(|r| r.method == "PUT" && r.target.contains(marker))
    });
    child
}

const SLOW_DOWN: &str = "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>x</RequestId></Error>";

/// The SDK's own retry policy as skiff sets it (standard mode, 5 attempts), not the tests'
/// `AWS_MAX_ATTEMPTS=2`: four throttled answers are ridden out, a fifth is not.
#[test]
fn the_default_retry_policy_makes_five_attempts() {
    let bucket = Bucket::new("default-retries");
    let site = Site::new(&[("a.css", b"a{}"), ("index.html", b"<p>x</p>")]);
    let dir = site.path().to_str().unwrap().to_string();
    let attempts =
        |proxy: &Proxy| proxy.requests().iter().filter(|r| r.method == "PUT" && r.target.contains("/a.css")).count();
    let run = |proxy: &Proxy| {
        let mut command = crate::harness::command_at(&proxy.endpoint, &["publish", &dir, "--bucket", &bucket.name]);
        command.env_remove("AWS_MAX_ATTEMPTS");
        crate::harness::finish(command.output().unwrap())
    };
    let proxy = Proxy::start(&endpoint());
    proxy.fail_next("PUT", "/a.css", 4, 503, SLOW_DOWN);
    run(&proxy).success();
    assert_eq!(attempts(&proxy), 5, "four throttled, the fifth went through");
    assert_eq!(bucket.objects()["a.css"].bytes, b"a{}");

    site.write("a.css", b"b{}");
    let proxy = Proxy::start(&endpoint());
    proxy.fail_next("PUT", "/a.css", 5, 503, SLOW_DOWN);
    run(&proxy).failure(1, &["a.css", "throttling"]);
    assert_eq!(attempts(&proxy), 5, "five attempts, then the key is named");
    assert_eq!(bucket.objects()["a.css"].bytes, b"a{}", "the old object stays");
}

#[test]
fn a_file_that_changes_while_it_is_published_is_reported_and_never_recorded() {
    let bucket = Bucket::new("changed-during");
    let site = Site::new(&[("a.css", b"a"), ("b.css", b"b"), ("c.css", b"c"), ("z.css", b"old bytes")]);
    let proxy = Proxy::start_with_delay(&endpoint(), std::time::Duration::from_millis(300));
    let dir = site.path().to_str().unwrap().to_string();
    let child =
        started_writing(&proxy, None, &["publish", &dir, "--bucket", &bucket.name, "--concurrency", "1"], "/a.css");
    // Same size, other bytes: only the content tells.
    site.write("z.css", b"new bytes");
    let run = crate::harness::finish(child.wait_with_output().unwrap());
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("z.css") && run.stderr.contains("changed while it was being published"),
        "{}",
        run.stderr
    );
    let manifest = bucket.manifest("");
    assert!(manifest["files"].get("z.css").is_none(), "never recorded as published: {manifest}");
    // The next run sends it again and records it.
    let again = crate::harness::skiff(&["publish", &dir, "--bucket", &bucket.name, "--json"]).success().json();
    assert_eq!(again["summary"]["uploaded"], 1, "{again}");
    assert_eq!(bucket.objects()["z.css"].bytes, b"new bytes");
    assert_eq!(bucket.manifest("")["files"]["z.css"]["size"], 9);
}

#[test]
fn ctrl_c_during_an_atomic_publish_keeps_the_old_deploy_live_and_releases_the_lock() {
    stopped_atomic_publish("INT");
}

/// What a CI runner sends when a job is cancelled: the same as Ctrl-C.
#[test]
fn sigterm_during_an_atomic_publish_keeps_the_old_deploy_live_and_releases_the_lock() {
    stopped_atomic_publish("TERM");
}

fn stopped_atomic_publish(signal: &str) {
    use crate::provision::Site as Provisioned;
    let site = Provisioned::new(&format!("atomic-sig{}", signal.to_ascii_lowercase()));
    site.skiff(&["provision"]).success();
    let public = site.dir.path().join("public");
    std::fs::create_dir_all(&public).unwrap();
    for i in 0..30 {
        std::fs::write(public.join(format!("f{i:02}.css")), format!("/* {i} */")).unwrap();
    }
    let first = site.skiff(&["publish", "--json"]).success().json()["deploy_id"].as_str().unwrap().to_string();
    for i in 0..30 {
        std::fs::write(public.join(format!("f{i:02}.css")), format!("/* v2 {i} */")).unwrap();
    }
    let proxy = Proxy::start_with_delay(&endpoint(), std::time::Duration::from_millis(100));
    let child = started_writing(&proxy, Some(site.dir.path()), &["publish", "--concurrency", "2"], "/_deploys/");
    let run = crate::harness::signal(child, signal);
    assert_eq!(run.code, 130, "SIG{signal}: {}", run.stderr);
    assert!(
        run.stderr.contains("interrupted") && run.stderr.contains(&format!("still serves deploy {first}")),
        "{}",
        run.stderr
    );
    let arn = site.state()["resources"]["kvs_arn"].as_str().unwrap().to_string();
    assert_eq!(crate::provision::kvs_contents()[&arn]["production"], first.as_str());
    let held = Bucket { name: site.bucket.clone(), client: crate::harness::client_for(&endpoint()) };
    assert!(!held.keys().iter().any(|k| k.starts_with("_skiff/lock")), "the lock was released");
    let done = site.skiff(&["publish", "--json"]).success().json();
    assert!(done["summary"]["copied"].as_u64().unwrap() > 0, "what the interrupted run sent is reused: {done}");
}

#[test]
fn ctrl_c_during_a_multipart_upload_leaves_no_unfinished_upload_to_bill() {
    let bucket = Bucket::new("ctrl-c-multipart");
    let big: Vec<u8> = (0..12 * 1024 * 1024).map(|i: usize| u8::try_from(i % 251).unwrap()).collect();
    let site = Site::new(&[("big.bin", &big), ("index.html", b"<h1>x</h1>")]);
    let config = tempfile::tempdir().unwrap();
    std::fs::write(config.path().join("skiff.toml"), "[deploy]\nmultipart_threshold_mib = 5\n").unwrap();
    let proxy = Proxy::start_with_delay(&endpoint(), std::time::Duration::from_millis(200));
    let dir = site.path().to_str().unwrap().to_string();
    let mut command = crate::harness::command_at(&proxy.endpoint, &["publish", &dir, "--bucket", &bucket.name]);
    let child = crate::harness::spawn(command.current_dir(config.path()));
    crate::harness::wait_until("the multipart upload never started", || {
        proxy.requests().iter().any(|r| r.method == "POST" && r.target.contains("uploads"))
    });
    let run = crate::harness::interrupt(child);
    assert_eq!(run.code, 130, "{}", run.stderr);
    let unfinished =
        crate::harness::runtime().block_on(bucket.client.list_multipart_uploads().bucket(&bucket.name).send()).unwrap();
    assert!(unfinished.uploads().is_empty(), "unfinished uploads: {:?}", unfinished.uploads());
    // Whatever went up is recorded; the next run finishes.
    crate::harness::skiff(&["publish", &dir, "--bucket", &bucket.name]).success();
    assert_eq!(bucket.objects()["big.bin"].bytes, big);
}
