//! Kill tests: a command SIGKILLed at every request it makes, once before the request is
//! forwarded and once after S3 (or CloudFront, ACM, Route 53) applied it but before the
//! answer arrives. After each kill the promises hold, and running the command again
//! converges. The flows are small so that CI runs every boundary; `SKIFF_KILL_FILES` adds
//! that many files to the publish flows (`scripts/kill-test` runs them with 40).

use std::collections::BTreeMap;

use crate::harness::invariants::{self, page, tree};
use crate::harness::proxy::{Moment, Proxy, Request};
use crate::harness::{Bucket, Site, endpoint};
use crate::provision::Site as Provisioned;

/// Extra files for the publish flows.
fn extra_files() -> usize {
    std::env::var("SKIFF_KILL_FILES").ok().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Run `args` with the proxy set to SIGKILL it at request `at`; whether it was killed.
fn killed_at(proxy: &Proxy, dir: Option<&std::path::Path>, args: &[&str], at: usize, moment: Moment) -> bool {
    let slot = proxy.kill_at(at, moment);
    let mut command = crate::harness::command_at(&proxy.endpoint, args);
    command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    command.env("SKIFF_POLL_INTERVAL_MS", "100");
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let mut child = command.spawn().unwrap();
    slot.store(child.id(), std::sync::atomic::Ordering::SeqCst);
    let status = child.wait().unwrap();
    status.code().is_none()
}

/// The request numbers (1-based) to kill at: every request, except one that repeats the
/// request just before it (the polls of a wait, which leave nothing new between them).
fn boundaries(requests: &[Request]) -> Vec<usize> {
    let same = |a: &Request, b: &Request| a.method == b.method && a.target == b.target && a.amz_target == b.amz_target;
    (0..requests.len()).filter(|&i| i == 0 || !same(&requests[i - 1], &requests[i])).map(|i| i + 1).collect()
}

/// Kill the flow at each of `boundaries`, both moments; `round` runs once per kill with the
/// round number and the (request, moment); returns the kills that landed.
fn every_boundary(boundaries: &[usize], mut round: impl FnMut(usize, usize, Moment) -> bool) -> usize {
    let mut kills = 0;
    let mut n = 0;
    for &at in boundaries {
        for moment in [Moment::Before, Moment::After] {
            kills += usize::from(round(n, at, moment));
            n += 1;
        }
    }
    kills
}

/// In place, a publish that uploads, updates headers, writes the manifest and deletes,
/// SIGKILLed at every request it makes, before the request is forwarded and after S3
/// applied it. After each kill: wherever the manifest vouches for an object (same ETag) it
/// has the object's hash, and every page in the bucket has its assets; the next publish
/// makes the bucket equal the tree byte for byte.
#[allow(clippy::print_stderr)]
#[test]
fn in_place_publish_killed_at_every_request_boundary_keeps_its_promises() {
    let extra: Vec<(String, Vec<u8>)> =
        (0..extra_files()).map(|i| (format!("assets/x{i:03}.css"), format!("x{{--n:{i}}}").into_bytes())).collect();
    let with_extra = |files: &[(&str, &[u8])], changed: bool| {
        let mut all: Vec<(String, Vec<u8>)> = files.iter().map(|(k, v)| ((*k).to_string(), v.to_vec())).collect();
        for (i, (key, body)) in extra.iter().enumerate() {
            let body = if changed && i % 2 == 0 { [body.as_slice(), b"/*2*/"].concat() } else { body.clone() };
            all.push((key.clone(), body));
        }
        let refs: Vec<(&str, &[u8])> = all.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        Site::new(&refs)
    };
    let old = with_extra(
        &[
            ("index.html", &page("home", &["/assets/a.css", "/assets/b.js"])),
            ("about/index.html", &page("about", &["/assets/a.css", "/assets/old.png"])),
            ("assets/a.css", b"a{color:red}"),
            ("assets/b.js", b"b()"),
            ("assets/old.png", b"png"),
            ("404.html", b"<p>gone</p>"),
        ],
        false,
    );
    let new = with_extra(
        &[
            ("index.html", &page("home, new", &["/assets/a.css", "/assets/b.js", "/assets/c.css"])),
            ("about/index.html", &page("about", &["/assets/a.css"])),
            ("assets/a.css", b"a{color:blue}"),
            ("assets/b.js", b"b()"),
            ("assets/c.css", b"c{}"),
            ("404.html", b"<p>gone</p>"),
        ],
        true,
    );
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
    crate::harness::skiff(&publish_old).success();
    let counting = Proxy::start(&endpoint());
    crate::harness::skiff_at(&counting.endpoint, &publish_new, None).success();
    let points = boundaries(&counting.requests());
    assert!(points.len() >= 6, "the flow reads, uploads, updates, writes the manifest and deletes: {points:?}");

    let kills = every_boundary(&points, |_, at, moment| {
        crate::harness::skiff(&publish_old).success();
        assert_eq!(invariants::held(&bucket), tree(old.path()));
        let proxy = Proxy::start(&endpoint());
        let killed = killed_at(&proxy, None, &publish_new, at, moment);
        let context = format!("killed at request {at} ({moment:?})");
        invariants::in_place(&bucket, &context);
        crate::harness::skiff(&publish_new).success();
        assert_eq!(invariants::held(&bucket), tree(new.path()), "{context}: the next publish converges");
        assert_eq!(bucket.objects()["assets/b.js"].cache_control.as_deref(), Some("public, max-age=60"));
        killed
    });
    eprintln!("kill: in-place publish: {} boundaries × 2 moments, {kills} runs killed", points.len());
    assert!(kills >= points.len(), "the kills landed ({kills} of {})", 2 * points.len());
}

/// Write round `round` of the atomic flows' tree under `public`: a page, one asset that
/// changes every round, one that never does, the 404 page, and the extra files.
fn write_round(public: &std::path::Path, round: usize) {
    std::fs::create_dir_all(public.join("assets")).unwrap();
    std::fs::write(public.join("index.html"), page(&format!("round {round}"), &["/assets/a.css"])).unwrap();
    std::fs::write(public.join("assets/a.css"), format!("a{{--round:{}}}", round % 2)).unwrap();
    std::fs::write(public.join("assets/same.css"), b"same{}").unwrap();
    std::fs::write(public.join("404.html"), b"<p>gone</p>").unwrap();
    for i in 0..extra_files() {
        std::fs::write(public.join(format!("assets/x{i:03}.css")), format!("x{{--n:{i};--r:{}}}", round % 3)).unwrap();
    }
}

/// Atomic, a publish (uploads, copies, the deploy manifest, the KVS switch, the state, the
/// 404 copy, the retention deletes), SIGKILLed at every request it makes, before and after.
/// After each kill the router's KVS names a complete deploy (every file of its manifest
/// there, byte for byte); the next publish takes the dead run's lock over at once, repairs
/// a state.json left behind the KVS (and says so), and makes the new tree live.
#[allow(clippy::print_stderr)]
#[test]
fn atomic_publish_killed_at_every_request_boundary_keeps_a_complete_deploy_live() {
    let site = Provisioned::new("kill-boundaries-atomic");
    site.configure("\n[deploy]\nkeep = 1\n");
    site.skiff(&["provision"]).success();
    let public = site.dir.path().join("public");
    let args = ["publish", "--yes", "--concurrency", "1", "--lock-timeout", "0s"];
    write_round(&public, 0);
    site.skiff(&args).success();
    write_round(&public, 1);
    let counting = Proxy::start(&endpoint());
    site.skiff_at(&counting.endpoint, &args).success();
    let points = boundaries(&counting.requests());
    let mut disagreements = 0;
    let kills = every_boundary(&points, |n, at, moment| {
        write_round(&public, n + 2);
        let proxy = Proxy::start(&endpoint());
        let killed = killed_at(&proxy, Some(site.dir.path()), &args, at, moment);
        let context = format!("killed at request {at} ({moment:?})");
        invariants::complete(&site, "production", &context);
        let arn = site.state()["resources"]["kvs_arn"].as_str().unwrap().to_string();
        let routed = crate::provision::kvs_contents()[&arn]["production"].clone();
        let disagreed = site.state()["targets"]["production"]["live"] != routed;
        let next = site.skiff(&args).success();
        if disagreed {
            disagreements += 1;
            assert!(next.stderr.contains("now says"), "{context}: the repair is said: {}", next.stderr);
        }
        invariants::agree(&site, "production", &context);
        assert_eq!(crate::provision::served(&site), tree(&public), "{context}: the next publish goes live");
        killed
    });
    eprintln!(
        "kill: atomic publish: {} boundaries × 2 moments, {kills} runs killed, {disagreements} left state.json behind the KVS",
        points.len()
    );
    assert!(disagreements > 0, "some kill fell between the KVS write and the state write");
    assert!(kills >= points.len(), "the kills landed ({kills} of {})", 2 * points.len());
}

/// A rollback (the lock, the KVS switch, the state, the 404 page, the invalidation),
/// SIGKILLed at every request. After each kill production serves a complete deploy (the
/// one before or the one rolled back to); running the rollback again makes the chosen
/// deploy live with the state in agreement.
#[allow(clippy::print_stderr)]
#[test]
fn rollback_killed_at_every_request_boundary_keeps_a_complete_deploy_live() {
    let site = Provisioned::new("kill-rollback");
    site.skiff(&["provision"]).success();
    let public = site.dir.path().join("public");
    let publish = |round: usize| -> (String, BTreeMap<String, Vec<u8>>) {
        write_round(&public, round);
        let id = site.skiff(&["publish", "--json"]).success().json()["deploy_id"].as_str().unwrap().to_string();
        (id, tree(&public))
    };
    let (first, _) = publish(0);
    publish(1);
    let counting = Proxy::start(&endpoint());
    site.skiff_at(&counting.endpoint, &["rollback", &first, "--lock-timeout", "0s"]).success();
    let points = boundaries(&counting.requests());
    let mut outcomes = BTreeMap::new();
    let kills = every_boundary(&points, |n, at, moment| {
        // Two new deploys; the rollback goes from the newest to the one before.
        let (target, target_tree) = publish(2 * n + 2);
        let (_, newest_tree) = publish(2 * n + 3);
        let args = ["rollback", target.as_str(), "--lock-timeout", "0s"];
        let proxy = Proxy::start(&endpoint());
        let killed = killed_at(&proxy, Some(site.dir.path()), &args, at, moment);
        let context = format!("killed at request {at} ({moment:?})");
        invariants::complete(&site, "production", &context);
        let live = crate::provision::served(&site);
        assert!(live == newest_tree || live == target_tree, "{context}: one of the two deploys is live");
        *outcomes.entry(if live == newest_tree { "newest" } else { "rolled back" }).or_insert(0) += 1;
        site.skiff(&args).success();
        invariants::agree(&site, "production", &context);
        assert_eq!(crate::provision::served(&site), target_tree, "{context}: the rollback finished");
        killed
    });
    eprintln!(
        "kill: rollback: {} boundaries × 2 moments, {kills} runs killed, live after the kill: {outcomes:?}",
        points.len()
    );
    assert!(kills >= points.len(), "the kills landed ({kills} of {})", 2 * points.len());
}

/// `skiff previews delete` (the router entry, every object, the state), SIGKILLed at every
/// request. After each kill production is untouched and the preview is either still served
/// whole or no longer routed; running the delete again removes what is left (or, when the
/// killed run had finished, says there is no such preview).
#[allow(clippy::print_stderr)]
#[test]
fn previews_delete_killed_at_every_request_boundary_leaves_production_whole_and_converges() {
    let site = Provisioned::new("kill-previews");
    site.skiff(&["provision"]).success();
    let public = site.dir.path().join("public");
    write_round(&public, 0);
    site.skiff(&["publish"]).success();
    let production = crate::provision::served(&site);
    let publish_preview = |round: usize| {
        write_round(&public, round);
        site.skiff(&["publish", "--preview", "feat"]).success();
        write_round(&public, 0);
    };
    publish_preview(1);
    let counting = Proxy::start(&endpoint());
    site.skiff_at(&counting.endpoint, &["previews", "delete", "feat"]).success();
    let points = boundaries(&counting.requests());
    let mut finished_by_the_killed_run = 0;
    let kills = every_boundary(&points, |n, at, moment| {
        publish_preview(n + 2);
        let proxy = Proxy::start(&endpoint());
        let killed = killed_at(&proxy, Some(site.dir.path()), &["previews", "delete", "feat"], at, moment);
        let context = format!("killed at request {at} ({moment:?})");
        invariants::complete(&site, "production", &context);
        invariants::complete(&site, "preview-feat", &context);
        assert_eq!(crate::provision::served(&site), production, "{context}: production is untouched");
        let again = site.skiff(&["previews", "delete", "feat"]);
        if again.code != 0 {
            again.failure(1, &["no preview of `feat`"]);
            finished_by_the_killed_run += 1;
        }
        let arn = site.state()["resources"]["kvs_arn"].as_str().unwrap().to_string();
        assert!(crate::provision::kvs_contents()[&arn].get("preview-feat").is_none(), "{context}: not routed");
        let bucket = Bucket { name: site.bucket.clone(), client: crate::harness::client_for(&endpoint()) };
        let left: Vec<String> = bucket.keys().into_iter().filter(|k| k.starts_with("_deploys/preview-feat")).collect();
        assert!(left.is_empty(), "{context}: objects left: {left:?}");
        assert!(site.state()["targets"].get("preview-feat").is_none(), "{context}: forgotten");
        killed
    });
    eprintln!(
        "kill: previews delete: {} boundaries × 2 moments, {kills} runs killed, {finished_by_the_killed_run} finished before the kill",
        points.len()
    );
    assert!(kills >= points.len(), "the kills landed ({kills} of {})", 2 * points.len());
}

/// How many of each resource the site has: distributions with its domain, certificate
/// requests for its domain and origin access controls of its name (every page of each
/// list); its key value store and function, whose names CloudFront keeps unique, by name.
fn resources(site: &Provisioned) -> BTreeMap<&'static str, usize> {
    let aws = crate::provision::aws();
    let name = format!("skiff-{}", site.bucket.replace('.', "-"));
    crate::harness::runtime().block_on(async {
        let mut counts = BTreeMap::new();
        let (mut distributions, mut controls) = (0, 0);
        let mut marker = None;
        loop {
            let page = aws.cloudfront.list_distributions().set_marker(marker).send().await.unwrap();
            let list = page.distribution_list().unwrap();
            distributions += list
                .items()
                .iter()
                .filter(|d| d.aliases().is_some_and(|a| a.items().iter().any(|alias| alias == &site.domain)))
                .count();
            marker = list.next_marker().filter(|_| list.is_truncated()).map(str::to_string);
            if marker.is_none() {
                break;
            }
        }
        loop {
            let page = aws.cloudfront.list_origin_access_controls().set_marker(marker).send().await.unwrap();
            let list = page.origin_access_control_list().unwrap();
            controls += list.items().iter().filter(|c| c.name() == name).count();
            marker = list.next_marker().filter(|_| list.is_truncated()).map(str::to_string);
            if marker.is_none() {
                break;
            }
        }
        counts.insert("distribution", distributions);
        counts.insert("origin access control", controls);
        let store = aws.cloudfront.describe_key_value_store().name(&name).send().await;
        counts.insert("key value store", usize::from(store.is_ok()));
        let function = aws.cloudfront.describe_function().name(&name).send().await;
        counts.insert("function", usize::from(function.is_ok()));
        let mut certificates = 0;
        let mut pages = aws.acm.list_certificates().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.unwrap();
            certificates += page
                .certificate_summary_list()
                .iter()
                .filter(|c| c.domain_name() == Some(site.domain.as_str()))
                .count();
        }
        counts.insert("certificate", certificates);
        counts
    })
}

/// `skiff provision` of a new site, SIGKILLed before and after every write it makes (what
/// AWS holds changes only at a write: a kill at a read leaves what a kill at the write
/// before or after it leaves; `scripts/kill-test` kills at every request). Running it
/// again finishes with one of each resource: no duplicate distribution, key value store,
/// function, certificate request or origin access control.
#[allow(clippy::print_stderr)]
#[test]
fn provision_killed_at_every_write_finishes_with_no_duplicate() {
    let counting_site = Provisioned::new("kill-provision");
    let counting = Proxy::start(&endpoint());
    counting_site.skiff_at(&counting.endpoint, &["provision"]).success();
    let requests = counting.requests();
    let points: Vec<usize> = if std::env::var_os("SKIFF_KILL_FILES").is_some() {
        boundaries(&requests)
    } else {
        (0..requests.len()).filter(|&i| requests[i].is_write()).map(|i| i + 1).collect()
    };
    let one = BTreeMap::from(
        ["distribution", "key value store", "function", "certificate", "origin access control"].map(|k| (k, 1)),
    );
    assert_eq!(resources(&counting_site), one, "the names this test counts by");
    let kills = every_boundary(&points, |n, at, moment| {
        let site = Provisioned::new(&format!("kp{n}"));
        let proxy = Proxy::start(&endpoint());
        let started = std::time::Instant::now();
        let killed = killed_at(&proxy, Some(site.dir.path()), &["provision"], at, moment);
        let context = format!("killed at request {at} ({moment:?})");
        let halfway = started.elapsed();
        let again = site.skiff(&["provision"]);
        eprintln!(
            "kill: provision {context}: killed after {halfway:?}, the next run took {:?}",
            started.elapsed().saturating_sub(halfway)
        );
        assert_eq!(again.code, 0, "{context}: {}", again.stderr);
        assert_eq!(resources(&site), one, "{context}: one of each");
        killed
    });
    eprintln!(
        "kill: provision: {} requests, {} kill points × 2 moments, {kills} runs killed",
        requests.len(),
        points.len()
    );
    assert!(kills >= points.len(), "the kills landed ({kills} of {})", 2 * points.len());
}
