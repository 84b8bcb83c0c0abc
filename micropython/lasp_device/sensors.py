"""The LED and the temperature sensor of ``lasp_device.hw`` (which re-exports both).

Kept apart so that an app that uses neither does not load them: on MicroPython every
function and class costs heap once its module is imported, even when run from flash.
"""

from lasp_device.hw import PLATFORM, UNIX, rand


class Led:
    def __init__(self, pin=None):
        self._pin = None
        if UNIX:
            return
        try:
            from machine import Pin

            if pin is None:
                pin = "LED" if PLATFORM == "rp2" else 2
            self._pin = Pin(pin, Pin.OUT)
        except Exception:
            self._pin = None

    def set(self, on):
        if self._pin is not None:
            self._pin.value(1 if on else 0)


_sim_t = 2150  # centi-degrees for the unix random walk


def temperature_cc():
    """Temperature in centi-degrees Celsius (int)."""
    global _sim_t
    if PLATFORM == "esp32":
        import esp32

        f = getattr(esp32, "mcu_temperature", None)
        if f is not None:  # ESP32-S2/S3/C3: degrees C
            return int(f() * 100)
        return (esp32.raw_temperature() - 32) * 500 // 9  # classic ESP32: Fahrenheit
    if PLATFORM == "rp2":
        from machine import ADC

        # RP2040 datasheet 4.9.5: T = 27 - (V - 0.706) / 0.001721; V = raw * 3.3 / 65535
        uv = ADC(4).read_u16() * 3300000 // 65535  # microvolts, stays a small int
        return 2700 - (uv - 706000) * 100 // 1721
    _sim_t += rand(41) - 20
    return _sim_t
