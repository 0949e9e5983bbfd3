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

/// Secrets and tooling stay home by default: `.env*`, every dotfile and dot-directory but
/// `.well-known/`, and `node_modules/`; the run says what it left out; `[deploy] include`
/// publishes a named one anyway.
#[test]
fn dotfiles_env_files_and_node_modules_are_left_out_by_default_and_said() {
    let bucket = crate::harness::Bucket::new("secrets-guard");
    let site = crate::harness::Site::new(&[
        ("index.html", b"<p>home</p>"),
        (".env", b"AWS_SECRET_ACCESS_KEY=leak"),
        (".env.production", b"TOKEN=leak"),
        ("docs/.env.local", b"TOKEN=leak"),
        (".git/config", b"[core]"),
        (".well-known/security.txt", b"Contact: mailto:security@example.com"),
        ("node_modules/pkg/index.js", b"module.exports = 1"),
        ("assets/.keep", b""),
        ("assets/app.css", b"a{}"),
    ]);
    let dir = site.path().to_str().unwrap().to_string();
    let run = crate::harness::skiff(&["publish", &dir, "--bucket", &bucket.name]).success();
    assert_eq!(bucket.keys(), [".skiff/manifest.json", ".well-known/security.txt", "assets/app.css", "index.html"]);
    assert!(
        run.stderr.contains("left out by default: `.env`, `.env.production`, `.git/` and 3 more (6 entries"),
        "{}",
        run.stderr
    );
    // Named in `include`, a dotfile goes up; the rest stay home.
    let config = tempfile::tempdir().unwrap();
    std::fs::write(config.path().join("skiff.toml"), "[deploy]\ninclude = [\"assets/.keep\"]\n").unwrap();
    let mut command =
        crate::harness::command_at(&crate::harness::endpoint(), &["publish", &dir, "--bucket", &bucket.name]);
    crate::harness::finish(command.current_dir(config.path()).output().unwrap()).success();
    assert!(bucket.keys().contains(&"assets/.keep".to_string()));
    assert!(!bucket.keys().iter().any(|k| k.contains(".env") || k.starts_with("node_modules")));
}

/// A project's root given on the command line is refused before any request, with the
/// build output it probably meant; named as `[site] dir` in skiff.toml, it is published
/// (with the guard's exclusions).
#[test]
fn a_project_root_is_refused_unless_the_config_names_it() {
    let bucket = crate::harness::Bucket::new("project-root");
    let site = crate::harness::Site::new(&[
        ("package.json", b"{\"name\": \"site\"}"),
        ("astro.config.mjs", b"export default {}"),
        ("src/pages/index.astro", b"---\n---\n<p>home</p>"),
        ("dist/index.html", b"<p>home</p>"),
    ]);
    let dir = site.path().to_str().unwrap().to_string();
    let proxy = crate::harness::proxy::Proxy::start(&crate::harness::endpoint());
    let run = crate::harness::skiff_at(&proxy.endpoint, &["publish", &dir, "--bucket", &bucket.name], None);
    let dist = site.path().join("dist").display().to_string();
    run.failure(
        2,
        &["looks like a project's root", "`astro.config.mjs`", &format!("`skiff publish {dist}`"), "skiff init"],
    );
    assert_eq!(proxy.requests(), [], "refused before any request");
    assert!(bucket.keys().is_empty());

    std::fs::write(site.path().join("skiff.toml"), format!("[site]\ndir = \".\"\nbucket = \"{}\"\n", bucket.name))
        .unwrap();
    let mut command = crate::harness::command_at(&crate::harness::endpoint(), &["publish"]);
    crate::harness::finish(command.current_dir(site.path()).output().unwrap()).success();
    assert!(bucket.keys().contains(&"dist/index.html".to_string()));
}
