"""``/metrics``: the Prometheus text renderer round-trips whatever the services report."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from lasp_gateway import metrics

SAMPLE = re.compile(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict[str, object]:
    """A strict reader of the subset we emit: HELP/TYPE before samples, escaped labels."""
    out: dict[str, object] = {}
    types: dict[str, str] = {}
    assert text == "" or text.endswith("\n")
    for line in text.split("\n")[:-1]:  # not splitlines(): labels may hold U+2028 and kin
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if line.startswith("# HELP "):
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        name, labels, value = m.groups()
        assert name in types, "sample before its TYPE: %r" % line
        lab = {}
        for k, v in LABEL.findall(labels or ""):
            lab[k] = v.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        out[repr((name, sorted(lab.items())))] = float(value)
    out["types"] = types
    return out


label_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)


@given(
    st.dictionaries(
        st.sampled_from(["received", "batches", "rejected", "log_segments", "epoch"]),
        st.integers(0, 2**40),
    ),
    st.lists(
        st.fixed_dictionaries(
            {
                "id": label_text,
                "gateway": label_text,
                "online": st.booleans(),
                "backlog": st.integers(0, 10**6),
                "rejected": st.integers(0, 10**6),
                "last_seen_ms": st.integers(0, 10**6),
            }
        ),
        max_size=5,
        unique_by=lambda r: (r["id"], r["gateway"]),
    ),
)
def test_render_round_trips(counters, rows):
    text = metrics.render(
        metrics.service_families("gateway", counters) + metrics.device_families(rows, now_ms=10**6)
    )
    got = parse(text)
    for key, value in counters.items():
        name = "lasp_%s%s" % (key, "_total" if key in metrics.MONOTONIC else "")
        assert got[repr((name, [("role", "gateway")]))] == value
        assert got["types"][name] == ("counter" if key in metrics.MONOTONIC else "gauge")
    for r in rows:
        labels = sorted({"device": r["id"], "gateway": r["gateway"]}.items())
        assert got[repr(("lasp_device_backlog", labels))] == r["backlog"]
        assert got[repr(("lasp_device_rejected_total", labels))] == r["rejected"]
        assert got[repr(("lasp_device_online", labels))] == int(r["online"])
        lag = (10**6 - r["last_seen_ms"]) / 1000
        assert got[repr(("lasp_device_sync_lag_seconds", labels))] == lag


def test_non_numbers_are_left_out():
    text = metrics.render(metrics.service_families("aggregator", {"replica": "agg", "x": 1.5}))
    assert "replica" not in text and 'lasp_x{role="aggregator"} 1.5' in text
