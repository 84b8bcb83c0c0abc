# sensor_windows device configuration: edit, then copy to the board as config.py.
# On the unix port every NAME can be overridden by the environment variable LASP_<NAME>.

WIFI_SSID = "your-ssid"
WIFI_PASSWORD = "your-wifi-password"

BROKER_HOST = "192.168.1.10"
BROKER_PORT = 1883
BROKER_USER = None
BROKER_PASSWORD = None
KEEPALIVE_S = 30

DEVICE_ID = None  # None: "th-" + the board's unique id
GATEWAY_ID = "gw"
STORE_PATH = "/lasp"

WINDOW_MS = 300000  # window length; must match the server's --window-ms
KEEP_WINDOWS = 6  # windows kept on the device once the gateway has them
SAMPLE_MS = 10000  # one temperature reading this often

SYNC_PERIOD_MS = 10000
FLUSH_EVERY = 100
FLUSH_MS = 10000
BACKOFF_CAP_MS = 30000
LOOP_MS = 100

ITERATIONS = 0  # CI: stop after this many readings, then sync
SYNC_EVERY = 0
DRAIN_MS = 10000
MAX_RUN_MS = 0
ORACLE = None
HEAP_PROBE = False
