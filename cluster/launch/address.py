"""The ``address`` backend: an existing Dask scheduler, reached over TCP or TLS.

Nothing is started: the deployment only checks that the scheduler answers and remembers how to reach it.
Its workers belong to whoever started them, so it can be scaled down (workers retire) but not up.
"""

from __future__ import annotations

from cluster.exceptions import ClusterNotFoundError, ClusterSpecError
from cluster.launch.deployment import Deployment, close_client, connect, rpc, security_for
from cluster.launch.spec import ClusterSpec

__all__ = ["dashboard_link", "start"]


def dashboard_link(address: str, services: dict[str, int]) -> str | None:
    """The dashboard URL of the scheduler at ``address``, from its ``identity()['services']``."""
    port = services.get("dashboard")
    if not port:
        return None
    host = address.split("://", 1)[-1].rsplit(":", 1)[0]
    return f"http://{host}:{port}/status"


async def start(spec: ClusterSpec) -> Deployment:
    """Check that the scheduler at ``spec.address`` answers; return a deployment that reaches it."""
    if not spec.address:
        raise ClusterSpecError("the 'address' backend needs the scheduler's address")
    security = security_for(spec.tls)
    try:
        client = await connect(spec.address, security)
    except (OSError, TimeoutError) as exc:
        raise ClusterNotFoundError(f"no Dask scheduler answers at {spec.address}: {exc}") from exc
    try:
        identity = await rpc(client).identity()
    finally:
        await close_client(client)
    return Deployment(
        spec=spec,
        scheduler_address=spec.address,
        dashboard_link=dashboard_link(spec.address, identity.get("services", {})),
        security=security,
    )
