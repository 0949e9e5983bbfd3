#!/usr/bin/env python3
"""Self-test of scripts/double.py over raw HTTP. Run with the moto venv's python:

    ~/.cache/skiff/moto-*/bin/python scripts/double_test.py

Starts moto (the venv's moto_server, or $MOTO_SERVER) and the double on free 127.0.0.1 ports,
and stops both by PID at the end. Requests carry fake SigV4 headers (nobody verifies them).
The double runs with every CloudFront delay (KVS provisioning, invalidation, distribution
deployment) set to WAIT seconds.
"""

import base64
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
NS = "http://cloudfront.amazonaws.com/doc/2020-05-31/"
ACCOUNT = "123456789012"
WAIT = 1.5  # the double's --kvs-provisioning-seconds, --invalidation-seconds and --distribution-seconds


def auth(service, region="us-east-1"):
    return (f"AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/{region}/{service}/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=0")


def auth_v4a(service):
    return (f"AWS4-ECDSA-P256-SHA256 Credential=AKIDTEST/20260101/{service}/aws4_request, "
            "SignedHeaders=host;x-amz-date;x-amz-region-set, Signature=3045")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Resp:
    def __init__(self, r, body):
        self.status, self.body = r.status, body
        self.headers = {k.lower(): v for k, v in r.getheaders()}
        self.text = body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def tag(self, name):
        """Text of the first <name> element (no nesting support needed here)."""
        m = re.search(rf"<{name}>(.*?)</{name}>", self.text, re.S)
        return m and m.group(1)


def start_moto():
    """moto_server (the venv's, or $MOTO_SERVER) on a free port, issuing certificates at
    once; returns (process, url, port) once it answers."""
    moto_server = os.environ.get("MOTO_SERVER") or os.path.join(os.path.dirname(sys.executable), "moto_server")
    port = free_port()
    moto = subprocess.Popen([moto_server, "-H", "127.0.0.1", "-p", str(port)],
                            env=dict(os.environ, MOTO_ACM_VALIDATION_WAIT="0"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            return moto, url, port
        except OSError:
            if moto.poll() is not None:
                raise RuntimeError("moto_server exited")
            time.sleep(0.25)
    raise RuntimeError("moto_server did not start")


class DoubleTest(unittest.TestCase):
    moto = double = None

    @classmethod
    def setUpClass(cls):
        cls.moto, cls.moto_url, _ = start_moto()
        delays = [a for flag in ("--kvs-provisioning-seconds", "--invalidation-seconds", "--distribution-seconds")
                  for a in (flag, str(WAIT))]
        cls.double = subprocess.Popen([sys.executable, os.path.join(HERE, "double.py"), "--listen-port", "0",
                                       "--upstream", cls.moto_url, *delays], stdout=subprocess.PIPE, text=True)
        line = cls.double.stdout.readline()
        m = re.match(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if not m:
            raise RuntimeError(f"double printed {line!r}")
        cls.port = int(m.group(1))

    @classmethod
    def tearDownClass(cls):
        for proc in (cls.double, cls.moto):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=10)
        if cls.double is not None:
            cls.double.stdout.close()

    # --- helpers ------------------------------------------------------------------------------

    def call(self, method, path, body=None, headers=None, service="cloudfront", port=None, conn=None):
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=60)
        h = {"Authorization": auth(service) if service else None, **(headers or {})}
        h = {k: v for k, v in h.items() if v is not None}
        if isinstance(body, str):
            body = body.encode()
        if body is not None and "Content-Type" not in h:
            h["Content-Type"] = "application/xml" if service == "cloudfront" else "application/json"
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        resp = Resp(r, r.read())
        if own:
            conn.close()
        return resp

    def kvs(self, method, arn, suffix="", body=None, headers=None):
        path = "/key-value-stores/" + urllib.parse.quote(arn, safe="") + suffix
        return self.call(method, path, None if body is None else json.dumps(body), headers,
                         service="cloudfront-keyvaluestore")

    def assert_cf_error(self, resp, status, code):
        self.assertEqual(resp.status, status, resp.text)
        self.assertIn("<ErrorResponse", resp.text)
        self.assertEqual(resp.tag("Code"), code, resp.text)

    def assert_kvs_error(self, resp, status, code):
        self.assertEqual(resp.status, status, resp.text)
        self.assertEqual(resp.headers.get("x-amzn-errortype"), code)
        self.assertIn("Message", resp.json())

    def create_function(self, name, code, kvs_arn=None):
        assoc = (f"<KeyValueStoreAssociations><Quantity>1</Quantity><Items><KeyValueStoreAssociation>"
                 f"<KeyValueStoreARN>{kvs_arn}</KeyValueStoreARN></KeyValueStoreAssociation></Items>"
                 f"</KeyValueStoreAssociations>") if kvs_arn else ""
        return self.call("POST", "/2020-05-31/function", function_xml("CreateFunctionRequest", code, name, assoc))

    def create_kvs(self, name, port=None):
        """CreateKeyValueStore through the double (PROVISIONING for WAIT seconds), or straight
        in moto with port=self.moto_port() (then the double counts the store as READY at once)."""
        r = self.call("POST", "/2020-05-31/key-value-store",
                      f'<CreateKeyValueStoreRequest xmlns="{NS}"><Name>{name}</Name><Comment>t</Comment>'
                      "</CreateKeyValueStoreRequest>", port=port)
        self.assertEqual(r.status, 201, r.text)
        return r.tag("ARN")

    def wait_for(self, read, want, timeout=WAIT + 10):
        """Poll read() until it returns `want`; returns the seconds waited."""
        start = time.monotonic()
        while (got := read()) != want:
            self.assertLess(time.monotonic() - start, timeout, f"still {got!r}, want {want!r}")
            time.sleep(0.1)
        return time.monotonic() - start

    def create_distribution(self, config):
        r = self.call("POST", "/2020-05-31/distribution", config)
        self.assertEqual(r.status, 201, r.text)
        return r, r.tag("Id")

    def assert_config_kept(self, sent, text):
        """Every value the client sent is in the config the double answers with, unchanged."""
        got = config_leaves(text)
        for path, value in config_leaves(sent).items():
            self.assertEqual(got.get(path), value, path)

    # --- CloudFront Functions -----------------------------------------------------------------

    def test_functions_lifecycle(self):
        name = "fn-" + uuid.uuid4().hex[:8]
        r = self.create_function(name, b"function handler(e) { return e.request; }")
        self.assertEqual(r.status, 201, r.text)
        dev1 = r.headers["etag"]
        self.assertTrue(r.headers["location"].endswith(f"function/arn:aws:cloudfront::{ACCOUNT}:function/{name}"))
        self.assertIn(f'<FunctionSummary xmlns="{NS}">', r.text)
        self.assertEqual((r.tag("Name"), r.tag("Status"), r.tag("Stage"), r.tag("Runtime")),
                         (name, "UNPUBLISHED", "DEVELOPMENT", "cloudfront-js-2.0"))
        self.assertEqual(r.tag("FunctionARN"), f"arn:aws:cloudfront::{ACCOUNT}:function/{name}")
        self.assertRegex(r.tag("CreatedTime"), r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assert_cf_error(self.create_function(name, b"x"), 409, "FunctionAlreadyExists")

        r = self.call("GET", f"/2020-05-31/function/{name}/describe?Stage=DEVELOPMENT")
        self.assertEqual((r.status, r.headers["etag"], r.tag("Stage")), (200, dev1, "DEVELOPMENT"))
        self.assert_cf_error(self.call("GET", f"/2020-05-31/function/{name}/describe?Stage=LIVE"),
                             404, "NoSuchFunctionExists")
        self.assert_cf_error(self.call("GET", "/2020-05-31/function/nope/describe"), 404, "NoSuchFunctionExists")

        new_code = b"function handler(e) { /* v2 */ return e.request; }"
        update = function_xml("UpdateFunctionRequest", new_code)
        path = f"/2020-05-31/function/{name}"
        self.assert_cf_error(self.call("PUT", path, update), 400, "InvalidIfMatchVersion")
        self.assert_cf_error(self.call("PUT", path, update, {"If-Match": "EWRONG"}), 412, "PreconditionFailed")
        r = self.call("PUT", path, update, {"If-Match": dev1})
        self.assertEqual(r.status, 200, r.text)
        dev2 = r.headers["etag"]
        self.assertNotEqual(dev2, dev1)
        self.assertNotIn("ettag", r.headers)  # CloudFront sends ETag only (the SDK model's `ETtag` stays unset)
        self.assertEqual(r.tag("Status"), "UNPUBLISHED")

        self.assert_cf_error(self.call("POST", path + "/publish", headers={"If-Match": dev1}), 412,
                             "PreconditionFailed")
        self.assert_cf_error(self.call("POST", path + "/publish"), 400, "InvalidIfMatchVersion")
        r = self.call("POST", path + "/publish", headers={"If-Match": dev2})
        self.assertEqual(r.status, 200, r.text)
        self.assertIn("<FunctionSummary", r.text)
        self.assertEqual((r.tag("Status"), r.tag("Stage")), ("UNASSOCIATED", "LIVE"))

        r = self.call("GET", f"{path}/describe?Stage=LIVE")
        self.assertEqual((r.status, r.tag("Stage")), (200, "LIVE"))
        live = r.headers["etag"]
        self.assertNotIn(live, (dev1, dev2))
        r = self.call("GET", f"{path}?Stage=LIVE")
        self.assertEqual((r.status, r.body, r.headers["content-type"]), (200, new_code, "application/octet-stream"))
        self.assertEqual(r.headers["etag"], live)
        self.assertEqual(self.call("GET", f"{path}?Stage=DEVELOPMENT").body, new_code)
        self.assertEqual(self.call("GET", f"{path}/describe").tag("Status"), "UNASSOCIATED")

        r = self.call("GET", "/2020-05-31/function")
        self.assertEqual(r.status, 200, r.text)
        self.assertIn(f'<FunctionList xmlns="{NS}">', r.text)
        stages = re.findall(rf"<Name>{name}</Name>.*?<Stage>(\w+)</Stage>", r.text)
        self.assertEqual(sorted(stages), ["DEVELOPMENT", "LIVE"])
        r = self.call("GET", "/2020-05-31/function?Stage=LIVE&MaxItems=100")
        self.assertEqual(re.findall(rf"<Name>{name}</Name>.*?<Stage>(\w+)</Stage>", r.text), ["LIVE"])

        self.assert_cf_error(self.call("POST", path + "/test", "<TestFunctionRequest/>", {"If-Match": dev2}),
                             501, "UnsupportedOperation")
        self.assert_cf_error(self.call("DELETE", path), 400, "InvalidIfMatchVersion")
        self.assert_cf_error(self.call("DELETE", path, headers={"If-Match": "EWRONG"}), 412, "PreconditionFailed")
        self.assertEqual(self.call("DELETE", path, headers={"If-Match": dev2}).status, 204)
        self.assert_cf_error(self.call("GET", f"{path}/describe"), 404, "NoSuchFunctionExists")

    def test_function_with_kvs_association_and_list_paging(self):
        arn = self.create_kvs("fnkvs-" + uuid.uuid4().hex[:8], port=self.moto_port())  # READY at once
        name = "kvsfn-" + uuid.uuid4().hex[:8]
        r = self.create_function(name, b"x", kvs_arn=arn)
        self.assertEqual(r.status, 201, r.text)
        self.assertEqual(r.tag("KeyValueStoreARN"), arn)
        self.assertEqual(self.call("GET", f"/2020-05-31/function/{name}/describe").tag("KeyValueStoreARN"), arn)
        bad = function_xml("CreateFunctionRequest", b"x", "bad name!")
        self.assert_cf_error(self.call("POST", "/2020-05-31/function", bad), 400, "InvalidArgument")
        big = self.create_function("big-" + uuid.uuid4().hex[:8], b"x" * 10241)
        self.assert_cf_error(big, 413, "FunctionSizeLimitExceeded")
        # Paging: MaxItems=1 gives NextMarker until the end.
        seen, marker = [], ""
        for _ in range(100):
            r = self.call("GET", "/2020-05-31/function?Stage=DEVELOPMENT&MaxItems=1" + (f"&Marker={marker}" if marker else ""))
            seen += re.findall(r"<Name>(.*?)</Name>", r.text)
            marker = r.tag("NextMarker")
            if not marker:
                break
        self.assertIn(name, seen)
        self.assertEqual(len(seen), len(set(seen)))

    # --- KeyValueStore data plane ---------------------------------------------------------------

    def test_kvs_data_plane(self):
        arn = self.create_kvs("kvs-" + uuid.uuid4().hex[:8], port=self.moto_port())  # READY at once
        r = self.kvs("GET", arn)
        self.assertEqual(r.status, 200, r.text)
        d = r.json()
        self.assertEqual((d["KvsARN"], d["ItemCount"], d["TotalSizeInBytes"], d["Status"]), (arn, 0, 0, "READY"))
        self.assertIsInstance(d["Created"], (int, float))
        etag = r.headers["etag"]

        self.assert_kvs_error(self.kvs("PUT", arn, "/keys/a", {"Value": "1"}), 400, "ValidationException")
        r = self.kvs("PUT", arn, "/keys/" + urllib.parse.quote("dir/a b", safe=""), {"Value": "v1"}, {"If-Match": etag})
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(r.json(), {"ItemCount": 1, "TotalSizeInBytes": len("dir/a b") + 2})
        self.assertNotEqual(r.headers["etag"], etag)
        stale, etag = etag, r.headers["etag"]
        self.assert_kvs_error(self.kvs("PUT", arn, "/keys/b", {"Value": "2"}, {"If-Match": stale}),
                              409, "ConflictException")
        r = self.kvs("GET", arn, "/keys/dir%2Fa%20b")
        self.assertEqual(r.json(), {"Key": "dir/a b", "Value": "v1", "ItemCount": 1, "TotalSizeInBytes": 9})
        self.assert_kvs_error(self.kvs("GET", arn, "/keys/missing"), 404, "ResourceNotFoundException")
        self.assertEqual(self.kvs("GET", arn).headers["etag"], etag)

        # UpdateKeys: 120 puts in three batches, then paging.
        for start in (0, 50, 100):
            n = min(50, 120 - start)
            puts = [{"Key": f"k{i:03d}", "Value": f"v{i}"} for i in range(start, start + n)]
            r = self.kvs("POST", arn, "/keys", {"Puts": puts, "Deletes": []}, {"If-Match": etag})
            self.assertEqual(r.status, 200, r.text)
            etag = r.headers["etag"]
        self.assertEqual(r.json()["ItemCount"], 121)
        keys, token = [], None
        for _ in range(20):
            r = self.kvs("GET", arn, "/keys?MaxResults=40" + (f"&NextToken={urllib.parse.quote(token)}" if token else ""))
            self.assertEqual(r.status, 200, r.text)
            page = r.json()
            self.assertLessEqual(len(page["Items"]), 40)
            keys += [i["Key"] for i in page["Items"]]
            token = page.get("NextToken")
            if not token:
                break
        self.assertEqual(keys, sorted(keys))
        self.assertEqual(len(keys), 121)
        self.assertEqual(len(self.kvs("GET", arn, "/keys?MaxResults=500").json()["Items"]), 50)

        # All or nothing: one bad entry rejects the whole batch.
        for bad in ({"Puts": [{"Key": "ok", "Value": "x"}, {"Key": "z" * 513, "Value": "x"}]},
                    {"Puts": [{"Key": "ok", "Value": "x" * 1025}]},
                    {"Puts": [{"Key": "", "Value": "x"}]},
                    {"Puts": [{"Key": f"n{i}", "Value": "x"} for i in range(40)],
                     "Deletes": [{"Key": f"k{i:03d}"} for i in range(11)]}):
            self.assert_kvs_error(self.kvs("POST", arn, "/keys", bad, {"If-Match": etag}), 400, "ValidationException")
        self.assertEqual(self.kvs("GET", arn).headers["etag"], etag)
        self.assertEqual(self.kvs("GET", arn).json()["ItemCount"], 121)
        r = self.kvs("POST", arn, "/keys", {"Puts": [{"Key": "new", "Value": "n"}],
                                            "Deletes": [{"Key": f"k{i:03d}"} for i in range(49)]}, {"If-Match": stale})
        self.assert_kvs_error(r, 409, "ConflictException")
        r = self.kvs("POST", arn, "/keys", {"Puts": [{"Key": "new", "Value": "n"}],
                                            "Deletes": [{"Key": f"k{i:03d}"} for i in range(49)]}, {"If-Match": etag})
        self.assertEqual(r.json()["ItemCount"], 121 - 49 + 1)
        etag = r.headers["etag"]
        r = self.kvs("DELETE", arn, "/keys/new", headers={"If-Match": etag})
        self.assertEqual((r.status, r.json()["ItemCount"]), (200, 72))
        self.assert_kvs_error(self.kvs("DELETE", arn, "/keys/new", headers={"If-Match": r.headers["etag"]}),
                              404, "ResourceNotFoundException")

        hook = json.loads(self.call("GET", "/__double/kvs", service=None).body)
        self.assertEqual(hook[arn]["dir/a b"], "v1")
        self.assertEqual(len(hook[arn]), 72)

        # SigV4a (no region in the scope) is recognised too; an unknown ARN is a 404.
        r = self.call("GET", "/key-value-stores/" + urllib.parse.quote(arn, safe=""),
                      headers={"Authorization": auth_v4a("cloudfront-keyvaluestore")}, service=None)
        self.assertEqual(r.json()["ItemCount"], 72)
        unknown = f"arn:aws:cloudfront::{ACCOUNT}:key-value-store/{uuid.uuid4()}"
        self.assert_kvs_error(self.kvs("GET", unknown), 404, "ResourceNotFoundException")
        self.assert_kvs_error(self.kvs("PUT", unknown, "/keys/a", {"Value": "1"}, {"If-Match": "x"}),
                              404, "ResourceNotFoundException")

    def test_kvs_deleted_in_moto_is_gone(self):
        name = "gone-" + uuid.uuid4().hex[:8]
        arn = self.create_kvs(name, port=self.moto_port())  # READY at once
        etag = self.kvs("GET", arn).headers["etag"]
        self.assertEqual(self.kvs("PUT", arn, "/keys/a", {"Value": "1"}, {"If-Match": etag}).status, 200)
        moto_etag = self.call("GET", f"/2020-05-31/key-value-store/{name}").headers["etag"]
        r = self.call("DELETE", f"/2020-05-31/key-value-store/{name}", headers={"If-Match": moto_etag})
        self.assertEqual(r.status, 204, r.text)
        self.assert_kvs_error(self.kvs("GET", arn), 404, "ResourceNotFoundException")
        self.assertNotIn(arn, json.loads(self.call("GET", "/__double/kvs", service=None).body))

    def test_kvs_provisioning(self):
        name = "prov-" + uuid.uuid4().hex[:8]
        start = time.monotonic()
        r = self.call("POST", "/2020-05-31/key-value-store",
                      f'<CreateKeyValueStoreRequest xmlns="{NS}"><Name>{name}</Name><Comment>t</Comment>'
                      "</CreateKeyValueStoreRequest>")
        self.assertEqual((r.status, r.tag("Status")), (201, "PROVISIONING"), r.text)
        arn = r.tag("ARN")
        self.assertEqual(self.call("GET", f"/2020-05-31/key-value-store/{name}", port=self.moto_port()).tag("Status"),
                         "READY")  # moto's gap
        r = self.call("GET", f"/2020-05-31/key-value-store/{name}")
        self.assertEqual((r.status, r.tag("Status"), r.tag("ARN")), (200, "PROVISIONING", arn))
        listed = self.call("GET", "/2020-05-31/key-value-store").text
        self.assertEqual(re.findall(rf"<ARN>{re.escape(arn)}</ARN><Status>(\w+)</Status>", listed), ["PROVISIONING"])

        # The data plane refuses everything while the store is PROVISIONING.
        for method, suffix, body in (("GET", "", None), ("GET", "/keys", None), ("GET", "/keys/a", None),
                                     ("PUT", "/keys/a", {"Value": "1"}), ("DELETE", "/keys/a", None),
                                     ("POST", "/keys", {"Puts": [{"Key": "a", "Value": "1"}]})):
            r = self.kvs(method, arn, suffix, body, {"If-Match": "x"} if method != "GET" else None)
            self.assert_kvs_error(r, 409, "ConflictException")
            self.assertIn("PROVISIONING", r.json()["Message"])
        # ... and so do CreateFunction and UpdateFunction that associate it.
        fn = "provfn-" + uuid.uuid4().hex[:8]
        r = self.create_function(fn, b"x", kvs_arn=arn)
        self.assert_cf_error(r, 400, "InvalidArgument")
        self.assertIn(arn, r.tag("Message"))
        r = self.create_function(fn, b"x")
        self.assertEqual(r.status, 201, r.text)
        etag = r.headers["etag"]
        assoc = (f"<KeyValueStoreAssociations><Quantity>1</Quantity><Items><KeyValueStoreAssociation>"
                 f"<KeyValueStoreARN>{arn}</KeyValueStoreARN></KeyValueStoreAssociation></Items>"
                 "</KeyValueStoreAssociations>")
        update = function_xml("UpdateFunctionRequest", b"y", assoc=assoc)
        path = f"/2020-05-31/function/{fn}"
        self.assert_cf_error(self.call("PUT", path, update, {"If-Match": etag}), 400, "InvalidArgument")
        self.assertLess(time.monotonic() - start, WAIT, "the checks above took longer than the provisioning")

        # READY after WAIT seconds, everywhere.
        read = lambda: self.call("GET", f"/2020-05-31/key-value-store/{name}").tag("Status")  # noqa: E731
        self.wait_for(read, "READY")
        self.assertGreaterEqual(time.monotonic() - start, WAIT * 0.9)
        listed = self.call("GET", "/2020-05-31/key-value-store").text
        self.assertEqual(re.findall(rf"<ARN>{re.escape(arn)}</ARN><Status>(\w+)</Status>", listed), ["READY"])
        r = self.kvs("GET", arn)
        self.assertEqual((r.status, r.json()["Status"]), (200, "READY"), r.text)
        r = self.kvs("PUT", arn, "/keys/a", {"Value": "1"}, {"If-Match": r.headers["etag"]})
        self.assertEqual(r.status, 200, r.text)
        r = self.call("PUT", path, update, {"If-Match": etag})
        self.assertEqual((r.status, r.tag("KeyValueStoreARN")), (200, arn), r.text)
        self.assertEqual(self.create_function("provfn2-" + uuid.uuid4().hex[:8], b"x", kvs_arn=arn).status, 201)

    def test_kvs_known_to_moto_is_ready(self):
        name = "known-" + uuid.uuid4().hex[:8]
        arn = self.create_kvs(name, port=self.moto_port())
        self.assertEqual(self.call("GET", f"/2020-05-31/key-value-store/{name}").tag("Status"), "READY")
        self.assertEqual(self.kvs("GET", arn).status, 200)
        self.assertEqual(self.create_function("knownfn-" + uuid.uuid4().hex[:8], b"x", kvs_arn=arn).status, 201)

    # --- Distributions ------------------------------------------------------------------------

    def test_distribution_config_fidelity_and_etags(self):
        ref = uuid.uuid4().hex
        config = distribution_config(ref, "first")
        r = self.call("POST", "/2020-05-31/distribution", config)
        self.assertEqual(r.status, 201, r.text)
        dist_id = r.tag("Id")
        self.assertEqual(r.headers["etag"], f"E{dist_id}V1")
        self.assert_config_kept(config, r.text)  # the request's values, defaults added around them
        direct = self.call("GET", f"/2020-05-31/distribution/{dist_id}/config", port=self.moto_port())
        self.assertNotIn("<OriginAccessControlId>E2OACTEST</OriginAccessControlId>", direct.text)  # moto's gap

        r = self.call("GET", f"/2020-05-31/distribution/{dist_id}")
        self.assertEqual((r.status, r.headers["etag"]), (200, f"E{dist_id}V1"))
        self.assertIn("<OriginAccessControlId>E2OACTEST</OriginAccessControlId>", r.text)
        self.assertIn("<FunctionAssociations><Quantity>1</Quantity>", r.text)
        self.assertIn("<Status>", r.text)  # moto's own fields survive
        r = self.call("GET", f"/2020-05-31/distribution/{dist_id}/config")
        self.assertEqual((r.status, r.headers["etag"]), (200, f"E{dist_id}V1"))
        self.assertIn(f'<DistributionConfig xmlns="{NS}">', r.text)
        self.assertIn("<S3OriginConfig><OriginAccessIdentity></OriginAccessIdentity></S3OriginConfig>", r.text)
        cert = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/abc"  # moto says CloudFrontDefaultCertificate true
        self.assertIn("<ViewerCertificate><CloudFrontDefaultCertificate>false</CloudFrontDefaultCertificate>"
                      f"<ACMCertificateArn>{cert}</ACMCertificateArn><SSLSupportMethod>sni-only</SSLSupportMethod>"
                      "<MinimumProtocolVersion>TLSv1.2_2021</MinimumProtocolVersion>"
                      f"<Certificate>{cert}</Certificate><CertificateSource>acm</CertificateSource>"
                      "</ViewerCertificate>",
                      r.text)
        self.assert_config_kept(config, r.text)

        path = f"/2020-05-31/distribution/{dist_id}/config"
        second = distribution_config(ref, "second")
        self.assert_cf_error(self.call("PUT", path, second, {"If-Match": "EWRONG"}), 412, "PreconditionFailed")
        self.assertIn("<Comment>first</Comment>", self.call("GET", path, port=self.moto_port()).text)
        self.assert_cf_error(self.call("PUT", path, second), 400, "InvalidIfMatchVersion")  # moto's answer
        r = self.call("PUT", path, second, {"If-Match": f"E{dist_id}V1"})
        self.assertEqual((r.status, r.headers["etag"]), (200, f"E{dist_id}V2"), r.text)
        self.assertIn("<Comment>second</Comment>", r.text)
        self.assertIn("<OriginAccessControlId>E2OACTEST</OriginAccessControlId>", r.text)
        r = self.call("GET", path)
        self.assertEqual(r.headers["etag"], f"E{dist_id}V2")
        self.assertIn("<Comment>second</Comment>", r.text)
        self.assert_cf_error(self.call("PUT", path, second, {"If-Match": f"E{dist_id}V1"}), 412, "PreconditionFailed")

        # ListDistributions passes through untouched; DeleteDistribution forgets the config.
        self.assertIn(dist_id, self.call("GET", "/2020-05-31/distribution").text)
        self.assertEqual(self.call("DELETE", f"/2020-05-31/distribution/{dist_id}",
                                   headers={"If-Match": f"E{dist_id}V2"}).status, 204)
        self.assertEqual(self.call("GET", path).status, 404)

    def test_distribution_with_tags(self):
        inner = distribution_config(uuid.uuid4().hex, "tagged").replace(f' xmlns="{NS}"', "")
        body = (f'<DistributionConfigWithTags xmlns="{NS}">{inner}<Tags><Items><Tag><Key>app</Key>'
                "<Value>site</Value></Tag></Items></Tags></DistributionConfigWithTags>")
        r = self.call("POST", "/2020-05-31/distribution?WithTags", body)
        self.assertEqual(r.status, 201, r.text)
        dist_id = r.tag("Id")
        self.assertEqual(r.headers["etag"], f"E{dist_id}V1")
        r = self.call("GET", f"/2020-05-31/distribution/{dist_id}/config")
        self.assertIn(f'<DistributionConfig xmlns="{NS}">', r.text)  # namespace re-added at the root
        self.assertIn("<OriginAccessControlId>E2OACTEST</OriginAccessControlId>", r.text)

    def test_distribution_defaults_filled_in(self):
        r, dist_id = self.create_distribution(minimal_distribution_config(uuid.uuid4().hex))
        filled = filled_minimal_config(r.tag("CallerReference"))
        self.assertIn(filled, r.text)  # CreateDistribution
        self.assertIn(filled, self.call("GET", f"/2020-05-31/distribution/{dist_id}").text)
        path = f"/2020-05-31/distribution/{dist_id}/config"
        r = self.call("GET", path)
        self.assertIn(filled.replace("<DistributionConfig>", f'<DistributionConfig xmlns="{NS}">'), r.text)

        # The filled config read back is what a round trip sends: accepted (by moto too), stored as sent.
        sent = filled.replace("<Comment>minimal</Comment>", "<Comment>round trip</Comment>")
        r = self.call("PUT", path, sent.replace("<DistributionConfig>", f'<DistributionConfig xmlns="{NS}">'),
                      {"If-Match": f"E{dist_id}V1"})
        self.assertEqual((r.status, r.headers["etag"]), (200, f"E{dist_id}V2"), r.text)
        self.assertIn(sent, r.text)
        self.assertIn(sent.replace("<DistributionConfig>", f'<DistributionConfig xmlns="{NS}">'),
                      self.call("GET", path).text)
        self.assertIn("<Comment>round trip</Comment>", self.call("GET", path, port=self.moto_port()).text)

    def test_distribution_deploys(self):
        start = time.monotonic()
        r, dist_id = self.create_distribution(distribution_config(uuid.uuid4().hex, "deploy"))
        self.assertEqual(r.tag("Status"), "InProgress")
        get = lambda: self.call("GET", f"/2020-05-31/distribution/{dist_id}").tag("Status")  # noqa: E731

        def listed():
            text = self.call("GET", "/2020-05-31/distribution").text
            return re.findall(rf"<DistributionSummary><Id>{dist_id}</Id>.*?<Status>(\w+)</Status>", text, re.S)
        self.assertEqual((get(), listed()), ("InProgress", ["InProgress"]))
        self.assertEqual(self.call("GET", f"/2020-05-31/distribution/{dist_id}", port=self.moto_port()).tag("Status"),
                         "Deployed")  # moto's gap: Deployed on the first Get
        self.assertLess(time.monotonic() - start, WAIT, "the checks above took longer than the deployment")
        self.wait_for(get, "Deployed")
        self.assertGreaterEqual(time.monotonic() - start, WAIT * 0.9)
        self.assertEqual(listed(), ["Deployed"])

        # Each update deploys again.
        start = time.monotonic()
        path = f"/2020-05-31/distribution/{dist_id}/config"
        again = distribution_config(r.tag("CallerReference"), "again")
        r = self.call("PUT", path, again, {"If-Match": f"E{dist_id}V1"})
        self.assertEqual((r.status, r.tag("Status")), (200, "InProgress"), r.text)
        self.assertEqual((get(), listed()), ("InProgress", ["InProgress"]))
        self.wait_for(get, "Deployed")
        self.assertGreaterEqual(time.monotonic() - start, WAIT * 0.9)
        self.assertEqual(listed(), ["Deployed"])

    def test_invalidations_take_time(self):
        _, dist_id = self.create_distribution(distribution_config(uuid.uuid4().hex, "invalidate"))
        base = f"/2020-05-31/distribution/{dist_id}"
        batch = (f'<InvalidationBatch xmlns="{NS}"><Paths><Quantity>1</Quantity><Items><Path>/_site/404.html</Path>'
                 f"</Items></Paths><CallerReference>{uuid.uuid4().hex}</CallerReference></InvalidationBatch>")
        start = time.monotonic()
        r = self.call("POST", base + "/invalidation", batch)
        self.assertEqual((r.status, r.tag("Status")), (201, "InProgress"), r.text)
        inv_id = r.tag("Id")
        direct = self.call("GET", f"{base}/invalidation/{inv_id}", port=self.moto_port())
        self.assertEqual((direct.tag("Id"), direct.tag("Status")), (inv_id, "COMPLETED"))  # moto's id, moto's gap
        get = lambda: self.call("GET", f"{base}/invalidation/{inv_id}").tag("Status")  # noqa: E731

        def listed():
            text = self.call("GET", base + "/invalidation").text
            return re.findall(rf"<InvalidationSummary><Id>{inv_id}</Id>.*?<Status>(\w+)</Status>", text, re.S)
        batches = lambda: self.call("GET", base).tag("InProgressInvalidationBatches")  # noqa: E731
        self.assertEqual((get(), listed(), batches()), ("InProgress", ["InProgress"], "1"))
        self.assertLess(time.monotonic() - start, WAIT, "the checks above took longer than the invalidation")
        self.wait_for(get, "Completed")
        self.assertGreaterEqual(time.monotonic() - start, WAIT * 0.9)
        self.assertEqual((listed(), batches()), (["Completed"], "0"))

        # One the double did not see created (straight in moto) is Completed, in AWS's spelling.
        r = self.call("POST", base + "/invalidation", batch.replace("404.html", "x.html").replace("<CallerReference>",
                      "<CallerReference>m"), port=self.moto_port())
        self.assertEqual(self.call("GET", f"{base}/invalidation/{r.tag('Id')}").tag("Status"), "Completed")

    def test_double_reset_forgets_the_timers(self):
        name = "forget-" + uuid.uuid4().hex[:8]
        arn = self.create_kvs(name)
        _, dist_id = self.create_distribution(distribution_config(uuid.uuid4().hex, "forget"))
        base = f"/2020-05-31/distribution/{dist_id}"
        batch = (f'<InvalidationBatch xmlns="{NS}"><Paths><Quantity>1</Quantity><Items><Path>/a</Path></Items></Paths>'
                 f"<CallerReference>{uuid.uuid4().hex}</CallerReference></InvalidationBatch>")
        inv_id = self.call("POST", base + "/invalidation", batch).tag("Id")
        self.assertEqual(self.call("GET", f"{base}/invalidation/{inv_id}").tag("Status"), "InProgress")
        self.assertEqual(self.call("GET", base).tag("Status"), "InProgress")
        self.assertEqual(self.call("POST", "/__double/reset", service=None).status, 200)
        # What moto knew before the double saw it created is READY / Completed / moto's own status.
        self.assertEqual(self.call("GET", f"/2020-05-31/key-value-store/{name}").tag("Status"), "READY")
        self.assertEqual(self.kvs("GET", arn).status, 200)
        self.assertEqual(self.call("GET", f"{base}/invalidation/{inv_id}").tag("Status"), "Completed")
        r = self.call("GET", base)
        self.assertNotEqual(r.headers["etag"], f"E{dist_id}V1")  # moto's ETag: the double forgot it

    # --- pass-through ---------------------------------------------------------------------------

    def test_s3_passthrough_byte_exact(self):
        bucket = "double-" + uuid.uuid4().hex[:10]
        self.assertEqual(self.call("PUT", f"/{bucket}", service="s3").status, 200)
        data = os.urandom(5 * 1024 * 1024)
        r = self.call("PUT", f"/{bucket}/big.bin", data, {"Content-Type": "application/octet-stream"}, service="s3")
        self.assertEqual(r.status, 200, r.text)
        r = self.call("GET", f"/{bucket}/big.bin", service="s3")
        self.assertEqual((r.status, len(r.body)), (200, len(data)))
        self.assertTrue(r.body == data)
        r = self.call("PUT", f"/{bucket}/expect.bin", data[:300000], {"Expect": "100-continue"}, service="s3")
        self.assertEqual(r.status, 200, r.text)
        self.assertTrue(self.call("GET", f"/{bucket}/expect.bin", service="s3").body == data[:300000])
        r = self.call("HEAD", f"/{bucket}/big.bin", service="s3")
        self.assertEqual((r.status, r.headers["content-length"], r.body), (200, str(len(data)), b""))

        # Transfer-Encoding: chunked from the client, de-chunked by the double.
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        parts = [os.urandom(n) for n in (1, 70000, 3, 1 << 20)]
        conn.request("PUT", f"/{bucket}/chunked.bin", body=iter(parts), encode_chunked=True,
                     headers={"Authorization": auth("s3"), "Transfer-Encoding": "chunked",
                              "Content-Type": "application/octet-stream"})
        r = conn.getresponse()
        r.read()
        self.assertEqual(r.status, 200)
        conn.close()
        self.assertTrue(self.call("GET", f"/{bucket}/chunked.bin", service="s3").body == b"".join(parts))

        # aws-chunked content encoding (what the Rust SDK sends with trailing checksums): raw bytes.
        payload = os.urandom(100000)
        crc = base64.b64encode(zlib.crc32(payload).to_bytes(4, "big")).decode()
        body = (b"%x\r\n" % len(payload)) + payload + b"\r\n0\r\nx-amz-checksum-crc32:" + crc.encode() + b"\r\n\r\n"
        r = self.call("PUT", f"/{bucket}/aws-chunked.bin", body, {
            "Content-Encoding": "aws-chunked", "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            "x-amz-decoded-content-length": str(len(payload)), "x-amz-trailer": "x-amz-checksum-crc32",
            "Content-Type": "application/octet-stream"}, service="s3")
        self.assertEqual(r.status, 200, r.text)
        self.assertTrue(self.call("GET", f"/{bucket}/aws-chunked.bin", service="s3").body == payload)

        # Unsigned and unknown requests go straight through too.
        self.assertEqual(self.call("GET", "/moto-api/", service=None).status, 200)

    def test_keep_alive_and_concurrency(self):
        bucket = "conc-" + uuid.uuid4().hex[:10]
        self.call("PUT", f"/{bucket}", service="s3")
        errors = []

        def worker(n):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                for i in range(10):
                    body = f"{n}-{i}".encode() * 100
                    self.assertEqual(self.call("PUT", f"/{bucket}/{n}/{i}", body, service="s3", conn=conn,
                                               headers={"Content-Type": "text/plain"}).status, 200)
                    self.assertEqual(self.call("GET", f"/{bucket}/{n}/{i}", service="s3", conn=conn).body, body)
                conn.close()
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])

    def test_zz_moto_reset_resets_the_double(self):  # runs last: it wipes moto
        name = "reset-" + uuid.uuid4().hex[:8]
        self.assertEqual(self.create_function(name, b"x").status, 201)
        self.assertEqual(self.call("POST", "/moto-api/reset", service=None).status, 200)
        self.assertEqual(self.call("GET", f"/2020-05-31/function/{name}/describe").status, 404)
        self.assertEqual(json.loads(self.call("GET", "/__double/kvs", service=None).body), {})

    def moto_port(self):
        return int(self.moto_url.rsplit(":", 1)[1])


def function_xml(root, code, name=None, assoc=""):
    name_xml = f"<Name>{name}</Name>" if name else ""
    return (f'<{root} xmlns="{NS}">{name_xml}<FunctionConfig><Comment>test</Comment>'
            f"<Runtime>cloudfront-js-2.0</Runtime>{assoc}</FunctionConfig>"
            f"<FunctionCode>{base64.b64encode(code).decode()}</FunctionCode></{root}>")


def config_leaves(xml):
    """{path: text} for every leaf of the first DistributionConfig in `xml`; a path names each
    element with its position among same-named siblings (Origin[1], Method[2])."""
    m = re.search(r"<DistributionConfig[\s>].*?</DistributionConfig>", xml, re.S)
    out = {}

    def walk(el, path):
        if len(el) == 0:
            out[path] = el.text or ""
        seen = {}
        for c in el:
            name = c.tag.rsplit("}", 1)[-1]
            seen[name] = seen.get(name, 0) + 1
            walk(c, f"{path}/{name}[{seen[name]}]")
    walk(ET.fromstring(m.group(0)), "DistributionConfig")
    return out


def minimal_distribution_config(ref):
    """Only what the API requires, with a custom origin, a legacy ForwardedValues cache setting
    and a custom error response without a TTL."""
    return (f'<DistributionConfig xmlns="{NS}"><CallerReference>{ref}</CallerReference>'
            "<Origins><Quantity>1</Quantity><Items><Origin><Id>web</Id><DomainName>origin.example.com</DomainName>"
            "<CustomOriginConfig><HTTPPort>80</HTTPPort><HTTPSPort>443</HTTPSPort>"
            "<OriginProtocolPolicy>https-only</OriginProtocolPolicy></CustomOriginConfig></Origin></Items></Origins>"
            "<DefaultCacheBehavior><TargetOriginId>web</TargetOriginId><ViewerProtocolPolicy>allow-all"
            "</ViewerProtocolPolicy><ForwardedValues><QueryString>false</QueryString><Cookies><Forward>none</Forward>"
            "</Cookies></ForwardedValues></DefaultCacheBehavior><CustomErrorResponses><Quantity>1</Quantity><Items>"
            "<CustomErrorResponse><ErrorCode>404</ErrorCode><ResponsePagePath>/404.html</ResponsePagePath>"
            "<ResponseCode>404</ResponseCode></CustomErrorResponse></Items></CustomErrorResponses>"
            "<Comment>minimal</Comment><Enabled>true</Enabled></DistributionConfig>")


def filled_minimal_config(ref):
    """minimal_distribution_config as CloudFront answers it: every default in, in the model's order."""
    get_head = "<Quantity>2</Quantity><Items><Method>HEAD</Method><Method>GET</Method></Items>"
    return (f"<DistributionConfig><CallerReference>{ref}</CallerReference><Aliases><Quantity>0</Quantity></Aliases>"
            "<DefaultRootObject></DefaultRootObject><Origins><Quantity>1</Quantity><Items><Origin><Id>web</Id>"
            "<DomainName>origin.example.com</DomainName><OriginPath></OriginPath><CustomHeaders><Quantity>0"
            "</Quantity></CustomHeaders><CustomOriginConfig><HTTPPort>80</HTTPPort><HTTPSPort>443</HTTPSPort>"
            "<OriginProtocolPolicy>https-only</OriginProtocolPolicy><OriginReadTimeout>30</OriginReadTimeout>"
            "<OriginKeepaliveTimeout>5</OriginKeepaliveTimeout></CustomOriginConfig><ConnectionAttempts>3"
            "</ConnectionAttempts><ConnectionTimeout>10</ConnectionTimeout><OriginShield><Enabled>false</Enabled>"
            "</OriginShield></Origin></Items></Origins><OriginGroups><Quantity>0</Quantity></OriginGroups>"
            "<DefaultCacheBehavior><TargetOriginId>web</TargetOriginId><TrustedSigners><Enabled>false</Enabled>"
            "<Quantity>0</Quantity></TrustedSigners><TrustedKeyGroups><Enabled>false</Enabled><Quantity>0</Quantity>"
            "</TrustedKeyGroups><ViewerProtocolPolicy>allow-all</ViewerProtocolPolicy>"
            f"<AllowedMethods>{get_head}<CachedMethods>{get_head}</CachedMethods></AllowedMethods>"
            "<SmoothStreaming>false</SmoothStreaming><Compress>false</Compress><LambdaFunctionAssociations>"
            "<Quantity>0</Quantity></LambdaFunctionAssociations><FunctionAssociations><Quantity>0</Quantity>"
            "</FunctionAssociations><FieldLevelEncryptionId></FieldLevelEncryptionId><ForwardedValues><QueryString>"
            "false</QueryString><Cookies><Forward>none</Forward></Cookies><Headers><Quantity>0</Quantity></Headers>"
            "<QueryStringCacheKeys><Quantity>0</Quantity></QueryStringCacheKeys></ForwardedValues><MinTTL>0</MinTTL>"
            "<DefaultTTL>86400</DefaultTTL><MaxTTL>31536000</MaxTTL></DefaultCacheBehavior><CacheBehaviors>"
            "<Quantity>0</Quantity></CacheBehaviors><CustomErrorResponses><Quantity>1</Quantity><Items>"
            "<CustomErrorResponse><ErrorCode>404</ErrorCode><ResponsePagePath>/404.html</ResponsePagePath>"
            "<ResponseCode>404</ResponseCode><ErrorCachingMinTTL>10</ErrorCachingMinTTL></CustomErrorResponse>"
            "</Items></CustomErrorResponses><Comment>minimal</Comment><Logging><Enabled>false</Enabled>"
            "<IncludeCookies>false</IncludeCookies><Bucket></Bucket><Prefix></Prefix></Logging>"
            "<PriceClass>PriceClass_All</PriceClass><Enabled>true</Enabled><ViewerCertificate>"
            "<CloudFrontDefaultCertificate>true</CloudFrontDefaultCertificate><SSLSupportMethod>vip</SSLSupportMethod>"
            "<MinimumProtocolVersion>TLSv1</MinimumProtocolVersion><CertificateSource>cloudfront</CertificateSource>"
            "</ViewerCertificate><Restrictions><GeoRestriction><RestrictionType>none</RestrictionType><Quantity>0"
            "</Quantity></GeoRestriction></Restrictions><WebACLId></WebACLId><HttpVersion>http2</HttpVersion>"
            "<IsIPV6Enabled>true</IsIPV6Enabled><ContinuousDeploymentPolicyId></ContinuousDeploymentPolicyId>"
            "<Staging>false</Staging></DistributionConfig>")


def distribution_config(ref, comment):
    fn = f"arn:aws:cloudfront::{ACCOUNT}:function/rewrite-index"
    return (f'<DistributionConfig xmlns="{NS}"><CallerReference>{ref}</CallerReference>'
            "<Aliases><Quantity>1</Quantity><Items><CNAME>www.example.com</CNAME></Items></Aliases>"
            "<DefaultRootObject>index.html</DefaultRootObject><Origins><Quantity>1</Quantity><Items><Origin>"
            "<Id>s3-site</Id><DomainName>site.s3.us-east-1.amazonaws.com</DomainName><OriginPath></OriginPath>"
            "<S3OriginConfig><OriginAccessIdentity></OriginAccessIdentity></S3OriginConfig>"
            "<OriginAccessControlId>E2OACTEST</OriginAccessControlId></Origin></Items></Origins>"
            "<DefaultCacheBehavior><TargetOriginId>s3-site</TargetOriginId>"
            "<ViewerProtocolPolicy>redirect-to-https</ViewerProtocolPolicy><Compress>true</Compress>"
            "<FunctionAssociations><Quantity>1</Quantity><Items><FunctionAssociation>"
            f"<FunctionARN>{fn}</FunctionARN><EventType>viewer-request</EventType></FunctionAssociation>"
            "</Items></FunctionAssociations><CachePolicyId>658327ea-f89d-4fab-a63d-7e88639e58f6</CachePolicyId>"
            f"</DefaultCacheBehavior><Comment>{comment}</Comment><PriceClass>PriceClass_100</PriceClass>"
            "<Enabled>true</Enabled><ViewerCertificate>"
            f"<ACMCertificateArn>arn:aws:acm:us-east-1:{ACCOUNT}:certificate/abc</ACMCertificateArn>"
            "<SSLSupportMethod>sni-only</SSLSupportMethod><MinimumProtocolVersion>TLSv1.2_2021</MinimumProtocolVersion>"
            "</ViewerCertificate><HttpVersion>http2and3</HttpVersion><IsIPV6Enabled>true</IsIPV6Enabled>"
            "</DistributionConfig>")


if __name__ == "__main__":
    unittest.main(verbosity=2)
