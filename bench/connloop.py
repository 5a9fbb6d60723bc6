#!/usr/bin/env python3
"""Back-to-back TCP connections for bench/resilience.sh: THREADS clients,
each making one connection after another.

    connloop.py IP PORT SECONDS TIMEOUT_S THREADS

Each connection: connect() (bounded by TIMEOUT_S), read the server's name
line, close. Prints one JSON line: the number of attempts, the failed ones
(by errno name), and connect() time percentiles in milliseconds over every
attempt (a failed attempt counts with the time it took to fail)."""
import errno
import json
import socket
import sys
import threading
import time


def client(ip, port, end, tmo, times, errors, backends):
    while time.monotonic() < end:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(tmo)
        t0 = time.monotonic()
        connected = False
        try:
            s.connect((ip, port))
            connected = True
            times.append(time.monotonic() - t0)
            line = s.recv(64)
            if not line.endswith(b"\n"):
                raise OSError(errno.EPROTO, "no name line")
            name = line.decode().strip()
            backends[name] = backends.get(name, 0) + 1
        except (OSError, socket.timeout) as e:
            if not connected:
                times.append(time.monotonic() - t0)
            name = errno.errorcode.get(e.errno, "ETIMEDOUT") if e.errno else "ETIMEDOUT"
            errors[name] = errors.get(name, 0) + 1
        finally:
            s.close()


def main():
    ip, port, secs, tmo = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    nthreads = int(sys.argv[5])
    times, errors, backends = [], {}, {}
    end = time.monotonic() + secs
    # each thread its own tallies: no lock on the hot path
    parts = [([], {}, {}) for _ in range(nthreads)]
    threads = [threading.Thread(target=client, args=(ip, port, end, tmo) + parts[i])
               for i in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for t_, e_, b_ in parts:
        times += t_
        for k, v in e_.items():
            errors[k] = errors.get(k, 0) + v
        for k, v in b_.items():
            backends[k] = backends.get(k, 0) + v
    times.sort()

    def pct(p):
        return round(times[min(len(times) - 1, int(p / 100.0 * len(times)))] * 1000, 3) if times else None
    print(json.dumps({"attempts": len(times), "failed": sum(errors.values()), "errors": errors,
                      "backends": backends, "p50_ms": pct(50), "p99_ms": pct(99),
                      "max_ms": round(times[-1] * 1000, 3) if times else None}))


if __name__ == "__main__":
    main()
