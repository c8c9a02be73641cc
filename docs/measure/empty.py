#!/usr/bin/env python3
"""Attach empty BPF programs (r0 = 0; exit): 'raw:NAME' = raw tracepoint (same dispatch
as tp_btf), 'tp:GROUP/NAME' = classic tracepoint through perf. Prints 'attached', holds
until SIGTERM."""
import ctypes, os, struct, sys, signal, fcntl
libc = ctypes.CDLL(None, use_errno=True)
def sysc(nr, *a):
    r = libc.syscall(nr, *a)
    if r < 0:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
    return r
def bpf(cmd, attr):
    buf = ctypes.create_string_buffer(attr, 128)
    return sysc(321, cmd, buf, 128)
insns = struct.pack("<BBhi", 0xb7, 0, 0, 0) + struct.pack("<BBhi", 0x95, 0, 0, 0)
ib = ctypes.create_string_buffer(insns); lic = ctypes.create_string_buffer(b"GPL")
keep = []
def load(ptype):
    attr = struct.pack("<IIQQ", ptype, 2, ctypes.addressof(ib), ctypes.addressof(lic))
    return bpf(5, attr)
for spec in sys.argv[1:]:
    kind, name = spec.split(":", 1)
    if kind == "raw":
        fd = load(17)
        n = ctypes.create_string_buffer(name.encode()); keep.append(n)
        keep.append(bpf(17, struct.pack("<QI", ctypes.addressof(n), fd)))
    else:
        fd = load(5)  # BPF_PROG_TYPE_TRACEPOINT
        tid = int(open("/sys/kernel/tracing/events/%s/id" % name).read())
        # perf_event_attr: type, size, config, sample_period, sample_type, read_format, flags...
        attr = struct.pack("<IIQQQQQ", 2, 112, tid, 1, 0, 0, 0) + b"\0" * (112 - 48)
        ab = ctypes.create_string_buffer(attr, 112)
        # One event is enough: the program joins the tracepoint's own array and runs on
        # every CPU (kernel/trace/bpf_trace.c perf_event_attach_bpf_prog).
        pfd = sysc(298, ab, -1, 0, -1, 8)
        fcntl.ioctl(pfd, 0x40042408, fd)  # PERF_EVENT_IOC_SET_BPF
        fcntl.ioctl(pfd, 0x2400, 0)       # PERF_EVENT_IOC_ENABLE
        keep.append(pfd)
print("attached", flush=True)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
signal.pause()
