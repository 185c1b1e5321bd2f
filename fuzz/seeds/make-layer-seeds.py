#!/usr/bin/env python3
"""Writes the seed corpus of the `layer` fuzz target into seeds/layer/: small tars, ordinary
and hostile, each prefixed with the mode byte the target reads (0 Layer trusted, 1 Layer user,
2 Flatten). Run from fuzz/: python3 seeds/make-layer-seeds.py"""
import io, os, tarfile

def tar(entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, kind, extra in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            data = None
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "file":
                data = extra.encode()
                info.size, info.mode = len(data), 0o644
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, extra
            elif kind == "link":
                info.type, info.linkname = tarfile.LNKTYPE, extra
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    # Keep the two end blocks, drop the record padding after them.
    end = len(raw.rstrip(b"\0"))
    end += (-end) % 512
    return raw[: end + 1024]

seeds = {
    "plain": [("etc", "dir", None), ("etc/hostname", "file", "box\n"), ("bin", "dir", None),
              ("bin/sh", "file", "#!"), ("bin/ash", "link", "bin/sh"), ("lib", "sym", "usr/lib"),
              ("run/fifo", "fifo", None)],
    "whiteouts": [("etc", "dir", None), ("etc/.wh.passwd", "file", ""),
                  ("etc/dir/.wh..wh..opq", "file", ""), ("etc/dir/new", "file", "x"),
                  (".wh.up", "file", "")],
    "dotdot": [("../escape", "file", "x"), ("a/../../escape2", "file", "x")],
    "absolute": [("/abs", "file", "x"), ("/etc/x", "file", "x")],
    "symlink_parent": [("out", "sym", "../sibling"), ("out/x", "file", "x"),
                       ("root", "sym", "/"), ("root/tmp/x", "file", "x")],
    "hardlink_out": [("h", "link", "../canary"), ("h2", "link", "/etc/passwd"),
                     ("up2", "sym", "../canary"), ("h3", "link", "up2")],
    "replace": [("x", "file", "1"), ("x", "dir", None), ("x/y", "file", "2"), ("x", "sym", ".."),
                ("x", "file", "3"), ("etc/passwd", "sym", "../../canary"), ("etc/passwd", "file", "p")],
    "through_lower_symlink": [("up/x", "file", "x"), ("root/etc/x", "file", "x"),
                              (".wh.root", "file", ""), ("root", "dir", None)],
    "gnu_long": [("d/" + "n" * 200, "file", "long"), ("l" * 150, "sym", "../" * 60 + "canary")],
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "layer")
os.makedirs(out, exist_ok=True)
for name, entries in seeds.items():
    fmt = tarfile.GNU_FORMAT if name == "gnu_long" else tarfile.PAX_FORMAT
    body = tar(entries, fmt)
    for mode in (0, 1, 2):
        with open(os.path.join(out, f"{name}-{mode}"), "wb") as f:
            f.write(bytes([mode]) + body)
