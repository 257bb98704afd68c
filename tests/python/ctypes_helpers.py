#!/usr/bin/env python3
"""Our libaio from Python's ctypes (run by tests/sh/python_ctypes.sh).

  ctypes_helpers.py LIB DIR          real I/O in a file under DIR through the
                                     exported helpers; prints what it checked
  ctypes_helpers.py LIB --iocb-bytes the iocb bytes our exported helpers write,
                                     in the format of tests/c/iocb_bytes.c

Any failed check raises, so the exit status is non-zero.
"""

import ctypes
import errno
import os
import select
import sys
from ctypes import (CFUNCTYPE, POINTER, Structure, addressof, byref, c_int,
                    c_long, c_longlong, c_short, c_size_t, c_uint, c_ulong,
                    c_void_p, cast, pointer, sizeof)


class Iocb(Structure):
    """struct iocb on x86_64, with u.c as the union member."""
    _fields_ = [
        ("data", c_void_p), ("key", c_uint), ("aio_rw_flags", c_uint),
        ("aio_lio_opcode", c_short), ("aio_reqprio", c_short), ("aio_fildes", c_int),
        ("buf", c_void_p), ("nbytes", c_ulong), ("offset", c_longlong),
        ("pad3", c_longlong), ("flags", c_uint), ("resfd", c_uint),
    ]


class IoEvent(Structure):
    _fields_ = [("data", c_void_p), ("obj", c_void_p), ("res", c_long), ("res2", c_long)]


class Iovec(Structure):
    _fields_ = [("iov_base", c_void_p), ("iov_len", c_size_t)]


class Timespec(Structure):
    _fields_ = [("tv_sec", c_long), ("tv_nsec", c_long)]


IO_CMD_PREAD, IO_CMD_PWRITE, IO_CMD_FSYNC, IO_CMD_PREADV = 0, 1, 2, 7
IOCB_FLAG_RESFD = 1
Callback = CFUNCTYPE(None, c_void_p, POINTER(Iocb), c_long, c_long)
P_IOCB, P_IOV = POINTER(Iocb), POINTER(Iovec)

SIGNATURES = {
    "io_setup": (c_int, [c_int, POINTER(c_void_p)]),
    "io_destroy": (c_int, [c_void_p]),
    "io_submit": (c_int, [c_void_p, c_long, POINTER(P_IOCB)]),
    "io_getevents": (c_int, [c_void_p, c_long, c_long, POINTER(IoEvent), POINTER(Timespec)]),
    "io_queue_run": (c_int, [c_void_p]),
    "io_prep_pread": (None, [P_IOCB, c_int, c_void_p, c_size_t, c_longlong]),
    "io_prep_pwrite": (None, [P_IOCB, c_int, c_void_p, c_size_t, c_longlong]),
    "io_prep_preadv": (None, [P_IOCB, c_int, P_IOV, c_int, c_longlong]),
    "io_prep_pwritev": (None, [P_IOCB, c_int, P_IOV, c_int, c_longlong]),
    "io_prep_preadv2": (None, [P_IOCB, c_int, P_IOV, c_int, c_longlong, c_int]),
    "io_prep_pwritev2": (None, [P_IOCB, c_int, P_IOV, c_int, c_longlong, c_int]),
    "io_prep_poll": (None, [P_IOCB, c_int, c_int]),
    "io_prep_fsync": (None, [P_IOCB, c_int]),
    "io_prep_fdsync": (None, [P_IOCB, c_int]),
    "io_set_eventfd": (None, [P_IOCB, c_int]),
    "io_set_callback": (None, [P_IOCB, c_void_p]),
    "io_poll": (c_int, [c_void_p, P_IOCB, c_void_p, c_int, c_int]),
    "io_fsync": (c_int, [c_void_p, P_IOCB, c_void_p, c_int]),
    "io_fdsync": (c_int, [c_void_p, P_IOCB, c_void_p, c_int]),
}


def load(path):
    lib = ctypes.CDLL(path, use_errno=True)
    for name, (res, args) in SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def check_layout():
    expect(sizeof(Iocb) == 64 and sizeof(IoEvent) == 32, "iocb is 64 bytes, io_event 32")
    expect(Iocb.buf.offset == 24 and Iocb.resfd.offset == 60, "iocb offsets of u.c")


def iocb_bytes(lib):
    """Prints the lines tests/c/iocb_bytes.c prints, from our exported helpers."""
    cb = Iocb()
    iov = cast(c_void_p(0x7F00DEADBEE0), P_IOV)

    def show(label, call):
        ctypes.memset(addressof(cb), 0xA5, sizeof(cb))
        ret = call()
        if ret is not None:
            label = "%s %d" % (label, ret)
        print(label, bytes(cb).hex())

    show("io_prep_pread", lambda: lib.io_prep_pread(cb, 5, 0x1122334455667788, 0xFEDCBA98, 0x123456789A))
    show("io_prep_pwrite", lambda: lib.io_prep_pwrite(cb, 6, 0x0102030405060708, 4096, -4096))
    show("io_prep_preadv", lambda: lib.io_prep_preadv(cb, 7, iov, 3, 512))
    show("io_prep_pwritev", lambda: lib.io_prep_pwritev(cb, 8, iov, 4, 1024))
    show("io_prep_preadv2", lambda: lib.io_prep_preadv2(cb, 9, iov, 2, 2048, 0x9))
    show("io_prep_pwritev2", lambda: lib.io_prep_pwritev2(cb, 10, iov, 5, 4096, 0x10))
    show("io_prep_poll", lambda: lib.io_prep_poll(cb, 11, 0x5))
    show("io_prep_fsync", lambda: lib.io_prep_fsync(cb, 12))
    show("io_prep_fdsync", lambda: lib.io_prep_fdsync(cb, 13))
    show("io_set_eventfd", lambda: (lib.io_prep_pread(cb, 14, 0x1000, 64, 0), lib.io_set_eventfd(cb, 15))[1])
    show("io_set_eventfd_on_fill", lambda: lib.io_set_eventfd(cb, 16))
    show("io_set_callback", lambda: lib.io_set_callback(cb, 0x5555AAAA))
    show("io_poll", lambda: lib.io_poll(None, cb, 0x6666, 17, 0x1))
    show("io_fsync", lambda: lib.io_fsync(None, cb, 0x7777, 18))
    show("io_fdsync", lambda: lib.io_fdsync(None, cb, 0x8888, 19))


def submit(lib, ctx, cb):
    ret = lib.io_submit(ctx, 1, (P_IOCB * 1)(pointer(cb)))
    expect(ret == 1, "io_submit returned %d, want 1" % ret)


def wait_one(lib, ctx, cb, want_res):
    events = (IoEvent * 4)()
    ret = lib.io_getevents(ctx, 1, 4, events, byref(Timespec(5, 0)))
    expect(ret == 1, "io_getevents returned %d, want 1" % ret)
    expect(events[0].obj == addressof(cb), "io_event.obj is the submitted iocb")
    expect(events[0].res == want_res and events[0].res2 == 0,
           "io_event res %d res2 %d, want %d 0" % (events[0].res, events[0].res2, want_res))


def real_io(lib, directory):
    size = 8192
    data = bytes((i * 7 + 3) & 0xFF for i in range(size))
    fd = os.open(os.path.join(directory, "ctypes.data"), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    ctx = c_void_p()
    expect(lib.io_setup(32, byref(ctx)) == 0 and ctx.value, "io_setup gives a context")

    # libaio's error convention: -errno returned, errno left alone.
    ctypes.set_errno(1234)
    ret = lib.io_submit(None, 1, (P_IOCB * 1)(pointer(Iocb())))
    expect(ret == -errno.EINVAL, "io_submit on no context returned %d, want -EINVAL" % ret)
    expect(ctypes.get_errno() == 1234, "errno changed to %d" % ctypes.get_errno())

    # Write with io_prep_pwrite; completion signalled on an eventfd and
    # reaped by io_queue_run through the callback set by io_set_callback.
    out = ctypes.create_string_buffer(data, size)
    wcb = Iocb()
    lib.io_prep_pwrite(wcb, fd, out, size, 0)
    expect((wcb.aio_lio_opcode, wcb.aio_fildes, wcb.buf, wcb.nbytes, wcb.offset)
           == (IO_CMD_PWRITE, fd, addressof(out), size, 0), "io_prep_pwrite fields")
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    lib.io_set_eventfd(wcb, efd)
    expect(wcb.flags & IOCB_FLAG_RESFD and wcb.resfd == efd, "io_set_eventfd sets RESFD and resfd")
    seen = []
    callback = Callback(lambda c, iocb, res, res2: seen.append((addressof(iocb.contents), res, res2)))
    lib.io_set_callback(wcb, cast(callback, c_void_p))
    expect(wcb.data == cast(callback, c_void_p).value, "io_set_callback stores the callback in data")
    submit(lib, ctx, wcb)
    expect(select.select([efd], [], [], 5)[0], "the eventfd was not signalled")
    expect(os.eventfd_read(efd) == 1, "one completion on the eventfd")
    expect(lib.io_queue_run(ctx) == 0, "io_queue_run returns 0 once the ring is empty")
    expect(seen == [(addressof(wcb), size, 0)], "io_queue_run callback calls: %r" % seen)
    print("io_prep_pwrite + io_set_eventfd + io_set_callback: %d bytes written, eventfd signalled, callback called" % size)

    # Read back with io_prep_pread, reaped by io_getevents.
    inp = ctypes.create_string_buffer(size)
    rcb = Iocb()
    lib.io_prep_pread(rcb, fd, inp, size, 0)
    expect((rcb.aio_lio_opcode, rcb.nbytes) == (IO_CMD_PREAD, size), "io_prep_pread fields")
    submit(lib, ctx, rcb)
    wait_one(lib, ctx, rcb, size)
    expect(inp.raw == data, "io_prep_pread read back what was written")
    print("io_prep_pread: %d bytes read back, equal" % size)

    # Scatter read with io_prep_preadv into two buffers, from offset 100.
    parts = (ctypes.create_string_buffer(3000), ctypes.create_string_buffer(size - 100 - 3000))
    iov = (Iovec * 2)(*[Iovec(addressof(p), sizeof(p)) for p in parts])
    vcb = Iocb()
    lib.io_prep_preadv(vcb, fd, iov, 2, 100)
    expect((vcb.aio_lio_opcode, vcb.buf, vcb.nbytes, vcb.offset) == (IO_CMD_PREADV, addressof(iov), 2, 100),
           "io_prep_preadv fields")
    submit(lib, ctx, vcb)
    wait_one(lib, ctx, vcb, size - 100)
    expect(parts[0].raw + parts[1].raw == data[100:], "io_prep_preadv read the right bytes")
    print("io_prep_preadv: %d bytes into 2 buffers, equal" % (size - 100))

    # io_fsync prepares and submits in one call.
    seen.clear()
    fcb = Iocb()
    ret = lib.io_fsync(ctx, fcb, cast(callback, c_void_p), fd)
    expect(ret == 1, "io_fsync returned %d, want 1" % ret)
    expect(fcb.aio_lio_opcode == IO_CMD_FSYNC, "io_fsync prepared an IO_CMD_FSYNC")
    for _ in range(5000):
        if lib.io_queue_run(ctx) < 0 or seen:
            break
        select.select([], [], [], 0.001)
    expect(seen == [(addressof(fcb), 0, 0)], "io_fsync completion through io_queue_run: %r" % seen)
    print("io_fsync: submitted, completed with res 0")

    events = (IoEvent * 1)()
    expect(lib.io_getevents(ctx, 1, 1, events, byref(Timespec(0, 0))) == 0, "empty ring, zero timeout: 0")
    expect(lib.io_destroy(ctx) == 0, "io_destroy")
    os.close(efd)
    os.close(fd)


def main():
    lib = load(sys.argv[1])
    check_layout()
    if sys.argv[2] == "--iocb-bytes":
        iocb_bytes(lib)
    else:
        real_io(lib, sys.argv[2])
        print("ctypes: ok")


if __name__ == "__main__":
    main()
