//! Faults that outlast the retries, planned per request: each run fails, and the failure
//! path keeps its promises (exit 1, a message naming the key or resource, the live site as
//! it was, or as the invariants of `harness::invariants` allow); the next calm run
//! converges. The SDK's retries stay on (the tests' `AWS_MAX_ATTEMPTS=2`): every fault
//! here answers every attempt.

use crate::harness::invariants::{self, page, tree};
use crate::harness::proxy::Proxy;
use crate::harness::{Bucket, Site, endpoint};
use crate::provision::Site as Provisioned;

const INTERNAL: &str = "<?xml version=\"1.0\"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message><RequestId>x</RequestId></Error>";
const PRECONDITION: &str = "<?xml version=\"1.0\"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><RequestId>x</RequestId></Error>";
const KVS_INTERNAL: &str = "{\"message\":\"injected\"}";

/// Enough for every attempt of every retry.
const ALWAYS: usize = 1000;

/// An in-place site live in a bucket, and a new tree for it: an edited page that links a
/// new asset, an edited asset, a deleted page and asset.
struct InPlace {
    bucket: Bucket,
    old: Site,
    new: Site,
}

impl InPlace {
    fn new(test: &str) -> Self {
        let old = Site::new(&[
            ("index.html", &page("home", &["/assets/a.css"])),
            ("gone/index.html", &page("gone", &["/assets/gone.css"])),
            ("assets/a.css", b"a{color:red}"),
            ("assets/gone.css", b"gone{}"),
            ("404.html", b"<p>missing</p>"),
        ]);
        let new = Site::new(&[
            ("index.html", &page("home, new", &["/assets/a.css", "/assets/c.css"])),
            ("assets/a.css", b"a{color:blue}"),
            ("assets/c.css", b"c{}"),
            ("404.html", b"<p>missing</p>"),
        ]);
        let site = Self { bucket: Bucket::new(test), old, new };
        let args = site.args(&site.old);
        crate::harness::skiff(&args.iter().map(String::as_str).collect::<Vec<_>>()).success();
        site
    }

    fn args(&self, site: &Site) -> Vec<String> {
        ["publish", site.path().to_str().unwrap(), "--bucket", &self.bucket.name, "--yes"].map(str::to_string).to_vec()
    }

    /// Publish the new tree through `proxy`: it must fail with exit 1 naming `needles`, and
    /// the in-place invariants must hold.
    fn fails(&self, proxy: &Proxy, needles: &[&str]) -> crate::harness::Run {
        let args = self.args(&self.new);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = crate::harness::skiff_at(&proxy.endpoint, &args, None).failure(1, needles);
        invariants::in_place(&self.bucket, &format!("after `{}`", run.stderr.trim()));
        run
    }

    /// The next calm publish makes the bucket equal the new tree.
    fn converges(&self) {
        let args = self.args(&self.new);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        crate::harness::skiff(&args).success();
        assert_eq!(invariants::held(&self.bucket), tree(self.new.path()));
    }
}

#[test]
fn one_key_failing_on_every_attempt_is_named_and_nothing_links_it() {
    let site = InPlace::new("fault-one-key");
    let proxy = Proxy::start(&endpoint());
    proxy.fail_next("PUT", "/assets/c.css", ALWAYS, 500, INTERNAL);
    site.fails(&proxy, &["assets/c.css"]);
    assert!(!site.bucket.keys().contains(&"assets/c.css".to_string()));
    site.converges();
}

#[test]
fn a_failing_delete_is_named_and_the_pages_keep_their_assets() {
    let site = InPlace::new("fault-delete");
    let proxy = Proxy::start(&endpoint());
    proxy.fail_next("POST", "?delete", ALWAYS, 500, INTERNAL);
    let run = site.fails(&proxy, &["gone"]);
    assert!(run.stderr.contains("delete"), "{}", run.stderr);
    site.converges();
}

#[test]
fn a_failing_listing_is_named_and_nothing_is_written() {
    let site = InPlace::new("fault-list");
    let proxy = Proxy::start(&endpoint());
    proxy.fail_next("GET", "list-type=2", ALWAYS, 500, INTERNAL);
    site.fails(&proxy, &[&site.bucket.name]);
    assert_eq!(proxy.writes(), [], "nothing is written without the listing");
    assert_eq!(invariants::held(&site.bucket), tree(site.old.path()), "the live site is as it was");
    site.converges();
}

#[test]
fn a_manifest_written_meanwhile_by_another_publish_is_said_and_the_next_run_rechecks() {
    let site = InPlace::new("fault-manifest-412");
    let proxy = Proxy::start(&endpoint());
    proxy.fail_next("PUT", "/.skiff/manifest.json", ALWAYS, 412, PRECONDITION);
    site.fails(&proxy, &["another publish", "manifest", "run the same command again"]);
    site.converges();
}

/// A provisioned site with one deploy live, and a new tree written for the next.
fn atomic(test: &str) -> (Provisioned, std::collections::BTreeMap<String, Vec<u8>>, String) {
    let site = Provisioned::new(test);
    site.skiff(&["provision"]).success();
    let public = site.dir.path().join("public");
    std::fs::create_dir_all(public.join("assets")).unwrap();
    std::fs::write(public.join("index.html"), page("v1", &["/assets/a.css"])).unwrap();
    std::fs::write(public.join("assets/a.css"), b"a{}").unwrap();
    std::fs::write(public.join("404.html"), b"<p>missing</p>").unwrap();
    let id = site.skiff(&["publish", "--json"]).success().json()["deploy_id"].as_str().unwrap().to_string();
    let old = tree(&public);
    std::fs::write(public.join("index.html"), page("v2", &["/assets/a.css", "/assets/b.css"])).unwrap();
    std::fs::write(public.join("assets/b.css"), b"b{}").unwrap();
    (site, old, id)
}

fn no_lock_left(site: &Provisioned) {
    let bucket = Bucket { name: site.bucket.clone(), client: crate::harness::client_for(&endpoint()) };
    assert!(!bucket.keys().iter().any(|k| k.starts_with("_skiff/lock")), "no lock left behind");
}

#[test]
fn a_failing_routing_write_keeps_the_old_deploy_live_and_says_so() {
    let (site, old, live) = atomic("fault-routes");
    let proxy = Proxy::start(&endpoint());
    // The first UpdateKeys writes the new deploy's routing, before the switch.
    proxy.fail_next("POST", "/keys", ALWAYS, 500, KVS_INTERNAL);
    let run = site
        .skiff_at(&proxy.endpoint, &["publish"])
        .failure(1, &["could not write the routing of deploy", &format!("production still serves deploy {live}")]);
    invariants::complete(&site, "production", &run.stderr);
    invariants::agree(&site, "production", &run.stderr);
    assert_eq!(crate::provision::served(&site), old, "the old deploy is still live");
    no_lock_left(&site);
    site.skiff(&["publish"]).success();
    invariants::complete(&site, "production", "after the rerun");
}

#[test]
fn a_failing_router_switch_keeps_the_old_deploy_live_and_says_so() {
    let (site, old, live) = atomic("fault-kvs");
    let proxy = Proxy::start(&endpoint());
    // After the routing write, the switch itself fails.
    proxy.fail_after(("POST", "/keys"), "POST", "/keys", ALWAYS, 500, KVS_INTERNAL);
    let run = site.skiff_at(&proxy.endpoint, &["publish"]).failure(1, &["could not make deploy", &live]);
    invariants::complete(&site, "production", &run.stderr);
    invariants::agree(&site, "production", &run.stderr);
    assert_eq!(crate::provision::served(&site), old, "the old deploy is still live");
    no_lock_left(&site);
    site.skiff(&["publish"]).success();
    assert_eq!(crate::provision::served(&site), tree(&site.dir.path().join("public")));
}

/// The switch reuses the store version the routing write answered; when another writer moved
/// it in between (CloudFront answers 409 ConflictException), skiff reads the store again and
/// the switch goes through.
#[test]
fn a_store_version_moved_by_another_writer_is_read_again_and_the_switch_goes_through() {
    let (site, _old, _live) = atomic("fault-kvs-stale");
    let proxy = Proxy::start(&endpoint());
    let stale = "{\"__type\":\"ConflictException\",\"message\":\"The If-Match ETag is stale\"}";
    proxy.fail_after(("POST", "/keys"), "POST", "/keys", 1, 409, stale);
    let run = site.skiff_at(&proxy.endpoint, &["publish", "--json"]).success();
    invariants::complete(&site, "production", &run.stderr);
    invariants::agree(&site, "production", &run.stderr);
    assert_eq!(crate::provision::served(&site), tree(&site.dir.path().join("public")));
    let updates = proxy.requests().into_iter().filter(|r| r.method == "POST" && r.target.contains("/keys")).count();
    assert_eq!(updates, 3, "the routing write, the refused switch, the switch");
}

#[test]
fn a_failing_state_write_after_the_switch_is_said_and_the_next_run_repairs_it() {
    let (site, _, _) = atomic("fault-state");
    let proxy = Proxy::start(&endpoint());
    proxy.fail_after(("POST", "/keys"), "PUT", "/_skiff/state.json", ALWAYS, 500, INTERNAL);
    let run = site.skiff_at(&proxy.endpoint, &["publish", "--json"]);
    let run = run.failure(1, &["_skiff/state.json", "is live"]);
    let live = invariants::complete(&site, "production", &run.stderr).unwrap();
    assert_eq!(crate::provision::served(&site), tree(&site.dir.path().join("public")), "the new deploy went live");
    assert_ne!(site.state()["targets"]["production"]["live"], live.as_str(), "state.json is behind");
    let next = site.skiff(&["publish"]).success();
    assert!(next.stderr.contains("now says"), "the repair is said: {}", next.stderr);
    invariants::agree(&site, "production", "after the repair");
}
