"""The Pareto-best trials of a study -> rows -> a YAML / JSON / CSV file `hpo train` re-runs."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import optuna
import yaml

from hpo.study import pareto
from hpo.study import storage as st
from hpo.errors import UserError
from hpo.spec import validate_config


def rows(study: optuna.Study) -> list[dict[str, Any]]:
    names = st.objective_names(study)
    return [{"trial": t.number, "values": dict(zip(names, t.values)), "params": dict(t.params),
             "config": t.user_attrs.get(st.ATTR_CONFIG)} for t in pareto.front(study)]


def document(study: optuna.Study, url: str, out: str | Path | None = None) -> dict[str, Any]:
    """The export: identical front points once, and the front's trust signals (hpo.study.trust);
    with `out`, the re-train spread `hpo train` recorded beside that file."""
    from hpo.study import trust

    doc = {"study": study.study_name, "storage": st.redact(url),
           "objectives": study.user_attrs.get(st.ATTR_OBJECTIVES), "configs": rows(study)}
    return trust.annotate(doc, study, out)


def _csv(doc: dict[str, Any]) -> str:
    import pandas as pd

    flat = [{"study": doc["study"], "trial": r["trial"], **r["values"],
             **{f"param_{k}": v for k, v in r["params"].items()}, "config": json.dumps(r["config"])}
            for r in doc["configs"]]
    return pd.DataFrame(flat).to_csv(index=False)


_WRITERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "yaml": lambda d: yaml.safe_dump(d, sort_keys=False),
    "json": lambda d: json.dumps(d, indent=2),
    "csv": _csv,
}
FORMATS = tuple(_WRITERS)


def write(doc: dict[str, Any], out: str | Path, fmt: str | None = None) -> Path:
    """Write atomically (temp file + rename): an interrupted export never leaves half a file."""
    out = Path(out)
    fmt = fmt or {".yml": "yaml", ".yaml": "yaml", ".json": "json", ".csv": "csv"}.get(out.suffix.lower(), "yaml")
    if fmt not in _WRITERS:
        raise UserError(f"--format {fmt!r}: known formats: {', '.join(FORMATS)}")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: folder {out.parent} does not exist; create it or pick another path")
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(_WRITERS[fmt](doc))
    umask = os.umask(0)  # mkstemp makes 0600; the export is an ordinary file: 0666 less the umask
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, out)
    return out


def read_configs(path: str | Path) -> list[dict[str, Any]]:
    """The configs of an export file (any format), best first: what `hpo train` re-runs."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--config {path}: no such file; write one with `hpo export --study NAME --out FILE`")
    if path.suffix.lower() == ".csv":
        import pandas as pd

        configs = [json.loads(c) for c in pd.read_csv(path)["config"]]
    else:
        doc = json.loads(path.read_text()) if path.suffix.lower() == ".json" else yaml.safe_load(path.read_text())
        if not isinstance(doc, dict) or not isinstance(doc.get("configs"), list):
            raise UserError(f"--config {path}: not an hpo export (no 'configs' list); "
                            "write one with `hpo export --study NAME --out FILE`")
        configs = [r.get("config") if isinstance(r, dict) else r for r in doc["configs"]]
    # an edited export gets the study file's checks: a typo is exit 2 naming the field, not a TypeError
    return [validate_config(c, str(path), f"configs[{i}]") for i, c in enumerate(configs)]
