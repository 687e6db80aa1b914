#!/usr/bin/python3
"""node-reporter: the kubelet's place in a test node host (baked into the node image, started by
systemd at boot as node-reporter.service).

Every 0.25 s it writes /srv/node-reports/<instance id> (a directory the sandbox reads, bind
mounted from the test machine): {"boot_id": ..., "time": <epoch seconds>}. The instance id is the
container's hostname. The boot id is derived from PID 1's start time: a container reboot restarts
PID 1 but not the kernel, so the kernel's boot_id alone would never change.

When /srv/node-control/hold-boot exists at start-up, this boot "never comes back": nothing is
reported until the file is removed (the test's way to simulate a node that hangs in its boot).
"""

import hashlib
import json
import os
import socket
import time
import uuid

REPORTS = "/srv/node-reports"
HOLD = "/srv/node-control/hold-boot"


def boot_id():
    with open("/proc/sys/kernel/random/boot_id") as handle:
        kernel = handle.read().strip()
    with open("/proc/1/stat") as handle:
        start = handle.read().rsplit(")", 1)[1].split()[19]  # field 22: starttime
    return str(uuid.UUID(hashlib.sha256("{0}:{1}".format(kernel, start).encode()).hexdigest()[:32]))


def report(path, boot):
    tmp = "{0}.{1}.tmp".format(path, os.getpid())
    with open(tmp, "w") as handle:
        json.dump({"boot_id": boot, "time": time.time()}, handle)
    os.replace(tmp, path)


def main():
    while os.path.exists(HOLD):
        time.sleep(0.5)
    path = os.path.join(REPORTS, socket.gethostname())
    boot = boot_id()
    while True:
        try:
            report(path, boot)
        except OSError:
            pass  # the reports directory may be gone while the test machine cleans up
        time.sleep(0.25)


if __name__ == "__main__":
    main()
