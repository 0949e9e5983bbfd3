#!/usr/bin/env python3
"""A counting HTTP/1.1 proxy: forwards every request to UPSTREAM unchanged and counts
requests by method. `proxy.py LISTEN_PORT UPSTREAM_PORT COUNTS_FILE`; the counts are
written to COUNTS_FILE (JSON) on SIGTERM. Used only for the counting runs, never while
timing."""

import json
import signal
import socket
import sys
import threading
from collections import Counter

counts = Counter()
lock = threading.Lock()


def read_head(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            return lines
        lines.append(line.decode("latin-1").rstrip("\r\n"))


def header(lines, name):
    for line in lines[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name:
            return value.strip()
    return None


def read_body(f, lines):
    if (header(lines, "transfer-encoding") or "").lower() == "chunked":
        out = b""
        while True:
            size_line = f.readline()
            out += size_line
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:
                    trailer = f.readline()
                    out += trailer
                    if trailer in (b"\r\n", b"\n", b""):
                        return out
            out += f.read(size + 2)
    length = int(header(lines, "content-length") or 0)
    return f.read(length) if length else b""


def serve(client, upstream):
    reader = client.makefile("rb")
    try:
        while True:
            head = read_head(reader)
            if head is None:
                return
            method = head[0].split(" ")[0]
            if (header(head, "expect") or "").lower() == "100-continue":
                client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                head = [l for l in head if not l.lower().startswith("expect:")]
            body = read_body(reader, head)
            with lock:
                counts[method] += 1
                if method in ("PUT", "POST"):
                    counts["bytes_sent"] += len(body)
            up = socket.create_connection(("127.0.0.1", upstream))
            out = [l for l in head if not l.lower().startswith("connection:")] + ["Connection: close"]
            up.sendall(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body)
            chunks = []
            while True:
                data = up.recv(1 << 16)
                if not data:
                    break
                chunks.append(data)
            up.close()
            response = b"".join(chunks)
            split = response.find(b"\r\n\r\n")
            rhead = response[:split].decode("latin-1").split("\r\n")
            rbody = response[split + 4:]
            kept = [l for l in rhead if not l.lower().startswith(("connection:", "keep-alive:"))]
            if header(rhead, "content-length") is None and header(rhead, "transfer-encoding") is None and method != "HEAD":
                kept.append(f"Content-Length: {len(rbody)}")
            client.sendall(("\r\n".join(kept) + "\r\n\r\n").encode("latin-1") + rbody)
    except (ConnectionError, OSError):
        return
    finally:
        client.close()


def main():
    port, upstream, counts_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

    def dump(*_):
        with open(counts_file, "w") as f:
            json.dump(dict(counts), f)
        sys.exit(0)

    signal.signal(signal.SIGTERM, dump)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(256)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=serve, args=(client, upstream), daemon=True).start()


if __name__ == "__main__":
    main()
