"""Bring a database to the newest schema: ``python -m store.migrate [--database-url URL]`` (``store.schema``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from store.db import DEFAULT_DATABASE_URL, make_engine, reason
from store.schema import upgrade


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m store.migrate", description=__doc__.split(":")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL),
        help="default: $DATABASE_URL, else %(default)s",
    )
    parser.add_argument("--revision", default="head", help="target revision (default: head)")
    args = parser.parse_args(argv)
    try:
        engine = make_engine(args.database_url)
    except ValueError as exc:
        parser.error(str(exc))
    name = engine.url.render_as_string(hide_password=True)
    if engine.url.get_backend_name() == "sqlite":
        Path(engine.url.database or "").parent.mkdir(parents=True, exist_ok=True)
    try:
        at = upgrade(engine, args.revision)
    except Exception as exc:
        print(f"migration of {name} failed: {reason(exc)}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"{name} is at revision {at}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
