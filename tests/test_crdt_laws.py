"""The lattice laws, over every registered CRDT type, on histories hypothesis generates.

Histories come from tests/crdt_ops.py (int scripts -> mutator calls across replicas with
syncs in between) and the laws from tests/crdt_laws.py; the same two modules run on
MicroPython in tests/device/crdt_props_mp.py.
"""

import pytest
from crdt_laws import check_history, check_join, check_roundtrip
from crdt_ops import REPLICAS, SPECS, lcg_ints, run, spec_named
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lasp_edge.crdts import TYPES

SCRIPT = st.lists(st.integers(0, 255), max_size=64)
ORDER = st.lists(st.integers(0, 255), min_size=1, max_size=16)
LAWS = settings(deadline=None, max_examples=500, suppress_health_check=[HealthCheck.too_slow])


def test_every_type_is_covered():
    """A new type registered in TYPES must get an entry in crdt_ops.SPECS."""
    assert {s.cls for s in SPECS} == set(TYPES)


def test_scripts_reach_interesting_states():
    """The op table is not vacuous: scripts change states and also hit no-op mutators."""
    ints = lcg_ints(1, 400)
    for spec in SPECS:
        h = run(spec, ints)
        assert any(not s.delta.is_bottom() for s in h.steps), spec
        if spec.name not in ("gcounter", "pncounter", "mvregister"):  # these always change
            assert any(s.delta.is_bottom() for s in h.steps), spec


def test_topk_scripts_truncate():
    """TopK ops offer more ids than k, so entries are evicted (truncation is exercised)."""
    for name in ("topk2", "topk3"):
        spec = spec_named(name)
        h = run(spec, lcg_ints(2, 200), 1)
        seen = set()
        for step in h.steps:
            seen.update(i for i, _ in step.new.value())
        assert len(seen) > spec.params["k"]
        assert len(h.states[0].value()) == spec.params["k"]


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
@LAWS
@given(ints=SCRIPT, order=ORDER)
def test_laws(spec, ints, order):
    check_history(spec, ints, order)


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
@LAWS
@given(a=SCRIPT, b=SCRIPT, c=SCRIPT)
def test_join_of_unrelated_histories(spec, a, b, c):
    """States from three separate runs (each with its own replica ids) still form a lattice.

    Causal types need globally unique dots, so each run uses a disjoint set of replicas.
    """
    states = []
    for ids, ints in (((REPLICAS[0],), a), ((REPLICAS[1],), b), (REPLICAS[2:], c)):
        h = run(spec, ints, len(ids), replicas=ids)
        states.append(h.states[-1])
        check_roundtrip(h.states[-1])
    check_join(states[0], states[1], states[2])
