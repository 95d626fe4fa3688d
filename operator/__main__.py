"""Entry point of `herald-operator`: kopf with Herald's handlers, one replica.

Configuration comes from the environment (see :mod:`herald.operator.settings`); Kubernetes
from the in-cluster service account, or KUBECONFIG outside a cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

import kopf

from herald.core import logs, loops
from herald.core.sealing import SealError
from herald.operator import handlers
from herald.operator.metrics import Metrics
from herald.operator.settings import Settings

__all__ = ["main"]


def main() -> None:
    settings = Settings()
    # kopf's own set-up quiets asyncio's loggers; Herald's then replaces kopf's handler, so
    # kopf's records (object references included) come out in Herald's text or JSON lines.
    kopf.configure(verbose=False)
    logs.configure()
    metrics = Metrics()
    metrics.serve(settings.operator.metrics_port)
    registry = kopf.OperatorRegistry()
    try:
        reconciler = handlers.Reconciler(settings, metrics)
    except SealError as error:
        # No key ring, or one that cannot be read: said once, plainly.
        sys.exit(f"herald-operator: invalid configuration: {error}")
    handlers.register(registry, reconciler)
    namespaces = settings.operator.namespaces
    port = settings.operator.liveness_port
    # kopf.operator() is what kopf.run() runs, here on Herald's loop (kopf.run() would take
    # asyncio's); a cancellation is how kopf ends on a signal, as kopf.run() treats it.
    with contextlib.suppress(asyncio.CancelledError):
        loops.run(
            kopf.operator(
                registry=registry,
                # One replica by design (a Deployment with replicas: 1 and Recreate): kopf's
                # peering would need its own CRD for nothing.
                standalone=True,
                clusterwide=not namespaces,
                namespaces=namespaces,
                liveness_endpoint=f"http://0.0.0.0:{port}/healthz" if port else None,
            )
        )


if __name__ == "__main__":
    main()
