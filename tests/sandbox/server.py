"""The sandbox process: moto in server mode on loopback (extended by ``tests.sandbox.aws``), plus
the Kubernetes side (``tests.sandbox.kube``) when it is available.

    with Sandbox() as sandbox:
        ec2 = boto3.client("ec2", endpoint_url=sandbox.endpoint_url, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")

See tests/sandbox/README.md for the control interface and the known differences from AWS.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field

LOG = logging.getLogger("sandbox")

# Must be set before moto's IAM backend is first created.
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
# moto's ~700 generic default AMIs take seconds to register; the sandbox registers the EKS
# AMIs itself (tests.sandbox.aws.amis). Set MOTO_EC2_LOAD_DEFAULT_AMIS=true to get them back.
os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

FAKE_ACCESS_KEY = "testing"
_STARTED_BEFORE: list = []
_RUNNING: list = []
_WARM_SERVICES = ("ec2", "autoscaling", "iam", "sts", "ssm", "eks", "elbv2")
FAKE_SECRET_KEY = "testing"


@dataclass
class SandboxSettings:
    region: str = "us-east-1"
    account_id: str = "123456789012"
    # EKS CREATING->ACTIVE, update InProgress->Successful, add-on CREATING->ACTIVE etc.
    status_delay: float = 0.3
    node_ready_delay: float = 0.5
    pod_ready_delay: float = 0.2
    # How long a deleted pod's containers take to stop (pod annotation sandbox.selfmanaged.eks/stop-seconds overrides).
    pod_stop_delay: float = 0.1
    kubelet_interval: float = 0.2
    # Auto Scaling: how long a launched instance stays Pending (EC2 pending) before InService
    # (running), and how long a terminated one stays Terminating (EC2 shutting-down).
    instance_launch_delay: float = 0.0
    instance_terminate_delay: float = 0.0
    # Kubeconfigs and CA files; a fresh temporary directory (removed on stop) when None.
    state_dir: str | None = None
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port
    # Extra regions that get the EKS AMIs and SSM parameters besides ``region``.
    extra_regions: tuple = field(default_factory=tuple)
    # Real node hosts (tests/nodehosts): the directory they report their boot identity into
    # (``<dir>/<instance id>``: {"boot_id", "time"}). The Node of an instance with reports follows
    # them; instances without reports keep the simulated kubelet. May be set after start().
    node_reports_dir: str | None = None
    # Seconds without a report before the Node goes NotReady (Unknown), as the node lifecycle
    # controller's node-monitor-grace-period (40 s in Kubernetes; short here, tests wait on it).
    node_report_grace_period: float = 4.0


class Sandbox:
    def __init__(self, settings: SandboxSettings | None = None):
        self.settings = settings or SandboxSettings()
        self.kube = None
        self.startup_seconds: float | None = None
        self._server = None
        self._thread: threading.Thread | None = None
        self._own_state_dir = False
        self._counter = None
        self._faults = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> "Sandbox":
        if self._server is not None:
            return self
        began = time.monotonic()
        from tests.sandbox.aws import performance

        performance.cache_available_regions()
        if os.environ.get("MOTO_IAM_LOAD_MANAGED_POLICIES", "").lower() != "true":
            LOG.warning("MOTO_IAM_LOAD_MANAGED_POLICIES is not true; AWS managed IAM policies will be missing")
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        from tests.sandbox import hooks
        from tests.sandbox.aws import autoscaling, eks, instances, launch_templates, traffic

        settings = self.settings
        if settings.state_dir is None:
            settings.state_dir = tempfile.mkdtemp(prefix="eks-sandbox-")
            self._own_state_dir = True
        else:
            os.makedirs(settings.state_dir, exist_ok=True)
        eks.configure(settings.account_id, settings.status_delay)
        autoscaling.configure(settings.instance_launch_delay, settings.instance_terminate_delay)
        # moto's state is process-global: a sandbox started after another one stopped starts
        # empty; one started while another runs shares its AWS state (there is only one moto).
        if _RUNNING:
            LOG.warning("another sandbox runs in this process; both share one moto (AWS state)")
        elif _STARTED_BEFORE:
            from moto.moto_api._internal.models import moto_api_backend

            moto_api_backend.reset()
        _STARTED_BEFORE.append(self)
        _RUNNING.append(self)
        autoscaling.install()
        launch_templates.install()
        instances.install()
        performance.install()
        self._seed()
        self._counter = traffic.CallCounter()
        self._faults = traffic.FaultInjector()
        dispatcher = DomainDispatcherApplication(create_backend_app)
        for service in _WARM_SERVICES:  # build moto's per-service apps now, not on the first request
            dispatcher.app_instances[service] = dispatcher.create_app(service)
        app = traffic.SandboxMiddleware(
            dispatcher,
            self._counter,
            self._faults,
            on_reset=self._seed,
            health=lambda: {"status": "ok", "region": settings.region, "kube": self.kube is not None},
            kube_control=lambda *request: self.kube.traffic.control(*request) if self.kube is not None else None,
            ami_release=self._ami_release_control,
        )
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request drowns the test output
        self._server = make_server(settings.host, settings.port, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox-moto", daemon=True)
        self._thread.start()
        self._start_kube(hooks)
        threading.Thread(target=self._warm_up, name="sandbox-warm-up", daemon=True).start()
        self.startup_seconds = time.monotonic() - began
        LOG.info("sandbox AWS endpoint %s ready in %.2fs", self.endpoint_url, self.startup_seconds)
        return self

    def _warm_up(self) -> None:
        """First requests per service are slow in moto (models load lazily); make one cheap,
        uncounted read per service in the background so clients do not pay for it."""
        def mark(request, **kwargs):
            request.headers["X-Sandbox-Warm-Up"] = "1"

        calls = (("ssm", "describe_parameters", {"MaxResults": 1}), ("ec2", "describe_images", {"ImageIds": ["ami-00000000"]}),
                 ("ec2", "describe_instances", {}), ("autoscaling", "describe_auto_scaling_groups", {}),
                 ("iam", "list_roles", {}), ("sts", "get_caller_identity", {}), ("eks", "list_clusters", {}))
        for service, operation, params in calls:
            try:
                client = self.client(service)
                client.meta.events.register("before-sign.*", mark)
                getattr(client, operation)(**params)
            except Exception:  # an error answer warms up just as well
                pass

    def _seed(self) -> None:
        from tests.sandbox.aws import amis

        for region in (self.settings.region, *self.settings.extra_regions):
            amis.seed(self.settings.account_id, region)

    def _start_kube(self, hooks) -> None:
        try:
            from tests.sandbox.kube import KubeSide
        except ImportError as error:  # the Kubernetes side is optional for the AWS side
            LOG.warning("Kubernetes side unavailable (%s); clusters get a placeholder endpoint", error)
            return
        try:
            self.kube = KubeSide(self.settings, self.endpoint_url)
            self.kube.start()
            hooks.register(self.kube)
        except Exception:
            LOG.exception("Kubernetes side failed to start; clusters get a placeholder endpoint")
            self.kube = None

    def stop(self) -> None:
        from tests.sandbox import hooks

        if self in _RUNNING:
            _RUNNING.remove(self)

        if self.kube is not None:
            hooks.unregister(self.kube)
            try:
                self.kube.stop()
            except Exception:
                LOG.exception("Kubernetes side failed to stop cleanly")
            self.kube = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._own_state_dir and self.settings.state_dir:
            shutil.rmtree(self.settings.state_dir, ignore_errors=True)
            self.settings.state_dir = None
            self._own_state_dir = False

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- what clients need ---------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sandbox is not started; call start() first")
        return self._server.server_address[1]

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.settings.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment variables that point boto3, the AWS CLI and Ansible's AWS modules here."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
            "AWS_DEFAULT_REGION": self.settings.region,
            "AWS_REGION": self.settings.region,
        }

    def client(self, service: str, **kwargs):
        """A boto3 client for this sandbox (fake credentials, the sandbox region)."""
        import boto3

        params = {"endpoint_url": self.endpoint_url, "region_name": self.settings.region,
                  "aws_access_key_id": FAKE_ACCESS_KEY, "aws_secret_access_key": FAKE_SECRET_KEY}
        params.update(kwargs)
        return boto3.client(service, **params)

    # -- counters and faults -------------------------------------------------------------

    def api_calls(self) -> dict[str, dict[str, int]]:
        """``{"eks": {"CreateCluster": 1, ...}, "ec2": {...}}``: every request that reached the
        AWS endpoint since start or the last reset, including those answered with a fault."""
        return self._counter.snapshot()

    def reset_api_calls(self) -> None:
        self._counter.reset()

    def inject_faults(self, service: str, rate: float = 1.0, codes: list[str] | None = None, *, every: int | None = None,
                      operations: list[str] | None = None, seed: int | None = None) -> None:
        """Answer a share of ``service``'s requests (``"*"``: all services) with a throttling
        error in that service's wire format. ``rate`` is a probability drawn from a
        ``random.Random(seed)``; ``every=N`` faults every Nth matching request instead
        (deterministic). ``codes`` overrides the error code(s) (cycled)."""
        from tests.sandbox.aws.traffic import FaultRule

        self._faults.set(FaultRule(service=service, rate=rate, codes=list(codes or []), every=every,
                                   operations=list(operations or []), seed=seed))

    def clear_faults(self, service: str | None = None) -> None:
        self._faults.clear(service)

    def faults(self) -> list[dict]:
        return self._faults.rules()

    def kube_api_calls(self, cluster: str | None = None) -> dict:
        """Kubernetes API requests per cluster and operation, ``{"my-cluster": {"GET pods": 4, "POST pods/eviction": 2}}``
        (only ``{operation: count}`` of ``cluster`` when given), including those answered with a fault."""
        return self._kube_side().api_calls(cluster)

    def reset_kube_api_calls(self) -> None:
        self._kube_side().reset_api_calls()

    def inject_kube_faults(self, cluster: str = "*", rate: float = 1.0, codes: list[str] | None = None, *,
                           every: int | None = None, operations: list[str] | None = None, seed: int | None = None) -> None:
        """Answer a share of a cluster's Kubernetes API requests (``"*"``: every cluster) with a fault: ``"429"`` (API
        rate limiting, no DisruptionBudget cause; the default), ``"500"``, ``"503"``, ``"drop"`` (connection closed, no
        effect), ``"drop-after"`` (served, then the connection is closed: the answer is lost) or ``"concurrent-write"``
        (a PUT/PATCH of a named object is preceded by a write of the sandbox's own, so a stale PUT gets a real 409).
        ``operations`` names requests as the counter does (``"POST pods/eviction"``); ``rate``/``every``/``seed`` as in
        ``inject_faults``."""
        self._kube_side().inject_faults(cluster, rate, codes, every=every, operations=operations, seed=seed)

    def clear_kube_faults(self, cluster: str | None = None) -> None:
        self._kube_side().clear_faults(cluster)

    def kube_faults(self) -> list[dict]:
        return self._kube_side().faults()

    def _kube_side(self):
        if self.kube is None:
            raise RuntimeError("the Kubernetes side of the sandbox is not running (see the log for why it did not start)")
        return self.kube

    def publish_ami_release(self, release: str, region: str | None = None, kubernetes: str | list | None = None,
                            family: str | list | None = None) -> dict[str, str]:
        """Publish a new EKS AMI release (``YYYYMMDD``): registers its AMIs (new ids, names with that
        date) and moves the SSM parameters to them, as AWS does; ``kubernetes`` ("1.31" or a list)
        and ``family`` ("al2023", "al2", "bottlerocket" or a list) limit it. Returns
        ``{parameter name: ami id}``."""
        from tests.sandbox.aws import amis

        def as_list(value):
            return [value] if isinstance(value, str) else list(value or [])

        return amis.publish_release(self.settings.account_id, region or self.settings.region, str(release),
                                    as_list(kubernetes), as_list(family))

    def _ami_release_control(self, spec: dict) -> dict:
        """``POST /_sandbox/amis/release`` body -> ``{"published": {parameter: ami id}}``."""
        unknown = set(spec) - {"release", "kubernetes", "family", "region"}
        if unknown or "release" not in spec:
            raise ValueError(f"unknown keys {sorted(unknown)} or no \"release\"; send e.g. "
                             '{"release": "20261201", "kubernetes": "1.31", "family": "al2023"}')
        return {"published": self.publish_ami_release(spec["release"], spec.get("region"), spec.get("kubernetes"),
                                                      spec.get("family"))}
