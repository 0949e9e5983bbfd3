//! Security promises as tests: no ACLs and no public access, state never uploaded where the
//! router serves, dry runs that only read, and no credentials in output at any verbosity
//! (the harness checks the secret key and the session token on every run).

use crate::harness::endpoint;
use crate::harness::proxy::Proxy;
use crate::provision::Site;

#[test]
fn provision_publish_preview_and_rollback_never_set_an_acl_or_print_a_credential() {
    let site = Site::new("security");
    let proxy = Proxy::start(&endpoint());
    site.skiff_at(&proxy.endpoint, &["-vv", "provision"]).success();
    let public = site.dir.path().join("public");
    std::fs::create_dir_all(&public).unwrap();
    std::fs::write(public.join("index.html"), b"<h1>one</h1>").unwrap();
    site.skiff_at(&proxy.endpoint, &["-vv", "publish"]).success();
    std::fs::write(public.join("index.html"), b"<h1>two</h1>").unwrap();
    site.skiff_at(&proxy.endpoint, &["-vv", "publish"]).success();
    site.skiff_at(&proxy.endpoint, &["-vv", "publish", "--preview", "feat"]).success();
    site.skiff_at(&proxy.endpoint, &["-vv", "rollback"]).success();
    let requests = proxy.requests();
    assert!(requests.len() > 50, "{} requests", requests.len());
    let acls: Vec<_> = requests.iter().filter(|r| r.acl).collect();
    assert!(acls.is_empty(), "requests that set an ACL: {acls:?}");

    // Nothing of skiff's state is inside a deploy the router serves.
    let bucket = crate::harness::Bucket { name: site.bucket.clone(), client: crate::harness::client_for(&endpoint()) };
    for key in bucket.keys() {
        if let Some(rest) = key.strip_prefix("_deploys/") {
            let inside: Vec<&str> = rest.splitn(3, '/').collect();
            if inside.len() == 3 {
                let served = inside[2];
                assert!(
                    !served.starts_with("_skiff/") && !served.contains(".skiff/") && !served.ends_with(".json.lock"),
                    "state inside a served deploy: {key}"
                );
            }
        } else {
            assert!(key.starts_with("_skiff/"), "everything else is skiff's own state: {key}");
        }
    }
    // The bucket stays private whatever was published.
    let block = crate::harness::runtime()
        .block_on(crate::provision::aws().s3.get_public_access_block().bucket(&site.bucket).send())
        .unwrap();
    let block = block.public_access_block_configuration().unwrap();
    assert_eq!(block.block_public_acls(), Some(true));
    assert_eq!(block.ignore_public_acls(), Some(true));
    assert_eq!(block.block_public_policy(), Some(true));
    assert_eq!(block.restrict_public_buckets(), Some(true));
}

#[test]
fn an_atomic_dry_run_only_reads() {
    let site = Site::new("atomic-dry");
    site.skiff(&["provision"]).success();
    let public = site.dir.path().join("public");
    std::fs::create_dir_all(&public).unwrap();
    std::fs::write(public.join("index.html"), b"<h1>one</h1>").unwrap();
    let proxy = Proxy::start(&endpoint());
    let run = site.skiff_at(&proxy.endpoint, &["publish", "--dry-run", "--json"]).success();
    assert_eq!(run.json()["deploy_id"], serde_json::Value::Null);
    assert!(proxy.writes().is_empty(), "{:?}", proxy.writes());
    let run = site.skiff_at(&proxy.endpoint, &["publish", "--dry-run", "--preview", "x"]).success();
    assert!(run.stderr.contains("would upload"), "{}", run.stderr);
    assert!(proxy.writes().is_empty(), "{:?}", proxy.writes());
}
