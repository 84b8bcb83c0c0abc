# Runs first on every boot. Keep it tiny: main.py does the work (WiFi included), so a
# failing network never stops the device from counting.
import gc

try:
    import esp  # type: ignore[import-not-found]

    esp.osdebug(None)  # ESP32: no vendor debug chatter on the console
except ImportError:
    pass
gc.collect()
