#!/usr/bin/env python3
"""A test double that sits in front of moto and closes the gaps skiff needs.

    python double.py --listen-port 0 --upstream http://127.0.0.1:5000

Prints `listening on http://127.0.0.1:<port>` (flushed) once it accepts connections.
Python 3.11 standard library only. Requests are told apart by the SigV4/SigV4a credential
scope in `Authorization` (`Credential=AKID/DATE/REGION/SERVICE/aws4_request` or
`Credential=AKID/DATE/SERVICE/aws4_request`); signatures are never verified.

* service `cloudfront`, `/2020-05-31/function...`: CloudFront Functions, owned here in
  memory (moto has no Update/Publish/Test and ignores the stage). UpdateFunction answers
  with `ETag` only, as CloudFront does (the SDK model's misspelt `ETtag` is not sent).
  Create/UpdateFunction associating a store that is still PROVISIONING: 400 InvalidArgument.
* service `cloudfront`, `/2020-05-31/key-value-store...` (control plane): forwarded to moto;
  a store created through the double is `PROVISIONING` for `--kvs-provisioning-seconds`
  (default 2) in the Create/Describe/List/Update answers, then `READY`. Stores moto knew
  before the double saw them created are READY.
* service `cloudfront-keyvaluestore`, `/key-value-stores/...`: the KVS data plane, owned
  here in memory; a store exists only if moto's ListKeyValueStores knows its ARN. A store
  still PROVISIONING refuses every data-plane call: 409 ConflictException.
* service `cloudfront`, Create/Get/GetConfig/Update/DeleteDistribution: forwarded to moto,
  then the DistributionConfig that moto mangles is replaced by the one the client sent,
  with every optional element CloudFront fills in added with its default (see
  `fill_distribution_config`), and ETags become real versions (`E<id>V<n>`) with If-Match
  enforced on update. `Status` (Create/Get/Update and ListDistributions summaries) is
  `InProgress` for `--distribution-seconds` (default 2) after each create and update, then
  `Deployed`; `InProgressInvalidationBatches` counts the invalidations still in progress.
* service `cloudfront`, Create/Get/ListInvalidations: forwarded to moto (its ids kept), and
  moto's `COMPLETED` becomes `InProgress` for `--invalidation-seconds` (default 2) after the
  invalidation's creation, then `Completed` (AWS's spelling).
* `GET /__double/kvs`: test hook, JSON `{arn: {key: value}}` for every store.
  `POST /__double/reset`: forget the double's state (also done on `POST /moto-api/reset`):
  functions, store data, the configs, versions and deploy timers of distributions, the
  provisioning timers of stores and the timers of invalidations.
* scripts/double_s3.py (S3 and ACM strictness, see its docstring): service `s3` PutObject and
  UploadPart verify Content-MD5 and x-amz-checksum-* (header or aws-chunked trailer; 400
  BadDigest) and forward aws-chunked bodies decoded; UploadPart must use the checksum
  algorithm declared at CreateMultipartUpload (400 InvalidRequest); CopyObject and
  UploadPartCopy honour x-amz-copy-source-if-match/-if-none-match (412 PreconditionFailed);
  buckets marked with `POST /__double/s3-compatible {"bucket": name}` refuse checksum headers
  on writes like Cloudflare R2 (501 NotImplemented; `GET /__double/s3-compatible` counts the
  refusals). Service `acm`: certificates requested through the double show one more
  validation record per DescribeCertificate (all at once with `--acm-reveal-all`) and stay
  PENDING_VALIDATION until every record was shown and its CNAME exists in moto's Route 53.
  Both are forgotten on reset.
* everything else: forwarded to moto unchanged.
"""

import argparse
import base64
import email.utils
import http.client
import http.server
import json
import re
import sys
import threading
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from xml.sax.saxutils import escape

import double_s3  # S3 and ACM strictness: scripts/double_s3.py

CF_NS = "http://cloudfront.amazonaws.com/doc/2020-05-31/"
ACCOUNT = "123456789012"  # moto's account id
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
              "te", "trailer", "trailers", "transfer-encoding", "upgrade", "expect", "content-length"}
STAGES = ("DEVELOPMENT", "LIVE")
RUNTIMES = ("cloudfront-js-1.0", "cloudfront-js-2.0")
FUNCTION_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_FUNCTION_CODE = 10 * 1024
KVS_MAX_KEY, KVS_MAX_VALUE, KVS_MAX_BATCH = 512, 1024, 50
KVS_MAX_PAYLOAD, KVS_MAX_STORE = 3 * 1024 * 1024, 5 * 1024 * 1024
# One DistributionConfig element (it never nests); `<DistributionConfigWithTags>` does not match.
DIST_CONFIG_RE = re.compile(rb"<DistributionConfig(?:\s[^>]*)?>.*</DistributionConfig>", re.S)
DIST_SUMMARY_RE = re.compile(rb"<DistributionSummary(?:\s[^>]*)?>.*?</DistributionSummary>", re.S)
# One <Invalidation> (not <InvalidationBatch>/<InvalidationList>) or <InvalidationSummary> element.
INVALIDATION_RE = re.compile(rb"<(Invalidation|InvalidationSummary)(?:\s[^>]*)?>.*?</\1>", re.S)
# One <KeyValueStore> element (not <KeyValueStoreList>).
KVS_ELEMENT_RE = re.compile(rb"<KeyValueStore(?:\s[^>]*)?>.*?</KeyValueStore>", re.S)
STATUS_RE = re.compile(rb"<Status>[^<]*</Status>")
ID_RE = re.compile(rb"<Id>([^<]*)</Id>")
ARN_RE = re.compile(rb"<ARN>([^<]*)</ARN>")
CREDENTIAL_RE = re.compile(r"Credential=([^,\s]+)")


class Reply:
    """A whole HTTP response: status, header list (duplicates allowed) and body bytes."""

    def __init__(self, status, headers=(), body=b""):
        self.status, self.headers, self.body = status, list(headers), body

    def header(self, name):
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def set_header(self, name, value):
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()] + [(name, value)]


def request_id():
    return ("x-amzn-RequestId", str(uuid.uuid4()))


def xml_reply(status, xml, headers=()):
    body = ('<?xml version="1.0" encoding="UTF-8"?>' + xml).encode()
    return Reply(status, [("Content-Type", "text/xml"), request_id(), *headers], body)


def cf_error(status, code, message):
    """CloudFront's (restXml, wrapped) error document."""
    return xml_reply(status, f'<ErrorResponse xmlns="{CF_NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
                             f"<Message>{escape(message)}</Message></Error>"
                             f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")


def json_reply(status, obj, headers=()):
    return Reply(status, [("Content-Type", "application/json"), request_id(), *headers], json.dumps(obj).encode())


def kvs_error(status, code, message):
    """restJson1 error: the SDK reads the code from x-amzn-ErrorType (or `__type`/`code`)."""
    return json_reply(status, {"__type": code, "Message": message}, [("x-amzn-ErrorType", code)])


def iso_time(ts):
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def strip_quotes(etag):
    return etag.strip().strip('"') if etag is not None else None


# --- XML helpers (namespace-agnostic reading) -------------------------------------------------

def local(tag):
    return tag.rsplit("}", 1)[-1]


def child(el, name):
    return next((c for c in el if local(c.tag) == name), None) if el is not None else None


def child_text(el, name, default=None):
    c = child(el, name)
    return default if c is None else (c.text or "")


class Upstream:
    """Forwards requests to moto over one keep-alive connection per thread, reconnecting once
    when a kept-alive connection turns out to be dead."""

    def __init__(self, url):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.local = threading.local()

    def request(self, method, target, headers, body=None):
        for attempt in (1, 2):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
            try:
                conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                if not any(k.lower() == "host" for k, _ in headers):
                    conn.putheader("Host", f"{self.host}:{self.port}")
                for k, v in headers:
                    conn.putheader(k, v)
                if body is not None:
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body or None)
                resp = conn.getresponse()
                data = resp.read()
                if resp.will_close:
                    conn.close()
                    self.local.conn = None
                return Reply(resp.status, resp.getheaders(), data)
            except (http.client.HTTPException, OSError):
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise

    def cloudfront_get(self, target):
        """An internal CloudFront control-plane read with a fake (unverified) signature."""
        auth = ("AWS4-HMAC-SHA256 Credential=double/20260101/us-east-1/cloudfront/aws4_request, "
                "SignedHeaders=host, Signature=0")
        return self.request("GET", target, [("Host", "cloudfront.amazonaws.com"), ("Authorization", auth)])


class State:
    """Everything the double owns. `lock` guards all of it; `dist_update_lock` serialises
    UpdateDistribution calls (check If-Match, forward, bump) so two updates cannot both win.
    The durations (seconds) are the command-line flags; they survive a reset."""

    def __init__(self, kvs_seconds=2.0, invalidation_seconds=2.0, distribution_seconds=2.0):
        self.lock = threading.RLock()
        self.dist_update_lock = threading.Lock()
        self.kvs_seconds, self.invalidation_seconds = kvs_seconds, invalidation_seconds
        self.distribution_seconds = distribution_seconds
        self.reset()

    def reset(self):
        with self.lock:
            self.counter = 0
            self.functions = {}   # name -> {"created", "dirty", "stages": {stage: {config, code, etag, modified}}}
            self.stores = {}      # KVS ARN -> {"items": {key: value}, "etag", "created", "modified"}
            self.known_kvs = set()  # ARNs moto has confirmed (positive cache)
            self.kvs_ready_at = {}  # KVS ARN -> when a store created through the double turns READY
            # distribution id -> {"config": bytes (defaults filled, no xmlns), "version": int, "deployed_at": time}
            self.dists = {}
            self.invalidations = {}  # invalidation id -> {"dist": distribution id, "done_at": time}

    def next_etag(self, prefix):
        with self.lock:
            self.counter += 1
            return f"{prefix}{self.counter}"


# --- CloudFront Functions ----------------------------------------------------------------------

def function_arn(name):
    return f"arn:aws:cloudfront::{ACCOUNT}:function/{name}"


def unready_association(state, cfg):
    """The error for a FunctionConfig that associates a store still PROVISIONING, else None.
    Create/UpdateFunction document only FunctionAlreadyExists, FunctionSizeLimitExceeded,
    InvalidArgument (400), InvalidIfMatchVersion, NoSuchFunctionExists, PreconditionFailed,
    TooManyFunctions and UnsupportedOperation (API reference CreateFunction / UpdateFunction,
    botocore cloudfront 2020-05-31 model): InvalidArgument is the one that fits."""
    arn = next((a for a in cfg["kvs"] or () if kvs_provisioning(state, a)), None)
    if arn is None:
        return None
    return cf_error(400, "InvalidArgument", f"The key value store {arn} is not ready yet (its status is "
                                            "PROVISIONING): associate it once it is READY")


def parse_function_config(el):
    """FunctionConfig XML -> {"comment", "runtime", "kvs": [arn] or None}; raises ValueError."""
    if el is None:
        raise ValueError("FunctionConfig is required")
    runtime = child_text(el, "Runtime")
    if runtime not in RUNTIMES:
        raise ValueError(f"Runtime must be one of {', '.join(RUNTIMES)}")
    assoc = child(el, "KeyValueStoreAssociations")
    kvs = None
    if assoc is not None:
        items = child(assoc, "Items")
        kvs = [child_text(i, "KeyValueStoreARN", "") for i in (items if items is not None else [])]
        if len(kvs) != int(child_text(assoc, "Quantity", "0") or 0):
            raise ValueError("KeyValueStoreAssociations Quantity does not match the number of Items")
        if len(kvs) > 1:
            raise ValueError("A function can be associated with at most one key value store")
        if kvs and runtime != "cloudfront-js-2.0":
            raise ValueError("Key value store associations require runtime cloudfront-js-2.0")
    return {"comment": child_text(el, "Comment", ""), "runtime": runtime, "kvs": kvs}


def parse_function_code(root):
    text = child_text(root, "FunctionCode")
    if text is None:
        raise ValueError("FunctionCode is required")
    try:
        return base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raise ValueError("FunctionCode is not valid base64")


def function_config_xml(cfg):
    xml = f"<FunctionConfig><Comment>{escape(cfg['comment'])}</Comment><Runtime>{cfg['runtime']}</Runtime>"
    if cfg["kvs"] is not None:
        items = "".join(f"<KeyValueStoreAssociation><KeyValueStoreARN>{escape(a)}</KeyValueStoreARN>"
                        "</KeyValueStoreAssociation>" for a in cfg["kvs"])
        xml += (f"<KeyValueStoreAssociations><Quantity>{len(cfg['kvs'])}</Quantity>"
                + (f"<Items>{items}</Items>" if items else "") + "</KeyValueStoreAssociations>")
    return xml + "</FunctionConfig>"


def function_summary_xml(name, fn, stage, root=True):
    st = fn["stages"][stage]
    # DEVELOPMENT is UNPUBLISHED until published and again after each update; LIVE is UNASSOCIATED.
    status = "UNPUBLISHED" if stage == "DEVELOPMENT" and fn["dirty"] else "UNASSOCIATED"
    ns = f' xmlns="{CF_NS}"' if root else ""
    return (f"<FunctionSummary{ns}><Name>{escape(name)}</Name><Status>{status}</Status>"
            f"{function_config_xml(st['config'])}<FunctionMetadata><FunctionARN>{function_arn(name)}</FunctionARN>"
            f"<Stage>{stage}</Stage><CreatedTime>{iso_time(fn['created'])}</CreatedTime>"
            f"<LastModifiedTime>{iso_time(st['modified'])}</LastModifiedTime></FunctionMetadata></FunctionSummary>")


def functions_route(state, method, segs, query, headers, body):
    """segs: path segments after `/2020-05-31/function` (decoded)."""
    stage = query.get("Stage", "DEVELOPMENT")
    if stage not in STAGES:
        return cf_error(400, "InvalidArgument", f"Stage must be DEVELOPMENT or LIVE, not {stage!r}")
    if_match = strip_quotes(headers.get("if-match"))
    with state.lock:
        if not segs and method == "POST":
            return create_function(state, body)
        if not segs and method == "GET":
            return list_functions(state, query)
        if not segs:
            return cf_error(405, "InvalidArgument", f"{method} is not allowed here")
        name, action = segs[0], "/".join(segs[1:])
        if action == "test" and method == "POST":
            return cf_error(501, "UnsupportedOperation", "TestFunction is not implemented by the skiff test double")
        fn = state.functions.get(name)
        if fn is None:
            return cf_error(404, "NoSuchFunctionExists", f"The function {name} does not exist")
        if action == "describe" and method == "GET":
            if fn["stages"].get(stage) is None:
                return cf_error(404, "NoSuchFunctionExists", f"The function {name} has no {stage} stage")
            return xml_reply(200, function_summary_xml(name, fn, stage), [("ETag", fn["stages"][stage]["etag"])])
        if action == "" and method == "GET":
            st = fn["stages"].get(stage)
            if st is None:
                return cf_error(404, "NoSuchFunctionExists", f"The function {name} has no {stage} stage")
            return Reply(200, [("Content-Type", "application/octet-stream"), ("ETag", st["etag"]), request_id()],
                         st["code"])
        if action not in ("", "publish") or method not in ("PUT", "POST", "DELETE"):
            return cf_error(405, "InvalidArgument", f"{method} is not allowed here")
        if not if_match:
            return cf_error(400, "InvalidIfMatchVersion", "The If-Match version is missing or not valid")
        dev, live = fn["stages"]["DEVELOPMENT"], fn["stages"].get("LIVE")
        if action == "" and method == "DELETE":
            if if_match not in (dev["etag"], live and live["etag"]):
                return cf_error(412, "PreconditionFailed", "The If-Match version does not match")
            del state.functions[name]
            return Reply(204, [request_id()])
        if if_match != dev["etag"]:
            return cf_error(412, "PreconditionFailed", "The If-Match version does not match the DEVELOPMENT stage")
        now = time.time()
        if action == "publish" and method == "POST":
            fn["stages"]["LIVE"] = dict(dev, etag=state.next_etag("EF"), modified=now)
            fn["dirty"] = False
            return xml_reply(200, function_summary_xml(name, fn, "LIVE"))
        if action == "" and method == "PUT":  # UpdateFunction
            try:
                root = ET.fromstring(body)
                cfg, code = parse_function_config(child(root, "FunctionConfig")), parse_function_code(root)
            except (ET.ParseError, ValueError) as e:
                return cf_error(400, "InvalidArgument", str(e))
            if len(code) > MAX_FUNCTION_CODE:
                return cf_error(413, "FunctionSizeLimitExceeded", "The function code is larger than 10 KB")
            unready = unready_association(state, cfg)
            if unready:
                return unready
            etag = state.next_etag("EF")
            fn["stages"]["DEVELOPMENT"] = {"config": cfg, "code": code, "etag": etag, "modified": now}
            fn["dirty"] = True
            # CloudFront sends the version in `ETag` only. (The SDK's model reads UpdateFunction's
            # ETag from a header misspelt `ETtag`, so its e_tag() is None: clients must describe.)
            return xml_reply(200, function_summary_xml(name, fn, "DEVELOPMENT"), [("ETag", etag)])
        return cf_error(405, "InvalidArgument", f"{method} is not allowed here")


def create_function(state, body):
    try:
        root = ET.fromstring(body)
        name = child_text(root, "Name", "")
        if not FUNCTION_NAME_RE.match(name):
            raise ValueError("Name must be 1-64 characters from [A-Za-z0-9_-]")
        cfg, code = parse_function_config(child(root, "FunctionConfig")), parse_function_code(root)
    except (ET.ParseError, ValueError) as e:
        return cf_error(400, "InvalidArgument", str(e))
    if len(code) > MAX_FUNCTION_CODE:
        return cf_error(413, "FunctionSizeLimitExceeded", "The function code is larger than 10 KB")
    if name in state.functions:
        return cf_error(409, "FunctionAlreadyExists", f"A function named {name} already exists")
    unready = unready_association(state, cfg)
    if unready:
        return unready
    now = time.time()
    etag = state.next_etag("EF")
    fn = state.functions[name] = {"created": now, "dirty": True, "stages": {
        "DEVELOPMENT": {"config": cfg, "code": code, "etag": etag, "modified": now}, "LIVE": None}}
    location = f"https://cloudfront.amazonaws.com/2020-05-31/function/{function_arn(name)}"
    return xml_reply(201, function_summary_xml(name, fn, "DEVELOPMENT"), [("ETag", etag), ("Location", location)])


def list_functions(state, query):
    stages = [query["Stage"]] if "Stage" in query else list(STAGES)
    entries = [(name, stage) for name in sorted(state.functions) for stage in stages
               if state.functions[name]["stages"].get(stage) is not None]
    try:
        start = int(query.get("Marker") or 0)
        max_items = int(query.get("MaxItems") or 100)
    except ValueError:
        return cf_error(400, "InvalidArgument", "Marker and MaxItems must be integers")
    page = entries[start:start + max_items]
    next_marker = f"<NextMarker>{start + max_items}</NextMarker>" if start + max_items < len(entries) else ""
    items = "".join(function_summary_xml(n, state.functions[n], s, root=False) for n, s in page)
    return xml_reply(200, f'<FunctionList xmlns="{CF_NS}">{next_marker}<MaxItems>{max_items}</MaxItems>'
                          f"<Quantity>{len(page)}</Quantity>" + (f"<Items>{items}</Items>" if items else "")
                          + "</FunctionList>")


# --- KeyValueStore control plane: provisioning ---------------------------------------------------

def kvs_provisioning(state, arn):
    """Whether a store the double saw created is still PROVISIONING. A store moto knew before
    (or one the double has forgotten since a reset) is READY."""
    with state.lock:
        ready_at = state.kvs_ready_at.get(arn)
    return ready_at is not None and time.time() < ready_at


def patch_kvs_status(state, reply):
    """Moto's KeyValueStore elements say READY at once: say PROVISIONING while the store is.
    (Status values PROVISIONING / READY: terraform-provider-aws cloudfront consts.go, which waits
    on them; the API reference types KeyValueStore.Status as a plain string.)"""
    def fix(match):
        el = match.group(0)
        arn = ARN_RE.search(el)
        if arn and kvs_provisioning(state, arn.group(1).decode()):
            el = STATUS_RE.sub(b"<Status>PROVISIONING</Status>", el, count=1)
        return el
    reply.body = KVS_ELEMENT_RE.sub(fix, reply.body)
    return reply


def kvs_control_route(state, upstream, forward, method, segs):
    """segs: path segments after `/2020-05-31/key-value-store`. Everything is moto's; the
    double only times the provisioning of the stores created through it."""
    reply = forward()
    if not 200 <= reply.status < 300:
        return reply
    if method == "DELETE":
        refresh_known_kvs(state, upstream)  # drop the deleted store's data
        return reply
    if method == "POST" and not segs:  # CreateKeyValueStore
        arn = child_text(ET.fromstring(reply.body), "ARN")
        if arn:
            with state.lock:
                state.kvs_ready_at[arn] = time.time() + state.kvs_seconds
    return patch_kvs_status(state, reply)  # Create, Describe, List, UpdateKeyValueStore


# --- KeyValueStore data plane ------------------------------------------------------------------

def moto_kvs_arns(upstream):
    """Every KVS ARN moto knows (ListKeyValueStores, following NextMarker)."""
    arns, marker = set(), ""
    while True:
        target = "/2020-05-31/key-value-store" + (f"?Marker={urllib.parse.quote(marker)}" if marker else "")
        reply = upstream.cloudfront_get(target)
        if reply.status != 200:
            raise RuntimeError(f"moto ListKeyValueStores answered {reply.status}: {reply.body[:200]!r}")
        root = ET.fromstring(reply.body)
        arns.update(el.text for el in root.iter() if local(el.tag) == "ARN" and el.text)
        marker = child_text(root, "NextMarker")
        if not marker:
            return arns


def refresh_known_kvs(state, upstream):
    """Re-ask moto which stores exist; forget the data of stores it no longer knows."""
    arns = moto_kvs_arns(upstream)
    with state.lock:
        state.known_kvs = set(arns)
        for gone in set(state.stores) - arns:
            del state.stores[gone]


def kvs_store(state, upstream, arn):
    """The double's store for `arn`, created on first use, or None if moto does not know it.
    Positive answers are cached; an unknown ARN re-asks moto every time."""
    with state.lock:
        known = arn in state.known_kvs
    if not known:
        refresh_known_kvs(state, upstream)
    with state.lock:
        if arn not in state.known_kvs:
            return None
        if arn not in state.stores:
            state.stores[arn] = new_store(state)
        return state.stores[arn]


def new_store(state):
    now = time.time()
    return {"items": {}, "etag": state.next_etag("EK"), "created": now, "modified": now}


def store_size(items):
    return sum(len(k.encode()) + len(v.encode()) for k, v in items.items())


def kvs_summary(items):
    return {"ItemCount": len(items), "TotalSizeInBytes": store_size(items)}


def check_key(key):
    if not isinstance(key, str) or not key:
        return "Key must be a non-empty string"
    if len(key.encode()) > KVS_MAX_KEY:
        return f"Key is longer than {KVS_MAX_KEY} bytes"
    return None


def check_value(value):
    if not isinstance(value, str):
        return "Value must be a string"
    if len(value.encode()) > KVS_MAX_VALUE:
        return f"Value is longer than {KVS_MAX_VALUE} bytes"
    return None


def kvs_route(state, upstream, method, segs, query, headers, body):
    """segs: decoded path segments after `/key-value-stores`: [arn, ("keys", [key])]."""
    if not segs:
        return kvs_error(404, "ResourceNotFoundException", "No key value store ARN in the path")
    arn, rest = segs[0], segs[1:]
    store = kvs_store(state, upstream, arn)
    if store is None:
        return kvs_error(404, "ResourceNotFoundException", f"Key value store {arn} not found")
    if kvs_provisioning(state, arn):
        # The data-plane API reference names no "not ready yet" error. ConflictException (409,
        # "Resource is not in expected state.", listed for all six operations in the API reference
        # and the botocore cloudfront-keyvaluestore model) is the documented closest.
        return kvs_error(409, "ConflictException", f"Key value store {arn} is not ready yet: its status is "
                                                   "PROVISIONING, not READY")
    with state.lock:
        items = store["items"]
        if not rest and method == "GET":  # DescribeKeyValueStore
            return json_reply(200, {"KvsARN": arn, **kvs_summary(items), "Created": store["created"],
                                    "LastModified": store["modified"], "Status": "READY"},
                              [("ETag", store["etag"])])
        if rest == ["keys"] and method == "GET":  # ListKeys
            return list_keys(items, query)
        if len(rest) == 2 and rest[0] == "keys" and method == "GET":  # GetKey
            if rest[1] not in items:
                return kvs_error(404, "ResourceNotFoundException", f"Key {rest[1]} not found")
            return json_reply(200, {"Key": rest[1], "Value": items[rest[1]], **kvs_summary(items)})
        # Writes: PutKey, DeleteKey (…/keys/{Key}) and UpdateKeys (POST …/keys).
        if not ((len(rest) == 2 and rest[0] == "keys" and method in ("PUT", "DELETE"))
                or (rest == ["keys"] and method == "POST")):
            return kvs_error(405, "ValidationException", f"{method} is not allowed here")
        if_match = strip_quotes(headers.get("if-match"))
        if not if_match:
            return kvs_error(400, "ValidationException", "The If-Match header is required")
        if len(body) > KVS_MAX_PAYLOAD:
            return kvs_error(400, "ValidationException", "The request is larger than 3 MB")
        try:
            doc = json.loads(body or b"{}")
            if not isinstance(doc, dict):
                raise ValueError("the body must be a JSON object")
        except ValueError as e:
            return kvs_error(400, "ValidationException", f"Bad JSON body: {e}")
        new_items = dict(items)
        if method == "PUT":
            puts, deletes = [{"Key": rest[1], "Value": doc.get("Value")}], []
        elif method == "DELETE":
            puts, deletes = [], [{"Key": rest[1]}]
            if rest[1] not in items:
                return kvs_error(404, "ResourceNotFoundException", f"Key {rest[1]} not found")
        else:
            puts, deletes = doc.get("Puts") or [], doc.get("Deletes") or []
            if not isinstance(puts, list) or not isinstance(deletes, list):
                return kvs_error(400, "ValidationException", "Puts and Deletes must be lists")
            if len(puts) + len(deletes) > KVS_MAX_BATCH:
                return kvs_error(400, "ValidationException", f"More than {KVS_MAX_BATCH} puts and deletes")
        seen = set()  # validate everything before changing anything (all or nothing)
        for op, is_put in [(d, False) for d in deletes] + [(p, True) for p in puts]:
            if not isinstance(op, dict):
                return kvs_error(400, "ValidationException", "Each put or delete must be an object")
            key = op.get("Key")
            problem = check_key(key) or (is_put and check_value(op.get("Value"))) or (
                key in seen and f"Key {key} appears more than once in one request")
            if problem:
                return kvs_error(400, "ValidationException", problem)
            seen.add(key)
        if if_match != store["etag"]:
            return kvs_error(409, "ConflictException", "The If-Match ETag is stale: the store has changed")
        for op in deletes:
            new_items.pop(op["Key"], None)
        for op in puts:
            new_items[op["Key"]] = op["Value"]
        if store_size(new_items) > KVS_MAX_STORE:
            return kvs_error(402, "ServiceQuotaExceededException", "The key value store would exceed 5 MB")
        store["items"], store["etag"], store["modified"] = new_items, state.next_etag("EK"), time.time()
        return json_reply(200, kvs_summary(new_items), [("ETag", store["etag"])])


def list_keys(items, query):
    keys = sorted(items)
    try:
        size = min(int(query.get("MaxResults") or 50), 50)
        start = base64.urlsafe_b64decode(query["NextToken"]).decode() if query.get("NextToken") else ""
        if size < 1:
            raise ValueError
    except ValueError:
        return kvs_error(400, "ValidationException", "Bad MaxResults or NextToken")
    page = [k for k in keys if k >= start][:size + 1]
    out = {"Items": [{"Key": k, "Value": items[k]} for k in page[:size]]}
    if len(page) > size:
        out["NextToken"] = base64.urlsafe_b64encode(page[size].encode()).decode()
    return json_reply(200, out)


# --- Distributions: the defaults CloudFront fills in ------------------------------------------
# Real CloudFront answers Create/Get/GetConfig/UpdateDistribution with the DistributionConfig
# complete: every optional element the client left out is there with its default. Orders are
# the API model's (botocore cloudfront 2020-05-31 service-2.json, the order the SDKs write).
# Defaults from: API reference "Origin" (ConnectionAttempts 3, ConnectionTimeout 10),
# "CustomOriginConfig" (OriginReadTimeout 30, OriginKeepaliveTimeout 5), "DistributionConfig"
# (HttpVersion: "the default value for new web distributions is http2"); Developer Guide
# "Distribution settings" (price class: by default all edge locations, PriceClass_All) and
# "Custom error pages and error caching" (error caching minimum TTL: 10 s); IsIPV6Enabled true
# per the What's New post of 2016-10-06 ("IPv6 will be enabled by default for all newly created
# Amazon CloudFront web distributions"; the API reference states no default). The rest (empty
# strings, Quantity 0, disabled logging, no geo restriction, GET+HEAD methods, vip/TLSv1 for the
# default certificate, legacy TTLs 0/86400/31536000 next to ForwardedValues) is what a real
# create-distribution answer shows for a request without them (aws-cli's --origin-domain-name
# template, awscli/customizations/cloudfront.py, leaves them all out).

DIST_ORDER = ("CallerReference", "Aliases", "DefaultRootObject", "Origins", "OriginGroups", "DefaultCacheBehavior",
              "CacheBehaviors", "CustomErrorResponses", "Comment", "Logging", "PriceClass", "Enabled",
              "ViewerCertificate", "Restrictions", "WebACLId", "HttpVersion", "IsIPV6Enabled",
              "ContinuousDeploymentPolicyId", "Staging", "AnycastIpListId", "TenantConfig", "ConnectionMode",
              "ViewerMtlsConfig", "ConnectionFunctionAssociation", "CacheTagConfig")
DIST_DEFAULTS = (
    "<Aliases><Quantity>0</Quantity></Aliases>",
    "<DefaultRootObject></DefaultRootObject>",
    "<OriginGroups><Quantity>0</Quantity></OriginGroups>",
    "<CacheBehaviors><Quantity>0</Quantity></CacheBehaviors>",
    "<CustomErrorResponses><Quantity>0</Quantity></CustomErrorResponses>",
    "<Logging></Logging>",  # completed by LOGGING_DEFAULTS
    "<PriceClass>PriceClass_All</PriceClass>",
    "<ViewerCertificate></ViewerCertificate>",  # completed by fill_viewer_certificate
    "<Restrictions><GeoRestriction><RestrictionType>none</RestrictionType><Quantity>0</Quantity></GeoRestriction>"
    "</Restrictions>",
    "<WebACLId></WebACLId>",
    "<HttpVersion>http2</HttpVersion>",
    "<IsIPV6Enabled>true</IsIPV6Enabled>",
    "<ContinuousDeploymentPolicyId></ContinuousDeploymentPolicyId>",
    "<Staging>false</Staging>",
)
ORIGIN_ORDER = ("Id", "DomainName", "OriginPath", "CustomHeaders", "S3OriginConfig", "CustomOriginConfig",
                "VpcOriginConfig", "ConnectionAttempts", "ConnectionTimeout", "ResponseCompletionTimeout",
                "OriginShield", "OriginAccessControlId")
ORIGIN_DEFAULTS = ("<OriginPath></OriginPath>", "<CustomHeaders><Quantity>0</Quantity></CustomHeaders>",
                   "<ConnectionAttempts>3</ConnectionAttempts>", "<ConnectionTimeout>10</ConnectionTimeout>",
                   "<OriginShield><Enabled>false</Enabled></OriginShield>")
CUSTOM_ORIGIN_ORDER = ("HTTPPort", "HTTPSPort", "OriginProtocolPolicy", "OriginSslProtocols", "OriginReadTimeout",
                       "OriginKeepaliveTimeout", "IpAddressType", "OriginMtlsConfig")
CUSTOM_ORIGIN_DEFAULTS = ("<OriginReadTimeout>30</OriginReadTimeout>",
                          "<OriginKeepaliveTimeout>5</OriginKeepaliveTimeout>")
BEHAVIOR_ORDER = ("PathPattern", "TargetOriginId", "TrustedSigners", "TrustedKeyGroups", "ViewerProtocolPolicy",
                  "AllowedMethods", "SmoothStreaming", "Compress", "LambdaFunctionAssociations",
                  "FunctionAssociations", "FieldLevelEncryptionId", "RealtimeLogConfigArn", "CachePolicyId",
                  "OriginRequestPolicyId", "ResponseHeadersPolicyId", "GrpcConfig", "ForwardedValues", "MinTTL",
                  "DefaultTTL", "MaxTTL")  # CacheBehavior; DefaultCacheBehavior is the same without PathPattern
GET_HEAD = "<Quantity>2</Quantity><Items><Method>HEAD</Method><Method>GET</Method></Items>"
BEHAVIOR_DEFAULTS = (
    "<TrustedSigners><Enabled>false</Enabled><Quantity>0</Quantity></TrustedSigners>",
    "<TrustedKeyGroups><Enabled>false</Enabled><Quantity>0</Quantity></TrustedKeyGroups>",
    f"<AllowedMethods>{GET_HEAD}</AllowedMethods>",  # CachedMethods added below
    "<SmoothStreaming>false</SmoothStreaming>",
    "<Compress>false</Compress>",
    "<LambdaFunctionAssociations><Quantity>0</Quantity></LambdaFunctionAssociations>",
    "<FunctionAssociations><Quantity>0</Quantity></FunctionAssociations>",
    "<FieldLevelEncryptionId></FieldLevelEncryptionId>",
)
LEGACY_TTL_DEFAULTS = ("<MinTTL>0</MinTTL>", "<DefaultTTL>86400</DefaultTTL>", "<MaxTTL>31536000</MaxTTL>")
FORWARDED_VALUES_ORDER = ("QueryString", "Cookies", "Headers", "QueryStringCacheKeys")
FORWARDED_VALUES_DEFAULTS = ("<Headers><Quantity>0</Quantity></Headers>",
                             "<QueryStringCacheKeys><Quantity>0</Quantity></QueryStringCacheKeys>")
ERROR_RESPONSE_ORDER = ("ErrorCode", "ResponsePagePath", "ResponseCode", "ErrorCachingMinTTL")
LOGGING_ORDER = ("Enabled", "IncludeCookies", "Bucket", "Prefix")
LOGGING_DEFAULTS = ("<Enabled>false</Enabled>", "<IncludeCookies>false</IncludeCookies>", "<Bucket></Bucket>",
                    "<Prefix></Prefix>")
VIEWER_CERTIFICATE_ORDER = ("CloudFrontDefaultCertificate", "IAMCertificateId", "ACMCertificateArn",
                            "SSLSupportMethod", "MinimumProtocolVersion", "Certificate", "CertificateSource")


def fill_defaults(parent, order, defaults):
    """Add each default element (an XML snippet) that `parent` lacks, at its place in `order`;
    elements the client sent are never touched."""
    if parent is None:
        return
    for snippet in defaults:
        el = ET.fromstring(snippet)
        name = local(el.tag)
        if child(parent, name) is not None:
            continue
        rank, pos = order.index(name), 0
        for i, c in enumerate(parent):
            if local(c.tag) in order and order.index(local(c.tag)) < rank:
                pos = i + 1
        parent.insert(pos, el)


def list_items(el):
    items = child(el, "Items")
    return list(items) if items is not None else []


def fill_behavior(behavior, order):
    if behavior is None:
        return
    fill_defaults(behavior, order, BEHAVIOR_DEFAULTS)
    fill_defaults(child(behavior, "AllowedMethods"), ("Quantity", "Items", "CachedMethods"),
                  (f"<CachedMethods>{GET_HEAD}</CachedMethods>",))
    forwarded = child(behavior, "ForwardedValues")
    if forwarded is not None:  # legacy cache settings: their TTLs get defaults too
        fill_defaults(forwarded, FORWARDED_VALUES_ORDER, FORWARDED_VALUES_DEFAULTS)
        fill_defaults(behavior, order, LEGACY_TTL_DEFAULTS)


def fill_viewer_certificate(cert):
    if cert is None:
        return
    acm, iam = child_text(cert, "ACMCertificateArn"), child_text(cert, "IAMCertificateId")
    if acm or iam:  # CloudFront echoes the certificate in the deprecated Certificate/CertificateSource
        source, value = ("acm", acm) if acm else ("iam", iam)
        defaults = ("<CloudFrontDefaultCertificate>false</CloudFrontDefaultCertificate>",
                    f"<Certificate>{escape(value)}</Certificate>", f"<CertificateSource>{source}</CertificateSource>")
    else:
        defaults = ("<CloudFrontDefaultCertificate>true</CloudFrontDefaultCertificate>",
                    "<SSLSupportMethod>vip</SSLSupportMethod>",
                    "<MinimumProtocolVersion>TLSv1</MinimumProtocolVersion>",
                    "<CertificateSource>cloudfront</CertificateSource>")
    fill_defaults(cert, VIEWER_CERTIFICATE_ORDER, defaults)


def fill_distribution_config(raw):
    """The client's `<DistributionConfig>` (bytes) with CloudFront's defaults filled in, written
    without a namespace declaration (patch_distribution adds one where it is the root). Filling a
    filled config changes nothing, so a config read back and sent again is stored as sent."""
    try:
        root = ET.fromstring(raw)
    except ET.ParseError:
        return raw  # not ours to judge: moto accepted it
    for el in root.iter():
        el.tag = local(el.tag)
    fill_defaults(root, DIST_ORDER, DIST_DEFAULTS)
    for origin in list_items(child(root, "Origins")):
        fill_defaults(origin, ORIGIN_ORDER, ORIGIN_DEFAULTS)
        fill_defaults(child(origin, "CustomOriginConfig"), CUSTOM_ORIGIN_ORDER, CUSTOM_ORIGIN_DEFAULTS)
    fill_behavior(child(root, "DefaultCacheBehavior"), BEHAVIOR_ORDER[1:])
    for behavior in list_items(child(root, "CacheBehaviors")):
        fill_behavior(behavior, BEHAVIOR_ORDER)
    for response in list_items(child(root, "CustomErrorResponses")):
        fill_defaults(response, ERROR_RESPONSE_ORDER, ("<ErrorCachingMinTTL>10</ErrorCachingMinTTL>",))
    fill_defaults(child(root, "Logging"), LOGGING_ORDER, LOGGING_DEFAULTS)
    fill_viewer_certificate(child(root, "ViewerCertificate"))
    return ET.tostring(root, encoding="unicode", short_empty_elements=False).encode()


# --- Distributions: pass through, then put back what moto loses ------------------------------

def dist_etag(dist_id, version):
    return f"E{dist_id}V{version}"


def deploy_status(entry):
    """`InProgress` for state.distribution_seconds after each create and update, then `Deployed`
    (API reference "Distribution": Status; Developer Guide: InProgress until the change has
    propagated to all edge locations)."""
    return "InProgress" if time.time() < entry["deployed_at"] else "Deployed"


def invalidations_in_progress(state, dist_id):
    now = time.time()
    with state.lock:
        return sum(1 for inv in state.invalidations.values() if inv["dist"] == dist_id and now < inv["done_at"])


def patch_distribution(state, reply, dist_id, config_is_root):
    """Replace moto's DistributionConfig, ETag and Status (and InProgressInvalidationBatches) in
    a 2xx reply by the double's."""
    with state.lock:
        entry = state.dists.get(dist_id)
        if entry is None or not 200 <= reply.status < 300:
            return reply
        config, etag, status = entry["config"], dist_etag(dist_id, entry["version"]), deploy_status(entry)
    if config_is_root and b"xmlns=" not in config.split(b">", 1)[0]:
        config = config.replace(b"<DistributionConfig", f'<DistributionConfig xmlns="{CF_NS}"'.encode(), 1)
    if not config_is_root:  # <Distribution>: Status and the batch count come before the config
        head, sep, tail = reply.body.partition(b"<DistributionConfig")
        head = STATUS_RE.sub(f"<Status>{status}</Status>".encode(), head, count=1)
        batches = f"<InProgressInvalidationBatches>{invalidations_in_progress(state, dist_id)}"
        head = re.sub(rb"<InProgressInvalidationBatches>\d*", batches.encode(), head, count=1)
        reply.body = head + sep + tail
    reply.body = DIST_CONFIG_RE.sub(lambda _: config, reply.body, count=1)
    reply.set_header("ETag", etag)
    return reply


def patch_distribution_list(state, reply):
    """ListDistributions: each summary of a distribution the double knows gets its Status."""
    if not 200 <= reply.status < 300:
        return reply

    def fix(match):
        summary = match.group(0)
        dist_id = ID_RE.search(summary)  # the summary's own Id comes before its origins' Ids
        with state.lock:
            entry = state.dists.get(dist_id.group(1).decode()) if dist_id else None
            status = entry and deploy_status(entry)
        return STATUS_RE.sub(f"<Status>{status}</Status>".encode(), summary, count=1) if status else summary
    reply.body = DIST_SUMMARY_RE.sub(fix, reply.body)
    return reply


def invalidation_route(state, forward, method, segs):
    """Create/Get/ListInvalidations (segs: [distribution id, "invalidation", (id)]). Moto says
    `COMPLETED` at once; CloudFront says `InProgress`, then `Completed` (API reference
    "Invalidation": "When the invalidation batch is finished, the status is Completed")."""
    reply = forward()
    if not 200 <= reply.status < 300:
        return reply
    now = time.time()
    if method == "POST":  # CreateInvalidation; a repeated CallerReference gives the same id back
        inv_id = child_text(ET.fromstring(reply.body), "Id")
        if inv_id:
            with state.lock:
                state.invalidations.setdefault(inv_id, {"dist": segs[0], "done_at": now + state.invalidation_seconds})

    def fix(match):
        el = match.group(0)
        inv_id = ID_RE.search(el)
        with state.lock:
            inv = state.invalidations.get(inv_id.group(1).decode()) if inv_id else None
        status = "InProgress" if inv and now < inv["done_at"] else "Completed"
        return STATUS_RE.sub(f"<Status>{status}</Status>".encode(), el, count=1)
    reply.body = INVALIDATION_RE.sub(fix, reply.body)
    return reply


def distribution_route(state, forward, method, segs, headers, body):
    """segs: path segments after `/2020-05-31/distribution`. Returns None to pass through."""
    if not segs and method == "GET":  # ListDistributions
        return patch_distribution_list(state, forward())
    if not segs and method == "POST":  # CreateDistribution (?WithTags too)
        reply = forward()
        if 200 <= reply.status < 300:
            match = DIST_CONFIG_RE.search(body)
            dist_id = child_text(ET.fromstring(reply.body), "Id")
            if match and dist_id:
                config = fill_distribution_config(match.group(0))
                with state.lock:
                    state.dists[dist_id] = {"config": config, "version": 1,
                                            "deployed_at": time.time() + state.distribution_seconds}
                reply = patch_distribution(state, reply, dist_id, False)
        return reply
    if len(segs) == 1 and method == "GET":  # GetDistribution
        return patch_distribution(state, forward(), segs[0], False)
    if len(segs) == 1 and method == "DELETE":  # DeleteDistribution
        reply = forward()
        if 200 <= reply.status < 300:
            with state.lock:
                state.dists.pop(segs[0], None)
        return reply
    if segs[1:] == ["config"] and method == "GET":  # GetDistributionConfig
        return patch_distribution(state, forward(), segs[0], True)
    if segs[1:] == ["config"] and method == "PUT":  # UpdateDistribution
        dist_id, if_match = segs[0], strip_quotes(headers.get("if-match"))
        with state.dist_update_lock:
            with state.lock:
                entry = state.dists.get(dist_id)
            if entry and if_match and if_match != dist_etag(dist_id, entry["version"]):
                return cf_error(412, "PreconditionFailed", "The If-Match version does not match the current ETag")
            reply = forward()  # a missing If-Match is moto's to reject (InvalidIfMatchVersion)
            if 200 <= reply.status < 300:
                match = DIST_CONFIG_RE.search(body)
                config = fill_distribution_config(match.group(0)) if match else None
                with state.lock:
                    old = state.dists.get(dist_id) or {"config": None, "version": 0}
                    config = config or old["config"]
                    if config is not None:
                        state.dists[dist_id] = {"config": config, "version": old["version"] + 1,
                                                "deployed_at": time.time() + state.distribution_seconds}
                reply = patch_distribution(state, reply, dist_id, False)
            return reply
    if segs[1:2] == ["invalidation"] and (method == "GET" or (method == "POST" and len(segs) == 2)):
        return invalidation_route(state, forward, method, segs)
    return None


# --- HTTP plumbing -----------------------------------------------------------------------------

def signing_service(headers, query):
    """The service name in the SigV4/SigV4a credential scope, or None."""
    match = CREDENTIAL_RE.search(headers.get("authorization", ""))
    scope = match.group(1) if match else query.get("X-Amz-Credential", "")
    parts = scope.split("/")
    return parts[-2] if len(parts) >= 4 and parts[-1] == "aws4_request" else None


def split_segments(path):
    return [urllib.parse.unquote(s) for s in path.split("/")[1:]]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def read_body(self):
        """The request body (de-chunked) and whether the request had one at all."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline(65537).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # HTTP trailers are dropped
                    return b"".join(chunks), True
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk
        length = self.headers.get("Content-Length")
        return (self.rfile.read(int(length)) if length else b""), length is not None

    def handle_any(self):
        server = self.server
        target = self.path
        if not target.startswith("/"):  # absolute-form request target
            parts = urllib.parse.urlsplit(target)
            target = parts.path + ("?" + parts.query if parts.query else "")
        path, _, raw_query = target.partition("?")
        query = dict(urllib.parse.parse_qsl(raw_query, keep_blank_values=True))
        body, has_body = self.read_body()
        header_list = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
        headers = {k.lower(): v for k, v in header_list}

        def forward():
            return server.upstream.request(self.command, target, header_list, body if has_body else None)

        try:
            reply = self.route(path, query, headers, body, forward)
        except Exception as e:  # a bug or moto being down: answer, don't drop the connection
            print(f"double: {self.command} {target}: {e!r}", file=sys.stderr, flush=True)
            reply = Reply(502, [("Content-Type", "text/plain")], f"skiff double: {e!r}\n".encode())
        self.send_reply(reply)

    def route(self, path, query, headers, body, forward):
        state, method = self.server.state, self.command
        service = signing_service(headers, query)
        segs = split_segments(path)
        if path == "/__double/kvs" and method == "GET":
            with state.lock:
                return json_reply(200, {arn: dict(sorted(s["items"].items())) for arn, s in state.stores.items()})
        if path == "/__double/reset" and method == "POST":
            state.reset()
            self.server.s3.reset()
            return json_reply(200, {"reset": True})
        if path == "/moto-api/reset" and method == "POST":
            reply = forward()
            if 200 <= reply.status < 300:
                state.reset()
                self.server.s3.reset()
            return reply
        reply = double_s3.route(self, service, path, query, headers, body, forward)  # S3, ACM
        if reply is not None:
            return reply
        if service == "cloudfront-keyvaluestore" and segs[:1] == ["key-value-stores"]:
            segs = segs[1:]
            # Tolerate an ARN sent with its `/` unencoded (…:key-value-store/<id>).
            if len(segs) >= 2 and segs[0].endswith(":key-value-store"):
                segs = [segs[0] + "/" + segs[1]] + segs[2:]
            return kvs_route(state, self.server.upstream, method, segs, query, headers, body)
        if service == "cloudfront" and segs[:2] == ["2020-05-31", "function"]:
            return functions_route(state, method, segs[2:], query, headers, body)
        if service == "cloudfront" and segs[:2] == ["2020-05-31", "key-value-store"]:
            return kvs_control_route(state, self.server.upstream, forward, method, segs[2:])
        if service == "cloudfront" and segs[:2] == ["2020-05-31", "distribution"]:
            reply = distribution_route(state, forward, method, segs[2:], headers, body)
            if reply is not None:
                return reply
        return forward()

    def send_reply(self, reply):
        self.log_request(reply.status, len(reply.body))
        self.send_response_only(reply.status)
        bodyless = self.command == "HEAD" or reply.status in (204, 304) or reply.status < 200
        for k, v in reply.headers:
            lk = k.lower()
            if lk not in HOP_BY_HOP or (lk == "content-length" and self.command == "HEAD"):
                self.send_header(k, v)  # HEAD keeps upstream's Content-Length (the object's size)
        if not any(k.lower() == "date" for k, _ in reply.headers):
            self.send_header("Date", email.utils.formatdate(usegmt=True))
        if not bodyless:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if not bodyless and reply.body:
            self.wfile.write(reply.body)
        self.wfile.flush()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = handle_any

    def log_message(self, format, *args):
        if self.server.verbose:
            sys.stderr.write("double: %s\n" % (format % args))


class DoubleServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen-port", type=int, default=0, help="port on 127.0.0.1 (0: pick a free one)")
    parser.add_argument("--upstream", required=True, help="moto's URL, e.g. http://127.0.0.1:5000")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    parser.add_argument("--kvs-provisioning-seconds", type=float, default=2.0,
                        help="a key value store created through the double is PROVISIONING this long (default 2)")
    parser.add_argument("--invalidation-seconds", type=float, default=2.0,
                        help="an invalidation is InProgress this long after its creation (default 2)")
    parser.add_argument("--distribution-seconds", type=float, default=2.0,
                        help="a distribution is InProgress this long after each create and update (default 2)")
    parser.add_argument("--acm-reveal-all", action="store_true",
                        help="ACM: show every validation record at once (default: one more per DescribeCertificate)")
    args = parser.parse_args()
    server = DoubleServer(("127.0.0.1", args.listen_port), Handler)
    state = State(kvs_seconds=args.kvs_provisioning_seconds, invalidation_seconds=args.invalidation_seconds,
                  distribution_seconds=args.distribution_seconds)
    server.upstream, server.state, server.verbose = Upstream(args.upstream), state, args.verbose
    server.s3 = double_s3.S3State(acm_reveal_all=args.acm_reveal_all)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
