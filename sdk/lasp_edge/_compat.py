"""Tiny shim so portable modules can use MicroPython's ``const()`` unchanged on CPython.

On MicroPython ``const(x)`` lets the compiler inline the value (and, with a leading
underscore on the name, drop the global entirely), which saves heap on the device.
On CPython it is the identity function.
"""

try:
    from micropython import const  # type: ignore[import-not-found]
except ImportError:  # CPython

    def const(x):  # type: ignore[no-redef]
        return x


__all__ = ["const"]
