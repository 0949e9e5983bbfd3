"""Atomic mode in the benchmark (`bench/run --atomic`): what a deploy costs on a provisioned
site, beside an in-place publish of the same tree, at each `--latency-ms`.

The site is provisioned through scripts/double.py in front of moto (CloudFront, the
KeyValueStore, ACM and Route 53), with the double's delays set to 0; its state is then
copied into bench/s3-server, which serves every S3 request of the publishes (with the
latency), while CloudFront and the KVS stay on the double (`AWS_ENDPOINT_URL_S3` beside
`AWS_ENDPOINT_URL`). Scenarios, in order, each run once: cold (the first deploy), no-op, 1 %
changed, rollback (to the deploy before) and a new preview from production. Requests by
operation come from the S3 server's `/__bench/counts` and the double's request log; the cost
of each deploy is priced at list prices (PRICES). `--baseline NAME=BINARY[,...]` runs
the same scenarios with other skiff builds (older ones) in the same run.
"""

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

import bench

HERE = os.path.dirname(os.path.abspath(__file__))
DOUBLE = os.path.join(HERE, "..", "scripts", "double.py")
ATOMIC_SCENARIOS = ["cold", "noop", "change", "rollback", "preview"]
INPLACE_SCENARIOS = ["cold", "noop", "change"]
# US dollars per request: S3 Standard in us-east-1 (PUT, COPY, POST and LIST at $0.005 per
# 1,000; GET and HEAD at $0.0004 per 1,000; DELETE free) and the KeyValueStore API at $1.00
# per 1,000 calls (../shared/reference/aws.md §2.7, a quote of the pricing page). Invalidation
# paths are free for the first 1,000 a month and not priced here.
PRICES = {"PUT": 0.005e-3, "COPY": 0.005e-3, "POST": 0.005e-3, "LIST": 0.005e-3, "GET": 0.0004e-3, "HEAD": 0.0004e-3,
          "DELETE": 0.0, "KVS": 1e-3}


class Double:
    """moto and scripts/double.py in front of it, every delay of the double set to 0."""

    def __init__(self, moto_server, root):
        os.makedirs(root, exist_ok=True)
        self.moto_port = bench.free_port()
        self.moto_log = open(os.path.join(root, "moto.log"), "w")
        env = dict(os.environ, MOTO_ACM_VALIDATION_WAIT="0")
        self.moto = subprocess.Popen([moto_server, "-H", "127.0.0.1", "-p", str(self.moto_port)], env=env,
                                     stdout=self.moto_log, stderr=subprocess.STDOUT)
        bench.wait_port(self.moto_port)
        self.moto_url = f"http://127.0.0.1:{self.moto_port}"
        self.port = bench.free_port()
        self.log_path = os.path.join(root, "double.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, DOUBLE, "--listen-port", str(self.port), "--upstream", self.moto_url, "--verbose",
             "--kvs-provisioning-seconds", "0", "--invalidation-seconds", "0", "--distribution-seconds", "0"],
            stdout=subprocess.DEVNULL, stderr=self.log)
        bench.wait_port(self.port)
        self.url = f"http://127.0.0.1:{self.port}"

    def counts(self):
        """Requests the double served so far: `KVS` (the data plane) and `CloudFront`."""
        self.log.flush()
        counts = {}
        with open(self.log_path) as f:
            for line in f:
                if not line.startswith("double: \""):
                    continue
                path = line.split(" ")[2]
                kind = "KVS" if path.startswith("/key-value-stores/") else "CloudFront" if path.startswith("/2020-05-31/") else "other"
                counts[kind] = counts.get(kind, 0) + 1
        return counts

    def stop(self):
        for proc in (self.proc, self.moto):
            proc.terminate()
            proc.wait()


def fnv1a(text):
    h = 2166136261
    data = text.encode("utf-16-le")
    for i in range(0, len(data), 2):
        h = ((h ^ int.from_bytes(data[i:i + 2], "little")) * 16777619) & 0xFFFFFFFF
    return h


def location(kvs, table, target, deploy, key):
    """Where the router looks for `key` of `deploy` (router/SPEC.md, "Delta deploys")."""
    if isinstance(table.get("b"), str) and isinstance(table.get("m"), int) and table["m"] > 0:
        h = fnv1a("/" + key)
        bucket = kvs.get(f"d:{deploy}:{h % table['m']}", "")
        if f"{h:08x}" not in [bucket[i + 1:i + 9] for i in range(0, len(bucket) - 8, 9)]:
            return f"_deploys/{table['b']}/{key}"
    return f"_deploys/{target}/{deploy}/{key}"


def s3_counts(server):
    with urllib.request.urlopen(f"{server.url}/__bench/counts") as answer:
        return json.load(answer)


def difference(after, before):
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def cost(requests):
    return sum(PRICES.get(op, 0.0) * n for op, n in requests.items())


class Site:
    """A provisioned site: its project directory, skiff.toml and the environment that sends
    S3 to the bench server and everything else to the double."""

    def __init__(self, args, skiff, label, server, double, corpus):
        import boto3
        self.skiff, self.server, self.double = skiff, server, double
        self.project = os.path.join(args.work, f"atomic-{label}")
        shutil.rmtree(self.project, ignore_errors=True)
        os.makedirs(self.project)
        self.site = os.path.join(self.project, "public")
        shutil.copytree(corpus, self.site, symlinks=True)
        self.domain = f"{label}.bench.test"
        self.bucket = f"atomic-{label}"
        with open(os.path.join(self.project, "skiff.toml"), "w") as f:
            f.write(f'[site]\ndir = "public"\nbucket = "{self.bucket}"\nregion = "{bench.REGION}"\n\n'
                    f'[domain]\nname = "{self.domain}"\npreviews = "preview.{self.domain}"\n\n'
                    '[deploy]\nconcurrency = 32\nkeep = 10\n\n'
                    '[[rules]]\nmatch = "**/*.html"\ncache_control = "public, max-age=0, must-revalidate"\n')
        keys = dict(aws_access_key_id=bench.ACCESS, aws_secret_access_key=bench.SECRET, region_name=bench.REGION)
        boto3.client("route53", endpoint_url=double.moto_url, **keys).create_hosted_zone(
            Name=self.domain, CallerReference=self.domain)
        env = self.env(s3=double.url)
        done = subprocess.run([skiff, "-q", "provision"], cwd=self.project, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"provision failed: {done.stderr}")
        # The state provision wrote, moved to the bench server (the bucket the publishes use).
        moto_s3 = boto3.client("s3", endpoint_url=double.moto_url, **keys)
        state = moto_s3.get_object(Bucket=self.bucket, Key="_skiff/state.json")["Body"].read()
        server.reset_bucket(self.bucket)
        server.s3.put_object(Bucket=self.bucket, Key="_skiff/state.json", Body=state, ContentType="application/json")

    def env(self, s3=None):
        env = bench.Tools(None, self.skiff).base_env(None)
        env.update(AWS_CONFIG_FILE="/dev/null", AWS_ENDPOINT_URL=self.double.url,
                   AWS_ENDPOINT_URL_S3=s3 or self.server.url, SKIFF_POLL_INTERVAL_MS="100")
        return env

    def state(self):
        body = self.server.s3.get_object(Bucket=self.bucket, Key="_skiff/state.json")["Body"].read()
        return json.loads(body)

    def check(self, target):
        """The live deploy of `target` against the tree, as the router serves it: each key from
        the deploy's prefix, or (a delta deploy's key outside its delta index) from its base's;
        keys and bytes (MD5)."""
        live = self.state()["targets"][target]["live"]
        with urllib.request.urlopen(f"{self.double.url}/__double/kvs") as answer:
            kvs = json.load(answer)[self.state()["resources"]["kvs_arn"]]
        table = json.loads(kvs.get(f"routes:{live}", "{}"))
        prefixes = [f"_deploys/{target}/{live}/"] + ([f"_deploys/{table['b']}/"] if "b" in table else [])
        remote = {}
        for prefix in reversed(prefixes):
            for page in self.server.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    key = item["Key"][len(prefix):]
                    if location(kvs, table, target, live, key) == item["Key"]:
                        remote[key] = item["ETag"].strip('"')
        local = dict(bench.walk(self.site))
        missing = [k for k in local if k not in remote]
        extra = [k for k in remote if k not in local]
        stale = [k for k, p in local.items() if k in remote and "-" not in remote[k] and remote[k] != bench.md5_file(p)]
        return {"missing": len(missing), "stale": len(stale), "extra": len(extra),
                "ok": not (missing or stale or extra)}

    def run(self, scenario, mutator):
        argv = [self.skiff, "-q", "publish", "--yes"]
        target = "production"
        if scenario == "change":
            mutator.change()
        elif scenario == "rollback":
            argv = [self.skiff, "-q", "rollback"]
        elif scenario == "preview":
            argv += ["--preview", "bench-branch"]
            target = "bench-branch"
        os.sync()
        s3_before, kvs_before = s3_counts(self.server), self.double.counts()
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=self.project, env=self.env(), capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            return {"error": f"exit {done.returncode}: {done.stderr[-600:]}"}
        requests = difference(s3_counts(self.server), s3_before)
        requests.update(difference(self.double.counts(), kvs_before))
        result = {"wall_s": wall, "requests": requests, "request_total": sum(requests.values()),
                  "cost_usd": cost(requests)}
        if scenario != "rollback":
            state = self.state()
            target = next((t for t, entry in state["targets"].items() if entry.get("branch") == "bench-branch"), target) \
                if scenario == "preview" else target
            result["check"] = self.check(target)
        return result


def in_place(args, server, corpus, size):
    """The same tree published in place (its own bucket), for the comparison."""
    tools = bench.Tools(args.work, args.skiff)
    site = os.path.join(args.work, "inplace-site")
    shutil.rmtree(site, ignore_errors=True)
    shutil.copytree(corpus, site, symlinks=True)
    bucket = f"inplace-{size}"
    server.reset_bucket(bucket)
    mutator = bench.Mutator(site, args.seed)
    results = {}
    for scenario in INPLACE_SCENARIOS:
        if scenario == "change":
            mutator.change()
        os.sync()
        argv, env = tools.command("skiff", site, bucket, server.url, scenario)
        before = s3_counts(server)
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            results[scenario] = {"error": f"exit {done.returncode}: {done.stderr[-600:]}"}
            continue
        requests = difference(s3_counts(server), before)
        results[scenario] = {"wall_s": wall, "requests": requests, "request_total": sum(requests.values()),
                             "cost_usd": cost(requests), "check": bench.check(server.s3, bucket, site)}
        print(f"   in place {scenario:<8} {wall:7.2f} s {sum(requests.values()):>7} requests", file=sys.stderr, flush=True)
    server.drop_bucket(bucket)
    shutil.rmtree(site, ignore_errors=True)
    return results


def atomic_size(args, server, double, size, latency):
    corpus = bench.corpus(args, size)
    out = {"files": sum(1 for _ in bench.walk(corpus)), "latency_ms": latency, "builds": {}}
    builds = [("skiff", args.skiff)] + [tuple(b.split("=", 1)) for b in (args.baseline or "").split(",") if b]
    for name, binary in builds:
        site = Site(args, binary, f"{name}-{size}-{latency}", server, double, corpus)
        mutator = bench.Mutator(site.site, args.seed)
        results = {}
        for scenario in ATOMIC_SCENARIOS:
            results[scenario] = res = site.run(scenario, mutator)
            shown = res.get("error") or f"{res['wall_s']:7.2f} s {res['request_total']:>7} requests ${res['cost_usd']:.4f}"
            print(f"   {name:<8} atomic {scenario:<8} {shown}", file=sys.stderr, flush=True)
        out["builds"][name] = results
        server.drop_bucket(site.bucket)
        shutil.rmtree(site.project, ignore_errors=True)
    out["in_place"] = in_place(args, server, corpus, size)
    return out


def markdown(report):
    lines = [f"Atomic mode, {report['date']}, {report['machine']}; {report['versions'].get('skiff')}",
             "", "| files | latency | scenario | build | wall s | requests | by operation | cost per deploy | check |",
             "|---:|---:|---|---|---:|---:|---|---:|---|"]
    for entry in report["atomic"]:
        rows = [(name, scenario, res) for name, results in entry["builds"].items() for scenario, res in results.items()]
        rows += [("in place", scenario, res) for scenario, res in entry["in_place"].items()]
        for name, scenario, res in rows:
            if "error" in res:
                lines.append(f"| {entry['files']} | {entry['latency_ms']} ms | {scenario} | {name} | error | | {res['error'][:80]} | | |")
                continue
            ops = ", ".join(f"{op} {n}" for op, n in sorted(res["requests"].items(), key=lambda x: -x[1]))
            check = res.get("check", {}).get("ok")
            lines.append(f"| {entry['files']} | {entry['latency_ms']} ms | {scenario} | {name} | {res['wall_s']:.2f} | "
                         f"{res['request_total']} | {ops} | ${res['cost_usd']:.4f} | {'ok' if check else '-' if check is None else 'FAILED'} |")
    return "\n".join(lines)


def main(args):
    import boto3
    from botocore.config import Config
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": bench.machine(),
              "versions": {"skiff": subprocess.run([args.skiff, "--version"], capture_output=True, text=True).stdout.strip()},
              "prices_usd_per_request": PRICES, "atomic": []}
    for latency in [int(l) for l in args.latency_ms.split(",") if l]:
        server = bench.Server("s3s", args.s3s_server, os.path.join(args.work, "server"), latency)
        server.s3 = boto3.client("s3", endpoint_url=server.url, region_name=bench.REGION, aws_access_key_id=bench.ACCESS,
                                 aws_secret_access_key=bench.SECRET,
                                 config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5},
                                               max_pool_connections=32))
        double = Double(args.moto_server, os.path.join(args.work, "double"))
        try:
            print(f"# atomic, {latency} ms per request", file=sys.stderr)
            for size in [int(s) for s in args.sizes.split(",") if s]:
                report["atomic"].append(atomic_size(args, server, double, size, latency))
                bench.write(args.json, report)
        finally:
            double.stop()
            server.stop()
    bench.write(args.json, report)
    print(markdown(report))
