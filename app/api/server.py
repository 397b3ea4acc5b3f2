"""Run the API with uvicorn: one process, or ``--workers N`` processes sharing one socket."""

from __future__ import annotations

import logging

from app.api.factory import LOG_FORMAT, create_app
from callcast.errors import ConfigurationError


def main(argv: list[str] | None = None) -> int:
    """``callcast serve-api``: serve the champion with uvicorn on the configured host and port."""
    import argparse
    import os

    import uvicorn

    from callcast.settings import get_settings

    parser = argparse.ArgumentParser(prog="callcast serve-api", description="Serve the propensity champion.")
    parser.add_argument("--host", help="bind address (default: settings, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: settings, 8765)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes sharing the port, each with its own champion and reloader (default 1)",
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    overrides = {k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    if overrides:
        settings = settings.model_copy(update={"api": settings.api.model_copy(update=overrides)})
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    try:
        app = create_app(settings)  # fails fast on a bad configuration, before any worker starts
    except ConfigurationError as exc:
        print(f"error: {exc}")
        return 2
    host, port = settings.api.host, settings.api.port
    if args.workers > 1:  # workers import the factory and read the settings from the environment
        import socket

        from uvicorn.supervisors import Multiprocess

        os.environ["CALLCAST_API__HOST"], os.environ["CALLCAST_API__PORT"] = host, str(port)
        config = uvicorn.Config(
            "app.api.factory:app_from_environment",
            factory=True,
            workers=args.workers,
            host=host,
            port=port,
            access_log=False,
            log_level="info",
            timeout_worker_healthcheck=60,  # a worker loading and verifying the champion is busy for seconds
        )
        sock = config.bind_socket()
        # uvicorn binds this shared socket with proto 0, so asyncio skips TCP_NODELAY on accepted connections
        # and every response (headers, then body) waited ~40 ms for a delayed ACK. Accepted sockets inherit
        # the option from the listening one on Linux.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        Multiprocess(config, sockets=[sock]).run()
        return 0
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="info")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
