"""lasp_gateway: the CPython services between the devices and the Lasp program.

The gateway (next to the devices, e.g. on a Raspberry Pi) and the aggregator (anywhere)
are thin adapters around the portable sync protocol in ``lasp_edge.sync``: paho-mqtt on
the outside (``mqtt_link``, the only module that imports it), SQLite underneath
(``nodedb``), the sans-IO ``Node`` in the middle (``service``). Run them with
``lasp-edge gateway`` and ``lasp-edge aggregator``; docs/GATEWAY.md is the guide.
"""
