"""CPython-only tooling: build the device bundle (``bundle``) and flash a board (``flash``)."""
