//! Test harness: the emulator handle, a bucket with helpers to read it back, a temporary site
//! builder, a runner for the binary, and a recording proxy that counts requests by method.

pub mod invariants;
pub mod proxy;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};

/// The dummy credentials every test uses; tests check they never appear in output.
pub const ACCESS_KEY: &str = "AKIATESTSKIFF0000001";
pub const SECRET_KEY: &str = "skiff-test-secret-key-DO-NOT-PRINT-1234";
/// A session token (as CI's OIDC credentials have); never printed either.
pub const SESSION_TOKEN: &str = "skiff-test-session-token-DO-NOT-PRINT-5678";

/// The emulator's endpoint, e.g. `http://127.0.0.1:5123`.
pub fn endpoint() -> String {
    match std::env::var("SKIFF_TEST_ENDPOINT") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "these tests need the local AWS emulator: run `scripts/test` (it installs and starts moto on 127.0.0.1 and sets SKIFF_TEST_ENDPOINT)"
        ),
    }
}

/// moto's own endpoint, behind the double (for what must not go through the double).
pub fn moto_endpoint() -> String {
    match std::env::var("SKIFF_TEST_MOTO") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!("these tests need the local AWS emulator: run `scripts/test` (it sets SKIFF_TEST_MOTO)"),
    }
}

/// A request to one of the double's test hooks (`/__double/...`); the response body.
pub fn double_hook(method: &str, path: &str, body: &str) -> String {
    use std::io::{Read as _, Write as _};
    let url = endpoint();
    let address = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    assert!(head.starts_with("HTTP/1.0 2") || head.starts_with("HTTP/1.1 2"), "{method} {path}: {response}");
    body.to_string()
}

pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
}

pub fn client_for(endpoint: &str) -> Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
        .build();
    Client::from_conf(config)
}

/// An object as read back from the emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub content_encoding: Option<String>,
    pub etag: String,
}

/// A fresh bucket on the emulator, named after the test.
pub struct Bucket {
    pub name: String,
    pub client: Client,
}

impl Bucket {
    pub fn new(test: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut name: String = format!("t{}-{n}-{}", std::process::id(), test)
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
            .collect();
        name.truncate(63);
        let name = name.trim_end_matches('-').to_string();
        let client = client_for(&endpoint());
        runtime().block_on(client.create_bucket().bucket(&name).send()).expect("create the test bucket");
        Self { name, client }
    }

    pub fn put(&self, key: &str, body: &[u8]) {
        runtime()
            .block_on(self.client.put_object().bucket(&self.name).key(key).body(body.to_vec().into()).send())
            .unwrap();
    }

    pub fn delete(&self, key: &str) {
        runtime().block_on(self.client.delete_object().bucket(&self.name).key(key).send()).unwrap();
    }

    /// Every object with its bytes and headers.
    pub fn objects(&self) -> BTreeMap<String, Object> {
        runtime().block_on(async {
            let mut out = BTreeMap::new();
            let mut pages = self.client.list_objects_v2().bucket(&self.name).into_paginator().send();
            while let Some(page) = pages.next().await {
                for item in page.unwrap().contents() {
                    let key = item.key().unwrap().to_string();
                    let got = self.client.get_object().bucket(&self.name).key(&key).send().await.unwrap();
                    let object = Object {
                        content_type: got.content_type().map(str::to_string),
                        cache_control: got.cache_control().map(str::to_string),
                        content_encoding: got.content_encoding().map(str::to_string),
                        etag: got.e_tag().unwrap_or_default().to_string(),
                        bytes: got.body.collect().await.unwrap().into_bytes().to_vec(),
                    };
                    out.insert(key, object);
                }
            }
            out
        })
    }

    pub fn keys(&self) -> Vec<String> {
        self.objects().into_keys().collect()
    }

    /// Keys and ETags: equal before and after means nothing was rewritten (with the proxy).
    pub fn manifest(&self, prefix: &str) -> serde_json::Value {
        let key = format!("{prefix}.skiff/manifest.json");
        let bytes = runtime().block_on(async {
            let got = self.client.get_object().bucket(&self.name).key(&key).send().await.unwrap();
            got.body.collect().await.unwrap().into_bytes().to_vec()
        });
        serde_json::from_slice(&bytes).unwrap()
    }
}

/// A CloudFront distribution on the emulator whose origin is a bucket.
pub struct Distribution {
    pub id: String,
    pub client: aws_sdk_cloudfront::Client,
}

impl Distribution {
    /// A distribution with one S3 origin on `bucket` with `origin_path` (`""` or `/site`).
    pub fn new(bucket: &str, origin_path: &str, enabled: bool) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        use aws_sdk_cloudfront::types::{
            DefaultCacheBehavior, DistributionConfig, Origin, Origins, S3OriginConfig, ViewerProtocolPolicy,
        };
        let config = aws_sdk_cloudfront::config::Builder::new()
            .behavior_version(aws_sdk_cloudfront::config::BehaviorVersion::latest())
            .region(aws_sdk_cloudfront::config::Region::new("us-east-1"))
            .endpoint_url(endpoint())
            .credentials_provider(aws_sdk_cloudfront::config::Credentials::new(
                ACCESS_KEY, SECRET_KEY, None, None, "test",
            ))
            .build();
        let client = aws_sdk_cloudfront::Client::from_conf(config);
        let reference = format!("test-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let origin = Origin::builder()
            .id("site")
            .domain_name(format!("{bucket}.s3.amazonaws.com"))
            .origin_path(origin_path)
            .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
            .build()
            .unwrap();
        let distribution = DistributionConfig::builder()
            .caller_reference(reference)
            .comment("")
            .enabled(enabled)
            .origins(Origins::builder().quantity(1).items(origin).build().unwrap())
            .default_cache_behavior(
                DefaultCacheBehavior::builder()
                    .target_origin_id("site")
                    .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
                    .cache_policy_id("658327ea-f89d-4fab-a63d-7e88639e58f6")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let out = runtime().block_on(client.create_distribution().distribution_config(distribution).send()).unwrap();
        let id = out.distribution().unwrap().id().to_string();
        Self { id, client }
    }

    /// The paths of every invalidation, oldest first, each sorted.
    pub fn invalidations(&self) -> Vec<Vec<String>> {
        runtime().block_on(async {
            let list = self.client.list_invalidations().distribution_id(&self.id).send().await.unwrap();
            let mut out = Vec::new();
            let summaries = list.invalidation_list().map(|l| l.items().to_vec()).unwrap_or_default();
            for summary in summaries {
                let got =
                    self.client.get_invalidation().distribution_id(&self.id).id(summary.id()).send().await.unwrap();
                let batch = got.invalidation().unwrap().invalidation_batch().unwrap();
                let mut paths = batch.paths().unwrap().items().to_vec();
                paths.sort();
                out.push((summary.create_time().as_nanos(), paths));
            }
            out.sort_by_key(|(time, _)| *time);
            out.into_iter().map(|(_, paths)| paths).collect()
        })
    }
}

/// A site directory in a temporary folder.
pub struct Site {
    pub dir: tempfile::TempDir,
}

impl Site {
    pub fn new(files: &[(&str, &[u8])]) -> Self {
        let site = Self { dir: tempfile::tempdir().unwrap() };
        for (path, body) in files {
            site.write(path, body);
        }
        site
    }

    /// A copy of the repository's `site-example/`.
    pub fn example() -> Self {
        let site = Self { dir: tempfile::tempdir().unwrap() };
        let root = example_dir();
        for entry in walk(&root) {
            let rel = entry.strip_prefix(&root).unwrap().to_str().unwrap().to_string();
            site.write(&rel, &std::fs::read(&entry).unwrap());
        }
        site
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, path: &str, body: &[u8]) {
        let full = self.dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, body).unwrap();
    }

    pub fn remove(&self, path: &str) {
        std::fs::remove_file(self.dir.path().join(path)).unwrap();
    }

    /// Files relative to the root, with their bytes.
    pub fn files(&self) -> BTreeMap<String, Vec<u8>> {
        walk(self.dir.path())
            .into_iter()
            .map(|p| {
                (p.strip_prefix(self.dir.path()).unwrap().to_str().unwrap().to_string(), std::fs::read(&p).unwrap())
            })
            .collect()
    }
}

pub fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("site-example")
}

/// Every file under `root`, sorted.
pub fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() { stack.push(path) } else { out.push(path) }
        }
    }
    out.sort();
    out
}

/// The result of one run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }

    #[track_caller]
    pub fn success(self) -> Self {
        assert_eq!(self.code, 0, "skiff failed\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    #[track_caller]
    pub fn failure(self, code: i32, needles: &[&str]) -> Self {
        assert_eq!(self.code, code, "expected exit {code}\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        for needle in needles {
            assert!(self.stderr.contains(needle), "stderr should mention `{needle}`:\n{}", self.stderr);
        }
        self
    }
}

/// `skiff ARGS` against `endpoint` with test credentials and no profile files, not started.
pub fn command_at(endpoint: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_skiff"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_MAX_ATTEMPTS", "2");
    command
}

/// Collect a finished child's output, checking the secret key was never printed.
/// Start a skiff command in the background, its output captured.
pub fn spawn(command: &mut Command) -> std::process::Child {
    command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
}

/// Wait (a minute at most) until `ready` holds; `what` says what never happened.
pub fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_mins(1);
    while !ready() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Ctrl-C a running skiff and collect how it ended.
pub fn interrupt(child: std::process::Child) -> Run {
    signal(child, "INT")
}

/// Send `SIG<name>` (`INT`, `TERM`) to a running skiff and collect how it ended.
pub fn signal(child: std::process::Child, name: &str) -> Run {
    let status = Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    finish(child.wait_with_output().unwrap())
}

pub fn finish(output: Output) -> Run {
    let Output { status, stdout, stderr } = output;
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    for secret in [SECRET_KEY, SESSION_TOKEN] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a secret was printed:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
    run
}

/// Run `skiff ARGS` against `endpoint`, in `dir` when given.
pub fn skiff_at(endpoint: &str, args: &[&str], dir: Option<&Path>) -> Run {
    let mut command = command_at(endpoint, args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    finish(command.output().expect("run the skiff binary"))
}

/// Run `skiff ARGS` against the emulator.
pub fn skiff(args: &[&str]) -> Run {
    skiff_at(&endpoint(), args, None)
}

/// Run `command` (from [`command_at`]) under a pseudo-terminal, as a person at a terminal
/// runs it: util-linux `script` gives it a terminal for stdin, stdout and stderr, and
/// `input` is typed into it. The terminal's output (stdout and stderr as one) is `stdout`.
pub fn in_terminal(command: &Command, input: &str) -> Run {
    let quote = |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"));
    let line = std::iter::once(quote(command.get_program()))
        .chain(command.get_args().map(quote))
        .collect::<Vec<_>>()
        .join(" ");
    let mut terminal = Command::new("script");
    terminal.args(["-qec", &line, "/dev/null"]).env_clear().env("TERM", "xterm");
    for (key, value) in command.get_envs() {
        if let Some(value) = value {
            terminal.env(key, value);
        }
    }
    if let Some(dir) = command.get_current_dir() {
        terminal.current_dir(dir);
    }
    let mut child = terminal
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs the command under a terminal");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
    finish(child.wait_with_output().unwrap())
}
