"""``python -m emulator.cloud_tasks``: the gRPC and REST APIs, the queues from ``infra/``, the OIDC certificates.

Only loopback addresses are accepted for ``--host``: the emulator has no
authentication of its own and mints tokens the task targets trust.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from emulator.cloud_tasks import config, oidc, rest, service
from emulator.cloud_tasks.queues import Emulator

log = logging.getLogger("emulator.cloud_tasks")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator.cloud_tasks", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="gRPC port")
    parser.add_argument("--rest-port", type=int, required=True, help="HTTP port of the REST API (JSON)")
    parser.add_argument("--certs-port", type=int, required=True, help=f"HTTP port of {oidc.CERTS_PATH}")
    parser.add_argument("--project", required=True)
    parser.add_argument("--location", required=True)
    parser.add_argument("--queue", action="append", default=[], help="short name of a queue to create (repeat)")
    parser.add_argument("--infra", type=Path, default=config.INFRA_DIR, help="Terraform directory the settings come from")
    parser.add_argument("--oidc-key-file", type=Path, required=True, help="PEM signing key (created if missing)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # every dispatch is logged by the queue already
    if not ipaddress.ip_address(args.host).is_loopback:
        parser.error("--host must be a loopback address")

    configs = config.queue_configs(args.queue, args.infra, os.environ.get(config.OVERRIDES_ENV, ""))
    minter = oidc.TokenMinter.from_key_file(args.oidc_key_file)
    emulator = Emulator(minter)
    parent = f"projects/{args.project}/locations/{args.location}"
    with emulator.lock:
        for name, settings in configs.items():
            emulator.create_queue(f"{parent}/queues/{name}", settings)
            log.info("queue %s: %s", name, settings)
    server = service.serve(emulator, args.host, args.port)
    rest_server = rest.RestServer(args.host, args.rest_port, service.CloudTasksService(emulator))
    rest_server.serve_in_background()
    certs = oidc.CertsServer(args.host, args.certs_port, minter)  # last: once it answers, all do
    certs.serve_in_background()
    log.info(
        "Cloud Tasks emulator on %s:%d (gRPC) and http://%s:%d (REST), OIDC certificates on http://%s:%d%s",
        args.host, args.port, args.host, args.rest_port, args.host, args.certs_port, oidc.CERTS_PATH,
    )  # fmt: skip

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=1).wait()
    rest_server.shutdown()
    certs.shutdown()
    emulator.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
