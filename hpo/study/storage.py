"""Where studies live: URL resolution, the Optuna RDB storage, and create-or-resume by name."""
from __future__ import annotations

import json
import os
import re
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote

import optuna
import sqlalchemy
from sqlalchemy.engine import make_url

from hpo.errors import UserError, storage_failure
from hpo.spec import StudySpec
from hpo.study import optuna_seam

ENV_VAR = "HPO_STORAGE"
PASSWORD_ENV = "HPO_STORAGE_PASSWORD"  # the database password, when the URL has none
PASSWORD_FILE_ENV = "HPO_STORAGE_PASSWORD_FILE"  # ... or a file holding it (docker secrets)
DEFAULT_DIR = Path("storage")
DEFAULT_DB = "hpo.db"

# user attributes hpo writes on a study / its trials (one place, so readers agree on names)
ATTR_SPEC = "hpo_spec"  # the study file's content at first launch
ATTR_OBJECTIVES = "hpo_objectives"  # [{name, direction}]
ATTR_SEARCH = "hpo_search"  # {optuna name: {type, choices}}: what a resumed launch may not change
ATTR_CONFIG = "config"  # a trial's full config: exactly what it trained
ATTR_STOPPED_EARLY = "hpo_stopped_early"  # epoch reached; kept out of Pareto exports
ATTR_FAIL_REASON = "fail_reason"
LOGITS = "logits.npz"  # the artifact of a trial's val / test logits (float16) and labels, in the split's order


def resolve_url(flag: str | None = None, create: bool = True) -> str:
    """--storage flag, else $HPO_STORAGE, else a SQLite file under ./storage (absolute: Ray moves cwd);
    `create=False` (the commands that only read) leaves the folder of that file uncreated."""
    url = flag or os.environ.get(ENV_VAR)
    if url:
        if ambiguous_password(url):
            raise UserError(f"--storage / {ENV_VAR}: {redact(url)}: the password holds an unencoded '@' (SQLAlchemy "
                            f"ends the password at its first '@' and would connect to another host); fix: write "
                            f"each '@' in the password as %40, or leave the password out and set {PASSWORD_ENV}")
        try:
            parsed = make_url(url)
        except Exception:  # sqlalchemy's ArgumentError and friends; their text may hold the password
            raise UserError(f"--storage / {ENV_VAR}: {redact(url)!r} is not a SQLAlchemy URL; "
                            "e.g. sqlite:////abs/path/hpo.db or postgresql://user@host/db") from None
        if parsed.password is None and parsed.get_backend_name() != "sqlite":
            password = _password_from_env()
            if password is not None:
                url = parsed.set(password=password).render_as_string(hide_password=False)
        return url
    path = (DEFAULT_DIR / DEFAULT_DB).resolve()
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _password_from_env() -> str | None:
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    path = os.environ.get(PASSWORD_FILE_ENV)
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise UserError(f"{PASSWORD_FILE_ENV}={path}: cannot read the password file ({exc.strerror})") from None
    return None


def redact(url: str) -> str:
    """The URL with any password replaced by ***, for logs and messages: user:PASSWORD@ and a
    `password=` query parameter (any case; libpq reads one there too). The user info ends at the
    last `@` of the URL: a password with an unencoded `@` is hidden whole, not from its first `@`."""
    try:
        u = make_url(_userinfo_password(url)[0])
        mark = "hpo0redacted0password"  # rendering would %-encode *** in a query
        u = u.set(query={k: mark if k.lower() == "password" else v for k, v in u.query.items()})
        return u.render_as_string(hide_password=True).replace(mark, "***")
    except Exception:
        return "<unparseable storage URL>"


def _userinfo_password(url: str) -> tuple[str, str | None]:
    """(the URL with its user-info password replaced by a placeholder, that password as written),
    where the user info ends at the last `@` before the query. SQLAlchemy ends the password at its
    first `@` instead, so `user:p@ss@host` is password `p` on host `ss@host` to it; here the
    password is `p@ss`, which is what the user meant and what must never be shown."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] == "sqlite":  # a file path may hold `@`; it has no password
        return url, None
    query_at = rest.find("?")
    at = rest.rfind("@", 0, query_at if query_at >= 0 else len(rest))
    user, colon, password = rest[:max(at, 0)].partition(":")
    if at < 0 or not colon:
        return url, None
    return f"{scheme}://{user}:x{rest[at:]}", password


def ambiguous_password(url: str) -> bool:
    """The user-info password holds an unencoded `@`: SQLAlchemy would read the password up to
    that `@` and the rest as part of the host name."""
    return "@" in (_userinfo_password(url)[1] or "")


def passwords(url: str) -> list[str]:
    """Every password a URL carries (in user:password@ or as ?password=), as given and URL-encoded;
    for a password with an unencoded `@`, also SQLAlchemy's reading of it and its `@`-separated parts."""
    try:
        u = make_url(url)
    except Exception:
        return []
    written = _userinfo_password(url)[1]
    found = [u.password] if u.password else []
    if written:
        found += [written, unquote(written), *written.split("@")]
    for k, v in u.query.items():
        if k.lower() == "password":
            found += [x for x in (v if isinstance(v, tuple) else (v,)) if x]
    return sorted({form for pw in map(str, found) if pw for form in (pw, quote(pw, safe=""), quote_plus(pw))},
                  key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """`text` (an error message) with every password of `url` replaced by ***, where it stands as a
    whole token: a password `p` is masked in `password p`, not inside `psycopg`."""
    for pw in passwords(url):
        text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(pw)}(?![A-Za-z0-9])", "***", text)
    return text


def sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    return Path(u.database) if u.get_backend_name() == "sqlite" and u.database else None


def open_storage(url: str, create: bool = True) -> optuna.storages.RDBStorage:
    """Optuna's storage at `url`. `create=False` (status, export, report: commands that only read)
    refuses a SQLite file that does not exist, where opening it would create an empty database."""
    engine: dict[str, Any] = {}
    path = sqlite_path(url)
    read_only = path is not None and _read_only(path)
    if path is not None and not create and not path.is_file():
        raise UserError(f"storage: no SQLite file {path}; nothing to read there (not created). Fix: pass the "
                        f"--storage (or set {ENV_VAR}) a launch wrote to, or launch a study first")
    if path is not None:
        if not path.parent.is_dir():
            raise UserError(f"storage: folder {path.parent} of the SQLite file does not exist; create it first")
        engine["connect_args"] = {"timeout": 60}  # wait on a busy writer instead of failing
        if read_only:
            url = _read_only_url(path)
    else:
        engine.update(pool_pre_ping=True, pool_size=5, max_overflow=5)
    try:
        storage = _rdb_storage(url, engine)
    except Exception as exc:
        if storage_failure(exc):  # a full disk: the CLI's one line and exit 1, not "bad input"
            raise
        text = scrub(str(exc).splitlines()[0] if str(exc) else "", url)
        raise UserError(f"storage: cannot open {redact(url)}: {type(exc).__name__}: {text}") from None
    if path is not None and not read_only:
        sqlalchemy.event.listen(storage.engine, "connect", _sqlite_pragmas)
        storage.engine.dispose()  # connections opened before the listener would miss the pragmas
    return storage


def _rdb_storage(url: str, engine: dict[str, Any], tries: int = 5) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage. On an empty database it creates Optuna's tables, types and version
    row; two launchers started together on a new PostgreSQL database both find them missing and
    one's CREATE fails (a unique violation on pg_type, "already exists", a second version row).
    By the next try the other has made them, and the storage opens on what it made."""
    for attempt in range(tries - 1):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine)
        except sqlalchemy.exc.IntegrityError:
            pass
        except sqlalchemy.exc.ProgrammingError as exc:
            if "already exists" not in str(exc):
                raise
        time.sleep(0.2 * (attempt + 1))
    return optuna.storages.RDBStorage(url, engine_kwargs=engine)  # the last try raises what it raises


def _read_only_url(path: Path) -> str:
    """SQLite opens a WAL database read-only only when its -wal and -shm files exist (it cannot
    create them). Without them every commit is in the main file, and `immutable` reads it as is."""
    wal = all(Path(f"{path}{suffix}").exists() for suffix in ("-wal", "-shm"))
    return f"sqlite:///file:{path.resolve()}?mode=ro{'' if wal else '&immutable=1'}&uri=true"


def _read_only(path: Path) -> bool:
    """The SQLite file exists but this process may not write it or its folder (a read-only mount,
    another user's results): `hpo status` / `export` / `report` still read it."""
    return path.is_file() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL: readers (optuna-dashboard, `hpo status`) never block the launcher's writes, and a
    commit appends to the log instead of rewriting pages; synchronous=NORMAL syncs at
    checkpoints, not every commit (a power cut can lose the last commits, never corrupt)."""
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def release_log_space(storage: optuna.storages.RDBStorage) -> None:
    """After a write failed for lack of space: move SQLite's write-ahead log into the database and
    truncate it, which frees the log's space (up to ~4 MB) for a last small write. Best effort: on a
    disk with no room even for that, the checkpoint fails too and nothing changes."""
    if storage.engine.dialect.name != "sqlite":
        return
    try:
        with storage.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlalchemy.exc.SQLAlchemyError:
        pass


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    """Names of the studies in the storage, oldest first. `optuna.get_all_study_summaries` would
    load every trial of every study to count them (Optuna 5): minutes on a large storage."""
    return [s.study_name for s in storage.get_all_studies()]


def load_study(storage: optuna.storages.RDBStorage, name: str) -> optuna.Study:
    known = study_names(storage)
    if name not in known:
        raise UserError(f"no study {name!r} in this storage; studies there: {', '.join(known) or '(none)'}")
    return optuna.load_study(study_name=name, storage=storage)


def open_study(spec: StudySpec, storage: optuna.storages.RDBStorage) -> optuna.Study:
    """Create the study, or resume it if its objectives and directions are the ones the spec asks for."""
    if spec.name in set(study_names(storage)):
        return _resume(spec, storage)
    try:
        study = optuna.create_study(study_name=spec.name, storage=storage, directions=spec.directions)
    except optuna.exceptions.DuplicatedStudyError:  # another launcher created it a moment ago
        return _resume(spec, storage)
    study.set_user_attr(ATTR_OBJECTIVES, _objectives(spec))
    study.set_user_attr(ATTR_SEARCH, search_signature(spec))
    study.set_user_attr(ATTR_SPEC, json.loads(json.dumps(spec.raw, default=str)))
    with warnings.catch_warnings():  # experimental in Optuna, stable in practice since 3.2
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(spec.metric_names)  # optuna-dashboard shows these, not "Objective 0"
    return study


def _objectives(spec: StudySpec) -> list[dict[str, str]]:
    return [{"name": o.name, "direction": o.direction} for o in spec.objectives]


def _resume(spec: StudySpec, storage: optuna.storages.RDBStorage) -> optuna.Study:
    """The existing study, once its objectives and parameter kinds are checked against the spec's
    (attributes its creator has not written yet, a launcher that started alongside, pass)."""
    study = optuna.load_study(study_name=spec.name, storage=storage)
    objectives, search = _objectives(spec), search_signature(spec)
    had = study.user_attrs.get(ATTR_OBJECTIVES)
    if had is not None and had != objectives:
        raise UserError(f"{spec.path}: objectives {objectives} differ from those study {spec.name!r} "
                        f"was created with: {had}; use a new study name, or restore the objectives")
    changed = [f"  {name}: was {old}, now {search[name]}" for name, old in
               study.user_attrs.get(ATTR_SEARCH, {}).items() if name in search and search[name] != old]
    if changed:
        raise UserError(f"{spec.path}: study {spec.name!r} exists with other parameter kinds or choices; "
                        "its samplers would mix incompatible trials:\n" + "\n".join(changed) +
                        "\n  fix: restore them, or launch under a new study name (ranges may change)")
    return study


def search_signature(spec: StudySpec) -> dict[str, dict[str, Any]]:
    """Per searched parameter, what must not change between launches of a study: its kind, and
    for a categorical its choices. Ranges may move (Optuna handles a changed distribution)."""
    return {p.optuna_name: {"type": p.type, "choices": list(p.choices)} if p.type == "categorical"
            else {"type": p.type} for p in spec.search}


def objective_names(study: optuna.Study) -> list[str]:
    objs = study.user_attrs.get(ATTR_OBJECTIVES)
    return [o["name"] for o in objs] if objs else [f"value_{i}" for i in range(len(study.directions))]


def record_data(study: optuna.Study, splits: Any) -> None:
    """The training class counts, names and split sizes a launch trains on, on the study."""
    study.set_user_attr("class_counts", splits.class_counts)
    study.set_user_attr("class_names", list(splits.class_names))
    study.set_user_attr("split_sizes", {"train": len(splits.train.y), "val": len(splits.val.y),
                                        "test": len(splits.test.y)})


def n_complete(study: optuna.Study) -> int:
    """COMPLETE trials: what the study-wide budget counts (counted by the database)."""
    return optuna_seam.counts_by_state(study).get("COMPLETE", 0)
