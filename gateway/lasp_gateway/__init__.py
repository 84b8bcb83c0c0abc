"""lasp_gateway: the CPython services that sit between devices and the Lasp program.

The gateway (next to the devices, e.g. on a Raspberry Pi) and the aggregator (anywhere)
are thin adapters around the portable sync protocol in ``lasp_edge``: paho-mqtt on the
outside, the sans-IO core inside. They land with the sync protocol; this package exists so
the distribution's layout is fixed from the start.
"""
