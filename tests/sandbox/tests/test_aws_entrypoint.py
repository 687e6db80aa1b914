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
        # the checkout's collection and roles, so that ansible-playbook/ansible-inventory run as in make demo
        assert (Path(exports["ANSIBLE_COLLECTIONS_PATH"]) / "ansible_collections" / "selfmanaged" / "eks" / "galaxy.yml").is_file()
        assert (Path(exports["ANSIBLE_ROLES_PATH"]) / "node_bootstrap" / "tasks" / "main.yml").is_file()
        with urllib.request.urlopen(exports["AWS_ENDPOINT_URL"] + "/_sandbox/health", timeout=10) as response:
            assert json.loads(response.read())["status"] == "ok"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_sandbox_started_after_another_stopped_starts_empty():
    script = (
        "from tests.sandbox import Sandbox\n"
        "for _ in range(2):\n"
        "    with Sandbox() as sandbox:\n"
        "        ec2 = sandbox.client('ec2')\n"
        "        print(len(ec2.describe_vpcs()['Vpcs']))\n"
        "        ec2.create_vpc(CidrBlock='10.9.0.0/16')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.split() == ["1", "1"]  # only the default VPC each time
