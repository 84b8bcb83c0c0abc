"""The rarely used paths of ``lasp_edge.cbor``: floats and the strict UTF-8 check.

Split out so that a device imports them only when it meets a float or non-ASCII text (the
lasp-edge wire format has neither on its own): on MicroPython every function a module
defines costs heap once the module is imported, even when its bytecode stays in flash.
``cbor`` imports this module lazily; the behaviour is the one documented there.
"""

import struct


def utf8_ok(b) -> bool:
    """Strict RFC 3629 check: no overlong forms, no surrogates, nothing above U+10FFFF."""
    i = 0
    n = len(b)
    while i < n:
        c = b[i]
        if c < 0x80:
            i += 1
            continue
        if 0xC2 <= c <= 0xDF:
            need = 1
            lo = 0x80
            hi = 0xBF
        elif 0xE0 <= c <= 0xEF:
            need = 2
            lo = 0xA0 if c == 0xE0 else 0x80
            hi = 0x9F if c == 0xED else 0xBF
        elif 0xF0 <= c <= 0xF4:
            need = 3
            lo = 0x90 if c == 0xF0 else 0x80
            hi = 0x8F if c == 0xF4 else 0xBF
        else:
            return False
        if i + need >= n:
            return False
        c = b[i + 1]
        if c < lo or c > hi:
            return False
        j = i + 2
        i += need + 1
        while j < i:
            c = b[j]
            if c < 0x80 or c > 0xBF:
                return False
            j += 1
    return True


def enc_float(x, out) -> None:
    """Append the narrowest float encoding that keeps ``x`` exactly.

    Works on the double's bit pattern with integers only, so a single-precision MicroPython
    float (widened exactly to double by struct) and a CPython double give the same bytes.
    """
    if x != x:
        out += b"\xf9\x7e\x00"
        return
    bits = int.from_bytes(struct.pack(">d", x), "big")
    sign = bits >> 63
    e = (bits >> 52) & 0x7FF
    m = bits & 0xFFFFFFFFFFFFF
    if e == 0x7FF:
        out += b"\xf9\xfc\x00" if sign else b"\xf9\x7c\x00"
        return
    if e == 0:
        if m == 0:
            out += b"\xf9\x80\x00" if sign else b"\xf9\x00\x00"
            return
        # A double subnormal is below 2**-1022: no narrower width can hold it.
        out.append(0xFB)
        out += bits.to_bytes(8, "big")
        return
    exp = e - 1023
    full = m | 0x10000000000000  # 53-bit significand with the implicit leading 1
    if -24 <= exp <= 15:
        h = -1
        if exp >= -14:
            if m & 0x3FFFFFFFFFF == 0:  # the low 42 of 52 fraction bits are dropped
                h = (sign << 15) | ((exp + 15) << 10) | (m >> 42)
        else:
            # half subnormal: value = k * 2**-24 with k < 1024
            shift = 28 - exp
            if full & ((1 << shift) - 1) == 0:
                h = (sign << 15) | (full >> shift)
        if h >= 0:
            out.append(0xF9)
            out += h.to_bytes(2, "big")
            return
    if -149 <= exp <= 127:
        s = -1
        if exp >= -126:
            if m & 0x1FFFFFFF == 0:  # the low 29 of 52 fraction bits are dropped
                s = (sign << 31) | ((exp + 127) << 23) | (m >> 29)
        else:
            # single subnormal: value = k * 2**-149 with k < 2**23
            shift = -97 - exp
            if full & ((1 << shift) - 1) == 0:
                s = (sign << 31) | (full >> shift)
        if s >= 0:
            out.append(0xFA)
            out += s.to_bytes(4, "big")
            return
    out.append(0xFB)
    out += bits.to_bytes(8, "big")


def _half(h):
    """Decode IEEE half-precision bits exactly, through the single-precision layout."""
    sign = h >> 15
    e = (h >> 10) & 0x1F
    m = h & 0x3FF
    if e == 0x1F:
        bits = 0x7F800000 | (m << 13)
    elif e == 0:
        if m == 0:
            bits = 0
        else:
            e = 113  # 2**-14 in single-precision bias; normalise the subnormal
            while not m & 0x400:
                m <<= 1
                e -= 1
            bits = (e << 23) | ((m & 0x3FF) << 13)
    else:
        bits = ((e + 112) << 23) | (m << 13)
    if sign:
        bits |= 0x80000000
    return struct.unpack(">f", bits.to_bytes(4, "big"))[0]


def dec_float(b):
    """A CBOR half, single or double (its 2, 4 or 8 bytes after the initial byte)."""
    if len(b) == 2:
        return _half((b[0] << 8) | b[1])
    return struct.unpack(">f" if len(b) == 4 else ">d", b)[0]
