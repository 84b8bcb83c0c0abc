"""Type tags and short names: how a state says what it is, on the wire and in ``declare``.

Tags are small (< 24) so they cost one CBOR byte. They are part of the wire contract
(docs/PROTOCOL.md): never renumber, only append.

Each type's module is imported on first use, not when the package is: a device keeps in RAM
only the types it actually uses (on the 64-bit unix port every CRDT module costs 2 to 5 KB
of heap once loaded). ``TYPES``, ``BY_TAG`` and ``BY_NAME`` load everything and exist for
tools and tests.
"""

# Tag n is the n-th word of each string (tags start at 1): the short name, which is also
# the module's name, and the class name. Two strings rather than a tuple of (tag, short,
# class) tuples: in a device's heap those are 12 tuple objects and the long names' string
# objects, ~1.5 KB; these are two objects (``TABLE`` below gives the tuples to tools).
_SHORT = (
    "gcounter pncounter gset twopset awset lwwregister mvregister maxregister ewflag topk awmap"
)
_CLASS = (
    "GCounter PNCounter GSet TwoPSet AWSet LWWRegister MVRegister MaxRegister EWFlag TopK AWMap"
)
_loaded: dict = {}  # tag -> class, once imported
_all: list = []  # every class, once all_types() ran


def _load(tag):
    """The class for a valid ``tag`` (1..count), importing its module on first use."""
    cls = _loaded.get(tag)
    if cls is None:
        short = _SHORT.split()[tag - 1]
        name = _CLASS.split()[tag - 1]
        try:
            mod = __import__("lasp_edge.crdts." + short, None, None, (name,))
        except ImportError:  # a device bundle built without it (lasp-edge bundle --types)
            raise ValueError(
                "CRDT type %s is not on this device: rebuild the bundle with it "
                "(lasp-edge bundle --types ...,%s)" % (short, short)
            ) from None
        cls = _loaded[tag] = getattr(mod, name)
    return cls


def is_tag(tag):
    """True for a registered wire tag, without importing its type: a peer's BIRTH lists
    the tags of everything it holds, most of which a device neither needs nor has."""
    return type(tag) is int and 1 <= tag <= _SHORT.count(" ") + 1


def by_tag(tag):
    """The class with this wire tag, or None (``ValueError`` if its module was left out of
    the device's bundle). ``tag`` may be any decoded value: this is on the decoding path."""
    if not is_tag(tag):
        return None
    cls = _loaded.get(tag)
    return cls if cls is not None else _load(tag)


def by_name(name):
    """The class with this short name (``"gcounter"``) or class name (``"GCounter"``), or
    None (``ValueError`` as for ``by_tag``)."""
    shorts = _SHORT.split()
    classes = _CLASS.split()
    for i in range(len(shorts)):
        if name == shorts[i] or name == classes[i]:
            return _load(i + 1)
    return None


def all_types():
    """Every registered class (loads them all), always the same tuple."""
    if not _all:
        _all.append(tuple(_load(i + 1) for i in range(len(_SHORT.split()))))
    return _all[0]


def type_for(key):
    """A CRDT class from a class, a tag (int) or a short name (str, case-insensitive)."""
    if type(key) is int:
        t = by_tag(key)
    elif type(key) is str:
        t = by_name(key.lower())
    else:
        t = by_tag(getattr(key, "TAG", None))
        if t is not key:
            t = None
    if t is None:
        raise ValueError(
            "unknown CRDT type %r; valid: %s" % (key, ", ".join(sorted(_SHORT.split())))
        )
    return t


def __getattr__(name):
    if name == "TABLE":  # ((tag, short name, class name), ...) in tag order
        shorts = _SHORT.split()
        classes = _CLASS.split()
        return tuple((i + 1, shorts[i], classes[i]) for i in range(len(shorts)))
    if name == "TYPES":
        return all_types()
    if name == "BY_TAG":
        return {t.TAG: t for t in all_types()}
    if name == "BY_NAME":
        return {t.NAME: t for t in all_types()}
    raise AttributeError(name)
