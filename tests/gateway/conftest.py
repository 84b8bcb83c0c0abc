"""Registers the fixtures defined in gw_helpers.py (see its docstring) for this folder."""

from gw_helpers import (  # noqa: F401
    amqtt_broker,
    configured_mosquitto,
    mosquitto_broker_fixture,
    procs,
    second_broker,
)
