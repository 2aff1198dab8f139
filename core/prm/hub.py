"""Hub access that fails fast when the hub cannot be reached, instead of after the client's retries.

A hub id is resolved online when the hub answers (so a branch name resolves to its newest commit);
when it does not, the local Hugging Face cache answers, and a model that is not cached is refused at
once with a line saying so. Whether the hub answers is decided by one TCP connection to its endpoint
(with a short timeout, the name lookup included), remembered for a minute.
"""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from urllib.parse import urlparse

from core.prm.checks import PrmRefused, one_line

PROBE_TIMEOUT_S = 2.0
_REMEMBER_S = 60.0
_probe_lock = threading.Lock()
_last_probe: dict[str, tuple[float, bool]] = {}


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def _offline_by_setting() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _connects(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def hub_reachable() -> bool:
    """Whether the hub endpoint accepts a connection within :data:`PROBE_TIMEOUT_S` (False when set offline).

    The name lookup runs in a worker thread so a resolver that hangs counts against the same timeout.
    """
    if _offline_by_setting():
        return False
    endpoint = _endpoint()
    with _probe_lock:
        seen = _last_probe.get(endpoint)
        if seen is not None and time.monotonic() - seen[0] < _REMEMBER_S:
            return seen[1]
        url = urlparse(endpoint)
        host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
        pool = ThreadPoolExecutor(max_workers=1)
        try:
            reachable = pool.submit(_connects, host, port, PROBE_TIMEOUT_S).result(timeout=PROBE_TIMEOUT_S + 0.5)
        except FutureTimeout:
            reachable = False
        finally:
            pool.shutdown(wait=False)
        _last_probe[endpoint] = (time.monotonic(), reachable)
        return reachable


def forget_probe() -> None:
    """Drop the remembered answer (tests; a dashboard that came back online)."""
    with _probe_lock:
        _last_probe.clear()


def hub_file(model: str, filename: str, revision: str | None = None) -> str:
    """Local path of ``filename`` of hub repo ``model``: downloaded when the hub answers, else from the cache.

    Raises:
        PrmRefused: The repo, revision or file does not exist, access is refused, or the hub cannot be
            reached and the file is not in the local cache.
    """
    from huggingface_hub import hf_hub_download

    online = hub_reachable()
    try:
        return hf_hub_download(model, filename, revision=revision, local_files_only=not online)
    except Exception as exc:  # the client's errors (HTTP, validation, cache misses) all end the same way
        if online:
            raise PrmRefused(f"hub model {model!r}: {one_line(exc)}") from exc
        why = "HF_HUB_OFFLINE is set" if _offline_by_setting() else f"the hub ({_endpoint()}) cannot be reached"
        raise PrmRefused(
            f"model {model!r} is not a local folder, {why}, and it is not in the local Hugging Face cache "
            "(download it where there is network, or give a local checkpoint folder)"
        ) from exc
