"""The zero-install MQTT broker: amqtt on its own event-loop thread, loopback only.

The one-command demo and the tests run it so that nothing has to be installed by hand;
production deployments use mosquitto (see docs/GATEWAY.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any


class EmbeddedBroker:
    """amqtt's broker, anonymous, listening on ``127.0.0.1:port``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.broker: Any = None

    def start(self) -> EmbeddedBroker:
        from amqtt.broker import Broker

        self.thread.start()
        config = {
            "listeners": {"default": {"type": "tcp", "bind": "127.0.0.1:%d" % self.port}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }

        async def boot() -> None:
            self.broker = Broker(config)
            await self.broker.start()

        asyncio.run_coroutine_threadsafe(boot(), self.loop).result(15)
        return self

    def stop(self) -> None:
        if self.broker is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.broker.shutdown(), self.loop).result(15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
