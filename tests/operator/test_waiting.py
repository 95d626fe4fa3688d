"""A failed API server call becomes a wait that names the client's own error, whether the
call went through herald.kube (which wraps it) or straight to the client."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from herald.kube.errors import translated
from herald.operator.planning import Reason
from herald.operator.waiting import Service, Unavailable, waiting_for


def refused() -> None:
    raise ApiException(status=503, reason="Service Unavailable")


def unreachable() -> None:
    raise urllib3.exceptions.MaxRetryError(None, "/apis", "refused")  # type: ignore[arg-type]


@pytest.mark.parametrize("through_kube", [True, False])
@pytest.mark.parametrize(
    ("call", "error"),
    [(refused, "ApiException 503 Service Unavailable"), (unreachable, "MaxRetryError")],
)
async def test_the_wait_names_the_clients_error(
    call: Callable[[], None], error: str, through_kube: bool
) -> None:
    with pytest.raises(Unavailable) as caught:
        async with waiting_for(Service.KUBERNETES, 5, "writing the status"):
            if through_kube:
                with translated():
                    call()
            else:
                call()
    wait = caught.value.wait
    assert wait.reason is Reason.WAITING_FOR_KUBERNETES
    assert wait.message == (
        f"Waiting for the Kubernetes API server (writing the status): {error}; retrying."
    )
