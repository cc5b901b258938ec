#!/usr/bin/env python3
"""patch-uws.py: make the prebuilt uWebSockets.js addon load on glibc < 2.38.

@btc-vision/uwebsockets.js ships uws_linux_x64_<ABI>.node linked against
glibc 2.38; Debian 12 has 2.36, so require() fails with "version
`GLIBC_2.38' not found". The addon imports exactly three 2.38 symbols, the
C23 variants that differ from the old ones only in accepting binary
literals ("0b101"), which uWS never parses:

    __isoc23_sscanf  -> __isoc99_sscanf  (GLIBC_2.7)
    __isoc23_strtol  -> strtol           (GLIBC_2.2.5)
    __isoc23_strtoul -> strtoul          (GLIBC_2.2.5)

What it changes, in place in the ELF dynamic tables (sizes never change):
  - the two strto* symbols' names point at the tail of their own string
    ("__isoc23_strtol" + 9 is "strtol"); "__isoc23_sscanf" becomes
    "__isoc99_sscanf" (same length, written over it);
  - their .gnu.version entries point at libc's GLIBC_2.2.5 entry, and the
    sscanf one at the former GLIBC_2.38 entry, which becomes GLIBC_2.7 (its
    name written over "GLIBC_2.38", its hash recomputed): a version every
    glibc since 2.7 has, so nothing needs 2.38 any more.

Before touching anything it checks that those three symbols are the only
ones needing a glibc newer than this machine's, and that no other string in
.dynstr shares the bytes it overwrites. Idempotent: a patched file is left
alone (exit 0). The file is written to a temporary copy and renamed over the
original, so an interrupted run leaves the old file or the new one.

    python3 patch-uws.py node_modules/@btc-vision/uwebsockets.js/uws_linux_x64_115.node

Exit status 0 when the file loads on this glibc now (patched here or before),
1 when it cannot be patched safely (nothing written), 2 on bad usage.
"""
import os
import struct
import sys
import tempfile

RENAME = {  # C23 name -> (new name, new version)
    b"__isoc23_sscanf": (b"__isoc99_sscanf", b"GLIBC_2.7"),
    b"__isoc23_strtol": (b"strtol", b"GLIBC_2.2.5"),
    b"__isoc23_strtoul": (b"strtoul", b"GLIBC_2.2.5"),
}
OLD_VERSION = b"GLIBC_2.38"
LIBC = b"libc.so.6"


class Refuse(Exception):
    pass


def elf_hash(name):
    h = 0
    for ch in name:
        h = ((h << 4) + ch) & 0xFFFFFFFF
        g = h & 0xF0000000
        if g:
            h ^= g >> 24
        h &= ~g & 0xFFFFFFFF
    return h


def vtuple(v):
    """b"GLIBC_2.2.5" -> (2, 2, 5); None for anything else."""
    if not v.startswith(b"GLIBC_"):
        return None
    try:
        return tuple(int(x) for x in v[6:].split(b"."))
    except ValueError:
        return None


def cstr(buf, off):
    end = buf.index(b"\0", off)
    return bytes(buf[off:end])


class Elf:
    def __init__(self, data):
        self.d = data
        if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
            raise Refuse("not a little-endian ELF64 file")
        (self.shoff,) = struct.unpack_from("<Q", data, 0x28)
        self.shentsize, self.shnum, self.shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        self.sec = {}
        secs = [struct.unpack_from("<IIQQQQIIQQ", data, self.shoff + i * self.shentsize)
                for i in range(self.shnum)]
        stroff = secs[self.shstrndx][4]
        for s in secs:
            self.sec[cstr(data, stroff + s[0])] = {"type": s[1], "off": s[4], "size": s[5],
                                                    "entsize": s[9]}
        for need in (b".dynsym", b".dynstr", b".gnu.version", b".gnu.version_r", b".dynamic"):
            if need not in self.sec:
                raise Refuse("no %s section" % need.decode())
        self.dynstr = self.sec[b".dynstr"]["off"]
        self.dynstr_size = self.sec[b".dynstr"]["size"]

    def name(self, off):
        return cstr(self.d, self.dynstr + off)

    def symbols(self):
        """(index, file offset of the entry, st_name)"""
        s = self.sec[b".dynsym"]
        for i in range(s["size"] // 24):
            at = s["off"] + i * 24
            yield i, at, struct.unpack_from("<I", self.d, at)[0]

    def versym_at(self, i):
        return self.sec[b".gnu.version"]["off"] + 2 * i

    def vernaux(self):
        """(file offset of the entry, library name, vna_hash, vna_other, vna_name)"""
        s = self.sec[b".gnu.version_r"]
        at = s["off"]
        while True:
            _, cnt, vfile, aux, nxt = struct.unpack_from("<HHIII", self.d, at)
            a = at + aux
            for _ in range(cnt):
                h, _flags, other, vname, anext = struct.unpack_from("<IHHII", self.d, a)
                yield a, self.name(vfile), h, other, vname
                if anext == 0:
                    break
                a += anext
            if nxt == 0:
                break
            at += nxt

    def string_refs(self):
        """Every .dynstr offset something points at."""
        refs = [n for _, _, n in self.symbols()]
        s = self.sec[b".gnu.version_r"]
        at = s["off"]
        while True:
            _, cnt, vfile, aux, nxt = struct.unpack_from("<HHIII", self.d, at)
            refs.append(vfile)
            a = at + aux
            for _ in range(cnt):
                _, _, _, vname, anext = struct.unpack_from("<IHHII", self.d, a)
                refs.append(vname)
                if anext == 0:
                    break
                a += anext
            if nxt == 0:
                break
            at += nxt
        d = self.sec[b".dynamic"]
        for i in range(d["size"] // 16):
            tag, val = struct.unpack_from("<qQ", self.d, d["off"] + i * 16)
            if tag in (1, 14, 15, 29):      # DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH
                refs.append(val)
        if b".gnu.version_d" in self.sec:
            raise Refuse("has version definitions (not expected in this addon)")
        return refs


def overwrite_ok(elf, off, length, own):
    """No string reference other than `own` points into [off, off+length]."""
    return all(r == own or not (off <= r <= off + length) for r in elf.string_refs())


def patch(path):
    with open(path, "rb") as fp:
        data = bytearray(fp.read())
    elf = Elf(data)
    have = tuple(int(x) for x in os.confstr("CS_GNU_LIBC_VERSION").split()[1].split("."))

    # version index -> (vernaux offset, library, version name)
    versions = {}
    for at, lib, _h, other, vname in elf.vernaux():
        versions[other] = (at, lib, elf.name(vname))
    syms = {}       # name -> (symbol index, st_name offset, version name)
    too_new = []
    for i, _at, n in elf.symbols():
        nm = elf.name(n)
        (vs,) = struct.unpack_from("<H", data, elf.versym_at(i))
        ver = versions.get(vs & 0x7FFF, (None, None, b""))[2]
        syms[nm] = (i, n, ver)
        vt = vtuple(ver)
        if vt is not None and vt > have and nm not in RENAME:
            too_new.append("%s@%s" % (nm.decode(), ver.decode()))
    if too_new:
        raise Refuse("needs more than glibc %s besides the three C23 symbols: %s"
                     % (".".join(map(str, have)), " ".join(too_new)))
    for other, (_at, lib, ver) in versions.items():
        vt = vtuple(ver)
        if vt is not None and vt > have and ver != OLD_VERSION:
            raise Refuse("%s needs %s" % (lib.decode(), ver.decode()))

    todo = [nm for nm in RENAME if nm in syms]
    old = [(other, at) for other, (at, lib, ver) in versions.items()
           if ver == OLD_VERSION and lib == LIBC]
    if not todo and not old:
        return False        # patched before (or never needed it)
    if len(old) != 1:
        raise Refuse("expected one %s entry for %s" % (OLD_VERSION.decode(), LIBC.decode()))
    old_index, old_at = old[0]
    by_version = {ver: other for other, (_at, lib, ver) in versions.items() if lib == LIBC}
    if b"GLIBC_2.2.5" not in by_version:
        raise Refuse("no GLIBC_2.2.5 entry for libc.so.6")
    for nm in todo:
        if syms[nm][2] != OLD_VERSION:
            raise Refuse("%s is bound to %s, not %s" % (nm.decode(), syms[nm][2].decode(),
                                                        OLD_VERSION.decode()))

    # The GLIBC_2.38 entry becomes GLIBC_2.7: its name, then its hash.
    (vname,) = struct.unpack_from("<I", data, old_at + 8)
    new_ver = b"GLIBC_2.7"
    if not overwrite_ok(elf, vname, len(OLD_VERSION), vname):
        raise Refuse("another string shares the bytes of %s" % OLD_VERSION.decode())
    sa = elf.dynstr + vname
    data[sa:sa + len(OLD_VERSION) + 1] = new_ver + b"\0" * (len(OLD_VERSION) + 1 - len(new_ver))
    struct.pack_into("<I", data, old_at, elf_hash(new_ver))

    for nm in todo:
        i, n, _ = syms[nm]
        new_name, ver = RENAME[nm]
        sym_at = elf.sec[b".dynsym"]["off"] + i * 24
        if nm.endswith(new_name):       # point at its own tail: nothing to write
            struct.pack_into("<I", data, sym_at, n + len(nm) - len(new_name))
        else:                            # same length: write over it
            assert len(new_name) == len(nm)
            if not overwrite_ok(elf, n, len(nm), n):
                raise Refuse("another string shares the bytes of %s" % nm.decode())
            sa = elf.dynstr + n
            data[sa:sa + len(nm)] = new_name
        index = old_index if ver == new_ver else by_version[ver]
        va = elf.versym_at(i)
        (vs,) = struct.unpack_from("<H", data, va)
        struct.pack_into("<H", data, va, (vs & 0x8000) | index)

    fd, tmp = tempfile.mkstemp(prefix=".patch-uws.", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as fp:
            fp.write(data)
        os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return True


def main():
    if len(sys.argv) != 2:
        print("usage: patch-uws.py ADDON.node", file=sys.stderr)
        return 2
    try:
        done = patch(sys.argv[1])
    except (Refuse, OSError, ValueError, struct.error) as e:
        print("patch-uws.py: %s: %s" % (sys.argv[1], e), file=sys.stderr)
        return 1
    print("patch-uws.py: %s: %s" % (sys.argv[1], "patched" if done else "already loads, left alone"),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
