"""Type tags and short names: how a state says what it is, on the wire and in ``declare``.

Tags are small (< 24) so they cost one CBOR byte. They are part of the wire contract
(docs/PROTOCOL.md): never renumber, only append.

Each type's module is imported on first use, not when the package is: a device keeps in RAM
only the types it actually uses (on the 64-bit unix port every CRDT module costs 2 to 5 KB
of heap once loaded). ``TYPES``, ``BY_TAG`` and ``BY_NAME`` load everything and exist for
tools and tests.
"""

# (tag, short name = module name, class name)
TABLE = (
    (1, "gcounter", "GCounter"),
    (2, "pncounter", "PNCounter"),
    (3, "gset", "GSet"),
    (4, "twopset", "TwoPSet"),
    (5, "awset", "AWSet"),
    (6, "lwwregister", "LWWRegister"),
    (7, "mvregister", "MVRegister"),
    (8, "maxregister", "MaxRegister"),
    (9, "ewflag", "EWFlag"),
    (10, "topk", "TopK"),
    (11, "awmap", "AWMap"),
)
_loaded: dict = {}


def _load(row):
    cls = _loaded.get(row[0])
    if cls is None:
        mod = __import__("lasp_edge.crdts." + row[1], None, None, (row[2],))
        cls = _loaded[row[0]] = getattr(mod, row[2])
    return cls


def by_tag(tag):
    """The class with this wire tag, or None."""
    for row in TABLE:
        if row[0] == tag:
            return _load(row)
    return None


def by_name(name):
    """The class with this short name (``"gcounter"``) or class name (``"GCounter"``), or None."""
    for row in TABLE:
        if name == row[1] or name == row[2]:
            return _load(row)
    return None


def all_types():
    """Every registered class (loads them all), always the same tuple."""
    t = _loaded.get("all")
    if t is None:
        t = _loaded["all"] = tuple(_load(row) for row in TABLE)
    return t


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
            "unknown CRDT type %r; valid: %s" % (key, ", ".join(sorted(r[1] for r in TABLE)))
        )
    return t


def __getattr__(name):
    if name == "TYPES":
        return all_types()
    if name == "BY_TAG":
        return {t.TAG: t for t in all_types()}
    if name == "BY_NAME":
        return {t.NAME: t for t in all_types()}
    raise AttributeError(name)
