#!/usr/bin/env python3
"""The tcx programs on an interface's ingress and egress, through the
bpf(2) system call, as an operator whose bpftool predates tcx would have
to: BPF_PROG_QUERY, and BPF_PROG_DETACH by program fd.

    tcx.py count IFNAME      prints how many programs are attached
    tcx.py detach IFNAME     detaches them all, prints how many

A kernel without tcx (before 6.6) refuses the query: 0.
"""
import ctypes
import os
import platform
import socket
import struct
import sys

SYS_BPF = {"x86_64": 321, "aarch64": 280}[platform.machine()]
BPF_PROG_DETACH, BPF_PROG_GET_FD_BY_ID, BPF_PROG_QUERY = 9, 13, 16
TCX_INGRESS, TCX_EGRESS = 46, 47

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def bpf(cmd, attr):
    buf = ctypes.create_string_buffer(attr, 128)
    rc = libc.syscall(SYS_BPF, cmd, buf, 128)
    return rc, buf.raw


def prog_ids(ifindex, attach_type):
    ids = (ctypes.c_uint32 * 64)()
    attr = struct.pack("IIIIQI", ifindex, attach_type, 0, 0, ctypes.addressof(ids), 64)
    rc, out = bpf(BPF_PROG_QUERY, attr)
    if rc < 0:
        return []
    cnt = struct.unpack_from("I", out, 24)[0]
    return list(ids[: min(cnt, 64)])


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("count", "detach"):
        sys.exit("usage: tcx.py count|detach IFNAME")
    ifindex = socket.if_nametoindex(sys.argv[2])
    n = 0
    for at in (TCX_INGRESS, TCX_EGRESS):
        for pid in prog_ids(ifindex, at):
            if sys.argv[1] == "count":
                n += 1
                continue
            fd, _ = bpf(BPF_PROG_GET_FD_BY_ID, struct.pack("I", pid))
            if fd < 0:
                continue
            rc, _ = bpf(BPF_PROG_DETACH, struct.pack("III", ifindex, fd, at))
            os.close(fd)
            if rc == 0:
                n += 1
            else:
                sys.exit("tcx: detach failed: %s" % os.strerror(ctypes.get_errno()))
    print(n)


if __name__ == "__main__":
    main()
