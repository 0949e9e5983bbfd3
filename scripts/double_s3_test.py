#!/usr/bin/env python3
"""Self-test of scripts/double_s3.py (S3 and ACM strictness of the double) over raw HTTP:

    ~/.cache/skiff/moto-*/bin/python scripts/double_s3_test.py

Like double_test.py, it starts its own moto (the venv's moto_server, or $MOTO_SERVER, with
MOTO_ACM_VALIDATION_WAIT=0) and two doubles in front of it (the default one and one with
`--acm-reveal-all`) on free 127.0.0.1 ports, and stops them by PID at the end. Requests carry
fake SigV4 headers (nobody verifies them).
"""

import base64
import hashlib
import http.client
import json
import os
import re
import subprocess
import sys
import unittest
import urllib.parse
import uuid
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import double_s3  # noqa: E402  (pure functions: CRCs, aws-chunked decoding)
from double_test import Resp, auth, start_moto  # noqa: E402

R53_NS = "https://route53.amazonaws.com/doc/2013-04-01/"


def b64(raw):
    return base64.b64encode(raw).decode()


def crc32(data):
    return b64(zlib.crc32(data).to_bytes(4, "big"))


def aws_chunked(payload, trailer=None, chunk=8192, signed=False):
    """An aws-chunked body; `signed` adds chunk-signature extensions and a trailer signature."""
    ext = (lambda: ";chunk-signature=" + "ab" * 32) if signed else (lambda: "")
    out = b""
    for i in range(0, len(payload), chunk):
        part = payload[i:i + chunk]
        out += f"{len(part):x}{ext()}\r\n".encode() + part + b"\r\n"
    out += f"0{ext()}\r\n".encode()
    for name, value in (trailer or {}).items():
        out += f"{name}:{value}\r\n".encode()
    if signed and trailer:
        out += b"x-amz-trailer-signature:" + b"cd" * 32 + b"\r\n"
    return out + b"\r\n"


def start_double(moto_url, *extra):
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "double.py"), "--listen-port", "0",
                             "--upstream", moto_url, *extra], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.match(r"listening on http://127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.terminate()
        proc.wait(timeout=10)
        raise RuntimeError(f"double printed {line!r}")
    return proc, int(m.group(1))


class DoubleS3Test(unittest.TestCase):
    moto = double = double_all = None

    @classmethod
    def setUpClass(cls):
        cls.moto, cls.moto_url, cls.moto_port = start_moto()
        cls.double, cls.port = start_double(cls.moto_url)
        cls.double_all, cls.port_all = start_double(cls.moto_url, "--acm-reveal-all")

    @classmethod
    def tearDownClass(cls):
        for proc in (cls.double, cls.double_all, cls.moto):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=10)
        for proc in (cls.double, cls.double_all):
            if proc is not None:
                proc.stdout.close()

    # --- helpers ------------------------------------------------------------------------------

    def call(self, method, path, body=None, headers=None, service="s3", port=None):
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=60)
        h = {"Authorization": auth(service) if service else None, **(headers or {})}
        h = {k: v for k, v in h.items() if v is not None}
        if isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        resp = Resp(r, r.read())
        conn.close()
        return resp

    def at_moto(self, method, path, body=None, headers=None, service="s3"):
        return self.call(method, path, body, headers, service, port=self.moto_port)

    def bucket(self):
        name = "s3t-" + uuid.uuid4().hex[:12]
        self.assertEqual(self.call("PUT", f"/{name}").status, 200)
        return name

    def put(self, path, data, headers=None, port=None):
        return self.call("PUT", path, data, {"Content-Type": "application/octet-stream", **(headers or {})},
                         port=port)

    def assert_s3_error(self, resp, status, code, message=None):
        self.assertEqual(resp.status, status, resp.text)
        self.assertTrue(resp.text.lower().startswith('<?xml version="1.0" encoding="utf-8"?>'), resp.text)
        self.assertEqual(resp.tag("Code"), code, resp.text)
        if message is not None:
            self.assertEqual(resp.tag("Message"), message)
        self.assertTrue(resp.tag("RequestId") and resp.tag("HostId"), resp.text)
        self.assertEqual(resp.headers["content-type"], "application/xml")

    def assert_absent(self, bucket, key):
        """Not stored at moto (the double never forwarded the write)."""
        self.assertEqual(self.at_moto("HEAD", f"/{bucket}/{key}").status, 404)

    def create_upload(self, bucket, key, algorithm=None, port=None):
        headers = {"x-amz-checksum-algorithm": algorithm} if algorithm else {}
        r = self.call("POST", f"/{bucket}/{key}?uploads", headers=headers, port=port)
        self.assertEqual(r.status, 200, r.text)
        return r.tag("UploadId")

    def acm(self, action, payload, port=None):
        r = self.call("POST", "/", json.dumps(payload), {"X-Amz-Target": f"CertificateManager.{action}",
                                                         "Content-Type": "application/x-amz-json-1.1"},
                      service="acm", port=port)
        self.assertEqual(r.status, 200, r.text)
        return r.json()

    def request_cert(self, domain, sans=(), port=None):
        payload = {"DomainName": domain, "ValidationMethod": "DNS", "IdempotencyToken": uuid.uuid4().hex[:32]}
        if sans:
            payload["SubjectAlternativeNames"] = list(sans)
        return self.acm("RequestCertificate", payload, port)["CertificateArn"]

    def describe(self, arn, port=None):
        return self.acm("DescribeCertificate", {"CertificateArn": arn}, port)["Certificate"]

    def listed(self, arn, statuses=None):
        payload = {"CertificateStatuses": statuses} if statuses else {}
        found = [c for c in self.acm("ListCertificates", payload)["CertificateSummaryList"]
                 if c["CertificateArn"] == arn]
        return found[0] if found else None

    def create_zone(self, name):
        body = (f'<CreateHostedZoneRequest xmlns="{R53_NS}"><Name>{name}</Name>'
                f"<CallerReference>{uuid.uuid4()}</CallerReference></CreateHostedZoneRequest>")
        r = self.call("POST", "/2013-04-01/hostedzone", body, {"Content-Type": "application/xml"}, service="route53")
        self.assertEqual(r.status, 201, r.text)
        return r.tag("Id").rsplit("/", 1)[-1]

    def upsert_cname(self, zone_id, name, value):
        body = (f'<ChangeResourceRecordSetsRequest xmlns="{R53_NS}"><ChangeBatch><Changes><Change>'
                f"<Action>UPSERT</Action><ResourceRecordSet><Name>{name}</Name><Type>CNAME</Type><TTL>300</TTL>"
                f"<ResourceRecords><ResourceRecord><Value>{value}</Value></ResourceRecord></ResourceRecords>"
                "</ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>")
        r = self.call("POST", f"/2013-04-01/hostedzone/{zone_id}/rrset/", body, {"Content-Type": "application/xml"},
                      service="route53")
        self.assertEqual(r.status, 200, r.text)

    # --- 1. checksums -------------------------------------------------------------------------

    def test_crc_reference_values(self):
        # The "123456789" check values of CRC-32C and CRC-64/NVME.
        self.assertEqual(double_s3.crc32c(b"123456789"), 0xE3069283)
        self.assertEqual(double_s3.crc64nvme(b"123456789"), 0xAE8B14860A799888)
        self.assertEqual(double_s3.crc32c(b""), 0)
        payload, trailers = double_s3.decode_aws_chunked(aws_chunked(b"x" * 20000, {"X-Amz-Checksum-Crc32": "AA=="},
                                                                     signed=True))
        self.assertEqual((payload, trailers["x-amz-checksum-crc32"]), (b"x" * 20000, "AA=="))

    def test_put_object_verifies_header_checksums(self):
        bucket, data = self.bucket(), os.urandom(70000)
        for algorithm in double_s3.ALGORITHMS:
            header = f"x-amz-checksum-{algorithm.lower()}"
            good = double_s3.b64_digest(algorithm, data)
            bad = double_s3.b64_digest(algorithm, data + b"!")
            r = self.put(f"/{bucket}/bad-{algorithm}", data, {header: bad, "x-amz-sdk-checksum-algorithm": algorithm})
            self.assert_s3_error(r, 400, "BadDigest",
                                 f"The {algorithm} you specified did not match the calculated checksum.")
            self.assert_absent(bucket, f"bad-{algorithm}")
            r = self.put(f"/{bucket}/good-{algorithm}?x-id=PutObject", data,
                         {header: good, "x-amz-sdk-checksum-algorithm": algorithm})
            self.assertEqual(r.status, 200, r.text)
            self.assertEqual(self.call("GET", f"/{bucket}/good-{algorithm}").body, data)
            r = self.put(f"/{bucket}/short-{algorithm}", data, {header: "AAAA"})
            self.assert_s3_error(r, 400, "InvalidRequest", f"Value for {header} header is invalid.")
        # Content-MD5: BadDigest with S3's wording, the expected digest in hex, the calculated in base64.
        md5 = hashlib.md5(data).digest()
        wrong = hashlib.md5(b"other").digest()
        r = self.put(f"/{bucket}/md5-bad", data, {"Content-MD5": b64(wrong)})
        self.assert_s3_error(r, 400, "BadDigest", "The Content-MD5 you specified did not match what we received.")
        self.assertEqual((r.tag("ExpectedDigest"), r.tag("CalculatedDigest")), (wrong.hex(), b64(md5)))
        self.assert_absent(bucket, "md5-bad")
        self.assert_s3_error(self.put(f"/{bucket}/md5-invalid", data, {"Content-MD5": "nope"}),
                             400, "InvalidDigest", "The Content-MD5 you specified was not valid.")
        self.assertEqual(self.put(f"/{bucket}/md5-good", data, {"Content-MD5": b64(md5)}).status, 200)
        # Two checksum headers at once.
        r = self.put(f"/{bucket}/two", data, {"x-amz-checksum-crc32": crc32(data),
                                              "x-amz-checksum-sha1": double_s3.b64_digest("SHA1", data)})
        self.assert_s3_error(r, 400, "InvalidRequest",
                             "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
        # The gap being closed: moto alone stores a wrong checksum.
        self.assertEqual(self.at_moto("PUT", f"/{bucket}/direct", data, {"x-amz-checksum-crc32": "AAAAAA=="}).status, 200)

    def test_aws_chunked_trailer_checksums(self):
        bucket, data = self.bucket(), os.urandom(100000)
        for signed, content_sha in ((False, "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
                                    (True, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"),
                                    (True, "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),  # moto alone: 500
                                    (True, "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER")):  # moto: raw
            headers = {"Content-Encoding": "aws-chunked", "x-amz-content-sha256": content_sha,
                       "x-amz-decoded-content-length": str(len(data)), "x-amz-trailer": "x-amz-checksum-crc32",
                       "x-amz-sdk-checksum-algorithm": "CRC32"}
            key = f"chunked-{signed}-{content_sha[10:22]}"
            r = self.put(f"/{bucket}/{key}", aws_chunked(data, {"x-amz-checksum-crc32": crc32(data)}, signed=signed),
                         headers)
            self.assertEqual(r.status, 200, r.text)
            r = self.call("GET", f"/{bucket}/{key}", headers={"x-amz-checksum-mode": "ENABLED"})
            self.assertTrue(r.body == data)
            self.assertEqual(r.headers.get("x-amz-checksum-crc32"), crc32(data))  # moto stored the trailer's value
            self.assertNotIn("content-encoding", r.headers)
            bad = aws_chunked(data, {"x-amz-checksum-crc32": crc32(data[1:])}, signed=signed)
            self.assert_s3_error(self.put(f"/{bucket}/{key}-bad", bad, headers), 400, "BadDigest",
                                 "The CRC32 you specified did not match the calculated checksum.")
            self.assert_absent(bucket, f"{key}-bad")
        # CRC32C in the trailer, gzip kept as the object's content encoding.
        headers = {"Content-Encoding": "aws-chunked,gzip", "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                   "x-amz-decoded-content-length": str(len(data)), "x-amz-trailer": "x-amz-checksum-crc32c"}
        value = double_s3.b64_digest("CRC32C", data)
        self.assertEqual(self.put(f"/{bucket}/c", aws_chunked(data, {"x-amz-checksum-crc32c": value}), headers).status,
                         200)
        self.assertEqual(self.call("HEAD", f"/{bucket}/c").headers.get("content-encoding"), "gzip")
        bad = aws_chunked(data, {"x-amz-checksum-crc32c": double_s3.b64_digest("CRC32C", b"")})
        self.assert_s3_error(self.put(f"/{bucket}/c-bad", bad, headers), 400, "BadDigest",
                             "The CRC32C you specified did not match the calculated checksum.")
        # A declared trailer that is missing, a malformed trailer value, a short body.
        self.assert_s3_error(self.put(f"/{bucket}/t", aws_chunked(data), headers), 400, "MalformedTrailerError")
        self.assert_s3_error(self.put(f"/{bucket}/t", aws_chunked(data, {"x-amz-checksum-crc32c": "x"}), headers),
                             400, "InvalidRequest", "Value for x-amz-checksum-crc32c trailing header is invalid.")
        self.assert_s3_error(self.put(f"/{bucket}/t", aws_chunked(data, {"x-amz-checksum-crc32c": value})[:5000],
                                      headers), 400, "IncompleteBody")
        self.assert_absent(bucket, "t")

    # --- 2. multipart checksum agreement ------------------------------------------------------

    def test_upload_part_algorithm_must_match_the_declared_one(self):
        bucket, part = self.bucket(), os.urandom(5 * 1024 * 1024)
        upload = self.create_upload(bucket, "none")  # no algorithm declared
        path = f"/{bucket}/none?x-id=UploadPart&partNumber=1&uploadId={upload}"
        r = self.put(path, part, {"x-amz-checksum-crc32": crc32(part), "x-amz-sdk-checksum-algorithm": "CRC32"})
        self.assert_s3_error(r, 400, "InvalidRequest",
                             "Checksum Type mismatch occurred, expected checksum Type: null, actual checksum Type: crc32")
        chunked = {"Content-Encoding": "aws-chunked", "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                   "x-amz-decoded-content-length": str(len(part)), "x-amz-trailer": "x-amz-checksum-crc32",
                   "x-amz-sdk-checksum-algorithm": "CRC32"}
        r = self.put(path, aws_chunked(part, {"x-amz-checksum-crc32": crc32(part)}, chunk=65536), chunked)
        self.assert_s3_error(r, 400, "InvalidRequest",
                             "Checksum Type mismatch occurred, expected checksum Type: null, actual checksum Type: crc32")
        r = self.put(path, part, {"x-amz-sdk-checksum-algorithm": "SHA256"})
        self.assertIn("actual checksum Type: sha256", r.tag("Message") or r.text)
        r = self.put(path, part, {"Content-MD5": b64(hashlib.md5(part).digest())})  # MD5 is not a checksum type
        self.assertEqual(r.status, 200, r.text)
        r = self.put(path, part)
        self.assertEqual(r.status, 200, r.text)

        upload = self.create_upload(bucket, "crc32c", "CRC32C")
        path = f"/{bucket}/crc32c?partNumber=1&uploadId={upload}"
        r = self.put(path, part, {"x-amz-checksum-sha256": double_s3.b64_digest("SHA256", part)})
        self.assert_s3_error(r, 400, "InvalidRequest", "Checksum Type mismatch occurred, expected checksum Type: "
                                                       "crc32c, actual checksum Type: sha256")
        r = self.put(path, part, {"x-amz-checksum-crc32c": double_s3.b64_digest("CRC32C", part[:-1])})
        self.assert_s3_error(r, 400, "BadDigest", "The CRC32C you specified did not match the calculated checksum.")
        r = self.put(path, part)  # COMPOSITE (the default for CRC32C): every part needs its checksum
        self.assert_s3_error(r, 400, "InvalidRequest", "Checksum Type mismatch occurred, expected checksum Type: "
                                                       "crc32c, actual checksum Type: null")
        etag1 = self.put(path, part, {"x-amz-checksum-crc32c": double_s3.b64_digest("CRC32C", part)}).headers["etag"]
        r = self.put(f"/{bucket}/crc32c?partNumber=2&uploadId={upload}", b"tail",
                     {"x-amz-checksum-crc32c": double_s3.b64_digest("CRC32C", b"tail")})
        self.assertEqual(r.status, 200, r.text)
        complete = (f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag1}</ETag></Part>"
                    f"<Part><PartNumber>2</PartNumber><ETag>{r.headers['etag']}</ETag></Part></CompleteMultipartUpload>")
        r = self.call("POST", f"/{bucket}/crc32c?uploadId={upload}", complete, {"Content-Type": "application/xml"})
        self.assertEqual(r.status, 200, r.text)
        self.assertTrue(self.call("GET", f"/{bucket}/crc32c").body == part + b"tail")

        # FULL_OBJECT: a part without a checksum is taken (S3 computes it).
        r = self.call("POST", f"/{bucket}/full?uploads", headers={"x-amz-checksum-algorithm": "CRC32",
                                                                  "x-amz-checksum-type": "FULL_OBJECT"})
        r = self.put(f"/{bucket}/full?partNumber=1&uploadId={r.tag('UploadId')}", part)
        self.assertEqual(r.status, 200, r.text)

        # An upload the double did not see created (made at moto directly) is not checked.
        r = self.at_moto("POST", f"/{bucket}/direct?uploads")
        upload = r.tag("UploadId")
        r = self.put(f"/{bucket}/direct?partNumber=1&uploadId={upload}", b"x", {"x-amz-checksum-crc32": crc32(b"x")})
        self.assertEqual(r.status, 200, r.text)

    # --- 3. CopyObject preconditions ----------------------------------------------------------

    def test_copy_source_if_match_and_if_none_match(self):
        bucket = self.bucket()
        key = "dir/a b+c%d é.txt"
        qkey = urllib.parse.quote(key)
        r = self.put(f"/{bucket}/{qkey}", b"source")
        etag = r.headers["etag"]
        source = urllib.parse.quote(f"{bucket}/{key}")
        r = self.call("PUT", f"/{bucket}/copy1?x-id=CopyObject",
                      headers={"x-amz-copy-source": source, "x-amz-copy-source-if-match": '"0123456789abcdef"'})
        self.assert_s3_error(r, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
        self.assertEqual(r.tag("Condition"), "x-amz-copy-source-If-Match")
        self.assert_absent(bucket, "copy1")
        for tag in (etag, etag.strip('"')):  # quoted or not
            r = self.call("PUT", f"/{bucket}/copy1", headers={"x-amz-copy-source": "/" + source,
                                                             "x-amz-copy-source-if-match": tag})
            self.assertEqual(r.status, 200, r.text)
        self.assertEqual(self.call("GET", f"/{bucket}/copy1").body, b"source")
        r = self.call("PUT", f"/{bucket}/copy2", headers={"x-amz-copy-source": source,
                                                         "x-amz-copy-source-if-none-match": etag})
        self.assert_s3_error(r, 412, "PreconditionFailed")
        self.assertEqual(r.tag("Condition"), "x-amz-copy-source-If-None-Match")
        self.assert_absent(bucket, "copy2")
        r = self.call("PUT", f"/{bucket}/copy2", headers={"x-amz-copy-source": source,
                                                         "x-amz-copy-source-if-none-match": '"other"'})
        self.assertEqual(r.status, 200, r.text)
        # ?versionId= on the source, and UploadPartCopy.
        self.assertEqual(self.call("PUT", f"/{bucket}?versioning", "<VersioningConfiguration><Status>Enabled</Status>"
                                   "</VersioningConfiguration>").status, 200)
        v1 = self.put(f"/{bucket}/v", b"one").headers["x-amz-version-id"]
        v1_etag = self.call("HEAD", f"/{bucket}/v").headers["etag"]
        self.put(f"/{bucket}/v", b"two")
        r = self.call("PUT", f"/{bucket}/v-copy", headers={"x-amz-copy-source": f"{bucket}/v?versionId={v1}",
                                                          "x-amz-copy-source-if-match": v1_etag})
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(self.call("GET", f"/{bucket}/v-copy").body, b"one")
        upload = self.create_upload(bucket, "mp")
        r = self.call("PUT", f"/{bucket}/mp?partNumber=1&uploadId={upload}",
                      headers={"x-amz-copy-source": source, "x-amz-copy-source-if-match": '"nope"'})
        self.assert_s3_error(r, 412, "PreconditionFailed")
        # A missing source stays moto's answer.
        r = self.call("PUT", f"/{bucket}/x", headers={"x-amz-copy-source": f"{bucket}/missing",
                                                     "x-amz-copy-source-if-match": etag})
        self.assert_s3_error(r, 404, "NoSuchKey")

    # --- 4. an S3-compatible store without checksums --------------------------------------------

    def test_s3_compatible_bucket_refuses_checksum_headers(self):
        bucket, plain = self.bucket(), self.bucket()
        r = self.call("POST", "/__double/s3-compatible", json.dumps({"bucket": bucket}), service=None)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(r.json()[bucket], 0)
        self.assertEqual(self.call("POST", "/__double/s3-compatible", "{}", service=None).status, 400)
        data = b"hello"
        value = crc32(data)
        r = self.put(f"/{bucket}/a", data, {"x-amz-sdk-checksum-algorithm": "CRC32", "x-amz-checksum-crc32": value})
        self.assert_s3_error(r, 501, "NotImplemented", f"Header 'x-amz-checksum-crc32' with value '{value}' not implemented")
        self.assert_absent(bucket, "a")
        chunked = {"Content-Encoding": "aws-chunked", "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                   "x-amz-decoded-content-length": "5", "x-amz-trailer": "x-amz-checksum-crc32"}
        r = self.put(f"/{bucket}/a", aws_chunked(data, {"x-amz-checksum-crc32": value}), chunked)
        self.assert_s3_error(r, 501, "NotImplemented",
                             "Header 'x-amz-trailer' with value 'x-amz-checksum-crc32' not implemented")
        r = self.call("POST", f"/{bucket}/mp?uploads", headers={"x-amz-checksum-algorithm": "SHA256"})
        self.assert_s3_error(r, 501, "NotImplemented", "Header 'x-amz-checksum-algorithm' with value 'SHA256' "
                                                       "not implemented")
        self.assertEqual(self.put(f"/{bucket}/a", data).status, 200)  # no checksum: fine
        r = self.call("PUT", f"/{bucket}/b", headers={"x-amz-copy-source": f"{bucket}/a",
                                                     "x-amz-checksum-algorithm": "CRC32"})
        self.assert_s3_error(r, 501, "NotImplemented")
        upload = self.create_upload(bucket, "mp")
        r = self.put(f"/{bucket}/mp?partNumber=1&uploadId={upload}", data, {"x-amz-checksum-crc32": value})
        self.assert_s3_error(r, 501, "NotImplemented")
        r = self.call("POST", f"/{bucket}/mp?uploadId={upload}", "<CompleteMultipartUpload/>",
                      {"x-amz-checksum-crc32": value, "Content-Type": "application/xml"})
        self.assert_s3_error(r, 501, "NotImplemented")
        # Left alone: GetObject with x-amz-checksum-mode, DeleteObjects with its (required) checksum.
        r = self.call("GET", f"/{bucket}/a", headers={"x-amz-checksum-mode": "ENABLED"})
        self.assertEqual((r.status, r.body), (200, data))
        delete = b"<Delete><Object><Key>a</Key></Object></Delete>"
        r = self.call("POST", f"/{bucket}?delete", delete, {"x-amz-sdk-checksum-algorithm": "CRC32",
                                                            "x-amz-checksum-crc32": crc32(delete),
                                                            "Content-Type": "application/xml"})
        self.assertEqual(r.status, 200, r.text)
        self.assertIn("<Deleted>", r.text)
        # Other buckets are unaffected; the hook counts the refusals.
        r = self.put(f"/{plain}/a", data, {"x-amz-sdk-checksum-algorithm": "CRC32", "x-amz-checksum-crc32": value})
        self.assertEqual(r.status, 200, r.text)
        counts = self.call("GET", "/__double/s3-compatible", service=None).json()
        self.assertEqual(counts[bucket], 6)
        self.assertNotIn(plain, counts)

    # --- 5. ACM ---------------------------------------------------------------------------------

    def test_acm_reveals_records_one_by_one_and_issues_on_dns(self):
        apex = f"acm-{uuid.uuid4().hex[:10]}.example"
        arn = self.request_cert(apex, [f"*.{apex}", f"www.{apex}"])
        options = []
        for n in range(1, 5):
            cert = self.describe(arn)
            self.assertEqual(cert["Status"], "PENDING_VALIDATION")
            options = cert["DomainValidationOptions"]
            self.assertEqual(len(options), 3)
            with_records = [o for o in options if "ResourceRecord" in o]
            self.assertEqual(len(with_records), min(n - 1, 3), f"describe #{n}")
            self.assertEqual(with_records, options[:len(with_records)])  # in moto's order
            self.assertEqual({o["ValidationStatus"] for o in options}, {"PENDING_VALIDATION"})
            for field in ("IssuedAt", "NotBefore", "NotAfter", "Serial"):
                self.assertNotIn(field, cert)
        self.assertIsNone(self.listed(arn, ["ISSUED"]))
        self.assertEqual(self.listed(arn)["Status"], "PENDING_VALIDATION")
        self.assertEqual(self.listed(arn, ["PENDING_VALIDATION"])["Status"], "PENDING_VALIDATION")
        # Every record shown, none in DNS yet: still pending. A wrong value does not count.
        zone = self.create_zone(apex)
        records = {o["ResourceRecord"]["Name"]: o["ResourceRecord"]["Value"] for o in options}
        for name in records:
            self.upsert_cname(zone, name, "_wrong.acm-validations.aws.")
        self.assertEqual(self.describe(arn)["Status"], "PENDING_VALIDATION")
        names = list(records)
        self.upsert_cname(zone, names[0], records[names[0]])
        if len(names) > 1:
            self.assertEqual(self.describe(arn)["Status"], "PENDING_VALIDATION")
        for name in names[1:]:
            self.upsert_cname(zone, name.rstrip("."), records[name].upper().rstrip("."))  # case, dot: no matter
        self.assertEqual(self.listed(arn, ["ISSUED"])["Status"], "ISSUED")
        cert = self.describe(arn)
        self.assertEqual(cert["Status"], "ISSUED")
        self.assertEqual({o["ValidationStatus"] for o in cert["DomainValidationOptions"]}, {"SUCCESS"})
        self.assertIn("IssuedAt", cert)
        self.assertIsNone(self.listed(arn, ["PENDING_VALIDATION"]))

    def test_acm_record_in_the_longest_matching_zone(self):
        apex = f"acm-{uuid.uuid4().hex[:10]}.example"
        arn = self.request_cert(f"www.sub.{apex}", port=self.port_all)
        cert = self.describe(arn, port=self.port_all)
        record = cert["DomainValidationOptions"][0]["ResourceRecord"]  # --acm-reveal-all: at once
        self.assertEqual(cert["Status"], "PENDING_VALIDATION")
        parent, child = self.create_zone(apex), self.create_zone(f"sub.{apex}")
        self.upsert_cname(parent, record["Name"], record["Value"])  # shadowed by the sub zone
        self.assertEqual(self.describe(arn, port=self.port_all)["Status"], "PENDING_VALIDATION")
        self.upsert_cname(child, record["Name"], record["Value"])
        self.assertEqual(self.describe(arn, port=self.port_all)["Status"], "ISSUED")

    def test_acm_reveal_all_and_certificates_made_at_moto(self):
        apex = f"acm-{uuid.uuid4().hex[:10]}.example"
        arn = self.request_cert(apex, [f"www.{apex}"], port=self.port_all)
        cert = self.describe(arn, port=self.port_all)
        self.assertEqual(cert["Status"], "PENDING_VALIDATION")
        self.assertTrue(all("ResourceRecord" in o for o in cert["DomainValidationOptions"]))
        # Requested at moto directly: left as moto reports it (ISSUED at once, records at once).
        r = self.at_moto("POST", "/", json.dumps({"DomainName": f"m.{apex}", "ValidationMethod": "DNS"}),
                      {"X-Amz-Target": "CertificateManager.RequestCertificate",
                       "Content-Type": "application/x-amz-json-1.1"}, service="acm")
        direct = r.json()["CertificateArn"]
        cert = self.describe(direct)
        self.assertEqual(cert["Status"], "ISSUED")
        self.assertIn("ResourceRecord", cert["DomainValidationOptions"][0])
        self.assertEqual(self.listed(direct, ["ISSUED"])["Status"], "ISSUED")

    # --- reset ----------------------------------------------------------------------------------

    def test_zz_reset_forgets(self):  # runs last: it wipes moto
        bucket = self.bucket()
        self.call("POST", "/__double/s3-compatible", json.dumps({"bucket": bucket}), service=None)
        self.assertEqual(self.call("POST", "/__double/reset", service=None).status, 200)
        self.assertEqual(self.call("GET", "/__double/s3-compatible", service=None).json(), {})
        self.call("POST", "/__double/s3-compatible", json.dumps({"bucket": bucket}), service=None)
        arn = self.request_cert(f"r-{uuid.uuid4().hex[:8]}.example")
        self.assertEqual(self.call("POST", "/moto-api/reset", service=None).status, 200)
        self.assertEqual(self.call("GET", "/__double/s3-compatible", service=None).json(), {})
        self.assertEqual(self.call("PUT", f"/{bucket}").status, 200)
        self.assertEqual(self.put(f"/{bucket}/k", b"x", {"x-amz-checksum-crc32": crc32(b"x")}).status, 200)
        r = self.call("POST", "/", json.dumps({"CertificateArn": arn}),
                      {"X-Amz-Target": "CertificateManager.DescribeCertificate",
                       "Content-Type": "application/x-amz-json-1.1"}, service="acm")
        self.assertEqual(r.status, 400)  # moto forgot it too (ResourceNotFoundException)


if __name__ == "__main__":
    unittest.main(verbosity=2)
