"""S3 and ACM strictness for scripts/double.py (Python 3.11 standard library only).

moto stores S3 checksums without checking them, ignores `x-amz-copy-source-if-match`, and
issues ACM certificates at once without looking at DNS. double.py calls `route()` for every
request; it answers the cases below and returns None for everything else.

S3 (SigV4 credential scope `s3`, path-style `/<bucket>/<key>`):
* PutObject / UploadPart: `Content-MD5`, `x-amz-checksum-{crc32,crc32c,crc64nvme,sha1,sha256}`
  and aws-chunked trailer checksums are verified over the decoded payload; a mismatch is
  400 `BadDigest` and is not forwarded. aws-chunked bodies are forwarded decoded, the trailer
  checksum as a header: moto 5.2.5 decodes aws-chunked only for three x-amz-content-sha256
  values, answers 500 to chunk-signature extensions under STREAMING-UNSIGNED-PAYLOAD-TRAILER,
  and stores the still-encoded body under the SigV4a STREAMING-AWS4-ECDSA-P256-SHA256-*.
* UploadPart: the part's checksum algorithm must be the one declared at CreateMultipartUpload
  (`x-amz-checksum-algorithm`, none if absent), else 400 `InvalidRequest` "Checksum Type
  mismatch occurred, ..."; a COMPOSITE upload (the default type for every algorithm but
  CRC64NVME) also refuses a part without any checksum. Uploads made at moto directly are
  not checked.
* CopyObject / UploadPartCopy: `x-amz-copy-source-if-match` / `-if-none-match` are checked
  against a HEAD of the source at moto; a failed condition is 412 `PreconditionFailed`.
* "S3-compatible" buckets (`POST /__double/s3-compatible {"bucket": name}`) refuse any
  checksum header on writes with 501 `NotImplemented`, as Cloudflare R2 did in early 2025.
  `GET /__double/s3-compatible` → `{bucket: number of refused requests}`.

ACM (JSON 1.1, `X-Amz-Target: CertificateManager.*`), for DNS-validated certificates
requested through the double:
* the n-th DescribeCertificate shows the ResourceRecord of the first n-1 validation options
  only (all at once with `--acm-reveal-all`);
* the certificate stays PENDING_VALIDATION (DescribeCertificate, ListCertificates and its
  CertificateStatuses filter) until every record was shown and a matching CNAME exists in
  moto's Route 53; from then on moto's report (ISSUED) passes unchanged.
"""

import base64
import binascii
import hashlib
import json
import os
import threading
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
import zlib
from xml.sax.saxutils import escape

# Same set as double.py's (not imported from there: double.py may be running as __main__).
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
              "te", "trailer", "trailers", "transfer-encoding", "upgrade", "expect", "content-length"}
ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
DIGEST_SIZES = {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8, "SHA1": 20, "SHA256": 32}
CHECKSUM_HEADERS = {f"x-amz-checksum-{a.lower()}": a for a in ALGORITHMS}
# Writes that the S3-compatible store refuses checksum headers on.
COMPAT_OPS = ("PutObject", "UploadPart", "UploadPartCopy", "CreateMultipartUpload", "CompleteMultipartUpload",
              "CopyObject")
ACM_TARGET = "CertificateManager."


class Reply:
    """Same shape as double.Reply (status, header list, body bytes), which is all send_reply uses."""

    def __init__(self, status, headers=(), body=b""):
        self.status, self.headers, self.body = status, list(headers), body


def json_reply(status, obj):
    return Reply(status, [("Content-Type", "application/json")], json.dumps(obj, sort_keys=True).encode())


def s3_error(status, code, message, extra=""):
    """S3's REST error document (`<Error>` at the root, RequestId and HostId last)."""
    request_id = uuid.uuid4().hex[:16].upper()
    host_id = base64.b64encode(os.urandom(48)).decode()
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{escape(message)}</Message>'
            f"{extra}<RequestId>{request_id}</RequestId><HostId>{host_id}</HostId></Error>")
    return Reply(status, [("Content-Type", "application/xml"), ("x-amz-request-id", request_id),
                          ("x-amz-id-2", host_id)], body.encode())


# --- checksums ---------------------------------------------------------------------------------

def _reflected_table(poly):
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


CRC32C_TABLE = _reflected_table(0x82F63B78)  # Castagnoli 0x1EDC6F41, reflected
CRC64NVME_TABLE = _reflected_table(0x9A6C9329AC4BC9B5)  # CRC-64/NVME 0xAD93D23594C93659, reflected


def crc32c(data):
    """CRC-32C (init and xorout 0xFFFFFFFF); crc32c(b"123456789") == 0xE3069283."""
    crc, table = 0xFFFFFFFF, CRC32C_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def crc64nvme(data):
    """CRC-64/NVME, S3's default; crc64nvme(b"123456789") == 0xAE8B14860A799888."""
    crc, table = 0xFFFFFFFFFFFFFFFF, CRC64NVME_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFFFFFFFFFF


def digest(algorithm, data):
    """The raw digest bytes S3 base64-encodes in `x-amz-checksum-<algorithm>` (CRCs big-endian)."""
    if algorithm == "CRC32":
        return zlib.crc32(data).to_bytes(4, "big")
    if algorithm == "CRC32C":
        return crc32c(data).to_bytes(4, "big")
    if algorithm == "CRC64NVME":
        return crc64nvme(data).to_bytes(8, "big")
    return hashlib.new(algorithm.lower(), data).digest()


def b64_digest(algorithm, data):
    return base64.b64encode(digest(algorithm, data)).decode()


def decode_b64(value, size):
    """Strict base64 of exactly `size` bytes, or None."""
    try:
        raw = base64.b64decode((value or "").strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == size else None


class ChunkError(Exception):
    pass


def decode_aws_chunked(raw):
    """aws-chunked body → (payload, {trailer name (lower case): value}). Chunk extensions such as
    `;chunk-signature=…` and trailer signatures are accepted and never verified."""
    out, pos, end = [], 0, len(raw)
    while True:
        eol = raw.find(b"\r\n", pos)
        if eol < 0:
            raise ChunkError("IncompleteBody")
        try:
            size = int(raw[pos:eol].split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ChunkError("IncompleteBody")
        pos = eol + 2
        if size == 0:
            break
        if pos + size + 2 > end or raw[pos + size:pos + size + 2] != b"\r\n":
            raise ChunkError("IncompleteBody")
        out.append(raw[pos:pos + size])
        pos += size + 2
    trailers = {}
    while pos < end:
        eol = raw.find(b"\r\n", pos)
        line, pos = (raw[pos:], end) if eol < 0 else (raw[pos:eol], eol + 2)
        if not line.strip():
            break
        name, sep, value = line.partition(b":")
        if not sep:
            raise ChunkError("MalformedTrailerError")
        trailers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return b"".join(out), trailers


# --- state -------------------------------------------------------------------------------------

class S3State:
    """What this module remembers; `lock` guards all of it. reset() on /__double/reset and
    /moto-api/reset (double.py calls it)."""

    def __init__(self, acm_reveal_all=False):
        self.lock = threading.Lock()
        self.acm_reveal_all = acm_reveal_all
        self.reset()

    def reset(self):
        with self.lock:
            self.compatible = {}  # bucket -> number of requests refused
            self.uploads = {}     # multipart upload id -> (declared checksum algorithm or None, checksum type)
            self.certs = {}       # ACM ARN -> {"describes": int, "order": [domain] or None, "validated": bool}


# --- entry point -------------------------------------------------------------------------------

def route(handler, service, path, query, headers, body, forward):
    """Called from double.Handler.route; returns a reply, or None to let double.py go on."""
    state = handler.server.s3
    if path == "/__double/s3-compatible":
        return compat_hook(state, handler.command, body)
    if service == "s3":
        return S3Request(handler, state, path, query, headers, body, forward).route()
    if service == "acm" and headers.get("x-amz-target", "").startswith(ACM_TARGET):
        return acm_route(handler, state, headers["x-amz-target"][len(ACM_TARGET):], headers, body, forward)
    return None


def compat_hook(state, method, body):
    if method == "POST":
        try:
            bucket = json.loads(body or b"{}").get("bucket")
        except (ValueError, AttributeError):
            bucket = None
        if not isinstance(bucket, str) or not bucket:
            return json_reply(400, {"error": 'expected a JSON body {"bucket": "<name>"}'})
        with state.lock:
            state.compatible.setdefault(bucket, 0)
    elif method != "GET":
        return json_reply(405, {"error": "GET or POST"})
    with state.lock:
        return json_reply(200, dict(state.compatible))


def raw_target(handler):
    target = handler.path
    if not target.startswith("/"):  # absolute-form request target
        parts = urllib.parse.urlsplit(target)
        target = parts.path + ("?" + parts.query if parts.query else "")
    return target


def header_list(handler):
    return [(k, v) for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP]


# --- S3 ----------------------------------------------------------------------------------------

class S3Request:
    def __init__(self, handler, state, path, query, headers, body, forward):
        self.handler, self.state, self.query, self.headers, self.body = handler, state, query, headers, body
        self.forward, self.method = forward, handler.command
        self.upstream = handler.server.upstream
        segs = [urllib.parse.unquote(s) for s in path.split("/")[1:]]
        self.bucket = segs[0] if segs else ""
        self.key = "/".join(segs[1:])
        self.op = self.operation()

    def operation(self):
        # The Rust SDK adds `x-id=<Operation>` to the query; it names no sub-resource.
        sub = set(self.query) - {"x-id"}
        copy = "x-amz-copy-source" in self.headers
        if not self.bucket or not self.key:
            return None
        if self.method == "PUT" and {"partNumber", "uploadId"} <= sub:
            return "UploadPartCopy" if copy else "UploadPart"
        if self.method == "PUT" and not sub:
            return "CopyObject" if copy else "PutObject"
        if self.method == "POST" and "uploads" in sub:
            return "CreateMultipartUpload"
        if self.method == "POST" and "uploadId" in sub:
            return "CompleteMultipartUpload"
        if self.method == "DELETE" and "uploadId" in sub:
            return "AbortMultipartUpload"
        return None

    def route(self):
        if self.op is None:
            return None
        refused = self.compat_refusal()
        if refused is not None:
            return refused
        if self.op in ("CopyObject", "UploadPartCopy"):
            return self.copy_preconditions() or self.forward()
        if self.op == "CreateMultipartUpload":
            return self.create_multipart_upload()
        if self.op in ("CompleteMultipartUpload", "AbortMultipartUpload"):
            reply = self.forward()
            if 200 <= reply.status < 300 and b"<Error>" not in reply.body:
                with self.state.lock:
                    self.state.uploads.pop(self.query["uploadId"], None)
            return reply
        return self.checked_write()  # PutObject, UploadPart

    # 4. An S3-compatible store without checksum support --------------------------------------

    def compat_refusal(self):
        """Cloudflare R2 in early 2025 answered the SDKs' new default checksums with
        `501 NotImplemented: Header 'x-amz-checksum-crc32' with value '…' not implemented`
        (cloudflare/cloudflare-docs#19236, f2face/cloudflare-r2#12; CopyObject's
        `x-amz-checksum-algorithm` likewise, cloudflare/cloudflare-docs#4508).
        DeleteObjects and GetObject are left alone: the SDK always sends a checksum on
        DeleteObjects (the operation requires Content-MD5 or a flexible checksum, and stores
        such as R2 accept it), and GetObject only asks for a response checksum
        (`x-amz-checksum-mode`)."""
        if self.op not in COMPAT_OPS:
            return None
        with self.state.lock:
            if self.bucket not in self.state.compatible:
                return None
        items = [(k.lower(), v) for k, v in self.handler.headers.items()]
        offending = [(k, v) for k, v in items if k.startswith("x-amz-checksum-") and k != "x-amz-checksum-mode"]
        offending.sort(key=lambda kv: kv[0] not in CHECKSUM_HEADERS)  # value headers first, as R2 named them
        offending += [(k, v) for k, v in items if k in ("x-amz-sdk-checksum-algorithm", "x-amz-trailer")]
        offending += [(k, v) for k, v in items if k == "content-encoding" and "aws-chunked" in v.lower()]
        if not offending:
            return None
        with self.state.lock:
            self.state.compatible[self.bucket] = self.state.compatible.get(self.bucket, 0) + 1
        name, value = offending[0]
        return s3_error(501, "NotImplemented", f"Header '{name}' with value '{value}' not implemented")

    # 3. CopyObject preconditions on the source ----------------------------------------------

    def copy_preconditions(self):
        """S3 API CopyObject / UploadPartCopy: x-amz-copy-source-if-match copies only if the
        source's ETag matches, x-amz-copy-source-if-none-match only if it differs; otherwise
        412 Precondition Failed. moto ignores if-match (and if-none-match on UploadPartCopy)."""
        if_match = self.headers.get("x-amz-copy-source-if-match")
        if_none_match = self.headers.get("x-amz-copy-source-if-none-match")
        if if_match is None and if_none_match is None:
            return None
        source, _, source_query = self.headers["x-amz-copy-source"].partition("?")
        src_bucket, _, src_key = urllib.parse.unquote(source).lstrip("/").partition("/")
        version = urllib.parse.parse_qs(source_query).get("versionId", [None])[0]
        target = "/" + urllib.parse.quote(src_bucket, safe="") + "/" + urllib.parse.quote(src_key, safe="/~")
        if version:
            target += "?versionId=" + urllib.parse.quote(version, safe="")
        auth = self.headers.get("authorization", "")
        host = self.headers.get("host", f"{self.upstream.host}:{self.upstream.port}")
        head = self.upstream.request("HEAD", target, [("Host", host), ("Authorization", auth)])
        if head.status != 200:
            return None  # a missing source is moto's to report (NoSuchKey)
        etag = (head.header("ETag") or "").strip().strip('"')

        def matches(condition):
            tags = [t.strip().strip('"') for t in condition.split(",")]
            return "*" in tags or etag in tags

        if if_match is not None and not matches(if_match):
            return precondition_failed("x-amz-copy-source-If-Match")
        if if_none_match is not None and matches(if_none_match):
            return precondition_failed("x-amz-copy-source-If-None-Match")
        return None

    # 2. Multipart: remember the declared algorithm -------------------------------------------

    def create_multipart_upload(self):
        reply = self.forward()
        if reply.status == 200:
            try:
                root = ET.fromstring(reply.body)
                upload_id = next((el.text for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "UploadId"), None)
            except ET.ParseError:
                upload_id = None
            if upload_id:
                declared = (self.headers.get("x-amz-checksum-algorithm") or "").strip().upper() or None
                # CRC64NVME is full-object only; the others default to COMPOSITE (S3 User Guide,
                # "Checking object integrity": multipart checksum types).
                kind = (self.headers.get("x-amz-checksum-type") or "").strip().upper() or (
                    "FULL_OBJECT" if declared == "CRC64NVME" else "COMPOSITE")
                with self.state.lock:
                    self.state.uploads[upload_id] = (declared, kind)
        return reply

    # 1. Verified checksums ------------------------------------------------------------------

    def checked_write(self):
        payload, trailers = self.body, {}
        chunked = "aws-chunked" in self.headers.get("content-encoding", "").lower()
        if chunked:
            try:
                payload, trailers = decode_aws_chunked(self.body)
            except ChunkError as e:
                return incomplete_body() if str(e) == "IncompleteBody" else malformed_trailer()
            decoded_length = self.headers.get("x-amz-decoded-content-length")
            if decoded_length is not None and decoded_length.strip() != str(len(payload)):
                return incomplete_body()

        given = [(CHECKSUM_HEADERS[k], v, "header") for k, v in self.headers.items() if k in CHECKSUM_HEADERS]
        declared_trailers = [t.strip().lower() for t in self.headers.get("x-amz-trailer", "").split(",") if t.strip()]
        for name in declared_trailers:
            if name in CHECKSUM_HEADERS:
                if not chunked or name not in trailers:
                    return malformed_trailer()
                given.append((CHECKSUM_HEADERS[name], trailers[name], "trailer"))
        if len(given) > 1:
            # Wording as S3 gives it (OpenStack Swift's s3api copies it "for AWS compatibility").
            message = "Expecting a single x-amz-checksum- header"
            if all(src == "header" for _, _, src in given):
                message += ". Multiple checksum Types are not allowed."
            return s3_error(400, "InvalidRequest", message)

        if self.op == "UploadPart":
            sdk = (self.headers.get("x-amz-sdk-checksum-algorithm") or "").strip().upper() or None
            actual = given[0][0] if given else sdk
            upload_id = self.query.get("uploadId")
            with self.state.lock:
                known = upload_id in self.state.uploads
                expected, kind = self.state.uploads.get(upload_id, (None, None))
            # S3 API UploadPart, ChecksumAlgorithm: "This checksum algorithm must be the same for
            # all parts and it match the checksum value supplied in the CreateMultipartUpload
            # request." S3 answers InvalidRequest (message as listed in the S3 API's
            # InvalidRequest error docs, "... expected checksum Type: sha1, actual checksum Type:
            # crc32c"; "null" for no algorithm). A COMPOSITE upload also refuses a part without
            # any checksum ("expected checksum Type: sha256, actual checksum Type: null", as
            # OpenStack Swift's s3api tests pin against AWS); a FULL_OBJECT one takes it, and so
            # does an upload that declared nothing. Uploads made at moto directly are not known.
            missing = actual is None and expected is not None and kind == "COMPOSITE"
            if known and ((actual is not None and actual != expected) or missing):
                return s3_error(400, "InvalidRequest", "Checksum Type mismatch occurred, expected checksum Type: "
                                f"{expected.lower() if expected else 'null'}, actual checksum Type: "
                                f"{actual.lower() if actual else 'null'}")

        checks = []
        for algorithm, value, source in given:
            raw = decode_b64(value, DIGEST_SIZES[algorithm])
            if raw is None:
                header = f"x-amz-checksum-{algorithm.lower()}"
                return s3_error(400, "InvalidRequest", f"Value for {header} {'trailing ' if source == 'trailer' else ''}"
                                                       "header is invalid.")
            checks.append((algorithm, raw))

        content_md5 = self.headers.get("content-md5")
        if content_md5 is not None:
            expected_md5 = decode_b64(content_md5, 16)
            if expected_md5 is None:
                return s3_error(400, "InvalidDigest", "The Content-MD5 you specified was not valid.")
            calculated = hashlib.md5(payload).digest()
            if calculated != expected_md5:
                # S3 error codes: BadDigest, "The Content-MD5 you specified did not match what we
                # received." S3 echoes the expected digest in hex and the calculated one in base64.
                return s3_error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.",
                                f"<ExpectedDigest>{expected_md5.hex()}</ExpectedDigest>"
                                f"<CalculatedDigest>{base64.b64encode(calculated).decode()}</CalculatedDigest>")
        for algorithm, raw in checks:
            if digest(algorithm, payload) != raw:
                # Real S3: "BadDigest: The SHA256 you specified did not match the calculated checksum."
                # (and likewise CRC32, SHA1, ...; the algorithm's name in upper case).
                return s3_error(400, "BadDigest", f"The {algorithm} you specified did not match the calculated checksum.")

        if not chunked:
            return self.forward()
        return self.forward_decoded(payload, (given[0][0], given[0][1]) if given else None)

    def forward_decoded(self, payload, checksum):
        """Send moto the decoded payload as a plain body; a trailer checksum becomes a header so
        that moto stores it (it reads x-amz-checksum-<algorithm> named by
        x-amz-sdk-checksum-algorithm)."""
        headers = []
        for k, v in header_list(self.handler):
            lk = k.lower()
            if lk in ("x-amz-decoded-content-length", "x-amz-trailer", "x-amz-content-sha256"):
                continue
            if lk == "content-encoding":
                v = ",".join(e.strip() for e in v.split(",") if e.strip() and e.strip().lower() != "aws-chunked")
                if not v:
                    continue
            headers.append((k, v))
        headers.append(("x-amz-content-sha256", "UNSIGNED-PAYLOAD"))
        if checksum:
            algorithm, value = checksum
            name = f"x-amz-checksum-{algorithm.lower()}"
            if not any(k.lower() == name for k, _ in headers):
                headers.append((name, value))
            if not any(k.lower() == "x-amz-sdk-checksum-algorithm" for k, _ in headers):
                headers.append(("x-amz-sdk-checksum-algorithm", algorithm))
        return self.upstream.request(self.method, raw_target(self.handler), headers, payload)


def precondition_failed(condition):
    # S3 error codes: PreconditionFailed (412), "At least one of the preconditions that you
    # specified did not hold."; the wire message and <Condition> as S3 (and moto) send them.
    return s3_error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold",
                    f"<Condition>{condition}</Condition>")


def incomplete_body():
    return s3_error(400, "IncompleteBody", "You did not provide the number of bytes specified by the "
                                           "Content-Length HTTP header.")


def malformed_trailer():
    return s3_error(400, "MalformedTrailerError", "The request contained trailing data that was not well-formed "
                                                  "or did not conform to our published schema.")


# --- ACM ---------------------------------------------------------------------------------------

def acm_route(handler, state, action, headers, body, forward):
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return None
    if not isinstance(request, dict):
        return None
    if action == "RequestCertificate":
        reply = forward()
        # Only DNS validation is modelled (ACM's default method is EMAIL).
        if reply.status == 200 and str(request.get("ValidationMethod", "")).upper() == "DNS":
            arn = json.loads(reply.body).get("CertificateArn")
            if arn:
                with state.lock:  # the same idempotency token gives the same ARN: keep its state
                    state.certs.setdefault(arn, {"describes": 0, "order": None, "validated": False})
        return reply
    if action == "DescribeCertificate":
        arn = request.get("CertificateArn")
        with state.lock:
            tracked = arn in state.certs
        if not tracked:
            return None
        reply = forward()
        if reply.status == 200:
            doc = json.loads(reply.body)
            with state.lock:
                if arn in state.certs:
                    state.certs[arn]["describes"] += 1
            if acm_adjust(handler, state, arn, doc.get("Certificate") or {}, detail=True):
                reply.body = json.dumps(doc).encode()
        return reply
    if action == "ListCertificates":
        with state.lock:
            tracked = bool(state.certs)
        if not tracked:
            return None
        return list_certificates(handler, state, request, headers)
    return None


def acm_adjust(handler, state, arn, cert, detail):
    """Rewrite one certificate (DescribeCertificate's, or a ListCertificates summary when not
    `detail`) in place while it has to look pending; True if anything changed."""
    with state.lock:
        entry = state.certs.get(arn)
        if entry is None or entry["validated"]:
            return False
    if not detail and cert.get("Status") != "ISSUED":
        return False  # moto's own status is not ISSUED: nothing to hide in a summary
    options = cert.get("DomainValidationOptions") if detail else None
    if not detail:
        full = acm_describe_at_moto(handler, arn)
        options = (full or {}).get("DomainValidationOptions")
        if options is None:
            return False
    options = options or []
    with state.lock:
        entry = state.certs.get(arn)
        if entry is None:
            return False
        if entry["order"] is None and detail:
            entry["order"] = [o.get("DomainName") for o in options]
        order = entry["order"] or [o.get("DomainName") for o in options]
        shown = len(order) if state.acm_reveal_all else max(0, min(entry["describes"] - 1, len(order)))
    revealed = set(order[:shown])
    all_revealed = all(o.get("DomainName") in revealed for o in options)
    if cert.get("Status") == "ISSUED" and all_revealed and dns_proves(handler, options):
        with state.lock:
            if arn in state.certs:
                state.certs[arn]["validated"] = True
        return False
    # Pending: ACM's DNS validation page — the certificate is issued once ACM finds the CNAME
    # records; until then the status (and each option's) is PENDING_VALIDATION, and a pending
    # certificate has no serial, validity dates or issue date yet.
    changed = False
    if cert.get("Status") == "ISSUED":
        cert["Status"] = "PENDING_VALIDATION"
        for field in ("IssuedAt", "NotBefore", "NotAfter", "Serial"):
            cert.pop(field, None)
        changed = True
    if detail:
        for option in options:
            if option.get("ValidationStatus") == "SUCCESS":
                option["ValidationStatus"] = "PENDING_VALIDATION"
                changed = True
            if option.get("DomainName") not in revealed and "ResourceRecord" in option:
                del option["ResourceRecord"]
                changed = True
    return changed


def acm_describe_at_moto(handler, arn):
    """moto's DescribeCertificate for `arn`, not counted as a client's call."""
    headers = [(k, v) for k, v in header_list(handler) if k.lower() != "x-amz-target"]
    headers.append(("X-Amz-Target", "CertificateManager.DescribeCertificate"))
    reply = handler.server.upstream.request("POST", "/", headers, json.dumps({"CertificateArn": arn}).encode())
    if reply.status != 200:
        return None
    return json.loads(reply.body).get("Certificate")


def list_certificates(handler, state, request, headers):
    """moto's ListCertificates, with the double's pending certificates shown as pending and the
    CertificateStatuses filter applied to what the client is shown."""
    statuses = request.get("CertificateStatuses") or None
    upstream_request = dict(request)
    if statuses and "ISSUED" not in statuses:
        upstream_request["CertificateStatuses"] = list(statuses) + ["ISSUED"]  # ours may look pending
    reply = handler.server.upstream.request("POST", raw_target(handler), header_list(handler),
                                            json.dumps(upstream_request).encode())
    if reply.status != 200:
        return reply
    doc = json.loads(reply.body)
    summaries = []
    for summary in doc.get("CertificateSummaryList") or []:
        arn = summary.get("CertificateArn")
        with state.lock:
            tracked = arn in state.certs
        if tracked:
            acm_adjust(handler, state, arn, summary, detail=False)
        if statuses is None or summary.get("Status") in statuses:
            summaries.append(summary)
    doc["CertificateSummaryList"] = summaries
    reply.body = json.dumps(doc).encode()
    return reply


# --- Route 53 look-ups (at moto) ---------------------------------------------------------------

R53_NS = "{https://route53.amazonaws.com/doc/2013-04-01/}"


def dns_name(name):
    return (name or "").replace("\\052", "*").strip().rstrip(".").lower()


def r53_get(upstream, target):
    auth = ("AWS4-HMAC-SHA256 Credential=double/20260101/us-east-1/route53/aws4_request, "
            "SignedHeaders=host, Signature=0")
    reply = upstream.request("GET", target, [("Host", "route53.amazonaws.com"), ("Authorization", auth)])
    if reply.status != 200:
        raise RuntimeError(f"moto Route 53 {target} answered {reply.status}: {reply.body[:200]!r}")
    return ET.fromstring(reply.body)


def r53_zones(upstream):
    zones, marker = [], None
    while True:
        root = r53_get(upstream, "/2013-04-01/hostedzone" + (f"?marker={urllib.parse.quote(marker)}" if marker else ""))
        for zone in root.iter(R53_NS + "HostedZone"):
            zones.append((zone.findtext(R53_NS + "Id"), dns_name(zone.findtext(R53_NS + "Name"))))
        marker = root.findtext(R53_NS + "NextMarker")
        if root.findtext(R53_NS + "IsTruncated") != "true" or not marker:
            return zones


def r53_cnames(upstream, zone_id):
    """{name: {value}} for every CNAME in the zone (following NextRecordName)."""
    zone_id = zone_id.rsplit("/", 1)[-1]
    found, start = {}, None
    while True:
        query = ("?" + urllib.parse.urlencode(start)) if start else ""
        root = r53_get(upstream, f"/2013-04-01/hostedzone/{zone_id}/rrset{query}")
        for rrset in root.iter(R53_NS + "ResourceRecordSet"):
            if rrset.findtext(R53_NS + "Type") == "CNAME":
                values = {dns_name(v.text) for v in rrset.iter(R53_NS + "Value")}
                found.setdefault(dns_name(rrset.findtext(R53_NS + "Name")), set()).update(values)
        if root.findtext(R53_NS + "IsTruncated") != "true":
            return found
        start = {"name": root.findtext(R53_NS + "NextRecordName") or "",
                 "type": root.findtext(R53_NS + "NextRecordType") or ""}
        if root.findtext(R53_NS + "NextRecordIdentifier"):
            start["identifier"] = root.findtext(R53_NS + "NextRecordIdentifier")


def dns_proves(handler, options):
    """True if every option's ResourceRecord is a CNAME, with that value, in the hosted zone whose
    name is the longest suffix of the record's name (any of them, if several zones share it)."""
    upstream = handler.server.upstream
    records = [o.get("ResourceRecord") for o in options]
    if not records or any(not r or r.get("Type", "CNAME") != "CNAME" for r in records):
        return False
    zones, cnames = r53_zones(upstream), {}
    for record in records:
        name, value = dns_name(record.get("Name")), dns_name(record.get("Value"))
        suffixes = [z for z in zones if name == z[1] or name.endswith("." + z[1])]
        if not suffixes:
            return False
        longest = max(len(z[1]) for z in suffixes)
        ok = False
        for zone_id, zone_name in suffixes:
            if len(zone_name) != longest:
                continue
            if zone_id not in cnames:
                cnames[zone_id] = r53_cnames(upstream, zone_id)
            if value in cnames[zone_id].get(name, ()):
                ok = True
                break
        if not ok:
            return False
    return True
