"""Registry operations in a loop, in their own process, until killed:
``python -m tests.deploy.registry_proc REGISTRY RUNS_DIR``. Each pass registers the next run of
RUNS_DIR, points champion and challenger at models, and rolls champion back; the kill -9 test
kills it at random moments and checks that the registry is consistent after each kill."""

from __future__ import annotations

import sys
from pathlib import Path

from marketsim.deploy.registry import Registry


def main(root: str, runs: str) -> None:
    """Loop until killed."""
    reg = Registry(root)
    reg.clean()
    dirs = sorted(p for p in Path(runs).iterdir() if (p / "config.yaml").is_file())
    print("ready", flush=True)
    i = 0
    while True:
        rec = reg.register(dirs[i % len(dirs)])
        reg.promote(rec.id, "challenger")
        reg.promote(rec.id, "champion")
        reg.rollback("champion")
        reg.promote("challenger", "champion")
        print(f"pass {i}", flush=True)
        i += 1


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
