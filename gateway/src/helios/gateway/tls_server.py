"""Serving the gateway with uvicorn: plain HTTP without a certificate, TLS 1.3 only with one."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp

__all__ = ["TLS13Config", "serve", "server"]

# Set here so a caller cannot weaken them: uvicorn's own proxy-header handling would rewrite the
# client address from X-Forwarded-For for any peer in FORWARDED_ALLOW_IPS (127.0.0.1 by default);
# helios.gateway.proxies.TrustedProxies decides that instead. TLS comes only from certfile/keyfile.
_RESERVED = frozenset(
    {
        "proxy_headers",
        "forwarded_allow_ips",
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_keyfile_password",
        "ssl_version",
        "ssl_cert_reqs",
        "ssl_ca_certs",
        "ssl_ciphers",
        "ssl_context_factory",
    }
)


class TLS13Config(uvicorn.Config):
    """uvicorn's Config whose TLS context, when there is one, refuses every version below 1.3."""

    def load(self) -> None:
        """uvicorn's load, then TLS 1.3 as the floor of the SSLContext it built (if any)."""
        super().load()
        if self.ssl is not None:
            self.ssl.minimum_version = ssl.TLSVersion.TLSv1_3


class _Server(uvicorn.Server):
    """uvicorn's Server whose stop by SIGTERM/SIGINT is a normal return: uvicorn would raise the
    signal again once stopped, killing the process before the caller's clean-up (the flush of
    queued trace spans) ran."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()  # handled: the graceful stop is done


def server(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    certfile: Path | None,
    keyfile: Path | None,
    **uvicorn_kwargs: Any,
) -> uvicorn.Server:
    """A uvicorn Server for `app` on host:port, not yet started (`await s.serve()` runs it, set
    `s.should_exit = True` to stop it). With `certfile` (and `keyfile`, unless the key is in the
    certificate file) it speaks TLS 1.3 only; without, plain HTTP.

    Raises ValueError for a key without a certificate or a reserved option in `uvicorn_kwargs`
    (TLS and proxy-header settings are decided here); FileNotFoundError / ssl.SSLError for an
    unreadable or mismatched certificate and key, before anything listens.
    """
    if keyfile is not None and certfile is None:
        raise ValueError("a TLS key was given without its certificate")
    reserved = sorted(_RESERVED & uvicorn_kwargs.keys())
    if reserved:
        raise ValueError(f"these uvicorn options are set by the gateway: {', '.join(reserved)}")
    config = TLS13Config(
        app,
        host=host,
        port=port,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        proxy_headers=False,
        **uvicorn_kwargs,
    )
    config.load()
    return _Server(config)


def serve(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    certfile: Path | None,
    keyfile: Path | None,
    side: tuple[ASGIApp, int] | None = None,
    **uvicorn_kwargs: Any,
) -> None:
    """Serve `app` until SIGINT/SIGTERM (graceful stop); see `server` for TLS and the errors.
    `side` is another app served on host:port in plain HTTP alongside (the metrics), started
    and stopped with it. Raises SystemExit(3) when a server could not start (e.g. the port is
    taken), as `uvicorn.run` does."""
    instance = server(app, host, port, certfile=certfile, keyfile=keyfile, **uvicorn_kwargs)
    if side is None:
        instance.run()
        started = [instance]
    else:
        side_app, side_port = side
        beside = server(
            side_app,
            host,
            side_port,
            certfile=None,
            keyfile=None,
            log_config=None,
            access_log=False,
            server_header=False,
        )
        asyncio.run(_together(instance, beside))
        started = [instance, beside]
    if not all(s.started for s in started):
        raise SystemExit(3)


async def _together(*servers: uvicorn.Server) -> None:
    """Run the servers until one stops (a signal reaches whichever installed its handler
    last), then stop the others."""
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for each in servers:
        each.should_exit = True
    await asyncio.gather(*tasks)
