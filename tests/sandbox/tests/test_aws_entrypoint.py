"""``python -m tests.sandbox`` prints the environment, serves, and stops cleanly on SIGTERM."""

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_module_prints_exports_serves_and_stops_on_sigterm():
    process = subprocess.Popen([sys.executable, "-m", "tests.sandbox", "--status-delay", "0.1"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        exports = {}
        for line in process.stdout:
            if line.startswith("export "):
                key, _, value = line[len("export "):].strip().partition("=")
                exports[key] = value
            if line.startswith("# sandbox ready"):
                break
        assert exports["AWS_ACCESS_KEY_ID"] == "testing" and exports["AWS_DEFAULT_REGION"] == "us-east-1"
        with urllib.request.urlopen(exports["AWS_ENDPOINT_URL"] + "/_sandbox/health", timeout=10) as response:
            assert json.loads(response.read())["status"] == "ok"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
