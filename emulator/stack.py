"""The local emulator stack: every service the four functions need, on loopback.

One ``Stack`` starts, in this order (each phase waits until it is ready):

1. the emulators: Firestore (the emulator jar gcloud ships), Cloud Storage (gcp-storage-emulator),
   Cloud Tasks (``emulator.cloud_tasks``: gRPC on the ``tasks`` port, the REST
   API the functions call on ``tasks_http``, queues from ``infra/``, OIDC tokens
   whose certificates it serves on the ``tasks_oidc`` port), the Gemini
   stand-in (``emulator.gemini_standin``) and the Eventarc relay
   (``emulator.eventarc_relay``). Firestore is ready once it answers and holds
   the ``document.written`` trigger on the jobs collection, which it delivers to
   the relay; the relay forwards each event to ``webhook_trigger`` as Eventarc
   does in production;
2. the functions under functions-framework: ``api`` (9006, the contract's
   port), ``worker``, ``webhook_trigger`` (CloudEvent), ``webhook_delivery`` and
   ``sweeper``, from ``.venv-functions`` (``FUNCTIONS_VENV``); the emulators and
   the relay run from ``.venv``.

Every process runs in its own process group (``start_new_session``), so that
stopping one also stops what it spawned (gcloud's Java child, gunicorn's
workers). Logs go to ``<log_dir>/<name>.log``.

Used by the tests (``tests/conftest.py``) and from the command line::

    python -m emulator.stack run      # foreground, Ctrl-C stops everything
    python -m emulator.stack up       # detached; pid in .stack/stack.pid
    python -m emulator.stack status   # which ports answer
    python -m emulator.stack down     # stops what ``up`` started
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("emulator.stack")

ROOT = Path(__file__).resolve().parents[1]
"""The repository root (where ``.venv``, ``functions/`` and ``emulator/`` are)."""
HOST = "127.0.0.1"

_BASE_PORTS: dict[str, int] = {
    "api": 9006,
    "worker": 9007,
    "webhook_trigger": 9008,
    "webhook_delivery": 9009,
    "gemini_standin": 9010,
    "firestore": 9011,
    "storage": 9012,
    "tasks": 9013,
    "sweeper": 9014,
    "relay": 9015,
    "tasks_oidc": 9016,
    "tasks_http": 9017,
}
# STACK_PORT_OFFSET moves the whole stack (API 9006 + offset, ...) so that two
# stacks can run side by side on one machine (parallel development checkouts);
# the default, 0, is the contract's port 9006.
PORT_OFFSET = int(os.environ.get("STACK_PORT_OFFSET", "0") or 0)
PORTS: dict[str, int] = {name: port + PORT_OFFSET for name, port in _BASE_PORTS.items()}
EMULATORS = ("firestore", "storage", "tasks", "gemini_standin", "relay")
FUNCTIONS = ("api", "worker", "webhook_trigger", "webhook_delivery", "sweeper")
FUNCTIONS_VENV = ".venv-functions"
"""The functions' virtual environment (``make setup``): functions/requirements.lock and
nothing else, as deployed. An import of a package the lock lacks fails here as it would in
production, and a cold start loads only what production loads (``.venv``'s dev tools and
the Python client's dependencies would be imported by libraries that look for them)."""

DEFAULT_PROJECT = "imagegen-local"
DEFAULT_LOCATION = "us-central1"
DEFAULT_JOBS_QUEUE = "image-jobs"
DEFAULT_WEBHOOK_QUEUE = "webhook-deliveries"
DEFAULT_BUCKET = "imagegen-local-images"
# The identity of the tasks' OIDC tokens (TASKS_SERVICE_ACCOUNT), as in production.
DEFAULT_TASKS_SERVICE_ACCOUNT = f"imagegen-tasks@{DEFAULT_PROJECT}.iam.gserviceaccount.com"

_TRUE = {"1", "true", "yes", "on"}


READY_MARKER = "LOCAL STACK READY"


class StackError(RuntimeError):
    """The stack could not start (or a service could not be restarted)."""


class _Shutdown(BaseException):
    """Raised by the CLI's signal handlers to unwind out of start() or the wait loop."""


# --------------------------------------------------------------------------- helpers


def port_in_use(port: int, host: str = HOST) -> bool:
    """True when something listens on ``host:port`` or the port cannot be bound."""
    if tcp_answers(port, host, timeout=0.3):
        return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def free_port(host: str = HOST) -> int:
    """A port nothing listens on right now (the kernel's pick), for a process to bind next."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def tcp_answers(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """``(status, body)`` of a GET; ``(0, b"")`` when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (OSError, ValueError):
        return 0, b""


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    kept = text.splitlines()[-lines:]
    return "\n".join(kept) if kept else f"(empty log {path})"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _with_parent_death_signal(argv: list[str]) -> list[str]:
    """``argv`` run under ``setpriv --pdeathsig TERM`` (util-linux) where it exists.

    The child then gets SIGTERM if the process that started the stack dies: a
    safety net for a test runner or ``run`` killed with SIGKILL (only the direct
    child is covered; it stops what it started itself). setpriv rather than a
    ``preexec_fn``: without Python code between fork and exec, subprocess can
    use vfork, so the child never runs the gRPC core's fork handlers, which
    aborted children (-6) of a test process whose Firestore clients were live.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else argv


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def functions_bin(root: Path, name: str) -> str:
    """The executable ``name`` of ``root``'s functions' venv (``FUNCTIONS_VENV``)."""
    return str(root / FUNCTIONS_VENV / "bin" / name)


def function_argv(root: Path, target: str, port: int, source: str = "functions/main.py") -> list[str]:
    """functions-framework serving ``target`` of ``source`` on loopback ``port``, from the functions' venv."""
    argv = [functions_bin(root, "functions-framework"), "--source", source, "--target", target,
            "--host", HOST, "--port", str(port)]  # fmt: skip
    if target == "webhook_trigger":
        argv += ["--signature-type", "cloudevent"]
    return argv


# --------------------------------------------------------------------------- the stack


@dataclass
class _Service:
    name: str
    argv: list[str]
    port: int | None
    ready: Callable[[], bool]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    ready_after: float | None = None
    restarts: int = 0


class Stack:
    """Starts and stops the local stack; see the module docstring.

    ``overrides`` win over everything (the user's environment and the stack's
    own values); a value of ``None`` removes the variable from the functions'
    environment. ``port_offset`` moves this stack's ports (default
    ``STACK_PORT_OFFSET``), so that a second stack with other settings can run
    beside the first.
    """

    def __init__(
        self,
        root: Path,
        overrides: Mapping[str, str | None] | None = None,
        log_dir: Path | None = None,
        port_offset: int | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        offset = PORT_OFFSET if port_offset is None else port_offset
        self._ports = {name: port + offset for name, port in _BASE_PORTS.items()}
        self.log_dir = Path(log_dir) if log_dir else self.root / ".stack" / "logs"
        self._overrides = dict(overrides or {})
        self._services: dict[str, _Service] = {}
        self._lock = threading.RLock()
        self._started = False
        self._atexit_registered = False
        self.timings: dict[str, float] = {}
        self._env: dict[str, str] = {}
        self.real_gemini_reason = ""
        self._build_env()

    # ----------------------------------------------------------------- environment

    def _build_env(self) -> None:
        merged: dict[str, str | None] = dict(os.environ)
        # What the user's environment (after overrides) says about Gemini.
        probe = {**merged, **self._overrides}
        reasons = [
            name
            for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY")
            if (probe.get(name) or "").strip()
        ]
        if (probe.get("GOOGLE_GENAI_USE_VERTEXAI") or "").strip().lower() in _TRUE:
            reasons.insert(0, "GOOGLE_GENAI_USE_VERTEXAI=true")
        self.real_gemini_reason = ", ".join(reasons)

        from emulator.cloud_tasks.oidc import CERTS_PATH

        stack_env = {
            "GOOGLE_CLOUD_PROJECT": DEFAULT_PROJECT,
            "FIRESTORE_EMULATOR_HOST": f"{HOST}:{self._ports['firestore']}",
            "STORAGE_EMULATOR_HOST": f"http://{HOST}:{self._ports['storage']}",
            "CLOUD_TASKS_EMULATOR_HOST": f"{HOST}:{self._ports['tasks_http']}",  # the REST API
            "TASKS_LOCATION": DEFAULT_LOCATION,
            "TASKS_QUEUE": DEFAULT_JOBS_QUEUE,
            "WEBHOOK_TASKS_QUEUE": DEFAULT_WEBHOOK_QUEUE,
            "IMAGES_BUCKET": DEFAULT_BUCKET,
            "WORKER_URL": f"http://{HOST}:{self._ports['worker']}/",
            "SWEEPER_URL": f"http://{HOST}:{self._ports['sweeper']}/",
            "WEBHOOK_DELIVERY_URL": f"http://{HOST}:{self._ports['webhook_delivery']}/",
            "PUBLIC_BASE_URL": f"http://localhost:{self._ports['api']}",
            "TASKS_SERVICE_ACCOUNT": DEFAULT_TASKS_SERVICE_ACCOUNT,
            "OIDC_CERTS_URL": f"http://{HOST}:{self._ports['tasks_oidc']}{CERTS_PATH}",
            "WORKER_MAX_ATTEMPTS": self._jobs_queue_max_attempts(probe),
            "PYTHONUNBUFFERED": "1",
        }
        if not self.real_gemini_reason:
            stack_env["GEMINI_STANDIN_URL"] = f"http://{HOST}:{self._ports['gemini_standin']}"
        else:
            merged.pop("GEMINI_STANDIN_URL", None)
        merged.update(stack_env)
        merged.update(self._overrides)
        self._env = {k: v for k, v in merged.items() if v is not None}

    @property
    def env(self) -> dict[str, str]:
        """The environment of every function process (and the relay)."""
        return dict(self._env)

    @staticmethod
    def _jobs_queue_max_attempts(env: Mapping[str, str | None]) -> str:
        """The jobs queue's ``max_attempts`` (infra/ and ``TASKS_QUEUE_OVERRIDES``): the
        worker's ``WORKER_MAX_ATTEMPTS``, as infra/ sets it in production."""
        from emulator.cloud_tasks import config as tasks_config

        name = env.get("TASKS_QUEUE") or DEFAULT_JOBS_QUEUE
        overrides = env.get(tasks_config.OVERRIDES_ENV) or ""
        attempts = tasks_config.queue_configs([name], tasks_config.INFRA_DIR, overrides)[name].max_attempts
        return str(attempts if attempts > 0 else 2**31 - 1)

    @property
    def tasks_oidc_key_file(self) -> Path:
        """The key the Tasks emulator signs its OIDC tokens with (tests mint theirs with it)."""
        return self.log_dir / "tasks-oidc-key.pem"

    @property
    def gemini_backend(self) -> str:
        return "real" if self.real_gemini_reason else "stand-in"

    @property
    def project(self) -> str:
        return self._env["GOOGLE_CLOUD_PROJECT"]

    @property
    def location(self) -> str:
        return self._env["TASKS_LOCATION"]

    @property
    def queues(self) -> list[str]:
        """Full names of the queues created in the Tasks emulator."""
        names = dict.fromkeys((self._env["TASKS_QUEUE"], self._env["WEBHOOK_TASKS_QUEUE"]))
        return [f"projects/{self.project}/locations/{self.location}/queues/{q}" for q in names]

    @property
    def jobs_collection(self) -> str:
        return self._env.get("JOBS_COLLECTION") or "image_jobs"

    @property
    def bucket(self) -> str:
        return self._env["IMAGES_BUCKET"]

    @property
    def ports(self) -> dict[str, int]:
        return dict(self._ports)

    @property
    def urls(self) -> dict[str, str]:
        """Base URL of every service; ``tasks`` is the Tasks emulator's gRPC ``host:port``
        (``tasks_http`` its REST API, the one the functions call)."""
        urls = {name: f"http://{HOST}:{port}" for name, port in self._ports.items()}
        urls["tasks"] = f"{HOST}:{self._ports['tasks']}"
        urls["health"] = f"{urls['api']}/health"
        urls["openapi"] = f"{urls['api']}/openapi.json"
        urls["public_api"] = self._env["PUBLIC_BASE_URL"].rstrip("/")
        return urls

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def pid(self, name: str) -> int | None:
        """Pid (= process group id) of a running service, else None."""
        svc = self._services.get(name)
        if svc and svc.proc and svc.proc.poll() is None:
            return svc.proc.pid
        return None

    def is_running(self, name: str) -> bool:
        return self.pid(name) is not None

    @property
    def names(self) -> list[str]:
        """The services this stack started."""
        return list(self._services)

    # ----------------------------------------------------------------- service table

    def _venv_bin(self, venv: str, exe: str) -> str:
        path = self.root / venv / "bin" / exe
        return str(path)

    def _python(self) -> str:
        venv_python = self.root / ".venv" / "bin" / "python"
        return str(venv_python) if venv_python.exists() else sys.executable

    def _services_table(self) -> dict[str, _Service]:
        # The relay module needs google-events, which `make down` / `status` without the venv lack.
        from emulator.eventarc_relay import trigger_id

        env = self._env
        gcloud_env = {
            **env,
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
            "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
            "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
        }
        tasks_argv = [
            self._python(),
            "-m",
            "emulator.cloud_tasks",
            "--host",
            HOST,
            "--port",
            str(self._ports["tasks"]),
            "--rest-port",
            str(self._ports["tasks_http"]),
            "--certs-port",
            str(self._ports["tasks_oidc"]),
            "--project",
            self.project,
            "--location",
            self.location,
            "--oidc-key-file",
            str(self.tasks_oidc_key_file),
        ]
        for queue in self.queues:
            tasks_argv += ["--queue", queue.rsplit("/", 1)[1]]

        table: dict[str, _Service] = {
            "firestore": _Service(
                "firestore",
                self._firestore_argv(),
                self._ports["firestore"],
                self._firestore_ready,
                gcloud_env,
            ),
            "storage": _Service(
                "storage",
                [
                    self._venv_bin(".venv", "gcp-storage-emulator"),
                    "start",
                    "--host",
                    HOST,
                    "--port",
                    str(self._ports["storage"]),
                    "--default-bucket",
                    self.bucket,
                    "--in-memory",
                ],
                self._ports["storage"],
                lambda: http_get(
                    f"http://{HOST}:{self._ports['storage']}/storage/v1/b/{self.bucket}"
                )[0]
                == 200,
                env,
            ),
            "tasks": _Service(
                "tasks",
                tasks_argv,
                self._ports["tasks"],
                lambda: tcp_answers(self._ports["tasks"])
                and tcp_answers(self._ports["tasks_http"])
                and http_get(env["OIDC_CERTS_URL"])[0] == 200,
                env,
            ),
            "relay": _Service(
                "relay",
                [
                    self._python(),
                    "-m",
                    "emulator.eventarc_relay",
                    "--host",
                    HOST,
                    "--port",
                    str(self._ports["relay"]),
                    "--route",
                    f"{trigger_id(self.jobs_collection)}=http://{HOST}:{self._ports['webhook_trigger']}/",
                ],
                self._ports["relay"],
                lambda: http_get(f"http://{HOST}:{self._ports['relay']}/_relay/health")[0] == 200,
                env,
            ),
            "gemini_standin": _Service(
                "gemini_standin",
                [
                    self._python(),
                    "-m",
                    "emulator.gemini_standin",
                    "--host",
                    HOST,
                    "--port",
                    str(self._ports["gemini_standin"]),
                ],
                self._ports["gemini_standin"],
                lambda: http_get(f"http://{HOST}:{self._ports['gemini_standin']}/_standin/health")[0]
                == 200,
                env,
            ),
        }
        for name in FUNCTIONS:
            port = self._ports[name]
            argv = function_argv(self.root, name, port)
            if name == "api":
                ready = self._api_ready
            else:
                ready = (lambda p: lambda: tcp_answers(p))(port)
            # gunicorn (functions-framework's server) gives each open event
            # stream a thread: the api gets more than its default 4 per core.
            svc_env = {"THREADS": "32", **env} if name == "api" else env
            table[name] = _Service(name, argv, port, ready, svc_env)
        return table

    def _firestore_argv(self) -> list[str]:
        """The official emulator gcloud ships, started the way gcloud starts it.

        ``gcloud emulators firestore start`` runs the emulator's jar as a Java
        grandchild and, on SIGTERM alone (the stack's owner killed), dies
        without it. Java is therefore started directly from the jar in gcloud's
        SDK when it is there (same emulator, same flags, one process), with
        ``--functions_emulator`` pointing at the relay, which gcloud cannot pass;
        else through gcloud, whose whole process group ``stop()`` still ends, and
        then Firestore emits no events.
        """
        host_port = f"{HOST}:{self._ports['firestore']}"
        # The production security rules, so tests see what Firebase clients see
        # (the functions' server SDK is not subject to them, here as in production).
        rules = [f"--rules={self.root / 'infra' / 'firestore.rules'}"]
        java = shutil.which(os.environ.get("JAVA", "java"))
        gcloud = shutil.which("gcloud")
        if java and gcloud:
            sdk_root = Path(os.path.realpath(gcloud)).parent.parent
            jar = sdk_root / "platform" / "cloud-firestore-emulator" / "cloud-firestore-emulator.jar"
            if jar.is_file():
                return [
                    java,
                    "-Duser.language=en",
                    "-cp",
                    str(jar),
                    "com.google.cloud.datastore.emulator.firestore.CloudFirestore",
                    "start",
                    f"--host={HOST}",
                    f"--port={self._ports['firestore']}",
                    "--database-mode=firestore-native",
                    f"--functions_emulator={HOST}:{self._ports['relay']}",
                    *rules,
                ]
        return ["gcloud", "emulators", "firestore", "start", f"--host-port={host_port}", *rules, "--quiet"]

    def _firestore_ready(self) -> bool:
        """The emulator answers and holds the jobs trigger (registered here, again after a restart:
        the emulator keeps its triggers in memory)."""
        from emulator.eventarc_relay import register_trigger, trigger_id

        base = f"http://{HOST}:{self._ports['firestore']}"
        if http_get(f"{base}/")[1].strip() != b"Ok":
            return False
        collection = self.jobs_collection
        register_trigger(base, self.project, trigger_id(collection), f"{collection}/{{jobId}}")
        return True

    def _api_ready(self) -> bool:
        if not tcp_answers(self._ports["api"]):
            return False
        return http_get(f"http://{HOST}:{self._ports['api']}/health", timeout=5)[0] == 200

    def _missing_binaries(self, table: Mapping[str, _Service]) -> list[str]:
        problems = []
        for svc in table.values():
            exe = svc.argv[0]
            if os.sep in exe:
                if not os.access(exe, os.X_OK):
                    hint = "run `make setup`"
                    problems.append(f"{svc.name}: {exe} not found ({hint})")
            elif not any(
                os.access(os.path.join(d, exe), os.X_OK)
                for d in os.environ.get("PATH", "").split(os.pathsep)
            ):
                problems.append(f"{svc.name}: `{exe}` is not on PATH")
        return problems

    # ----------------------------------------------------------------- lifecycle

    def start(self, timeout: float = 180.0) -> Stack:
        """Start every service and wait until each is ready; raises StackError."""
        with self._lock:
            if self._started:
                return self
            t0 = time.monotonic()
            deadline = t0 + timeout
            busy = [f"{p} ({n})" for n, p in self._ports.items() if port_in_use(p)]
            if busy:
                raise StackError(
                    "port(s) already in use on 127.0.0.1: "
                    + ", ".join(busy)
                    + ". Another stack is probably running: `make down` stops one started"
                    " with `make up`; otherwise stop whatever holds the port(s)."
                )
            table = self._services_table()
            missing = self._missing_binaries(table)
            if missing:
                raise StackError("cannot start the stack:\n  " + "\n  ".join(missing))
            self.log_dir.mkdir(parents=True, exist_ok=True)
            if not self._atexit_registered:
                atexit.register(self.stop)
                self._atexit_registered = True
            self._started = True
            if self.real_gemini_reason:
                log.warning(
                    "Gemini backend: REAL Google Gemini (%s is set); the stand-in runs unused",
                    self.real_gemini_reason,
                )
            try:
                for phase in (EMULATORS, FUNCTIONS):
                    names = [n for n in phase if n in table]
                    for name in names:
                        self._services[name] = table[name]
                        self._spawn(table[name], append=False)
                    self._wait_ready(names, deadline)
            except BaseException:
                self.stop()
                raise
            self.timings["total"] = round(time.monotonic() - t0, 2)
            log.info("stack ready in %.1f s", self.timings["total"])
            return self

    def _spawn(self, svc: _Service, append: bool) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.log_path(svc.name)
        with open(path, "ab" if append else "wb") as logf:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            logf.write(f"=== {stamp} starting {svc.name}: {' '.join(svc.argv)}\n".encode())
            logf.flush()
            svc.proc = subprocess.Popen(
                _with_parent_death_signal(svc.argv),
                cwd=self.root,
                env=svc.env,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        svc.started_at = time.monotonic()
        svc.ready_after = None
        log.info("started %s (pid %d), log %s", svc.name, svc.proc.pid, path)

    def _wait_ready(self, names: list[str], deadline: float) -> None:
        pending = list(names)
        while pending:
            for name in list(pending):
                svc = self._services[name]
                assert svc.proc is not None
                code = svc.proc.poll()
                if code is not None:
                    raise StackError(
                        f"{name} exited with code {code} while starting; "
                        f"last lines of {self.log_path(name)}:\n{tail(self.log_path(name))}"
                    )
                try:
                    ok = svc.ready()
                except Exception:  # a probe that breaks means "not yet"
                    ok = False
                if ok:
                    svc.ready_after = round(time.monotonic() - svc.started_at, 2)
                    self.timings[name] = svc.ready_after
                    log.info("%s ready after %.1f s", name, svc.ready_after)
                    pending.remove(name)
            if not pending:
                return
            if time.monotonic() > deadline:
                details = "\n".join(
                    f"--- {n}: last lines of {self.log_path(n)}:\n{tail(self.log_path(n), 20)}"
                    for n in pending
                )
                raise StackError(f"timed out waiting for {', '.join(pending)} to be ready\n{details}")
            time.sleep(0.2)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM every process group, SIGKILL what is left after ``grace`` s. Idempotent."""
        with self._lock:
            svcs = [s for s in reversed(list(self._services.values())) if s.proc is not None]
            self._stop_services(svcs, grace)
            self._started = False

    def _stop_services(self, svcs: list[_Service], grace: float) -> None:
        groups = []
        for svc in svcs:
            assert svc.proc is not None
            pgid = svc.proc.pid
            if svc.proc.poll() is None or _group_alive(pgid):
                _signal_group(pgid, signal.SIGTERM)
                groups.append((svc, pgid))
        deadline = time.monotonic() + grace
        for sig_phase in ("term", "kill"):
            while groups and time.monotonic() < deadline:
                for svc, pgid in list(groups):
                    assert svc.proc is not None  # only started services are in groups
                    svc.proc.poll()  # reap the leader so the group can vanish
                    if svc.proc.returncode is not None and not _group_alive(pgid):
                        groups.remove((svc, pgid))
                time.sleep(0.05)
            if not groups or sig_phase == "kill":
                break
            for svc, pgid in groups:
                log.warning("%s did not stop on SIGTERM; sending SIGKILL", svc.name)
                _signal_group(pgid, signal.SIGKILL)
            deadline = time.monotonic() + 3.0
        for svc, pgid in groups:
            log.warning("%s (pgid %d) is still around after SIGKILL", svc.name, pgid)
        for svc in svcs:
            if svc.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    svc.proc.wait(timeout=0.1)

    def kill(self, name: str) -> None:
        """SIGKILL a service's whole process group (crash tests); no restart."""
        with self._lock:
            svc = self._service(name)
            if svc.proc is None:
                return
            _signal_group(svc.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                svc.proc.wait(timeout=10)
            end = time.monotonic() + 5
            while _group_alive(svc.proc.pid) and time.monotonic() < end:
                time.sleep(0.05)
            log.info("killed %s (pid %d)", name, svc.proc.pid)

    def restart(self, name: str, timeout: float = 60.0) -> None:
        """Stop a service if it runs, start it again with the same env, wait until ready.

        A restarted Firestore is ready once its trigger is registered again
        (``_firestore_ready``), so events flow to the relay as before.
        """
        with self._lock:
            svc = self._service(name)
            if svc.proc is not None:
                self._stop_services([svc], grace=5.0)
            if svc.port is not None:
                end = time.monotonic() + 10
                while port_in_use(svc.port) and time.monotonic() < end:
                    time.sleep(0.1)
            svc.restarts += 1
            self._spawn(svc, append=True)
            self._wait_ready([name], time.monotonic() + timeout)

    def _service(self, name: str) -> _Service:
        try:
            return self._services[name]
        except KeyError:
            raise KeyError(f"unknown service {name!r}; known: {', '.join(self._services)}") from None

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- reporting

    def summary(self) -> str:
        u = self.urls
        backend = (
            f"REAL Google Gemini ({self.real_gemini_reason} is set; the stand-in runs unused)"
            if self.real_gemini_reason
            else f"stand-in ({u['gemini_standin']}, no key needed)"
        )
        lines = [
            f"API:              {u['public_api']}",
            f"  health:         {u['public_api']}/health",
            f"  openapi:        {u['public_api']}/openapi.json",
            f"worker:           {u['worker']}",
            f"webhook_trigger:  {u['webhook_trigger']}",
            f"webhook_delivery: {u['webhook_delivery']}",
            f"sweeper:          {u['sweeper']}  (POST with an OIDC token for TASKS_SERVICE_ACCOUNT: one sweep)",
            f"Firestore:        {u['firestore']}  (FIRESTORE_EMULATOR_HOST={self._env['FIRESTORE_EMULATOR_HOST']})",
            f"Storage:          {u['storage']}/{self.bucket}/OBJECT",
            f"Cloud Tasks:      {u['tasks_http']} (REST, CLOUD_TASKS_EMULATOR_HOST), {u['tasks']} (gRPC);"
            f" queues {', '.join(q.rsplit('/', 1)[1] for q in self.queues)};"
            f" OIDC certificates {self._env['OIDC_CERTS_URL']}",
            f"Gemini stand-in:  {u['gemini_standin']}/_standin/health",
            f"Eventarc relay:   {u['relay']}/_relay/stats (Firestore events -> webhook_trigger)",
            f"Gemini backend:   {backend}",
            f"logs:             {self.log_dir}",
        ]
        return "\n".join(lines)


# --------------------------------------------------------------------------- CLI


def _root() -> Path:
    return ROOT


def _state_dir(root: Path) -> Path:
    return root / ".stack"


def _pid_file(root: Path) -> Path:
    return _state_dir(root) / "stack.pid"


def _groups_file(root: Path) -> Path:
    return _state_dir(root) / "groups.json"


def _read_pid(root: Path) -> int | None:
    try:
        return int(_pid_file(root).read_text().strip())
    except (OSError, ValueError):
        return None


def cmd_run(root: Path) -> int:
    stack = Stack(root)

    def on_signal(signum: int, _frame: object) -> None:
        raise _Shutdown(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        print(f"starting the local stack (logs in {stack.log_dir}) ...", flush=True)
        try:
            stack.start()
        except StackError as err:
            print(f"ERROR: {err}", file=sys.stderr, flush=True)
            return 1
        groups = {n: stack.pid(n) for n in stack.names}
        with contextlib.suppress(OSError):
            _groups_file(root).write_text(json.dumps(groups))
        print(f"{READY_MARKER} in {stack.timings['total']:.1f} s", flush=True)
        print(stack.summary(), flush=True)
        print("Ctrl-C stops everything.", flush=True)
        reported: set[str] = set()
        while True:
            time.sleep(1.0)
            for name in stack.names:
                svc = stack._services[name]
                if name not in reported and svc.proc is not None and svc.proc.poll() is not None:
                    reported.add(name)
                    print(
                        f"WARNING: {name} exited with code {svc.proc.returncode}; "
                        f"last lines of {stack.log_path(name)}:\n{tail(stack.log_path(name), 20)}",
                        file=sys.stderr,
                        flush=True,
                    )
    except (_Shutdown, KeyboardInterrupt):
        print("stopping the stack ...", flush=True)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stack.stop()
        with contextlib.suppress(OSError):
            _groups_file(root).unlink()
        print("stack stopped", flush=True)
        return 0
    finally:
        stack.stop()


def cmd_up(root: Path, timeout: float = 180.0) -> int:
    pid = _read_pid(root)
    if pid and _pid_alive(pid):
        status, _ = http_get(f"http://{HOST}:{PORTS['api']}/health")
        print(f"the stack is already running (pid {pid}; API /health -> {status or 'no answer'})")
        return 0 if status == 200 else 1
    log_dir = _state_dir(root) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    stack_log = log_dir / "stack.log"
    python = root / ".venv" / "bin" / "python"
    exe = str(python) if python.exists() else sys.executable
    with open(stack_log, "wb") as out:
        proc = subprocess.Popen(
            [exe, "-m", "emulator.stack", "run"],
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    _pid_file(root).write_text(f"{proc.pid}\n")
    t0 = time.monotonic()
    print(f"starting the stack in the background (pid {proc.pid}, log {stack_log}) ...", flush=True)
    while time.monotonic() - t0 < timeout:
        code = proc.poll()
        if code is not None:
            print(f"ERROR: the stack exited with code {code}:\n{tail(stack_log, 60)}", file=sys.stderr)
            _pid_file(root).unlink(missing_ok=True)
            return 1
        if READY_MARKER in stack_log.read_text(errors="replace") and (
            http_get(f"http://{HOST}:{PORTS['api']}/health")[0] == 200
        ):
            print(f"stack up in {time.monotonic() - t0:.1f} s")
            print(Stack(root).summary())
            print("`make down` (python -m emulator.stack down) stops it.")
            return 0
        time.sleep(0.5)
    print(
        f"ERROR: API /health did not answer 200 within {timeout:.0f} s:\n{tail(stack_log, 60)}",
        file=sys.stderr,
    )
    cmd_down(root, quiet=True)
    return 1


def cmd_down(root: Path, quiet: bool = False) -> int:
    pid = _read_pid(root)
    if pid is None:
        if not quiet:
            print("no stack started with `up` is running (no .stack/stack.pid)")
        _cleanup_groups(root)
        return 0
    if not _pid_alive(pid):
        print(f"the stack (pid {pid}) is not running any more; cleaning up")
    else:
        _signal_group(pid, signal.SIGTERM)
        end = time.monotonic() + 30
        while _pid_alive(pid) and time.monotonic() < end:
            time.sleep(0.1)
        if _pid_alive(pid):
            print(f"the stack (pid {pid}) did not stop within 30 s; sending SIGKILL")
            _signal_group(pid, signal.SIGKILL)
            time.sleep(0.5)
        print(f"stack stopped (pid {pid})")
    _cleanup_groups(root)
    _pid_file(root).unlink(missing_ok=True)
    return 0


def _cleanup_groups(root: Path) -> None:
    """Kill service groups a crashed ``run`` left behind (listed in groups.json)."""
    path = _groups_file(root)
    try:
        groups = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    leftover = [(n, p) for n, p in groups.items() if isinstance(p, int) and _group_alive(p)]
    for name, pgid in leftover:
        print(f"stopping leftover {name} (pgid {pgid})")
        _signal_group(pgid, signal.SIGTERM)
    end = time.monotonic() + 5
    while any(_group_alive(p) for _, p in leftover) and time.monotonic() < end:
        time.sleep(0.1)
    for _, pgid in leftover:
        if _group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)
    path.unlink(missing_ok=True)


def cmd_status(root: Path) -> int:
    pid = _read_pid(root)
    if pid and _pid_alive(pid):
        print(f"stack started with `up`: pid {pid}")
    elif pid:
        print(f"stale pid file (pid {pid} is gone): `make down` cleans it up")
    else:
        print("no stack started with `up` (no .stack/stack.pid)")
    answering = 0
    for name, port in PORTS.items():
        up = tcp_answers(port)
        answering += up
        extra = ""
        if name == "api" and up:
            code, _ = http_get(f"http://{HOST}:{port}/health")
            extra = f"  GET /health -> {code or 'no answer'}"
        print(f"  {name:<17} {HOST}:{port}  {'up' if up else 'down'}{extra}")
    print(f"{answering}/{len(PORTS)} ports answer")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator.stack", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("run", "up", "down", "status"))
    parser.add_argument("--timeout", type=float, default=180.0, help="`up`: seconds to wait for /health")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout
    )
    root = _root()
    _state_dir(root).mkdir(parents=True, exist_ok=True)
    if args.command == "run":
        return cmd_run(root)
    if args.command == "up":
        return cmd_up(root, args.timeout)
    if args.command == "down":
        return cmd_down(root)
    return cmd_status(root)


if __name__ == "__main__":
    sys.exit(main())
