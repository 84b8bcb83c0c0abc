"""Fleet tests to copy into your project: lasp-edge's pytest plugin at work.

Install lasp-edge (``pip install lasp-edge``; mosquitto is used when installed, else the
embedded broker) and run ``pytest examples/test_fleet.py``. The fixtures ``fleet``,
``mqtt_broker``, ``gateway`` and ``aggregator`` come from the ``lasp_edge.testing`` plugin,
registered automatically. Each test starts a broker, a gateway and an aggregator, runs a
fleet of virtual devices (the app's own ``main.py`` code on the device runtime) under
seeded faults for ``duration`` seconds, and checks the result against an oracle of every
update every device made. docs/EMULATOR.md describes every fault and option.
"""


def test_my_counter_survives_partitions(fleet):
    run = fleet(
        "firmware_examples/ad_counter", devices=20, faults=["partition:0.3", "loss:0.1"], seed=7
    )
    run.until_converged(timeout=60)
    assert run.oracle_matches()


def test_nothing_is_lost_when_devices_crash_and_the_gateway_restarts(fleet):
    run = fleet(
        "firmware_examples/ad_counter",
        devices=10,
        faults=["crash:2", "gateway-kill:1", "dup:0.2"],
        seed=3,
        duration=15,
    )
    report = run.until_converged(timeout=60)
    assert run.oracle_matches()
    assert report.crashes == 2  # what the devices had flushed survived; the rest is reported
    print("converged %.1fs after the last fault healed" % report.converge_after_heal_s)
