"""The ``iotsphere`` command and the end-to-end demo: above the cloud, the gateway and the simulator, which it
runs together; none of them imports it."""
