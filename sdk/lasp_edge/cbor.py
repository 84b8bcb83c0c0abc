"""Deterministic, bounded CBOR (RFC 8949) for MicroPython and CPython.

Theory of operation
-------------------
Every replica, a MicroPython device or a CPython server, must turn the same CRDT state into
the same bytes: digests, deduplication and "did anything change?" checks compare bytes, and
a second platform that produced different bytes for an equal state would look like a
different state. So the encoder emits exactly one encoding per value, the "length-first"
core deterministic encoding of RFC 8949 section 4.2.3 (the bytes ``cbor2.dumps(obj,
canonical=True)`` produces):

* integer heads and lengths in their shortest form, definite lengths only;
* map keys sorted by the length of their encoded form, then bytewise on it;
* floats in the narrowest IEEE 754 width (half, single, double) that holds the value
  exactly; every NaN is the half ``f9 7e 00``. The width is chosen by integer arithmetic on
  the bits of the double, never by the platform's float rounding, and half precision is
  built by hand because ``struct`` lacks the ``'e'`` format on some ports.

Only a small data model is supported: None, bool, int in [-2**64, 2**64-1], byte strings,
text strings, arrays (list/tuple), maps (dict) and floats. No tags: the wire format of
lasp-edge needs none, and every extra feature is extra attack surface on a device.

The decoder is the other half of the contract: it reads messages from the network, so every
input is assumed hostile. It is *bounded*:

* it is iterative (an explicit stack of open containers), so no input can exhaust the
  Python or C stack, and nesting deeper than ``max_depth`` is rejected;
* a declared length is checked against the bytes that remain before anything is allocated
  or looped over (a string needs that many bytes, an array at least one byte per item, a
  map two), so a 9-byte header cannot ask for 2**63 items;
* it raises :class:`CBORDecodeError` and nothing else, so callers need one ``except``.

It is liberal where that is harmless (non-shortest heads, indefinite lengths, any float
width) so that it reads what other CBOR encoders write, and strict where ambiguity would be a
security hole (duplicate keys, trailing bytes, invalid UTF-8, tags and unknown simple values
are errors).

The module is portable: it runs unchanged on MicroPython (no typing, dataclasses or f-strings
at run time; no reliance on dict order; exact ``type(x) is T`` checks, since MicroPython's
``isinstance(True, int)`` is False).
"""

import sys

DEFAULT_MAX_DEPTH = 32


class CBOREncodeError(ValueError):
    """The value is outside the supported data model (or nested deeper than allowed)."""


class CBORDecodeError(ValueError):
    """The input is not one well-formed CBOR item of the supported data model."""


# MicroPython's UTF-8 decoder accepts overlong forms, surrogates and code points above
# U+10FFFF; CPython's rejects them. To accept exactly the same documents on both, the
# MicroPython build re-checks non-ASCII text against RFC 3629 itself.
_CHECK_UTF8 = sys.implementation.name == "micropython"

_INT_MAX = 0xFFFFFFFFFFFFFFFF
_INT_MIN = -0x10000000000000000

# Floats and the strict UTF-8 check live in ``cbor_rare``, imported on first use: the wire
# format of lasp-edge has no floats and its text is ASCII, so a device that never meets
# either keeps neither in RAM (each function costs heap even when loaded from flash).


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def _head(out, mt, n) -> None:
    """Append a head (major type ``mt`` already shifted into the top 3 bits) for argument n,
    in its shortest form."""
    if n < 24:
        out.append(mt | n)
    elif n < 0x100:
        out.append(mt | 24)
        out.append(n)
    elif n < 0x10000:
        # byte by byte: no temporary bytes object (an allocation on MicroPython)
        out.append(mt | 25)
        out.append(n >> 8)
        out.append(n & 0xFF)
    elif n < 0x100000000:
        out.append(mt | 26)
        out += n.to_bytes(4, "big")
    else:
        out.append(mt | 27)
        out += n.to_bytes(8, "big")


def _enc_str(s, out) -> None:
    try:
        b = s.encode("utf-8")
    except UnicodeError:  # lone surrogates on CPython (UnicodeEncodeError is a subclass)
        raise CBOREncodeError("text is not encodable as UTF-8") from None
    n = len(b)
    if _CHECK_UTF8 and n != len(s):
        from lasp_edge.cbor_rare import utf8_ok

        if not utf8_ok(b):
            raise CBOREncodeError("text is not valid UTF-8")
    _head(out, 0x60, n)
    out += b


def _int_rank(k) -> int:
    """The rank (see _enc_map) of an int key, by arithmetic instead of encoding it: its
    encoding is a head of 1, 2, 3, 5 or 9 bytes, (initial byte << 8*(L-1)) | argument."""
    if k >= 0:
        a = k
        mt = 0x00
    else:
        a = -1 - k
        mt = 0x20
    if a < 24:
        return mt | a
    if a < 0x100:
        return (mt | 24) << 8 | a
    if a < 0x10000:
        return (mt | 25) << 16 | a
    if a < 0x100000000:
        return (mt | 26) << 32 | a
    return (mt | 27) << 64 | a


def _text_rank(k):
    """Sort key of a text map key: its UTF-8 length (as one character), then the text."""
    try:
        return chr(len(k.encode("utf-8"))) + k
    except UnicodeError:  # lone surrogates on CPython
        raise CBOREncodeError("text is not encodable as UTF-8") from None


def _text_keys(obj):
    """The keys of ``obj`` in canonical order if they are all text, else None.

    Text keys only (the common case after int keys): a text key's encoding is a head that
    grows with the UTF-8 length, then the UTF-8 bytes, so "length-first, then bytewise" is
    "UTF-8 length first, then the text", and text order is UTF-8 byte order on both
    platforms (code points on CPython, bytes on MicroPython). Sorting the keys themselves
    keeps nothing but the key list alive while the values are encoded (the generic path of
    ``_enc_map`` holds a rank and an encoding per key).
    """
    keys = list(obj)
    for k in keys:
        if type(k) is not str:
            return None
    keys.sort(key=_text_rank)
    return keys


def _enc_map(obj, out, depth) -> None:
    """Append a map with keys in length-first, then bytewise, order of their encodings.

    The order is computed without keeping each key's encoding around: a key's *rank* is its
    encoding read as one big-endian integer. Ranks sort exactly length-first, then bytewise:
    for equal lengths that is plain bytewise order, and a longer encoding B always outranks
    a shorter one A because B's first byte is not zero (the only encoding that starts with
    0x00 is the single byte of the integer 0), so rank(B) >= 256**(len(B)-1) >= 256**len(A)
    > rank(A). For int keys (the common case in CRDT state) the rank is pure arithmetic, a
    small int that costs no allocation on MicroPython; other keys are encoded once into a
    scratch buffer, which is kept for the output. Sorting plain ints never compares keys or
    values themselves, so the order does not depend on dict order or on how Python orders
    mixed types.

    No two keys share a rank: loads(dumps(k)) == k for every key (NaN, the one value unequal
    to itself, is refused in keys), so equal encodings would be equal dict keys.
    """
    n = len(obj)
    _head(out, 0xA0, n)
    if n == 0:
        return
    keys = _text_keys(obj)
    if keys is not None:
        for k in keys:
            _enc_str(k, out)
            _enc(obj[k], out, depth)
        return
    by_rank = {}
    encoded = None  # rank -> encoding, for keys that are not ints
    for k in obj:
        if type(k) is int and _INT_MIN <= k <= _INT_MAX:
            r = k if 0 <= k < 24 else _int_rank(k)
        else:
            buf = bytearray()
            _enc_key(k, buf, depth)
            r = int.from_bytes(buf, "big")
            if encoded is None:
                encoded = {}
            encoded[r] = buf
        by_rank[r] = k
    ranks = list(by_rank)
    ranks.sort()
    for r in ranks:
        k = by_rank[r]
        if type(k) is int:
            if k >= 0:
                _head(out, 0x00, k)
            else:
                _head(out, 0x20, -1 - k)
        else:
            out += encoded[r]
        _enc(obj[k], out, depth)


def _enc_key(k, out, depth) -> None:
    """Encode a map key: like any value, except that NaN may not appear in it.

    NaN is not equal to itself, so a NaN key could never be looked up and two NaN keys could
    not be recognised as duplicates. Rejected on both sides of the wire.
    """
    t = type(k)
    if t is tuple:
        if depth >= DEFAULT_MAX_DEPTH:
            raise CBOREncodeError(f"nesting deeper than {DEFAULT_MAX_DEPTH}")
        _head(out, 0x80, len(k))
        for x in k:
            _enc_key(x, out, depth + 1)
    elif t is float and k != k:
        raise CBOREncodeError("NaN is not allowed in a map key")
    else:
        _enc(k, out, depth)


def _enc(obj, out, depth) -> None:
    """Append ``obj``; ``depth`` counts the arrays and maps that enclose it."""
    t = type(obj)
    if t is int:
        if obj >= 0:
            if obj < 24:
                out.append(obj)
            elif obj <= _INT_MAX:
                _head(out, 0x00, obj)
            else:
                raise CBOREncodeError("integer above 2**64-1")
        elif obj >= _INT_MIN:
            _head(out, 0x20, -1 - obj)
        else:
            raise CBOREncodeError("integer below -2**64")
    elif t is str:
        _enc_str(obj, out)
    elif t is dict:
        if depth >= DEFAULT_MAX_DEPTH:
            raise CBOREncodeError(f"nesting deeper than {DEFAULT_MAX_DEPTH}")
        _enc_map(obj, out, depth + 1)
    elif t is list or t is tuple:
        if depth >= DEFAULT_MAX_DEPTH:
            raise CBOREncodeError(f"nesting deeper than {DEFAULT_MAX_DEPTH}")
        _head(out, 0x80, len(obj))
        depth += 1
        for x in obj:
            _enc(x, out, depth)
    elif t is bytes or t is bytearray or t is memoryview:
        if t is memoryview:
            obj = bytes(obj)
        _head(out, 0x40, len(obj))
        out += obj
    elif obj is None:
        out.append(0xF6)
    elif t is bool:
        out.append(0xF5 if obj else 0xF4)
    elif t is float:
        from lasp_edge.cbor_rare import enc_float

        enc_float(obj, out)
    else:
        raise CBOREncodeError(f"cannot encode an object of type {t.__name__}")


def dumps(obj) -> bytes:
    """Encode ``obj`` as deterministic CBOR.

    Types are checked exactly (a subclass of int, str, dict... is refused) so that what is
    encoded is always what was meant; see the module docstring for the data model.
    """
    out = bytearray()
    _enc(obj, out, 0)
    return bytes(out)


def _closure():
    def inner():
        return inner

    return inner


# What dump() calls for a lazy value: a function, or a closure (a type of its own on
# MicroPython). Nothing else callable is: ``dump(bool, ...)`` must fail as ``dumps`` does.
_LAZY = (type(_closure), type(_closure()))


def dump(obj, write, chunk=64) -> None:
    """Encode ``obj`` exactly as ``dumps`` does, handing the bytes to ``write`` in pieces of
    about ``chunk`` bytes instead of returning them.

    Why: a device writes its whole state to flash at every flush. ``dumps`` grows one
    buffer to the size of the encoding (reallocating, so briefly twice that) and then
    copies it, which needs the largest contiguous free blocks a fragmented heap has.
    Here arrays and text-keyed maps (the shape of the snapshot record) are walked
    item by item, and only a leaf value, or another kind of map, is ever encoded whole,
    into one small buffer that is handed over and reused. ``write`` may keep no reference
    to the buffer it is given. A value may also be a function without arguments, called
    when its turn comes (``Node.snapshot(lazy=True)``): a part of the record that is
    built, encoded and dropped before the next one is built.

    The walk is a loop over an explicit stack, not a recursion: MicroPython puts the frame
    of a call this size on the heap, so each nesting level would cost a few hundred bytes
    at the very moment (a flush) the device's heap is fullest.
    """
    out = bytearray()
    stack: list = []  # per open container: [it, its keys (itself if a sequence), next index]
    while True:
        t = type(obj)
        if t in _LAZY:
            obj = obj()
            t = type(obj)
        keys = None
        if len(stack) < DEFAULT_MAX_DEPTH:
            if t is dict:
                keys = _text_keys(obj)
            elif t is list or t is tuple:
                keys = obj
        if keys is None:
            _enc(obj, out, len(stack))  # also raises for what the data model refuses
        else:
            _head(out, 0x80 if keys is obj else 0xA0, len(obj))
            stack.append([obj, keys, 0])
        while stack:  # the next item to encode, closing the containers that are done
            if len(out) >= chunk:
                write(out)
                out[:] = b""  # keeps the buffer's memory for the next piece
            top = stack[-1]
            keys = top[1]
            i = top[2]
            if i < len(keys):
                top[2] = i + 1
                obj = keys[i]
                if keys is not top[0]:
                    _enc_str(obj, out)
                    obj = top[0][obj]
                break
            stack.pop()
        else:
            break
    if out:
        write(out)


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------

_NOKEY = object()  # marks a map frame that waits for a key


def _decode(data, max_depth):
    """Decode one item starting at offset 0; return (value, end offset).

    ``stack`` holds one frame per open array or map: [container, remaining items (-1 while
    indefinite), is_map, pending key (_NOKEY if none), in_key]. ``in_key`` marks arrays
    that are (inside) a map key: they become tuples so that they are hashable.
    """
    end = len(data)
    pos = 0
    stack: list = []
    nokey = _NOKEY
    while True:
        if pos >= end:
            raise CBORDecodeError("truncated input")
        ib = data[pos]
        pos += 1
        if ib < 0x18:
            value = ib  # the commonest item in CRDT state: a small uint
        else:
            mt = ib >> 5
            ai = ib & 0x1F
            if ai < 24:
                arg = ai
            elif ai == 24:
                if pos >= end:
                    raise CBORDecodeError("truncated input")
                arg = data[pos]
                pos += 1
            elif ai < 28:
                n = 1 << (ai - 24)
                if pos + n > end:
                    raise CBORDecodeError("truncated input")
                if mt == 7:
                    arg = 0  # floats read their own bytes below
                elif n == 2:
                    arg = data[pos] << 8 | data[pos + 1]
                    pos += 2
                else:
                    arg = int.from_bytes(data[pos : pos + n], "big")
                    pos += n
            elif ai == 31:
                arg = -1
            else:
                raise CBORDecodeError(f"reserved additional information {ai}")

            if mt == 0:
                if arg < 0:
                    raise CBORDecodeError("indefinite length integer")
                value = arg
            elif mt == 1:
                if arg < 0:
                    raise CBORDecodeError("indefinite length integer")
                value = -1 - arg
            elif mt == 2 or mt == 3:
                if arg >= 0:
                    if arg > end - pos:
                        raise CBORDecodeError("string longer than the input")
                    raw = data[pos : pos + arg]
                    pos += arg
                    value = _text(raw) if mt == 3 else raw
                else:
                    value, pos = _chunks(data, pos, mt)
            elif mt == 4 or mt == 5:
                if len(stack) >= max_depth:
                    raise CBORDecodeError(f"nesting deeper than {max_depth}")
                in_key = False
                if stack:
                    top = stack[-1]
                    in_key = top[4] or (top[2] and top[3] is nokey)
                if mt == 5:
                    if in_key:
                        raise CBORDecodeError("a map cannot be a map key")
                    if arg >= 0 and 2 * arg > end - pos:
                        raise CBORDecodeError("map longer than the input")
                    if arg != 0:
                        stack.append([{}, arg, True, nokey, False])
                        continue
                    value = {}
                else:
                    if arg > end - pos:
                        raise CBORDecodeError("array longer than the input")
                    if arg != 0:
                        stack.append([[], arg, False, nokey, in_key])
                        continue
                    value = () if in_key else []
            elif mt == 7:
                if ai == 20:
                    value = False
                elif ai == 21:
                    value = True
                elif ai == 22:
                    value = None
                elif 25 <= ai <= 27:
                    from lasp_edge.cbor_rare import dec_float

                    w = 1 << (ai - 24)  # 2, 4 or 8 bytes
                    value = dec_float(data[pos : pos + w])
                    pos += w
                elif ai == 31:
                    # "break": closes the innermost indefinite array or map, if any is open
                    # and (for a map) not waiting for the value of a key.
                    if not stack:
                        raise CBORDecodeError("break outside an indefinite item")
                    top = stack[-1]
                    if top[1] >= 0 or top[3] is not nokey:
                        raise CBORDecodeError("break outside an indefinite item")
                    stack.pop()
                    value = top[0]
                    if top[4]:
                        value = tuple(value)
                else:
                    raise CBORDecodeError("unsupported simple value")
            else:
                raise CBORDecodeError("tags are not supported")

        # Deliver ``value`` to the innermost open container; close the containers it fills.
        while True:
            if not stack:
                return value, pos
            top = stack[-1]
            if top[2]:
                key = top[3]
                if key is nokey:
                    if type(value) is float and value != value:
                        raise CBORDecodeError("NaN is not allowed in a map key")
                    top[3] = value
                    break
                c = top[0]
                # Two equal keys make the map ambiguous: different readers would keep the
                # first, the last or both, which lets one message mean different things to
                # different replicas (and to a validator and the code behind it).
                n = len(c)
                c[key] = value
                if len(c) == n:
                    raise CBORDecodeError("duplicate map key")
                top[3] = nokey
            else:
                if top[4] and type(value) is float and value != value:
                    raise CBORDecodeError("NaN is not allowed in a map key")
                top[0].append(value)
            n = top[1]
            if n < 0:
                break  # indefinite: only a break closes it
            n -= 1
            if n:
                top[1] = n
                break
            stack.pop()
            value = top[0]
            if top[4]:
                value = tuple(value)


def _text(raw):
    try:
        s = raw.decode("utf-8")
    except UnicodeError:  # UnicodeDecodeError on CPython, UnicodeError on MicroPython
        raise CBORDecodeError("invalid UTF-8 in text string") from None
    if _CHECK_UTF8 and len(s) != len(raw):
        from lasp_edge.cbor_rare import utf8_ok

        if not utf8_ok(raw):
            raise CBORDecodeError("invalid UTF-8 in text string")
    return s


def _chunks(data, pos, mt):
    """Read an indefinite-length string: definite chunks of the same major type, then a
    break. Returns (value, new offset). Chunks cannot nest, so this is a flat loop."""
    end = len(data)
    parts = []
    while True:
        if pos >= end:
            raise CBORDecodeError("truncated input")
        ib = data[pos]
        pos += 1
        if ib == 0xFF:
            break
        if ib >> 5 != mt:
            raise CBORDecodeError("indefinite string chunk of another type")
        ai = ib & 0x1F
        if ai < 24:
            n = ai
        elif ai < 28:
            w = 1 << (ai - 24)
            if pos + w > end:
                raise CBORDecodeError("truncated input")
            n = int.from_bytes(data[pos : pos + w], "big")
            pos += w
        else:
            raise CBORDecodeError("invalid indefinite string chunk")
        if n > end - pos:
            raise CBORDecodeError("string longer than the input")
        raw = data[pos : pos + n]
        pos += n
        parts.append(_text(raw) if mt == 3 else raw)
    if mt == 3:
        return "".join(parts), pos
    return b"".join(parts), pos


def loads(data, max_depth=DEFAULT_MAX_DEPTH):
    """Decode exactly one CBOR item from ``data`` (bytes, bytearray or memoryview).

    Arrays become lists, except inside map keys where they become tuples. Any problem with
    the input raises CBORDecodeError; see the module docstring for the bounds enforced.
    """
    t = type(data)
    if t is not bytes:
        if t is bytearray or t is memoryview:
            data = bytes(data)
        else:
            raise CBORDecodeError("expected bytes, bytearray or memoryview")
    try:
        value, pos = _decode(data, max_depth)
    except CBORDecodeError:
        raise
    except Exception as e:  # defence in depth: the checks above should make this unreachable
        raise CBORDecodeError(f"malformed CBOR ({type(e).__name__})") from None
    if pos != len(data):
        raise CBORDecodeError("trailing bytes after the top-level item")
    return value
