"""The Pareto-best trials of a study -> rows -> a YAML / JSON / CSV file `hpo train` re-runs."""
from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable

import optuna
import yaml

from hpo.study import pareto
from hpo.study import storage as st
from hpo.errors import SpecError, UserError, shown, storage_failure
from hpo.spec import validate_config
from hpo.spec.parse import load_yaml, read_user_file

EXPORT_BYTES = 64 << 20  # an export of thousands of Pareto-best configs is a few MB
EXPORT_FIX = "give a file written by `hpo export --study NAME --out FILE`"


def rows(study: optuna.Study, include_infeasible: bool = False) -> list[dict[str, Any]]:
    """The front's trials (those that missed a constraint only with `include_infeasible`)."""
    names = st.objective_names(study)
    return [{"trial": t.number, "values": dict(zip(names, t.values)), "params": dict(t.params),
             "config": t.user_attrs.get(st.ATTR_CONFIG)} for t in pareto.front(study, include_infeasible)]


def document(study: optuna.Study, url: str, out: str | Path | None = None,
             include_infeasible: bool = False) -> dict[str, Any]:
    """The export: identical front points once, and the front's trust signals (hpo.study.trust);
    with `out`, the re-train spread `hpo train` recorded beside that file; the study's
    constraints, when it has any (hpo.study.constraints)."""
    from hpo.study import constraints, trust

    doc = {"study": study.study_name, "storage": st.redact(url),
           "objectives": study.user_attrs.get(st.ATTR_OBJECTIVES), "configs": rows(study, include_infeasible)}
    doc.update(constraints.export_fields(study, include_infeasible))
    return trust.annotate(doc, study, out)


def _csv(doc: dict[str, Any]) -> str:
    import pandas as pd

    flat = [{"study": doc["study"], "trial": r["trial"], **r["values"],
             **{f"param_{k}": v for k, v in r["params"].items()}, "config": json.dumps(r["config"])}
            for r in doc["configs"]]
    return pd.DataFrame(flat).to_csv(index=False)


class _PlainDumper(yaml.SafeDumper):
    """Writes a value used twice (an ensemble's repeated member) in full each time: `hpo train`
    refuses YAML anchors and aliases (hpo.spec.parse), so an export must not hold any."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


_WRITERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "yaml": lambda d: yaml.dump(d, Dumper=_PlainDumper, sort_keys=False),
    "json": lambda d: json.dumps(d, indent=2),
    "csv": _csv,
}
FORMATS = tuple(_WRITERS)


def write(doc: dict[str, Any], out: str | Path, fmt: str | None = None) -> Path:
    """Write a regular file atomically (temp file + rename): an interrupted export never leaves
    half a file, nor its temp file. What `out` names must be a regular file or nothing: a symlink
    is refused rather than replaced or followed (following one writes wherever it points), and so
    are folders and special files (`/dev/stdout` is a symlink, so it is refused, never replaced)."""
    if not str(out).strip():
        raise UserError("--out '': give a file path, e.g. --out front.yaml")
    out = Path(out)
    fmt = fmt or {".yml": "yaml", ".yaml": "yaml", ".json": "json", ".csv": "csv"}.get(out.suffix.lower(), "yaml")
    if fmt not in _WRITERS:
        raise UserError(f"--format {fmt!r}: known formats: {', '.join(FORMATS)}")
    _check_target(out)
    text = _WRITERS[fmt](doc)
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        umask = os.umask(0)  # mkstemp makes 0600; the export is an ordinary file: 0666 less the umask
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, out)
        tmp = None
    except OSError as exc:
        if storage_failure(exc):  # a full disk: the CLI's one line and exit 1
            raise
        raise UserError(f"--out {out}: cannot write there ({exc.strerror}); pick a folder you can write to") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return out


def _check_target(out: Path) -> None:
    """Refuse, before anything is written, a path that is not a regular file or nothing."""
    try:
        mode = os.lstat(out).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise UserError(f"--out {out}: cannot use this path ({exc.strerror})") from None
    if mode is not None and stat.S_ISLNK(mode):
        raise UserError(f"--out {out}: a symlink (to {os.readlink(out)}); hpo export writes regular files and "
                        "neither replaces nor follows links: give the path of a regular file")
    if mode is not None and not stat.S_ISREG(mode):
        what = "a folder" if stat.S_ISDIR(mode) else "a device, pipe or socket"
        raise UserError(f"--out {out}: {what}, not a regular file; give a file path, e.g. --out front.yaml")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: folder {out.parent} does not exist; create it or pick another path")


def read_document(path: str | Path) -> dict[str, Any]:
    """An export file (any format) as a mapping with a `configs` list, read only as a regular file
    inside its folder, YAML without aliases; whatever is wrong is one line naming the file."""
    path = Path(path)
    if not os.path.lexists(path):
        raise UserError(f"--config {path}: no such file; write one with `hpo export --study NAME --out FILE`")
    text = read_user_file(path, "--config", EXPORT_BYTES, EXPORT_FIX)
    try:
        doc = _csv_document(text, path) if path.suffix.lower() == ".csv" else \
            _json(text, path) if path.suffix.lower() == ".json" else load_yaml(text, str(path), "--config", EXPORT_FIX)
    except RecursionError:  # nesting thousands deep: no export looks like that
        raise SpecError(str(path), "--config", str(path), "nested too deeply to be an export", EXPORT_FIX) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("configs"), list):
        raise UserError(f"--config {path}: not an hpo export (no 'configs' list); "
                        "write one with `hpo export --study NAME --out FILE`")
    return doc


def _json(text: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(str(path), "--config", str(path), f"not valid JSON: {exc.msg} (line {exc.lineno}, "
                        f"column {exc.colno})", EXPORT_FIX) from None


def _csv_document(text: str, path: Path) -> dict[str, Any]:
    """A CSV export's configs: its `config` column holds each one as JSON."""
    import pandas as pd

    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpecError(str(path), "--config", str(path), f"not valid CSV: {first[:200]}", EXPORT_FIX) from None
    if "config" not in frame.columns:
        raise SpecError(str(path), "--config", str(path), "no 'config' column (columns: "
                        f"{shown(list(frame.columns))})", EXPORT_FIX)
    configs = []
    for i, cell in enumerate(frame["config"]):
        try:
            configs.append(json.loads(cell))
        except json.JSONDecodeError as exc:
            raise SpecError(str(path), f"configs[{i}].config", cell, f"not a JSON config: {exc.msg}",
                            EXPORT_FIX) from None
    return {"configs": [{"config": c} for c in configs]}


def read_configs(path: str | Path) -> list[dict[str, Any]]:
    """The configs of an export file (any format), best first: what `hpo train` re-runs."""
    return configs_of(read_document(path), path)


def configs_of(doc: dict[str, Any], path: str | Path) -> list[dict[str, Any]]:
    """An export's configs, each checked by the study file's rules: a typo is exit 2 naming the
    field, not a TypeError."""
    configs = [r.get("config") if isinstance(r, dict) else r for r in doc["configs"]]
    return [validate_config(c, str(path), f"configs[{i}]") for i, c in enumerate(configs)]
