# Freeze lasp-edge into a MicroPython firmware image (bytecode then runs from flash, so the
# code costs almost no RAM: the way to fit small boards). From a MicroPython checkout:
#
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/lasp-edge/micropython/manifest.py
#   make -C ports/rp2 BOARD=RPI_PICO_W FROZEN_MANIFEST=/path/to/lasp-edge/micropython/manifest.py
#
# It keeps the board's own frozen modules, then adds the portable core (only the modules
# that run on devices: not the CPython-only store, cli or tooling) and the runtime, without
# lasp_device/mqtt.py: a board uses micropython-lib's umqtt.simple (add
# require("umqtt.simple") here, or `mpremote mip install umqtt.simple`); the bundled client
# exists for CI on the unix port (list mqtt.py below to freeze it anyway).
include("$(PORT_DIR)/boards/manifest.py")

package(
    "lasp_edge",
    files=[
        "__init__.py",
        "cbor.py",
        "cbor_rare.py",
        "wire.py",
        "crdts/__init__.py",
        "crdts/awmap.py",
        "crdts/awset.py",
        "crdts/base.py",
        "crdts/causal.py",
        "crdts/ewflag.py",
        "crdts/gcounter.py",
        "crdts/gset.py",
        "crdts/lwwregister.py",
        "crdts/maxregister.py",
        "crdts/mvregister.py",
        "crdts/pncounter.py",
        "crdts/registry.py",
        "crdts/topk.py",
        "crdts/twopset.py",
        "sync/__init__.py",
        "sync/log.py",
        "sync/messages.py",
        "sync/node.py",
        "sync/split.py",
    ],
    base_path="../sdk",
    opt=1,
)
package(
    "lasp_device",
    files=[
        "__init__.py",
        "app.py",
        "device.py",
        "flashstore.py",
        "hw.py",
        "meter.py",
        "recovery.py",
        "sensors.py",
        "transport.py",
    ],
    base_path=".",
    opt=1,
)
