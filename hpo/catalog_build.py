"""Write hpo/spec/catalog.json from the registries: `python -m hpo.catalog_build [--check]`.

The registries live beside the code they build (torch in hpo.train, Optuna in hpo.study, Ray in
hpo.tune); the study-file validator must not import those, so it reads this generated file.
`--check` exits 1 when the file differs from the registries (a test runs it).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def registered() -> dict[str, Any]:
    """Import every module that registers entries, then describe every registry."""
    import hpo.study.space  # noqa: F401 - samplers
    import hpo.train.losses  # noqa: F401
    import hpo.train.models  # noqa: F401
    import hpo.train.optim  # noqa: F401
    import hpo.train.rebalance  # noqa: F401
    import hpo.train.schedules  # noqa: F401
    import hpo.train.sources  # noqa: F401
    import hpo.tune.mo_asha  # noqa: F401 - schedulers
    from hpo.spec import catalog
    from hpo.spec.registry import ALL

    return {kind: ALL[kind].describe() for kind in catalog.KINDS}


def text() -> str:
    return json.dumps(registered(), indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    from hpo.spec.catalog import PATH

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="exit 1 if catalog.json is out of date")
    a = p.parse_args(argv)
    new = text()
    if a.check:
        if PATH.read_text() != new:
            print(f"{PATH} is out of date with the registries: run `make catalog`", file=sys.stderr)
            return 1
        return 0
    PATH.write_text(new)
    print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
