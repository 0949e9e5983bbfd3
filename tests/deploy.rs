//! Atomic deploys on a provisioned site: publish, rollback, the deploy lock, retention,
//! previews and the GitHub outputs, against the emulator and the double (KVS data plane).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::harness::proxy::Proxy;
use crate::harness::{endpoint, runtime};
use crate::provision::{Site, aws, kvs_contents};

/// A provisioned site with `files` in its `public/` directory.
fn provisioned(test: &str, files: &[(&str, &str)]) -> Site {
    let site = Site::new(test);
    site.skiff(&["provision"]).success();
    write(&site, files);
    site
}

fn write(site: &Site, files: &[(&str, &str)]) {
    for (path, body) in files {
        let path = site.dir.path().join("public").join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
}

const SITE: &[(&str, &str)] = &[
    ("index.html", "<h1>home</h1>"),
    ("about/index.html", "<h1>about</h1>"),
    ("404.html", "<h1>not found</h1>"),
    ("assets/site.css", "body{color:red}"),
    ("assets/app.js", "console.log(1)"),
];

/// Every object in the bucket: key → bytes.
/// Write an object straight into the site's bucket, as someone else would.
fn put(site: &Site, key: &str, body: &[u8]) {
    runtime().block_on(aws().s3.put_object().bucket(&site.bucket).key(key).body(body.to_vec().into()).send()).unwrap();
}

fn objects(site: &Site) -> BTreeMap<String, Vec<u8>> {
    let s3 = aws().s3;
    runtime().block_on(async {
        let mut out = BTreeMap::new();
        let mut token = None;
        loop {
            let page =
                s3.list_objects_v2().bucket(&site.bucket).set_continuation_token(token.clone()).send().await.unwrap();
            for object in page.contents() {
                let key = object.key().unwrap().to_string();
                let got = s3.get_object().bucket(&site.bucket).key(&key).send().await.unwrap();
                out.insert(key, got.body.collect().await.unwrap().into_bytes().to_vec());
            }
            token = page.next_continuation_token().map(str::to_string);
            if token.is_none() {
                return out;
            }
        }
    })
}

/// The KVS entries of the site's store.
fn kvs(site: &Site) -> serde_json::Value {
    let arn = site.state()["resources"]["kvs_arn"].as_str().unwrap().to_string();
    kvs_contents()[&arn].clone()
}

fn live(site: &Site, target: &str) -> Option<String> {
    site.state()["targets"][target]["live"].as_str().map(str::to_string)
}

/// The deploy's files as the bucket holds them (key relative to the deploy).
fn deployed(site: &Site, target: &str, id: &str) -> BTreeMap<String, Vec<u8>> {
    let prefix = format!("_deploys/{target}/{id}/");
    objects(site).into_iter().filter_map(|(k, v)| k.strip_prefix(&prefix).map(|k| (k.to_string(), v))).collect()
}

/// What a deploy serves (key → bytes), as the router resolves it: every key of its
/// manifest from the deploy's own prefix, or (a delta deploy's key it does not hold) from
/// its base's.
fn served(site: &Site, target: &str, id: &str) -> BTreeMap<String, Vec<u8>> {
    let all = objects(site);
    let manifest: serde_json::Value =
        serde_json::from_slice(&all[&format!("_deploys/{target}/{id}.json")]).expect("the deploy's manifest");
    let base = base_of(site, target, id);
    manifest["files"]
        .as_object()
        .unwrap()
        .keys()
        .map(|key| {
            let own = all.get(&format!("_deploys/{target}/{id}/{key}"));
            let from_base = base.as_ref().and_then(|b| all.get(&format!("_deploys/{b}/{key}")));
            (key.clone(), own.or(from_base).unwrap_or_else(|| panic!("{key} of deploy {id} is nowhere")).clone())
        })
        .collect()
}

/// The base (`<target>/<id>`) a deploy stands on, per the state.
fn base_of(site: &Site, target: &str, id: &str) -> Option<String> {
    let state = site.state();
    let deploys = state["targets"][target]["deploys"].as_array().unwrap().clone();
    deploys.iter().find(|d| d["id"] == id).and_then(|d| d["base"].as_str().map(str::to_string))
}

fn expected(files: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    files.iter().map(|(k, v)| ((*k).to_string(), v.as_bytes().to_vec())).collect()
}

#[test]
fn a_publish_is_a_new_deploy_that_goes_live_in_one_step_and_the_next_holds_only_what_changed() {
    let site = provisioned("atomic", SITE);
    let first = site.skiff(&["publish", "--json"]).success().json();
    assert_eq!(first["mode"], "atomic");
    assert_eq!(first["target"], "production");
    assert!(first["branch"].is_null(), "production has no branch: {first}");
    assert_eq!(first["complete"], true);
    assert_eq!(first["url"], format!("https://{}/", site.domain));
    let id = first["deploy_id"].as_str().unwrap().to_string();
    assert_eq!(first["summary"]["uploaded"], 5);
    assert_eq!(kvs(&site)["production"], id.as_str(), "the router reads the new deploy");
    assert_eq!(live(&site, "production").as_deref(), Some(id.as_str()));
    assert_eq!(deployed(&site, "production", &id), expected(SITE));
    let all = objects(&site);
    assert_eq!(all["_skiff/404.html"], b"<h1>not found</h1>", "the error page CloudFront serves");
    let manifest: serde_json::Value = serde_json::from_slice(&all[&format!("_deploys/production/{id}.json")]).unwrap();
    assert_eq!(manifest["files"].as_object().unwrap().len(), 5);
    assert!(!all.keys().any(|k| k.contains(".skiff/")), "no manifest inside a deploy the router serves");
    // The 404 copy was invalidated on the site's distribution.
    let distribution = site.distribution_id();
    let invalidations =
        runtime().block_on(aws().cloudfront.list_invalidations().distribution_id(&distribution).send()).unwrap();
    assert_eq!(invalidations.invalidation_list().unwrap().quantity(), 1);
    assert_eq!(first["invalidation"]["paths"], serde_json::json!(["/_skiff/404.html"]));

    // One change: one upload and nothing else; the new deploy stands on the first (a delta
    // deploy), which the router serves every other key from.
    write(&site, &[("about/index.html", "<h1>about us</h1>")]);
    let proxy = Proxy::start(&endpoint());
    let second = site.skiff_at(&proxy.endpoint, &["publish", "--json"]).success().json();
    let id2 = second["deploy_id"].as_str().unwrap().to_string();
    assert_ne!(id2, id);
    assert!(id2 > id, "deploy ids sort by time: {id} then {id2}");
    assert_eq!(second["summary"]["uploaded"], 1);
    assert_eq!(second["summary"]["copied"], 0, "a delta deploy copies nothing");
    assert_eq!(base_of(&site, "production", &id2), Some(format!("production/{id}")));
    let routes: serde_json::Value =
        serde_json::from_str(kvs(&site)[format!("routes:{id2}")].as_str().unwrap()).unwrap();
    assert_eq!((routes["b"].as_str(), routes["m"].as_u64()), (Some(format!("production/{id}").as_str()), Some(1)));
    assert!(kvs(&site)[format!("d:{id2}:0")].is_string(), "the delta index names what it holds");
    let uploads: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| {
            r.method == "PUT" && r.target.contains("/_deploys/") && !r.copy_source && !r.target.contains(".json")
        })
        .collect();
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    assert!(uploads[0].target.contains("about/index.html"));
    // The router's store: one describe (its size, and the ETag both writes chain from), the
    // routing write, the switch; and the read of what production serves.
    let store_calls: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.target.contains("/key-value-stores/"))
        .map(|r| match (r.method.as_str(), r.target.split('?').next().unwrap().rsplit_once("/keys")) {
            ("POST", _) => "UpdateKeys".to_string(),
            ("GET", Some((_, ""))) => "ListKeys".to_string(),
            ("GET", Some(_)) => "GetKey".to_string(),
            (method, _) => format!("{method} Describe"),
        })
        .collect();
    assert_eq!(store_calls, ["GetKey", "GET Describe", "UpdateKeys", "UpdateKeys"], "{store_calls:?}");
    // The base is the live deploy: its manifest is read once, for both roles.
    let manifest_reads = proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.target.contains(&format!("_deploys/production/{id}.json")))
        .count();
    assert_eq!(manifest_reads, 1);
    let mut files = SITE.to_vec();
    files[1] = ("about/index.html", "<h1>about us</h1>");
    assert_eq!(deployed(&site, "production", &id2), expected(&files[1..2]), "it holds only what changed");
    assert_eq!(served(&site, "production", &id2), expected(&files));
    assert_eq!(deployed(&site, "production", &id), expected(SITE), "the old deploy is untouched");
    assert_eq!(kvs(&site)["production"], id2.as_str());

    // `skiff deploys` lists both, newest first, the live one marked.
    let list = site.skiff(&["deploys", "--json"]).success().json();
    let ids: Vec<&str> = list["deploys"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [id2.as_str(), id.as_str()]);
    assert_eq!(list["deploys"][0]["live"], true);
    assert_eq!(list["deploys"][1]["live"], false);
    let text = site.skiff(&["deploys"]).success();
    assert!(text.stdout.contains(&format!("* {id2}")), "{}", text.stdout);

    // Rollback flips the pointer back and writes no object of a deploy.
    let proxy = Proxy::start(&endpoint());
    let back = site.skiff_at(&proxy.endpoint, &["rollback", "--json"]).success().json();
    assert_eq!(back["deploy_id"], id.as_str());
    assert_eq!(back["previous"], id2.as_str());
    assert_eq!(kvs(&site)["production"], id.as_str());
    assert_eq!(live(&site, "production").as_deref(), Some(id.as_str()));
    let deploy_writes: Vec<_> = proxy.writes().into_iter().filter(|r| r.target.contains("/_deploys/")).collect();
    assert!(deploy_writes.is_empty(), "{deploy_writes:?}");
    // And forward again, by name.
    site.skiff(&["rollback", &id2]).success();
    assert_eq!(kvs(&site)["production"], id2.as_str());
    site.skiff(&["rollback", "no-such-deploy"]).failure(1, &["no deploy `no-such-deploy`", "skiff deploys"]);
}

#[test]
fn a_live_deploy_of_an_older_skiff_named_by_sha256_is_the_base_of_the_next_delta_deploy() {
    let site = provisioned("format1", SITE);
    let id = site.skiff(&["publish", "--json"]).success().json()["deploy_id"].as_str().unwrap().to_string();
    // Its manifest as skiff 0.1 wrote it: format 1, the bytes named by SHA-256.
    let key = format!("_deploys/production/{id}.json");
    let mut manifest: serde_json::Value = serde_json::from_slice(&objects(&site)[&key]).unwrap();
    manifest["format"] = 1.into();
    for (name, entry) in manifest["files"].as_object_mut().unwrap() {
        let entry = entry.as_object_mut().unwrap();
        entry.remove("blake3").unwrap_or_else(|| panic!("`{name}` is named by BLAKE3"));
        let body = SITE.iter().find(|(k, _)| k == name).unwrap().1;
        let sha256 = crate::harness::invariants::sha256_hex(body.as_bytes());
        entry.insert("sha256".into(), sha256.into());
    }
    put(&site, &key, &serde_json::to_vec(&manifest).unwrap());
    write(&site, &[("assets/app.js", "console.log(2)")]);
    let second = site.skiff(&["publish", "--json"]).success().json();
    let id2 = second["deploy_id"].as_str().unwrap().to_string();
    assert_eq!((second["summary"]["uploaded"].as_u64(), second["summary"]["copied"].as_u64()), (Some(1), Some(0)));
    assert_eq!(base_of(&site, "production", &id2), Some(format!("production/{id}")));
    let mut files = SITE.to_vec();
    files[4] = ("assets/app.js", "console.log(2)");
    assert_eq!(served(&site, "production", &id2), expected(&files));
    let written: serde_json::Value =
        serde_json::from_slice(&objects(&site)[&format!("_deploys/production/{id2}.json")]).unwrap();
    assert_eq!(written["format"], 2);
    assert_eq!(written["files"]["assets/app.js"]["blake3"], blake3::hash(b"console.log(2)").to_hex().as_str());
}

#[test]
fn a_publish_that_fails_part_way_leaves_the_old_deploy_live_and_the_next_run_completes_it() {
    let site = provisioned("atomic-fail", SITE);
    let first = site.skiff(&["publish", "--json"]).success().json();
    let id = first["deploy_id"].as_str().unwrap().to_string();
    write(
        &site,
        &[("assets/site.css", "body{color:blue}"), ("assets/app.js", "console.log(2)"), ("index.html", "<h1>v2</h1>")],
    );
    let proxy = Proxy::start(&endpoint());
    let denied = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>injected</RequestId></Error>";
    proxy.fail_next("PUT", "/assets/app.js", 1, 403, denied);
    let run = site
        .skiff_at(&proxy.endpoint, &["publish"])
        .failure(1, &["assets/app.js", "did not go live", &format!("production still serves deploy {id}")]);
    assert!(run.stdout.is_empty());
    assert_eq!(kvs(&site)["production"], id.as_str(), "the old deploy is still live");
    assert_eq!(live(&site, "production").as_deref(), Some(id.as_str()));
    assert_eq!(objects(&site)["_skiff/404.html"], b"<h1>not found</h1>");
    assert!(!objects(&site).contains_key("_skiff/lock/production"), "no lock left behind");

    // The next run reuses what the failed one uploaded: only the file that failed and the
    // page held back behind it go up; the CSS it did upload is copied from it.
    let failed_id = site.state()["targets"]["production"]["deploys"][1]["id"].as_str().unwrap().to_string();
    let again = site.skiff(&["publish", "--json"]).success().json();
    let uploaded: Vec<&str> = again["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["op"] == "upload")
        .map(|a| a["key"].as_str().unwrap())
        .collect();
    assert_eq!(uploaded, ["assets/app.js", "index.html"], "{again}");
    let css = again["actions"].as_array().unwrap().iter().find(|a| a["key"] == "assets/site.css").unwrap();
    assert_eq!(css["from"], format!("_deploys/production/{failed_id}/assets/site.css"));
    let id3 = again["deploy_id"].as_str().unwrap().to_string();
    assert_eq!(kvs(&site)["production"], id3.as_str());
    let mut files = SITE.to_vec();
    files[0] = ("index.html", "<h1>v2</h1>");
    files[3] = ("assets/site.css", "body{color:blue}");
    files[4] = ("assets/app.js", "console.log(2)");
    assert_eq!(served(&site, "production", &id3), expected(&files));
}

#[test]
fn two_publishes_to_one_target_exclude_each_other_and_the_state_stays_consistent() {
    let many: Vec<(String, String)> = (0..30).map(|i| (format!("assets/f{i:02}.css"), format!("/* {i} */"))).collect();
    let mut files: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    files.push(("index.html", "<h1>home</h1>"));
    let site = provisioned("lock", &files);
    let slow = Proxy::start_with_delay(&endpoint(), Duration::from_millis(60));
    let mut command = crate::harness::command_at(&slow.endpoint, &["publish", "--concurrency", "2"]);
    command.current_dir(site.dir.path()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let first = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_mins(1);
    while !slow.writes().iter().any(|r| r.target.contains("/_deploys/")) {
        assert!(Instant::now() < deadline, "the first publish never started uploading");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The second one, not willing to wait, is refused and names the holder.
    let refused =
        site.skiff(&["publish", "--lock-timeout", "0s"]).failure(1, &["`production` is locked by", "publish"]);
    assert!(refused.stderr.contains("pid"), "{}", refused.stderr);
    // A third waits for the first to finish, then publishes.
    let waited = site.skiff(&["publish", "--lock-timeout", "2m", "--json"]).success().json();
    let first = crate::harness::finish(first.wait_with_output().unwrap());
    assert_eq!(first.code, 0, "{}", first.stderr);
    let state = site.state();
    let deploys = state["targets"]["production"]["deploys"].as_array().unwrap();
    assert_eq!(deploys.len(), 2, "{state}");
    assert!(deploys.iter().all(|d| d["complete"] == true));
    assert_eq!(state["targets"]["production"]["live"], waited["deploy_id"]);
    assert_eq!(kvs(&site)["production"], waited["deploy_id"]);
    assert!(!objects(&site).keys().any(|k| k.starts_with("_skiff/lock")), "locks released");
}

#[test]
fn an_expired_lock_is_taken_over() {
    let site = provisioned("expired-lock", SITE);
    let stale = serde_json::json!({"owner": "ci@old-runner pid 1", "operation": "publish", "started": 1, "expires": 2});
    put(&site, "_skiff/lock/production", stale.to_string().as_bytes());
    let run = site.skiff(&["publish", "--lock-timeout", "0s"]).success();
    assert!(run.stderr.contains("took over the stale deploy lock of ci@old-runner pid 1"), "{}", run.stderr);
    assert!(!objects(&site).contains_key("_skiff/lock/production"));
}

#[test]
fn a_lock_released_during_its_takeover_is_taken_again() {
    let site = provisioned("lock-vanishes", SITE);
    let stale = serde_json::json!({"owner": "ci@old-runner pid 1", "operation": "publish", "started": 1, "expires": 2});
    put(&site, "_skiff/lock/production", stale.to_string().as_bytes());
    // The takeover (PUT If-Match) finds the key gone, as S3 answers when the old holder
    // released its lock between our read and our write.
    let proxy = Proxy::start(&endpoint());
    let gone = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>_skiff/lock/production</Key></Error>";
    proxy.fail_next_with_header("PUT", "_skiff/lock/production", "if-match", 1, 404, gone);
    let run = site.skiff_at(&proxy.endpoint, &["publish", "--lock-timeout", "0s", "--json"]).success();
    let takeovers: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.target.contains("_skiff/lock/production"))
        .collect();
    assert!(takeovers.len() >= 3, "the lock was tried again after the 404: {takeovers:?}");
    assert_eq!(kvs(&site)["production"], run.json()["deploy_id"]);
    assert!(!objects(&site).contains_key("_skiff/lock/production"));
}

#[test]
fn a_publish_refused_by_the_lock_stops_its_scan() {
    let site = provisioned("lock-stops-scan", SITE);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let held = serde_json::json!({"owner": "ci@other-runner pid 7", "operation": "publish", "started": now, "expires": now + 3600});
    put(&site, "_skiff/lock/production", held.to_string().as_bytes());
    // A sparse 3 GiB file keeps the scan busy for seconds; the refusal comes well before.
    let public = site.dir.path().join("public");
    std::fs::File::create(public.join("big.bin")).unwrap().set_len(3 << 30).unwrap();
    // Old enough for the hash cache to remember every file, so a finished scan writes it.
    for path in SITE.iter().map(|(path, _)| *path).chain(["big.bin"]) {
        let file = std::fs::File::options().write(true).open(public.join(path)).unwrap();
        file.set_modified(std::time::SystemTime::now() - Duration::from_hours(1)).unwrap();
    }
    let cache = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut command = crate::harness::command_at(&endpoint(), args);
        command.current_dir(site.dir.path()).env("SKIFF_CACHE_DIR", cache.path());
        crate::harness::finish(command.output().unwrap())
    };
    run(&["publish", "--hash-cache", "--lock-timeout", "0s"])
        .failure(1, &["`production` is locked by ci@other-runner"]);
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0, "the stopped scan did not update the cache");
    // A dry run takes no lock: its scan runs to the end and writes the cache.
    run(&["publish", "--hash-cache", "--dry-run"]).success();
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 1, "a finished scan writes the cache");
}

#[test]
fn retention_keeps_the_live_deploy_the_one_it_replaced_and_the_base_they_stand_on() {
    let site = provisioned("retention", SITE);
    site.configure("\n[deploy]\nkeep = 1\n");
    let mut ids = Vec::new();
    let mut publish = |n: usize, args: &[&str]| {
        write(&site, &[("index.html", &format!("<h1>v{n}</h1>"))]);
        let args = [&["publish", "--json"], args].concat();
        ids.push(site.skiff(&args).success().json()["deploy_id"].as_str().unwrap().to_string());
        ids.clone()
    };
    let kept = |site: &Site| -> Vec<String> {
        let state = site.state();
        let deploys = state["targets"]["production"]["deploys"].as_array().unwrap().clone();
        deploys.iter().map(|d| d["id"].as_str().unwrap().to_string()).collect()
    };
    publish(0, &[]);
    publish(1, &[]);
    let ids = publish(2, &[]);
    // Both later deploys stand on the first: it stays, beyond `keep`.
    assert_eq!(base_of(&site, "production", &ids[2]), Some(format!("production/{}", ids[0])));
    assert_eq!(kept(&site), [ids[0].clone(), ids[1].clone(), ids[2].clone()]);
    assert_eq!(deployed(&site, "production", &ids[0]).len(), 5, "the base is whole");
    let mut files = SITE.to_vec();
    files[0] = ("index.html", "<h1>v1</h1>");
    assert_eq!(served(&site, "production", &ids[1]), expected(&files));
    // `--force` makes a full deploy, a new base; the next deploy stands on it, and then no
    // deploy kept stands on the first any more.
    let ids = publish(3, &["--force"]);
    assert_eq!(base_of(&site, "production", &ids[3]), None);
    assert_eq!(
        kept(&site),
        [ids[0].clone(), ids[2].clone(), ids[3].clone()],
        "the replaced deploy still stands on the first"
    );
    let ids = publish(4, &[]);
    assert_eq!(base_of(&site, "production", &ids[4]), Some(format!("production/{}", ids[3])));
    assert_eq!(kept(&site), [ids[3].clone(), ids[4].clone()]);
    assert!(deployed(&site, "production", &ids[0]).is_empty(), "the old base's objects are gone");
    assert!(!objects(&site).contains_key(&format!("_deploys/production/{}.json", ids[0])));
    assert!(!kvs(&site).as_object().unwrap().keys().any(|k| k.contains(&ids[0]) || k.contains(&ids[2])));
    files[0] = ("index.html", "<h1>v4</h1>");
    assert_eq!(served(&site, "production", &ids[4]), expected(&files));
}

#[test]
fn previews_get_their_own_url_seeded_from_production_and_can_be_listed_and_deleted() {
    let site = provisioned("previews", SITE);
    site.skiff(&["publish"]).success();
    write(&site, &[("index.html", "<h1>new feature</h1>")]);
    let outputs = site.dir.path().join("github-output");
    let summary = site.dir.path().join("github-summary");
    let mut command = crate::harness::command_at(&endpoint(), &["publish", "--preview", "Feature/Login", "--json"]);
    command
        .current_dir(site.dir.path())
        .env("GITHUB_OUTPUT", &outputs)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_SHA", "0123456789abcdef");
    let run = crate::harness::finish(command.output().unwrap()).success();
    let doc = run.json();
    let url = format!("https://feature-login.preview.{}/", site.domain);
    assert_eq!(doc["target"], "preview-feature-login");
    assert_eq!(doc["branch"], "Feature/Login");
    assert_eq!(doc["url"], url.as_str());
    let id = doc["deploy_id"].as_str().unwrap();
    assert!(id.ends_with("-0123456"), "the deploy id carries the commit: {id}");
    assert_eq!(doc["summary"]["uploaded"], 1, "a new preview stands on production's deploy: {doc}");
    assert_eq!(doc["summary"]["copied"], 0);
    let production = site.state()["targets"]["production"]["live"].as_str().unwrap().to_string();
    assert_eq!(base_of(&site, "preview-feature-login", id), Some(format!("production/{production}")));
    let mut files = SITE.to_vec();
    files[0] = ("index.html", "<h1>new feature</h1>");
    assert_eq!(served(&site, "preview-feature-login", id), expected(&files));
    assert_eq!(kvs(&site)["preview-feature-login"], id);
    assert_ne!(kvs(&site)["production"], id, "production is untouched");
    let written = std::fs::read_to_string(&outputs).unwrap();
    assert_eq!(written, format!("url={url}\ndeploy-id={id}\npreview-url={url}\n"));
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(summary.contains("Preview of `Feature/Login`") && summary.contains(&url), "{summary}");

    // A branch whose slug collides gets a hash suffix; both are listed.
    let other = site.skiff(&["publish", "--preview", "feature-login", "--json"]).success().json();
    let other_target = other["target"].as_str().unwrap().to_string();
    assert!(other_target.starts_with("preview-feature-login-") && other_target != "preview-feature-login");
    let list = site.skiff(&["previews", "list", "--json"]).success().json();
    let mut branches: Vec<&str> =
        list["previews"].as_array().unwrap().iter().map(|p| p["branch"].as_str().unwrap()).collect();
    branches.sort_unstable();
    assert_eq!(branches, ["Feature/Login", "feature-login"]);

    // Deleting one removes its router entry and every object; the other stays. The name
    // `feature-login` is a branch of its own, not the slug of `Feature/Login`.
    site.skiff(&["previews", "delete", "feature-login"]).success();
    assert!(kvs(&site).get(&other_target).is_none());
    assert!(kvs(&site).get("preview-feature-login").is_some());
    site.skiff(&["publish", "--preview", "feature-login"]).success();
    let other_target = site.skiff(&["publish", "--preview", "feature-login", "--json"]).success().json()["target"]
        .as_str()
        .unwrap()
        .to_string();
    site.skiff(&["previews", "delete", "Feature/Login"]).success();
    assert!(kvs(&site).get("preview-feature-login").is_none());
    assert!(!objects(&site).keys().any(|k| k.starts_with("_deploys/preview-feature-login/")));
    assert!(site.state()["targets"].get("preview-feature-login").is_none());
    assert!(kvs(&site).get(&other_target).is_some());
    site.skiff(&["previews", "delete", "Feature/Login"]).failure(1, &["no preview of `Feature/Login`"]);

    // Prune: the branches that still exist come on stdin.
    let mut prune = crate::harness::command_at(&endpoint(), &["previews", "prune", "--keep-branches"]);
    prune
        .current_dir(site.dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = prune.spawn().unwrap();
    {
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(b"main\nrefs/heads/other\n").unwrap();
    }
    crate::harness::finish(child.wait_with_output().unwrap()).success();
    assert!(kvs(&site).get(&other_target).is_none());
    assert!(!objects(&site).keys().any(|k| k.starts_with("_deploys/preview-")));
    assert!(kvs(&site).get("production").is_some());
}

#[test]
fn previews_keep_their_own_retention_roll_back_alone_and_prune_refuses_an_empty_branch_list() {
    let site = provisioned("preview-keep", SITE);
    site.configure("\n[deploy]\nkeep_previews = 1\n");
    let production = site.skiff(&["publish", "--json"]).success().json()["deploy_id"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for n in 0..3 {
        write(&site, &[("index.html", &format!("<h1>feature v{n}</h1>"))]);
        let doc = site.skiff(&["publish", "--preview", "feat", "--json"]).success().json();
        ids.push(doc["deploy_id"].as_str().unwrap().to_string());
    }
    let target = "preview-feat";
    let kept: Vec<String> = site.state()["targets"][target]["deploys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kept, [ids[1].clone(), ids[2].clone()], "keep_previews = 1: the live one and the one it replaced");
    assert!(deployed(&site, target, &ids[0]).is_empty(), "the oldest preview deploy's objects are gone");
    assert_eq!(site.state()["targets"]["production"]["deploys"].as_array().unwrap().len(), 1, "production untouched");

    // A preview rolls back on its own; production keeps its deploy.
    site.skiff(&["rollback", "--preview", "feat"]).success();
    assert_eq!(kvs(&site)[target], ids[1].as_str());
    assert_eq!(kvs(&site)["production"], production.as_str());

    // `--keep-branches` with nothing on stdin would delete every preview: it is refused.
    let mut prune = crate::harness::command_at(&endpoint(), &["previews", "prune", "--keep-branches"]);
    prune.current_dir(site.dir.path()).stdin(std::process::Stdio::null());
    crate::harness::finish(prune.output().unwrap()).failure(1, &["read no branch names", "refusing"]);
    assert_eq!(kvs(&site)[target], ids[1].as_str(), "the preview is still there");
}

#[test]
fn preview_flags_are_checked() {
    let site = Site::new("preview-flags");
    site.skiff(&["publish", "--preview", ""]).failure(2, &["`--preview` needs a branch name"]);
    site.skiff(&["publish", "--preview", "x", "--prefix", "blog/"])
        .failure(2, &["`--preview` needs a provisioned site"]);
    // Not provisioned yet: the bucket does not even exist.
    write(&site, SITE);
    site.skiff(&["publish", "--preview", "x"]).failure(1, &["not a provisioned skiff site", "skiff provision"]);
    site.skiff(&["rollback"]).failure(1, &["not a provisioned skiff site"]);
    // Refused before the site is scanned: a scan would have written the hash cache (and the
    // refusal would have waited for it). The cache keeps only files older than a few seconds.
    for (path, _) in SITE {
        let file = std::fs::File::options().write(true).open(site.dir.path().join("public").join(path)).unwrap();
        file.set_modified(std::time::SystemTime::now() - Duration::from_hours(1)).unwrap();
    }
    let cache = tempfile::tempdir().unwrap();
    let mut command = crate::harness::command_at(&endpoint(), &["publish", "--preview", "x", "--hash-cache"]);
    command.current_dir(site.dir.path()).env("SKIFF_CACHE_DIR", cache.path());
    crate::harness::finish(command.output().unwrap()).failure(1, &["not a provisioned skiff site"]);
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0, "no hash cache written");
    // The same publish without `--preview` scans (and so writes the cache): the check above can fail.
    let mut command = crate::harness::command_at(&endpoint(), &["publish", "--hash-cache", "--dry-run"]);
    command.current_dir(site.dir.path()).env("SKIFF_CACHE_DIR", cache.path());
    let run = crate::harness::finish(command.output().unwrap());
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 1, "a scan writes the hash cache: {}", run.stderr);
}

#[test]
fn a_bucket_published_in_place_and_provisioned_later_publishes_atomically() {
    let site = provisioned("was-in-place", SITE);
    // What an earlier in-place publish left at the root.
    put(&site, ".skiff/manifest.json", br#"{"format":1,"generator":"skiff","files":{}}"#);
    let fifo = site.dir.path().join("public/pipe");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let run = site.skiff(&["publish", "--json"]).success();
    let doc = run.json();
    assert_eq!(doc["mode"], "atomic");
    assert_eq!(kvs(&site)["production"], doc["deploy_id"]);
    // The in-place attempt's scan is the one published: its warning shows once.
    assert_eq!(run.stderr.matches("not a regular file").count(), 1, "{}", run.stderr);
    let deploy = doc["deploy_id"].as_str().unwrap();
    let deployed: Vec<_> = objects(&site).into_keys().filter(|k| k.contains(deploy)).collect();
    assert!(deployed.iter().any(|k| k.ends_with("/index.html")), "{deployed:?}");
}
