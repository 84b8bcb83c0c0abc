# leaderboard device configuration (made for a Pico W; runs on any board and the unix
# port): edit, then copy to the board as config.py. On the unix port every NAME can be
# overridden by the environment variable LASP_<NAME>.

WIFI_SSID = "your-ssid"
WIFI_PASSWORD = "your-wifi-password"

BROKER_HOST = "192.168.1.10"
BROKER_PORT = 1883
BROKER_USER = None
BROKER_PASSWORD = None
KEEPALIVE_S = 30

DEVICE_ID = None  # None: "lb-" + the board's unique id
GATEWAY_ID = "gw"
STORE_PATH = "/lasp"

K = 10  # size of the top-k; must match the server's --k
PLAYERS = "ann,bob,cy,dee"  # who plays on this device, in turn

SYNC_PERIOD_MS = 10000
FLUSH_EVERY = 100
FLUSH_MS = 10000
BACKOFF_CAP_MS = 30000

BUTTON_PIN = None  # None: GPIO14 on a Pico, GPIO0 (BOOT) on an ESP32
LED_PIN = None  # None: the on-board LED
ROUND_MS = 1000  # the LED lights up 0.2..1 x ROUND_MS after a round starts
VIEW_MS = 400  # unix port: the simulated player reacts in about this long
LOOP_MS = 5

ITERATIONS = 0  # CI: stop after this many games, then sync
SYNC_EVERY = 0
DRAIN_MS = 10000
MAX_RUN_MS = 0
ORACLE = None
HEAP_PROBE = False
