"""`python -m doraflow.processor [--host H] [--port P] [--no-http]`: the processor process on its own
(what `doraflow process` runs; also how the integration tests run it as a killable subprocess)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from doraflow.core.logging import configure_logging
from doraflow.core.settings import get_settings
from doraflow.processor.service import DEFAULT_PORT, serve_processor


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m doraflow.processor")
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a service in a pod listens on all interfaces
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--no-http", action="store_true", help="no /health, /ready, /metrics endpoints")
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(serve_processor(settings, args.host, args.port, http=not args.no_http))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
