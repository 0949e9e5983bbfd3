#!/usr/bin/env python3
"""skiff against the other deployers, side by side, on a local S3 server.

Run through `bench/run`, which installs everything first. For each corpus size and each
tool: its own bucket and its own copy of the corpus; the scenarios in order (cold upload,
no-op, 1 % changed, rebuild, 1 % deleted, header rule); each timed RUNS times straight
against the server (wall, CPU, peak RSS from wait4), then run once more through a counting
proxy for requests by method and bytes sent; after that, the bucket is compared with the
tree (keys, sizes, MD5). Prints a Markdown table and writes JSON.
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ACCESS, SECRET, REGION = "benchkey", "bench-secret-key-0000", "us-east-1"
SCENARIOS = ["cold", "noop", "noop-cached", "change", "change-cached", "rebuild", "delete", "rules"]
# Scenarios only skiff runs, and the peers' scenario they are compared with.
SKIFF_ONLY = {"rules": None, "noop-cached": "noop", "change-cached": "change"}
# skiff's opt-in --hash-cache scenarios.
CACHED = ("noop-cached", "change-cached")
SERVER_NAMES = {"s3s": "bench/s3-server (s3s 0.14.1, in memory) on 127.0.0.1",
                "moto": "moto_server (see scripts/moto-requirements.txt) on 127.0.0.1"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


class Server:
    """The local S3 server every tool talks to.

    `s3s` (the default) is bench/s3-server: S3's wire protocol from the `s3s` crate, objects
    in memory under an ordered key index. It lists ETags, keeps headers, checks SigV4 and
    S3's conditional writes, and answers a LIST page in O(page), so it does not bound the
    no-op and change scenarios. `moto` is moto's S3 server (the tests' emulator): correct, but
    in Python its LIST and PUT bound those scenarios for every tool (measured in RESULTS.md)."""

    def __init__(self, kind, binary, root, latency_ms=0):
        self.kind = kind
        self.latency_ms = latency_ms
        self.root = root
        os.makedirs(root, exist_ok=True)
        self.port = free_port()
        self.log = open(os.path.join(root, f"{kind}.log"), "w")
        if kind == "s3s":
            argv = [binary, "--port", str(self.port), "--access-key", ACCESS, "--secret-key", SECRET,
                    "--latency-ms", str(latency_ms)]
        else:
            if latency_ms:
                raise SystemExit("--latency-ms needs --server s3s")
            argv = [binary, "-H", "127.0.0.1", "-p", str(self.port)]
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port)
        self.url = f"http://127.0.0.1:{self.port}"
        self.s3 = None

    def reset_bucket(self, bucket):
        """Empty a bucket (create it if needed)."""
        try:
            self.s3.create_bucket(Bucket=bucket)
        except self.s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        keys = [item["Key"] for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for item in page.get("Contents", [])]
        for i in range(0, len(keys), 1000):
            self.s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})

    def drop_bucket(self, bucket):
        self.reset_bucket(bucket)
        self.s3.delete_bucket(Bucket=bucket)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Proxy:
    def __init__(self, upstream_port, counts_file):
        self.port = free_port()
        self.counts_file = counts_file
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "proxy.py"), str(self.port), str(upstream_port), counts_file])
        wait_port(self.port)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()
        with open(self.counts_file) as f:
            return json.load(f)


def measure(argv, env, cwd=None):
    """Run a command; return (wall s, CPU s, peak RSS MiB, exit code, stderr tail).
    GNU time runs it: a child forked from this (large) Python process would inherit its
    RSS high-water mark across exec, so wait4's ru_maxrss here would be ours, not the
    tool's. stderr goes to a file: a pipe could fill up and stall the tool."""
    import tempfile
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as usage:
        start = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-o", usage.name, "-f", "%U %S %M", *argv],
                              env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        wall = time.perf_counter() - start
        err.seek(0)
        tail = err.read()[-600:].decode(errors="replace")
        fields = usage.read().split()[-3:]
    user, system, rss_kib = float(fields[0]), float(fields[1]), int(fields[2])
    return wall, user + system, rss_kib / 1024, proc.returncode, tail


class Tools:
    """How each tool is run, in its best documented mode for this job."""

    def __init__(self, work, skiff):
        self.work = work
        self.skiff = skiff
        # The rules scenario alternates two rule sets, so every run has headers to update.
        self.rules_flip = 0
        self.venv_bin = os.path.join(os.environ.get("BENCH_VENV", ""), "bin")

    def versions(self):
        def first_line(argv):
            try:
                return subprocess.run(argv, capture_output=True, text=True).stdout.strip().splitlines()[0]
            except (OSError, IndexError):
                return "missing"
        return {
            "skiff": first_line([self.skiff, "--version"]),
            "aws": subprocess.run([os.path.join(self.venv_bin, "aws"), "--version"], capture_output=True, text=True).stdout.strip()
            or subprocess.run([os.path.join(self.venv_bin, "aws"), "--version"], capture_output=True, text=True).stderr.strip(),
            "rclone": first_line(["rclone", "version"]),
            "hugo": first_line(["hugo", "version"]),
            "s3cmd": first_line(["s3cmd", "--version"]),
        }

    def base_env(self, endpoint):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
        env.update(AWS_ACCESS_KEY_ID=ACCESS, AWS_SECRET_ACCESS_KEY=SECRET, AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION,
                   AWS_EC2_METADATA_DISABLED="true", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        return env

    def command(self, tool, site, bucket, endpoint, scenario):
        env = self.base_env(endpoint)
        host = endpoint.removeprefix("http://")
        if tool == "skiff":
            config = os.path.join(self.work, "skiff.toml" if scenario != "rules" else f"skiff-rules-{self.rules_flip}.toml")
            if scenario == "rules":
                self.rules_flip ^= 1
            env.update(AWS_CONFIG_FILE="/dev/null", AWS_ENDPOINT_URL=endpoint,
                       SKIFF_CACHE_DIR=os.path.join(self.work, "hash-cache"))
            argv = [self.skiff, "-q", "-c", config, "publish", site, "--bucket", bucket, "--yes", "--max-deletes", "10000000"]
            if scenario in CACHED:
                argv.append("--hash-cache")
            return argv, env
        if tool == "aws":
            config = os.path.join(self.work, "aws-config")
            with open(config, "w") as f:
                f.write("[default]\ns3 =\n  max_concurrent_requests = 32\n  addressing_style = path\n")
            env.update(AWS_CONFIG_FILE=config)
            return [os.path.join(self.venv_bin, "aws"), "s3", "sync", site, f"s3://{bucket}", "--delete", "--endpoint-url", endpoint,
                    "--only-show-errors", "--no-progress"], env
        if tool == "rclone":
            env.update(RCLONE_CONFIG_BENCH_TYPE="s3", RCLONE_CONFIG_BENCH_PROVIDER="Other", RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=ACCESS,
                       RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=SECRET, RCLONE_CONFIG_BENCH_ENDPOINT=endpoint,
                       RCLONE_CONFIG_BENCH_REGION=REGION, RCLONE_CONFIG="/dev/null")
            return ["rclone", "sync", "--checksum", "--fast-list", "--transfers", "32", "--checkers", "32", site, f"bench:{bucket}"], env
        if tool == "hugo":
            project = os.path.join(self.work, "hugo-project")
            os.makedirs(project, exist_ok=True)
            with open(os.path.join(project, "config.toml"), "w") as f:
                f.write(f'publishDir = "{site}"\n[deployment]\n[[deployment.targets]]\nname = "bench"\n'
                        f'URL = "s3://{bucket}?endpoint={host}&disableSSL=true&s3ForcePathStyle=true&region={REGION}"\n')
            env.update(AWS_CONFIG_FILE="/dev/null")
            return ["hugo", "deploy", "--source", project, "--target", "bench", "--maxDeletes", "-1", "--workers", "32", "--quiet"], env
        if tool == "s3cmd":
            config = os.path.join(self.work, "s3cfg")
            with open(config, "w") as f:
                f.write(f"[default]\naccess_key = {ACCESS}\nsecret_key = {SECRET}\nhost_base = {host}\nhost_bucket = {host}\n"
                        f"use_https = False\nbucket_location = {REGION}\nsignature_v2 = False\n")
            return ["s3cmd", "-c", config, "sync", "--delete-removed", "--no-progress", "--quiet", site + "/", f"s3://{bucket}/"], env
        raise ValueError(tool)


def walk(root):
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            yield os.path.relpath(path, root).replace(os.sep, "/"), path


def md5_file(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check(s3, bucket, site):
    """Compare the bucket with the tree: missing, stale (bytes differ) and extra keys."""
    import unicodedata
    remote = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            if not item["Key"].startswith(".skiff/"):
                remote[item["Key"]] = item
    local = {unicodedata.normalize("NFC", key): path for key, path in walk(site)}
    missing = [k for k in local if k not in remote]
    extra = [k for k in remote if k not in local]
    stale = []
    for key, path in local.items():
        item = remote.get(key)
        if item is None:
            continue
        etag = item["ETag"].strip('"')
        if item["Size"] != os.path.getsize(path):
            stale.append(key)
        elif "-" not in etag and etag != md5_file(path):
            stale.append(key)
        elif "-" in etag:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            if hashlib.md5(body).hexdigest() != md5_file(path):
                stale.append(key)
    return {"missing": len(missing), "stale": len(stale), "extra": len(extra), "ok": not (missing or stale or extra)}


class Mutator:
    """Deterministic changes to a tool's copy of the corpus, different each time."""

    def __init__(self, site, seed):
        self.site = site
        self.rng = random.Random(seed)

    def files(self):
        return sorted(path for _, path in walk(self.site))

    def change(self, fraction=0.01):
        """1 % of the files: half keep their size (and get an older mtime), half grow."""
        files = [p for p in self.files() if os.path.getsize(p) > 16 and os.path.getsize(p) < 8 << 20]
        picked = self.rng.sample(files, max(2, int(len(files) * fraction)))
        for i, path in enumerate(picked):
            with open(path, "rb") as f:
                data = bytearray(f.read())
            if i % 2 == 0:
                pos = self.rng.randrange(len(data))
                data[pos] = (data[pos] + 1) % 256 or 1
                old = os.stat(path)
                tmp = path + ".tmp"
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
                os.utime(path, (old.st_atime - 86400, old.st_mtime - 86400))
            else:
                data += b"<!-- changed %d -->" % self.rng.randrange(1 << 30)
                tmp = path + ".tmp"
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
        return len(picked)

    def rebuild(self):
        now = time.time() + self.rng.randrange(1, 1000)
        for path in self.files():
            os.utime(path, (now, now))

    def delete(self, fraction=0.01):
        files = self.files()
        picked = self.rng.sample(files, max(1, int(len(files) * fraction)))
        for path in picked:
            os.remove(path)
        return len(picked)


def run_scenario(args, tools, server, s3, tool, site, bucket, scenario, mutator, runs):
    if scenario == "rules" and tool != "skiff":
        return {"skipped": "no rule-only header update: would need a full re-upload with new headers"}
    if scenario in CACHED and tool != "skiff":
        return {"skipped": f"skiff's opt-in --hash-cache (size, mtime, inode); the peers' exact mode is the {SKIFF_ONLY[scenario]} row"}
    if scenario == "noop-cached":
        # One uncounted run fills the cache.
        argv, env = tools.command(tool, site, bucket, server.url, scenario)
        measure(argv, env)
    if scenario == "cold":
        # One uncounted upload first: the S3 server's heap grows into memory this VM has not
        # touched lately, which costs ~2 s a GiB on first touch (five times a later touch;
        # measured in RESULTS.md). Without it, whichever tool runs first pays for the growth.
        server.reset_bucket(bucket)
        argv, env = tools.command(tool, site, bucket, server.url, scenario)
        measure(argv, env)
    samples = []
    for attempt in range(runs + 1):
        counting = attempt == runs
        if scenario == "cold":
            server.reset_bucket(bucket)
        elif scenario in ("change", "change-cached"):
            mutator.change()
        elif scenario == "rebuild":
            mutator.rebuild()
        elif scenario == "delete":
            mutator.delete()
        # Nothing left for the kernel to write back while the tool is timed: the corpus was
        # just copied (hundreds of MB at 10k files) and the mutators write files.
        os.sync()
        proxy = Proxy(server.port, os.path.join(args.work, "counts.json")) if counting else None
        endpoint = proxy.url if counting else server.url
        argv, env = tools.command(tool, site, bucket, endpoint, scenario)
        wall, cpu, rss, code, stderr = measure(argv, env)
        counts = proxy.stop() if proxy else None
        if code != 0:
            return {"error": f"exit {code}: {stderr.strip()}"}
        if counting:
            requests = {k: v for k, v in counts.items() if k != "bytes_sent"}
            result = {
                "wall_s": statistics.median(s[0] for s in samples) if samples else wall,
                "cpu_s": statistics.median(s[1] for s in samples) if samples else cpu,
                "rss_mib": max([s[2] for s in samples] + [rss]),
                "runs": len(samples),
                "requests": requests,
                "request_total": sum(requests.values()),
                "bytes_sent": counts.get("bytes_sent", 0),
            }
            result["check"] = check(s3, bucket, site)
            return result
        samples.append((wall, cpu, rss))
    raise AssertionError("unreachable")


def prepare_skiff_configs(work):
    with open(os.path.join(work, "skiff.toml"), "w") as f:
        f.write('[deploy]\nconcurrency = 32\n[[rules]]\nmatch = "**/*.html"\ncache_control = "public, max-age=0, must-revalidate"\n')
    for flip, age in enumerate((60, 0)):
        with open(os.path.join(work, f"skiff-rules-{flip}.toml"), "w") as f:
            f.write(f'[deploy]\nconcurrency = 32\n[[rules]]\nmatch = "**/*.html"\ncache_control = "public, max-age={age}"\n')


def corpus(args, size):
    """The corpus of `size` files (generated once, then cached)."""
    path = os.path.join(args.cache, f"corpus-{size}-seed{args.seed}")
    if not os.path.isdir(path):
        subprocess.run([sys.executable, os.path.join(HERE, "corpus.py"), path + ".partial", str(size), "--seed", str(args.seed)],
                       check=True, stdout=subprocess.DEVNULL)
        os.replace(path + ".partial", path)
    return path


def bench_size(args, tools, server, s3, size):
    tree = corpus(args, size)
    files = sum(1 for _ in walk(tree))
    total = sum(os.path.getsize(p) for _, p in walk(tree))
    print(f"## {files} files, {total / 1e6:.0f} MB", file=sys.stderr)
    out = {"files": files, "bytes": total, "latency_ms": server.latency_ms, "tools": {}}
    runs = args.runs if size <= 20000 else 1
    for tool in args.tools:
        site = os.path.join(args.work, f"{tool}-site")
        shutil.rmtree(site, ignore_errors=True)
        shutil.copytree(tree, site, symlinks=True)
        bucket = f"bench-{tool}-{size}"
        server.reset_bucket(bucket)
        mutator = Mutator(site, args.seed)
        results = {}
        for scenario in args.scenarios:
            print(f"   {tool:<6} {scenario:<8}", end=" ", file=sys.stderr, flush=True)
            res = run_scenario(args, tools, server, s3, tool, site, bucket, scenario, mutator,
                               1 if scenario == "cold" and size > 2000 else runs)
            results[scenario] = res
            print(summary_cell(res), file=sys.stderr, flush=True)
        out["tools"][tool] = results
        shutil.rmtree(site, ignore_errors=True)
        server.drop_bucket(bucket)
    return out


def summary_cell(res):
    if "skipped" in res:
        return "n/a"
    if "error" in res:
        return "failed"
    mark = "" if res["check"]["ok"] else " WRONG"
    return f'{res["wall_s"]:.2f}s{mark}'


def ratios(size_result):
    """skiff's wall time against the fastest correct peer, per scenario."""
    out = {}
    tools = size_result["tools"]
    if "skiff" not in tools:
        return out
    for scenario in SCENARIOS:
        mine = tools["skiff"].get(scenario)
        against = SKIFF_ONLY.get(scenario, scenario)
        if against is None:
            continue
        peers = [(t, r[against]) for t, r in tools.items() if t != "skiff" and against in r and "wall_s" in r[against] and r[against]["check"]["ok"]]
        if not mine or "wall_s" not in mine or not peers:
            continue
        best_tool, best = min(peers, key=lambda p: p[1]["wall_s"])
        out[scenario] = {"fastest_peer": best_tool, "peer_s": best["wall_s"], "skiff_s": mine["wall_s"],
                         "speedup": best["wall_s"] / mine["wall_s"] if mine["wall_s"] else None}
    return out


def markdown(report):
    lines = []
    for size in report["sizes"]:
        latency = size.get("latency_ms", 0)
        lines.append(f'\n### {size["files"]:,} files, {size["bytes"] / 1e6:,.0f} MB, {latency} ms per request\n')
        lines.append("| scenario | tool | wall (median) | CPU | peak RSS | requests (by method) | bytes sent | correct |")
        lines.append("|---|---|---:|---:|---:|---|---:|---|")
        for scenario in SCENARIOS:
            for tool, results in size["tools"].items():
                res = results.get(scenario)
                if res is None:
                    continue
                if "skipped" in res:
                    lines.append(f"| {scenario} | {tool} | – | – | – | – | – | n/a: {res['skipped']} |")
                    continue
                if "error" in res:
                    lines.append(f"| {scenario} | {tool} | – | – | – | – | – | failed: {res['error'][:120]} |")
                    continue
                methods = ", ".join(f"{k} {v}" for k, v in sorted(res["requests"].items()))
                check = res["check"]
                correct = "yes" if check["ok"] else f'**no** ({check["missing"]} missing, {check["stale"]} stale, {check["extra"]} extra)'
                lines.append(f'| {scenario} | {tool} | {res["wall_s"]:.2f} s | {res["cpu_s"]:.2f} s | {res["rss_mib"]:.0f} MiB | '
                             f'{res["request_total"]} ({methods}) | {res["bytes_sent"] / 1e6:,.1f} MB | {correct} |')
        r = ratios(size)
        if r:
            lines.append("\n| scenario | fastest correct peer | peer | skiff | skiff is |")
            lines.append("|---|---|---:|---:|---:|")
            for scenario, v in r.items():
                lines.append(f'| {scenario} | {v["fastest_peer"]} | {v["peer_s"]:.2f} s | {v["skiff_s"]:.2f} s | {v["speedup"]:.1f}× faster |')
    lines.extend(latency_table(report))
    if "scan" in report:
        s = report["scan"]
        lines.append(f'\n### Scan + hash alone\n\n{s["bytes"] / 1e9:.2f} GB in {s["wall_s"]:.2f} s (median of 5) = {s["gb_per_s"]:.2f} GB/s; '
                     f'{s["percent"]:.0f} % of the machine\'s SHA-256 limit ({s["limit_source"]}, {s["limit_gb_per_s"]:.2f} GB/s), '
                     'the most a tool hashing with SHA-256 could reach; skiff names bytes by BLAKE3, so it may pass 100 %')
        if "best_wall_s" in s:
            lines.append(f'(best of 5: {s["best_wall_s"]:.2f} s = {s["best_gb_per_s"]:.2f} GB/s, '
                         f'{s["best_gb_per_s"] / s["limit_gb_per_s"] * 100:.0f} %)')
    return "\n".join(lines)


def latency_table(report):
    """One row per size and scenario, one column group per latency: skiff, the fastest
    correct peer, and the ratio, all from this run."""
    latencies = sorted({size.get("latency_ms", 0) for size in report["sizes"]})
    if len(latencies) < 2:
        return []
    by = {(size["files"], size.get("latency_ms", 0)): ratios(size) for size in report["sizes"]}
    files = sorted({size["files"] for size in report["sizes"]})
    head = " | ".join(f"{l} ms: skiff / best peer" for l in latencies)
    lines = ["\n### Round-trip latency\n",
             "Every request held this long by the server (a model of the round trip to S3); skiff's median wall "
             "time, the fastest correct peer's, and how many times faster skiff is.\n",
             f"| files | scenario | {head} |", "|---:|---|" + "---:|" * len(latencies)]
    for n in files:
        for scenario in SCENARIOS:
            cells = []
            for l in latencies:
                v = by.get((n, l), {}).get(scenario)
                cells.append(f'{v["skiff_s"]:.2f} s / {v["peer_s"]:.2f} s ({v["fastest_peer"]}) = **{v["speedup"]:.1f}×**' if v else "–")
            if any(c != "–" for c in cells):
                lines.append(f"| {n:,} | {scenario} | " + " | ".join(cells) + " |")
    return lines


def scan_alone(args, tools, server, s3):
    """skiff's scan and hash (BLAKE3) over ~1 GB of large files (warm cache) vs openssl's SHA-256."""
    corpus = os.path.join(args.cache, "scan-1g")
    if not os.path.isdir(corpus):
        os.makedirs(corpus + ".partial", exist_ok=True)
        rng = random.Random(7)
        for i in range(8):
            with open(os.path.join(corpus + ".partial", f"blob-{i}.bin"), "wb") as f:
                block = rng.randbytes(1 << 20)
                for _ in range(128):
                    f.write(block)
        os.replace(corpus + ".partial", corpus)
    total = sum(os.path.getsize(p) for _, p in walk(corpus))
    for _, p in walk(corpus):
        with open(p, "rb") as f:
            while f.read(1 << 24):
                pass
    server.reset_bucket("bench-scan")
    argv, env = tools.command("skiff", corpus, "bench-scan", server.url, "noop")
    argv = [a for a in argv if a != "--yes"] + ["--dry-run"]
    # Five runs: the median is reported, and the best next to it (noise only adds time).
    walls = [measure(argv, env)[0] for _ in range(5)]
    wall = statistics.median(walls)
    out = subprocess.run(["openssl", "speed", "-evp", "sha256", "-multi", str(os.cpu_count() or 1), "-bytes", "16384", "-seconds", "3"],
                         capture_output=True, text=True).stdout
    limit = None
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0].lower() in ("sha256", "evp_sha256") or line.startswith("sha256"):
            try:
                limit = float(parts[-1].rstrip("k")) * 1000 / 1e9
            except ValueError:
                pass
    return {"bytes": total, "wall_s": wall, "gb_per_s": total / wall / 1e9, "best_wall_s": min(walls),
            "best_gb_per_s": total / min(walls) / 1e9,
            "limit_gb_per_s": limit or float("nan"), "limit_source": f"openssl speed -evp sha256 -multi {os.cpu_count()}",
            "percent": (total / wall / 1e9) / limit * 100 if limit else float("nan")}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2000,10000,100000")
    parser.add_argument("--tools", default="skiff,aws,rclone,hugo,s3cmd")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skiff", required=True)
    parser.add_argument("--server", choices=["s3s", "moto"], default="s3s")
    parser.add_argument("--s3s-server", required=True, help="bench/s3-server's binary")
    parser.add_argument("--moto-server", required=True, help="moto_server")
    parser.add_argument("--cache", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--json", required=True)
    parser.add_argument("--no-scan", action="store_true")
    parser.add_argument("--latency-ms", default="0",
                        help="comma-separated: every size runs once per latency, each with its own server")
    parser.add_argument("--atomic", action="store_true",
                        help="atomic mode instead (bench/atomic.py): skiff on a provisioned site, beside in place")
    parser.add_argument("--baseline", help="with --atomic: NAME=BINARY[,...], other skiff builds run through the same scenarios")
    args = parser.parse_args()
    if args.atomic:
        os.makedirs(args.work, exist_ok=True)
        import atomic
        atomic.main(args)
        return
    args.tools = args.tools.split(",")
    args.scenarios = args.scenarios.split(",")
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(args.cache, exist_ok=True)
    prepare_skiff_configs(args.work)

    import boto3
    from botocore.config import Config
    binary = args.s3s_server if args.server == "s3s" else args.moto_server
    tools = Tools(args.work, args.skiff)
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(), "versions": tools.versions(),
              "server": SERVER_NAMES[args.server], "sizes": []}
    server = None
    try:
        for latency in [int(l) for l in args.latency_ms.split(",") if l]:
            server = Server(args.server, binary, os.path.join(args.work, "server"), latency)
            s3 = boto3.client("s3", endpoint_url=server.url, region_name=REGION, aws_access_key_id=ACCESS,
                              aws_secret_access_key=SECRET,
                              config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5},
                                            max_pool_connections=32))
            server.s3 = s3
            print(f"# {latency} ms per request", file=sys.stderr)
            for size in [int(s) for s in args.sizes.split(",") if s]:
                report["sizes"].append(bench_size(args, tools, server, s3, size))
                write(args.json, report)
            if not args.no_scan and latency == 0:
                report["scan"] = scan_alone(args, tools, server, s3)
            server.stop()
            server = None
    finally:
        if server:
            server.stop()
    write(args.json, report)
    print(markdown(report))


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB"


def write(path, report):
    with open(path, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
