"""A local Cloud Tasks (v2 gRPC and REST APIs) that dispatches HTTP tasks the way Cloud Tasks does.

``config`` reads the queues' settings from ``infra/``, ``queues`` holds and
dispatches the tasks (concurrency, rate, backoff, schedule, deadline, headers,
OIDC tokens from ``oidc``), ``service`` serves the gRPC API and ``rest``
the REST one (the functions') over the same methods. Run it with
``python -m emulator.cloud_tasks --help``.
"""
