#!/usr/bin/env python3
"""A hostile or test peer for an HBONE port (test_hbone_refuse.sh).

    hbone_probe.py ADDR PORT MODE [--cert F --key F] [--ca F] [--authority A]
                   [--streams N] [--timeout S]

Modes (one JSON line on stdout, always; exit 0 unless the arguments are bad):
  tls       TLS 1.3 + ALPN h2 (client certificate if given), the HTTP/2
            preface and SETTINGS, then wait for the server's first frame:
            {"outcome": "settings"} (accepted), "alert" (with "reason"),
            "eof" or "reset" (closed on us), "timeout".
  connect   as tls, then CONNECT --authority on stream 1: "status" is the
            answer's :status (HPACK: indexed 200, or a literal), "data" the
            first bytes the tunnel carried back.
  flood     as tls, then --streams CONNECTs to --authority at once without
            reading them (with --reset each is cancelled right after its
            HEADERS: an open-and-refuse loop that never exceeds the
            concurrency limit): "outcome" is how the server ended it
            ("goaway" with "code", "eof", "reset"), "answers" the HEADERS
            frames it sent first.
  garbage   plain TCP, 4 KiB of bytes that are not TLS: "eof"/"reset"/
            "alert"/"timeout" and "seconds" until the server closed.
  stall     plain TCP, the first 10 bytes of a TLS record and nothing
            more: how and after how many "seconds" the server closed.
"""
import argparse
import json
import socket
import ssl
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def hpack_str(b):
    assert len(b) < 127
    return bytes([len(b)]) + b


def connect_headers(authority):
    # literal header fields without indexing, indexed names: :method (2),
    # :authority (1)
    return b"\x02" + hpack_str(b"CONNECT") + b"\x01" + hpack_str(authority.encode())


def read_frame(s):
    hd = b""
    while len(hd) < 9:
        b = s.recv(9 - len(hd))
        if not b:
            raise EOFError
        hd += b
    n = int.from_bytes(hd[:3], "big")
    p = b""
    while len(p) < n:
        b = s.recv(n - len(p))
        if not b:
            raise EOFError
        p += b
    return hd[3], hd[4], int.from_bytes(hd[5:9], "big") & 0x7FFFFFFF, p


def status_of(block):
    """:status from a header block: indexed (0x88 200 ... 0x8e 500) or a
    literal with the indexed name :status (8) and a raw (not Huffman) value."""
    if not block:
        return None
    b = block[0]
    table = {0x88: 200, 0x89: 204, 0x8A: 206, 0x8B: 304, 0x8C: 400, 0x8D: 404, 0x8E: 500}
    if b in table:
        return table[b]
    if b in (0x48, 0x08, 0x18) and len(block) >= 2 and not block[1] & 0x80:
        return int(block[2:2 + block[1]].decode())
    return "unparsed:" + block[:8].hex()


def closed_how(e):
    if isinstance(e, ssl.SSLError) and "alert" in str(e):
        return {"outcome": "alert", "reason": getattr(e, "reason", None) or str(e)}
    if isinstance(e, (ConnectionResetError, BrokenPipeError)):
        return {"outcome": "reset"}
    if isinstance(e, (EOFError, ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return {"outcome": "eof"}
    if isinstance(e, (socket.timeout, TimeoutError)):
        return {"outcome": "timeout"}
    return {"outcome": "error", "error": repr(e)}


def tls_open(a):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    if a.ca:
        ctx.load_verify_locations(a.ca)
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if a.cert:
        ctx.load_cert_chain(a.cert, a.key)
    ctx.set_alpn_protocols(["h2"])
    raw = socket.create_connection((a.addr, a.port), timeout=a.timeout)
    s = ctx.wrap_socket(raw)
    s.sendall(PREFACE + frame(4, 0, 0))
    return s


def first_frame(s):
    """The server's first frame after our SETTINGS (its SETTINGS if it took us)."""
    t, _, _, _ = read_frame(s)
    return {"outcome": "settings" if t == 4 else "frame%d" % t}


def run(a):
    t0 = time.monotonic()
    if a.mode in ("garbage", "stall"):
        s = socket.create_connection((a.addr, a.port), timeout=a.timeout)
        if a.mode == "garbage":
            s.sendall(b"GET / HTTP/1.1\r\n" + bytes(range(256)) * 16)
        else:
            s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03")   # a ClientHello that never ends
        try:
            while True:
                if not s.recv(4096):
                    raise EOFError
        except Exception as e:   # noqa: BLE001 (how it ended is the result)
            r = closed_how(e)
        r["seconds"] = round(time.monotonic() - t0, 3)
        return r
    try:
        s = tls_open(a)
        r = first_frame(s)
    except Exception as e:   # noqa: BLE001
        return closed_how(e)
    if a.mode == "tls" or r["outcome"] != "settings":
        return r
    if a.mode == "connect":
        s.sendall(frame(4, 1, 0) + frame(1, 4, 1, connect_headers(a.authority)))
        r = {"outcome": "answered"}
        try:
            while True:
                t, fl, sid, p = read_frame(s)
                if t == 4 and not fl & 1:
                    s.sendall(frame(4, 1, 0))
                if sid != 1:
                    continue
                if t == 1:
                    r["status"] = status_of(p)
                    if fl & 1:
                        return r
                elif t == 0:
                    r["data"] = p[:64].decode(errors="replace")
                    return r
                elif t == 3:
                    r["rst"] = int.from_bytes(p[:4], "big")
                    return r
        except Exception as e:   # noqa: BLE001
            r.update(closed_how(e))
            return r
    # flood
    out = frame(4, 1, 0)
    for i in range(a.streams):
        out += frame(1, 4, 1 + 2 * i, connect_headers(a.authority))
        if a.reset:
            out += frame(3, 0, 1 + 2 * i, struct.pack(">I", 8))   # CANCEL
    answers = 0
    try:
        s.sendall(out)
        while True:
            t, _, _, p = read_frame(s)
            if t == 1:
                answers += 1
            if t == 7:
                return {"outcome": "goaway", "code": int.from_bytes(p[4:8], "big"), "answers": answers}
    except Exception as e:   # noqa: BLE001
        r = closed_how(e)
        r["answers"] = answers
        return r


def main():
    p = argparse.ArgumentParser()
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("mode", choices=["tls", "connect", "flood", "garbage", "stall"])
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--ca")
    p.add_argument("--authority", default="")
    p.add_argument("--streams", type=int, default=300)
    p.add_argument("--reset", action="store_true")
    p.add_argument("--timeout", type=float, default=10)
    a = p.parse_args()
    print(json.dumps(run(a)), flush=True)


if __name__ == "__main__":
    main()
