"""``real_parts``: the end-to-end fleet tests need mosquitto and the MicroPython unix port."""

from __future__ import annotations

import os

import pytest

from lasp_gateway.emulator.services import find_micropython, find_mosquitto


def _require(what: str, found: str | None) -> None:
    if found:
        return
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true: %s is required for the end-to-end tests" % what)
    pytest.skip("%s not found" % what)


@pytest.fixture
def real_parts() -> None:
    _require("mosquitto", find_mosquitto())
    _require("the MicroPython unix port", find_micropython())
