"""`python -m benchmarks [NAME …]`: run every `benchmarks/*.py` module's `main()` (or the named ones)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable
from pathlib import Path


def modules() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.iter_modules([str(Path(__file__).parent)])
        if not info.name.startswith("_")
    )


def main(argv: list[str] | None = None) -> int:
    wanted = set(argv if argv is not None else sys.argv[1:])
    failed = 0
    for name in modules():
        if wanted and name not in wanted:
            continue
        module = importlib.import_module(f"benchmarks.{name}")
        entry: Callable[[], object] | None = getattr(module, "main", None)
        if entry is None:
            continue  # a helper module (workload generators, shared set-up)
        print(f"== benchmarks.{name}", flush=True)
        try:
            result = entry()
        except Exception as exc:  # one failing benchmark must not hide the others' numbers
            print(f"benchmarks.{name} failed: {exc!r}", file=sys.stderr, flush=True)
            failed += 1
            continue
        if isinstance(result, int) and result != 0:
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
