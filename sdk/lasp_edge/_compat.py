"""``const()`` for CPython, so portable modules can use MicroPython's ``const()`` unchanged.

On MicroPython ``const(x)`` lets the compiler inline the value (and, with a leading
underscore on the name, drop the global entirely), which saves heap on the device.
On CPython it is the identity function. Portable modules try ``from micropython import
const`` first and fall back to this module, so a device never loads it (every module a
device imports costs a few hundred bytes of heap beyond its functions).
"""


def const(x):
    return x


__all__ = ["const"]
