"""Wrapping millisecond ticks: MicroPython's ``time.ticks_*`` or a CPython shim.

Devices have no wall clock, only ``ticks_ms()``, a counter that wraps (every 2**30 ms,
about 12.4 days, on 32-bit ports). Compare ticks only through ``ticks_diff`` and move them
only with ``ticks_add``; never subtract two ticks values directly.

The shim wraps at the same 2**30 as a 32-bit device, so CPython runs (tests, benchmarks)
exercise the wrap that a long-running ESP32 or Pico W will see.
"""

try:
    from time import ticks_add, ticks_diff, ticks_ms  # MicroPython
except ImportError:  # CPython
    import time as _time

    PERIOD = 1 << 30
    _MASK = PERIOD - 1
    _HALF = PERIOD >> 1

    def ticks_ms():
        return int(_time.monotonic() * 1000) & _MASK

    def ticks_add(t, delta):
        return (t + delta) & _MASK

    def ticks_diff(a, b):
        """Signed ``a - b`` modulo the period, in [-PERIOD/2, PERIOD/2)."""
        d = (a - b) & _MASK
        return d - PERIOD if d >= _HALF else d


def sleep_ms(ms):
    import time

    f = getattr(time, "sleep_ms", None)
    if f is not None:
        f(ms)
    else:
        time.sleep(ms / 1000)
