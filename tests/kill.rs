//! Kill tests: a publish SIGKILLed at many moments never leaves a broken site. In place, one
//! more publish makes the bucket equal the tree; atomic, the router always serves one
//! complete deploy, and the lock a killed run leaves behind does not block the next one.
//! `SKIFF_KILL_POINTS` sets the number of kill points (default 20; `scripts/kill-test` runs
//! a longer series).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::harness::proxy::Proxy;
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
