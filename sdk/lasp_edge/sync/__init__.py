"""The sans-IO sync protocol (portable): messages, the delta log, and the ``Node``.

See ``node.py`` for the theory of operation and docs/PROTOCOL.md §4 for the bytes.
"""

from lasp_edge.sync.messages import ProtocolError
from lasp_edge.sync.node import (
    EV_ACKED,
    EV_BIRTH,
    EV_DEATH,
    EV_MERGED,
    EV_REJECTED,
    Node,
)

__all__ = ["EV_ACKED", "EV_BIRTH", "EV_DEATH", "EV_MERGED", "EV_REJECTED", "Node", "ProtocolError"]
