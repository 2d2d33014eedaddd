"""What the long-running processes (`whistle worker`, `whistle api`) share: whether they can
listen on host:port, with a refusal that names the setting to change when they cannot (said
before anything starts, not as a server's bind traceback), and running until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import errno
import signal
import socket
from collections.abc import Awaitable, Callable


class PortInUse(Exception):
    """host:port cannot be listened on; the message names the setting that chose it."""


def bind_error(host: str, port: int) -> OSError | None:
    """None when host:port can be bound now (port 0, any free port, always can)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except OSError as exc:
        return exc
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc
    return None


def ensure_free(host: str, port: int, setting: str, remedy: str | None = None) -> None:
    exc = bind_error(host, port)
    if exc is None:
        return
    if exc.errno == errno.EADDRINUSE:
        raise PortInUse(f"port {port} on {host} ({setting}) is already in use: {remedy or f'set {setting} to another port'}, or stop what holds it")
    raise PortInUse(f"cannot listen on {host}:{port} ({setting}): {exc.strerror or exc}")


def run_until_signalled(serve: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `serve(stop)` in a new event loop; SIGINT or SIGTERM sets `stop`."""
    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(stop)

    asyncio.run(run())
