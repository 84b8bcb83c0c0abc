"""Tiny hardware shims, so one ``main.py`` runs on an ESP32, a Pico W and the unix port.

Everything a firmware example touches outside Python lives here: WiFi, a button, the LED,
a temperature sensor, a unique id, and settings. On the unix port (and CPython) each has a
simulated fallback, so CI runs the exact ``main.py`` that is flashed:

* ``UNIX`` is True on the MicroPython unix port and on CPython (``sys.platform`` is
  ``linux``/``darwin``/``win32``); boards report ``esp32``, ``rp2``...
* ``setting(cfg, NAME, default)``: ``config.NAME``, overridden on unix by the environment
  variable ``LASP_<NAME>`` (how CI bounds iterations or points at its broker).
* ``Button``: a GPIO with pull-up (ESP32 BOOT = GPIO0, Pico: GPIO 14 by default), debounced;
  on unix a simulated viewer that "presses" every ``period_ms`` (jittered).
* ``temperature_cc()``: centi-degrees Celsius as an int (no float allocation): the ESP32's
  internal sensor, the RP2040's ADC channel 4, or a random walk on unix.

``Led`` and ``temperature_cc`` live in ``lasp_device.sensors`` and resolve here on first
use (module ``__getattr__``): an app that uses neither (the ad counter) does not pay the
heap for their code and names.
"""

import os
import sys

try:
    from time import sleep_ms, ticks_add, ticks_diff, ticks_ms  # MicroPython
except ImportError:  # CPython: lasp_device.ticks (a device never loads that module)
    from lasp_device.ticks import sleep_ms, ticks_add, ticks_diff, ticks_ms

PLATFORM = sys.platform
UNIX = PLATFORM in ("linux", "darwin", "win32", "cygwin", "freebsd")


def getenv(name, default=None):
    if not UNIX:
        return default
    try:
        v = os.getenv(name)
    except AttributeError:
        return default
    return default if v is None else v


def setting(cfg, name, default=None):
    """``cfg.NAME`` (``default`` if absent), overridden on unix by ``$LASP_NAME``."""
    v = getattr(cfg, name, default)
    env = getenv("LASP_" + name)
    if env is None:
        return v
    if type(v) is int or (v is None and type(default) is int):
        return int(env)
    if type(v) is bool:
        return env not in ("0", "", "false", "False", "no")
    if env in ("None", "none", ""):
        return None
    return env


def rand(n):
    """A random int in [0, n) without needing the random module."""
    try:
        import random

        return random.getrandbits(16) % n
    except ImportError:
        return int.from_bytes(os.urandom(2), "little") % n


def unique_id():
    """A stable id of this board as a short hex str (the host name on unix)."""
    try:
        from binascii import hexlify

        import machine

        return hexlify(machine.unique_id()).decode()
    except ImportError:
        return getenv("HOSTNAME", "unix")


def wifi(ssid, password, timeout_ms=20000):
    """Join WiFi (STA mode) and wait up to ``timeout_ms``; True when connected.

    On unix (no radio) it returns True at once. Not connecting is not fatal: the device
    keeps counting offline and the transport retries.
    """
    if UNIX:
        return True
    try:
        import network
    except ImportError:
        return True  # a board with Ethernet, or no network module: nothing to do
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if not wlan.isconnected():
        wlan.connect(ssid, password)
        t0 = ticks_ms()
        while not wlan.isconnected() and ticks_diff(ticks_ms(), t0) < timeout_ms:
            sleep_ms(100)
    return wlan.isconnected()


class Button:
    """``pressed(now)`` is True once per press (falling edge, debounced ``debounce_ms``).

    On unix it simulates a viewer: one press every ``period_ms`` +- 50% (``period_ms`` 0:
    a press on every call).
    """

    def __init__(self, pin=None, period_ms=1000, debounce_ms=50):
        self.period_ms = period_ms
        self.debounce_ms = debounce_ms
        self._pin = None
        self._last = 1
        self._at = ticks_ms()
        self._next = self._at
        if UNIX:
            return
        from machine import Pin

        if pin is None:
            pin = 14 if PLATFORM == "rp2" else 0  # ESP32 dev boards: BOOT button on GPIO0
        self._pin = Pin(pin, Pin.IN, Pin.PULL_UP)

    def pressed(self, now=None):
        now = ticks_ms() if now is None else now
        if self._pin is None:
            if self.period_ms <= 0:
                return True
            if ticks_diff(now, self._next) < 0:
                return False
            half = self.period_ms // 2
            self._next = ticks_add(now, half + rand(self.period_ms + 1))
            return True
        v = self._pin.value()
        if v != self._last and ticks_diff(now, self._at) >= self.debounce_ms:
            self._last = v
            self._at = now
            return v == 0
        return False


def __getattr__(name):
    if name in ("Led", "temperature_cc"):
        from lasp_device import sensors

        return getattr(sensors, name)
    raise AttributeError(name)
