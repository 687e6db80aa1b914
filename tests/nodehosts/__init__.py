"""Real node hosts for the tests: podman containers of a Debian image with systemd, a local apt
repository, and the fleet the patching tests and benchmark run on (see README.md)."""
