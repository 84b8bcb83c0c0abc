# ad_counter device configuration: edit, then copy to the board as config.py.
# On the unix port every NAME below can be overridden by the environment variable
# LASP_<NAME> (CI uses that to point at its broker and bound the run).

WIFI_SSID = "your-ssid"
WIFI_PASSWORD = "your-wifi-password"

BROKER_HOST = "192.168.1.10"  # the MQTT broker of your gateway (mosquitto)
BROKER_PORT = 1883
BROKER_USER = None  # e.g. "device-kiosk-1" when the broker requires a login
BROKER_PASSWORD = None
KEEPALIVE_S = 30

DEVICE_ID = None  # None: "ad-" + the board's unique id; or a str of up to 32 chars
GATEWAY_ID = "gw"  # the gateway's replica id
STORE_PATH = "/lasp"  # where the flash store lives (littlefs)

SYNC_PERIOD_MS = 10000  # send what changed at most this often
FLUSH_EVERY = 100  # flush after this many updates...
FLUSH_MS = 10000  # ...or this long after the first unflushed one (loss bound at power cut)
BACKOFF_CAP_MS = 30000  # longest wait between reconnection attempts

BUTTON_PIN = None  # None: BOOT button (GPIO0) on ESP32, GPIO14 on a Pico
VIEW_MS = 3000  # unix port: the simulated viewer presses about this often
LOOP_MS = 10  # main loop period (button polling)

# Bounds for CI runs (0 = run forever): stop after this many impressions, then sync.
ITERATIONS = 0
SYNC_EVERY = 0  # force a full sync round trip every N impressions (heap benchmark)
DRAIN_MS = 10000  # at the end of a bounded run, wait this long for the gateway's ack
MAX_RUN_MS = 0  # give up a bounded run after this long (0 = no limit)
ORACLE = None  # unix: append what was flushed to this file (tests)
HEAP_PROBE = False  # measure the peak live heap (gc.collect + gc.mem_alloc)
