"""Tiny shim so portable modules can use MicroPython's ``const()`` unchanged on CPython.

On MicroPython ``const(x)`` lets the compiler inline the value (and, with a leading
underscore on the name, drop the global entirely), which saves heap on the device.
On CPython it is the identity function.
"""


def _identity(x):
    return x


try:
    from micropython import const
except ImportError:  # CPython
    const = _identity

__all__ = ["const"]
