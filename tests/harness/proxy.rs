//! A recording HTTP/1.1 proxy between skiff and the emulator, on 127.0.0.1: it logs every
//! request's method, path and whether it is a server-side copy, and forwards it unchanged.
//! Tests use it to assert on what reached the emulator (no writes, only reads in a dry run).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// One request that went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub copy_source: bool,
    /// `X-Amz-Target` of JSON-protocol calls (ACM): `CertificateManager.ListCertificates`.
    pub amz_target: Option<String>,
    /// Whether the request sets an ACL (`x-amz-acl` or `x-amz-grant-*`): skiff never does.
    pub acl: bool,
    /// The signing name of the service, from the SigV4/SigV4a credential scope in
    /// `Authorization` (`…/us-east-1/s3/aws4_request`): `s3`, `cloudfront`, `acm`, …
    pub service: Option<String>,
    /// The access key id the request was signed with (never the secret).
    pub access_key: Option<String>,
    /// The region of the credential scope (SigV4; SigV4a has none).
    pub region: Option<String>,
}

impl Request {
    /// Whether the request changes something: everything but GET and HEAD, and but the
    /// JSON-protocol reads (ACM's `List*`, `Describe*`, `Get*`, sent as POST).
    pub fn is_write(&self) -> bool {
        if let Some(operation) = self.amz_target.as_deref().and_then(|t| t.rsplit('.').next()) {
            return !["List", "Describe", "Get"].iter().any(|read| operation.starts_with(read));
        }
        !matches!(self.method.as_str(), "GET" | "HEAD")
    }
}

pub struct Proxy {
    pub endpoint: String,
    log: Arc<Mutex<Vec<Request>>>,
    faults: Arc<Mutex<Vec<Fault>>>,
    chaos: Arc<Mutex<Option<Chaos>>>,
    killer: Arc<Mutex<Option<Killer>>>,
}

/// When the process under test is SIGKILLed: at the `at`-th request from now (1-based),
/// before it is forwarded, or after upstream answered and before the answer is relayed.
#[derive(Debug)]
struct Killer {
    at: usize,
    after: bool,
    seen: usize,
    /// The process; 0 until the test has spawned it.
    pid: Arc<AtomicU32>,
}

/// Where a kill lands relative to its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// The request never reaches upstream.
    Before,
    /// Upstream applied it; the answer never reaches the process.
    After,
}

/// The kinds of fault chaos mode injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// 500 InternalError, not forwarded.
    InternalError,
    /// 503 SlowDown, not forwarded.
    SlowDown,
    /// The connection closes before the request is forwarded.
    ResetBefore,
    /// The request is forwarded (and applied), then the connection closes unanswered.
    ResetAfter,
    /// The request is forwarded; the response is cut off half way.
    Truncated,
    /// The request is forwarded after 300 ms.
    Latency,
}

/// The status of a [`Fault`] that forwards the request and truncates the response.
const TRUNCATE: u16 = 0;

const KINDS: [Kind; 6] =
    [Kind::InternalError, Kind::SlowDown, Kind::ResetBefore, Kind::ResetAfter, Kind::Truncated, Kind::Latency];

/// Seeded random faults on a share of requests (xorshift64*: the same seed gives the same
/// sequence of decisions for the same sequence of requests).
#[derive(Debug)]
struct Chaos {
    state: u64,
    /// Faults per million requests.
    rate: u64,
    injected: BTreeMap<Kind, usize>,
    requests: usize,
}

impl Chaos {
    fn next(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn decide(&mut self) -> Option<Kind> {
        self.requests += 1;
        if self.next() % 1_000_000 >= self.rate {
            return None;
        }
        let kind = KINDS[usize::try_from(self.next() % KINDS.len() as u64).unwrap()];
        *self.injected.entry(kind).or_default() += 1;
        Some(kind)
    }
}

/// A canned answer for the next `count` requests whose method and target match: the
/// request does not reach the emulator.
#[derive(Debug, Clone)]
struct Fault {
    method: String,
    target_contains: String,
    /// A header the request must carry to match (any value).
    header: Option<String>,
    count: usize,
    status: u16,
    body: String,
    /// Extra response headers (`x-amz-bucket-region: eu-west-1`).
    headers: Vec<(String, String)>,
    /// The fault waits until a request with this method and target fragment has gone
    /// through (`None` once it has, or from the start).
    after: Option<(String, String)>,
}

impl Proxy {
    /// Listen on a free 127.0.0.1 port and forward to `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> Self {
        Self::start_with_delay(upstream, Duration::ZERO)
    }

    /// Like `start`, but every request waits `delay` before it is forwarded.
    pub fn start_with_delay(upstream: &str, delay: Duration) -> Self {
        let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let faults: Arc<Mutex<Vec<Fault>>> = Arc::new(Mutex::new(Vec::new()));
        let chaos: Arc<Mutex<Option<Chaos>>> = Arc::new(Mutex::new(None));
        let shared = Arc::clone(&log);
        let shared_faults = Arc::clone(&faults);
        let shared_chaos = Arc::clone(&chaos);
        let killer: Arc<Mutex<Option<Killer>>> = Arc::new(Mutex::new(None));
        let shared_killer = Arc::clone(&killer);
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let (upstream, log, faults, chaos, killer) = (
                    upstream.clone(),
                    Arc::clone(&shared),
                    Arc::clone(&shared_faults),
                    Arc::clone(&shared_chaos),
                    Arc::clone(&shared_killer),
                );
                thread::spawn(move || {
                    let _ = serve(client, &upstream, &log, &faults, &chaos, &killer, delay);
                });
            }
        });
        Self { endpoint, log, faults, chaos, killer }
    }

    /// SIGKILL the process whose id the returned slot will hold at the `at`-th request from
    /// now (1-based), at `moment`. Spawn the process, then store its id in the slot.
    pub fn kill_at(&self, at: usize, moment: Moment) -> Arc<AtomicU32> {
        let pid = Arc::new(AtomicU32::new(0));
        *self.killer.lock().unwrap() =
            Some(Killer { at, after: moment == Moment::After, seen: 0, pid: Arc::clone(&pid) });
        pid
    }

    /// Inject a random fault (see [`Kind`]) into `percent` of the requests from now on,
    /// decided by a generator seeded with `seed`.
    pub fn chaos(&self, seed: u64, percent: u64) {
        let rate = percent.min(100) * 10_000;
        *self.chaos.lock().unwrap() = Some(Chaos { state: seed.max(1), rate, injected: BTreeMap::new(), requests: 0 });
    }

    /// Stop injecting; return the faults injected by kind and the requests seen meanwhile.
    pub fn calm(&self) -> (BTreeMap<Kind, usize>, usize) {
        self.chaos.lock().unwrap().take().map(|c| (c.injected, c.requests)).unwrap_or_default()
    }

    /// Answer the next `count` matching requests with `status` and an XML `body`.
    pub fn fail_next(&self, method: &str, target_contains: &str, count: usize, status: u16, body: &str) {
        self.add_fault(method, target_contains, None, count, status, body, &[]);
    }

    /// Like `fail_next`, with extra response headers.
    pub fn fail_next_with_headers(
        &self,
        method: &str,
        target_contains: &str,
        count: usize,
        status: u16,
        body: &str,
        headers: &[(&str, &str)],
    ) {
        self.add_fault(method, target_contains, None, count, status, body, headers);
    }

    /// Like `fail_next`, for requests that also carry the header `header` (e.g. `If-Match`).
    pub fn fail_next_with_header(
        &self,
        method: &str,
        target_contains: &str,
        header: &str,
        count: usize,
        status: u16,
        body: &str,
    ) {
        self.add_fault(method, target_contains, Some(header), count, status, body, &[]);
    }

    #[allow(clippy::too_many_arguments)]
    fn add_fault(
        &self,
        method: &str,
        target_contains: &str,
        header: Option<&str>,
        count: usize,
        status: u16,
        body: &str,
        headers: &[(&str, &str)],
    ) {
        self.faults.lock().unwrap().push(Fault {
            method: method.into(),
            target_contains: target_contains.into(),
            header: header.map(str::to_string),
            count,
            status,
            body: body.into(),
            headers: headers.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect(),
            after: None,
        });
    }

    /// Like `fail_next`, armed only once a request `trigger_method` whose target contains
    /// `trigger_target` has gone through (e.g. the state write after the KVS switch).
    pub fn fail_after(
        &self,
        (trigger_method, trigger_target): (&str, &str),
        method: &str,
        target_contains: &str,
        count: usize,
        status: u16,
        body: &str,
    ) {
        self.add_fault(method, target_contains, None, count, status, body, &[]);
        let mut faults = self.faults.lock().unwrap();
        faults.last_mut().unwrap().after = Some((trigger_method.into(), trigger_target.into()));
    }

    /// Forward the next `count` matching requests, then cut each response off half way
    /// through its body.
    pub fn truncate_next(&self, method: &str, target_contains: &str, count: usize) {
        self.fail_next(method, target_contains, count, TRUNCATE, "");
    }

    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    pub fn writes(&self) -> Vec<Request> {
        self.requests().into_iter().filter(Request::is_write).collect()
    }

    pub fn clear(&self) {
        self.log.lock().unwrap().clear();
    }
}

fn read_head(reader: &mut impl BufRead) -> std::io::Result<Option<Vec<String>>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            return Ok(Some(lines));
        }
        lines.push(line);
    }
}

fn header<'a>(lines: &'a [String], name: &str) -> Option<&'a str> {
    lines.iter().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Read a body as framed by the headers and return its raw bytes (chunks included).
fn read_body(reader: &mut impl BufRead, lines: &[String]) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if header(lines, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            body.extend_from_slice(size_line.as_bytes());
            let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
            if size == 0 {
                loop {
                    let mut trailer = String::new();
                    reader.read_line(&mut trailer)?;
                    body.extend_from_slice(trailer.as_bytes());
                    if trailer.trim().is_empty() {
                        return Ok(body);
                    }
                }
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk);
        }
    }
    let length: usize = header(lines, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    body.resize(length, 0);
    reader.read_exact(&mut body)?;
    Ok(body)
}

/// The service of a signed request: the part before `aws4_request` in its credential scope.
fn signing_service(authorization: &str) -> Option<String> {
    let scope = authorization.split("Credential=").nth(1)?.split([',', ' ']).next()?;
    let parts: Vec<&str> = scope.split('/').collect();
    (parts.len() >= 4 && parts.last() == Some(&"aws4_request")).then(|| parts[parts.len() - 2].to_string())
}

/// The region of a SigV4 credential scope (`AKID/DATE/REGION/SERVICE/aws4_request`).
fn signing_region(authorization: &str) -> Option<String> {
    let scope = authorization.split("Credential=").nth(1)?.split([',', ' ']).next()?;
    let parts: Vec<&str> = scope.split('/').collect();
    (parts.len() == 5 && parts[4] == "aws4_request").then(|| parts[2].to_string())
}

fn take_fault(faults: &Mutex<Vec<Fault>>, method: &str, target: &str, head: &[String]) -> Option<Fault> {
    let mut faults = faults.lock().unwrap();
    let found = faults.iter_mut().find(|f| {
        f.after.is_none()
            && f.count > 0
            && f.method == method
            && target.contains(&f.target_contains)
            && f.header.as_deref().is_none_or(|name| header(head, name).is_some())
    });
    let taken = found.map(|fault| {
        fault.count -= 1;
        fault.clone()
    });
    // This request may arm the faults that wait for it (from the next request on).
    for fault in faults.iter_mut() {
        if fault.after.as_ref().is_some_and(|(m, t)| m == method && target.contains(t.as_str())) {
            fault.after = None;
        }
    }
    taken
}

/// Whether this request is the one to kill at, and when: `Some(after)`.
fn kill_moment(killer: &Mutex<Option<Killer>>) -> Option<(bool, Arc<AtomicU32>)> {
    let mut killer = killer.lock().unwrap();
    let armed = killer.as_mut()?;
    armed.seen += 1;
    (armed.seen == armed.at).then(|| (armed.after, Arc::clone(&armed.pid)))
}

/// SIGKILL the process in `pid` (waiting for the test to have stored it).
fn kill(pid: &AtomicU32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut id = pid.load(Ordering::SeqCst);
    while id == 0 && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
        id = pid.load(Ordering::SeqCst);
    }
    if id != 0 {
        let _ = std::process::Command::new("kill").args(["-KILL", &id.to_string()]).status();
    }
}

fn serve(
    client: TcpStream,
    upstream: &str,
    log: &Mutex<Vec<Request>>,
    faults: &Mutex<Vec<Fault>>,
    chaos: &Mutex<Option<Chaos>>,
    killer: &Mutex<Option<Killer>>,
    delay: Duration,
) -> std::io::Result<()> {
    let mut writer = client.try_clone()?;
    let mut reader = BufReader::new(client);
    loop {
        let Some(mut head) = read_head(&mut reader)? else { return Ok(()) };
        let mut parts = head[0].split(' ');
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        if header(&head, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            head.retain(|l| !l.to_ascii_lowercase().starts_with("expect:"));
        }
        let body = read_body(&mut reader, &head)?;
        log.lock().unwrap().push(Request {
            copy_source: header(&head, "x-amz-copy-source").is_some(),
            amz_target: header(&head, "x-amz-target").map(str::to_string),
            acl: head.iter().skip(1).any(|l| {
                let lower = l.to_ascii_lowercase();
                lower.starts_with("x-amz-acl:") || lower.starts_with("x-amz-grant-") || lower.contains("?acl")
            }) || target.contains("?acl")
                || target.contains("&acl"),
            method: method.clone(),
            target: target.clone(),
            service: header(&head, "authorization").and_then(signing_service),
            region: header(&head, "authorization").and_then(signing_region),
            access_key: header(&head, "authorization")
                .and_then(|a| a.split("Credential=").nth(1))
                .and_then(|scope| scope.split('/').next())
                .map(str::to_string),
        });
        let kill_here = kill_moment(killer);
        if let Some((false, pid)) = &kill_here {
            kill(pid);
            let _ = writer.shutdown(std::net::Shutdown::Both);
            return Ok(());
        }
        let fault = take_fault(faults, &method, &target, &head);
        if let Some(fault) = fault.as_ref().filter(|f| f.status != TRUNCATE) {
            let extra = fault.headers.iter().fold(String::new(), |mut text, (k, v)| {
                text.push_str(&format!("{k}: {v}\r\n"));
                text
            });
            let answer = format!(
                "HTTP/1.1 {} Injected\r\nContent-Type: text/xml\r\n{extra}Content-Length: {}\r\n\r\n{}",
                fault.status,
                fault.body.len(),
                fault.body
            );
            writer.write_all(answer.as_bytes())?;
            continue;
        }
        let injected = if fault.is_some() {
            Some(Kind::Truncated)
        } else if target.starts_with("/moto-api") || target.starts_with("/__double") {
            None
        } else {
            chaos.lock().unwrap().as_mut().and_then(Chaos::decide)
        };
        match injected {
            Some(kind @ (Kind::InternalError | Kind::SlowDown)) => {
                let (status, code) = if kind == Kind::SlowDown { (503, "SlowDown") } else { (500, "InternalError") };
                let body = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected</Message><RequestId>chaos</RequestId></Error>"
                );
                let answer = format!(
                    "HTTP/1.1 {status} Injected\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                writer.write_all(answer.as_bytes())?;
                continue;
            }
            Some(Kind::ResetBefore) => {
                let _ = writer.shutdown(std::net::Shutdown::Both);
                return Ok(());
            }
            Some(Kind::Latency) => thread::sleep(Duration::from_millis(300)),
            _ => {}
        }

        thread::sleep(delay);
        let mut up = TcpStream::connect(upstream)?;
        let mut out = Vec::new();
        for line in head.iter().filter(|l| !l.to_ascii_lowercase().starts_with("connection:")) {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        out.extend_from_slice(&body);
        up.write_all(&out)?;
        let mut response = Vec::new();
        up.read_to_end(&mut response)?;
        if let Some((true, pid)) = &kill_here {
            kill(pid);
            let _ = writer.shutdown(std::net::Shutdown::Both);
            return Ok(());
        }

        let split = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |p| p + 4);
        let (response_head, response_body) = response.split_at(split);
        let text = String::from_utf8_lossy(response_head);
        let lines: Vec<String> = text.split("\r\n").filter(|l| !l.is_empty()).map(str::to_string).collect();
        let mut rewritten = Vec::new();
        for line in lines.iter().filter(|l| {
            let lower = l.to_ascii_lowercase();
            !lower.starts_with("connection:") && !lower.starts_with("keep-alive:")
        }) {
            rewritten.extend_from_slice(line.as_bytes());
            rewritten.extend_from_slice(b"\r\n");
        }
        if header(&lines, "content-length").is_none()
            && header(&lines, "transfer-encoding").is_none()
            && method != "HEAD"
        {
            rewritten.extend_from_slice(format!("Content-Length: {}\r\n", response_body.len()).as_bytes());
        }
        rewritten.extend_from_slice(b"\r\n");
        match injected {
            Some(Kind::ResetAfter) => {
                let _ = writer.shutdown(std::net::Shutdown::Both);
                return Ok(());
            }
            Some(Kind::Truncated) => {
                // Cut the response short: the head (or part of it) and at most half the body.
                let cut = if response_body.len() > 1 {
                    rewritten.len() + response_body.len() / 2
                } else {
                    rewritten.len() / 2
                };
                rewritten.extend_from_slice(response_body);
                writer.write_all(&rewritten[..cut])?;
                let _ = writer.shutdown(std::net::Shutdown::Both);
                return Ok(());
            }
            _ => {}
        }
        rewritten.extend_from_slice(response_body);
        writer.write_all(&rewritten)?;
    }
}
