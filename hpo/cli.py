"""The `hpo` command. Exit 0 on success, 2 on bad input (the message says what and where), 1 otherwise.

Heavy imports (torch, ray, optuna's storages) happen inside the sub-commands, so `hpo --help`
and study-file validation stay fast.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from pathlib import Path
from typing import Callable, Sequence

from hpo.errors import UserError, storage_failure


def _number(kind: type, low: float, high: float, rule: str) -> Callable[[str], float]:
    """An argparse type: `kind` (int or float) of `text`, within [low, high] (NaN never is)."""
    def parse(text: str) -> float:
        try:
            x = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not low <= x <= high:
            raise argparse.ArgumentTypeError(f"{x:g} {rule}")
        return x

    return parse


_positive_int = _number(int, 1, float("inf"), "must be >= 1")
_port = _number(int, 1, 65535, "is not a TCP port: give 1 to 65535 (e.g. 8080)")  # bind raises OverflowError above
_positive_float = _number(float, 1e-9, 1e9, "must be > 0")


def _study_name(text: str) -> str:
    """Every --study is checked against the one documented pattern before any storage is opened:
    the name becomes a file, a folder and a database key."""
    from hpo.spec.parse import STUDY_NAME, STUDY_NAME_RULE

    if not STUDY_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text[:120]!r} is not a study name: a study name is {STUDY_NAME_RULE}")
    return text


def cmd_launch(a: argparse.Namespace) -> int:
    from hpo.spec import find_spec
    from hpo.study import storage

    spec = find_spec(a.study, a.spaces_dir)  # validated before Ray or torch is imported
    if a.warm_start:  # in place of the study file's warm_start.study
        from hpo.study.warm_start import from_flag

        spec = from_flag(spec, a.warm_start)
    url = storage.resolve_url(a.storage)
    from hpo.tune.data_check import DataCheck
    from hpo.tune.ray_start import RayStart

    with contextlib.ExitStack() as early:  # both stopped if Ctrl-C lands before launch() owns them
        data_check = DataCheck(spec)  # loads and splits the data in a process of its own
        early.callback(data_check.stop)
        ray_start = RayStart(a.ray_address, a.verbose)  # Ray's ~3 s start overlaps the imports below
        early.callback(ray_start.stop)
        from hpo.tune.launch import launch
        from hpo.views.artifacts import artifact_dir

        early.pop_all()  # launch() stops both

    result = launch(spec, url, n_trials=a.n_trials, max_concurrent=a.max_concurrent,
                    ray_address=a.ray_address, verbose=a.verbose, artifact_dir=artifact_dir(a.artifacts),
                    allow_changed_settings=a.allow_changed_settings, ray_start=ray_start, data_check=data_check)
    _print_front(result.study)
    # the study is intact either way; exit 1 only when nothing this launch ran succeeded
    return 1 if result.ran and result.failed == result.ran else 0


def _open(a: argparse.Namespace):
    from hpo.study import storage

    url = storage.resolve_url(a.storage, create=False)  # these commands read: a mistyped path creates nothing
    return storage.load_study(storage.open_storage(url, create=False), a.study), url


def _print_front(study, include_infeasible: bool = False) -> None:
    import pandas as pd

    from hpo.study import constraints, export, trust

    kept, duplicates = trust.collapse_rows(export.rows(study, include_infeasible))  # identical points shown once
    table = [{"trial": r["trial"], **{k: round(v, 4) for k, v in r["values"].items()}, **r["params"]}
             for r in kept]
    said = constraints.lines(study, included=include_infeasible)  # which, and how many trials missed them
    print(f"Pareto front ({len(table)} trials):" + (f"\n{trust.collapsed_line(duplicates)}" if duplicates else ""))
    print(pd.DataFrame(table).to_string(index=False) if table else
          "  (no trial met the constraints)" if len(said) > 1 else "  (no COMPLETE trials yet)")
    for line in said:
        print(line)


def cmd_status(a: argparse.Namespace) -> int:
    from hpo.study import coordination, optuna_seam, storage

    study, url = _open(a)
    counts = optuna_seam.counts_by_state(study)  # counted in SQL: no trial is loaded whole
    print(f"study {study.study_name!r} in {storage.redact(url)}")
    print("trials by state: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))
    stopped = len(optuna_seam.numbers_with_attr(study, storage.ATTR_STOPPED_EARLY))
    orphans = coordination.orphaned(study)
    if orphans:
        print(f"RUNNING trials {orphans} belong to a launcher that is gone: the next `hpo launch` marks them "
              "FAIL (launcher_lost) and queues their parameters again")
    if stopped:
        print(f"of the COMPLETE trials, {stopped} were stopped early by the scheduler (left out of the front)")
    _print_front(study, a.include_infeasible)
    from hpo.study import trust

    shown = trust.signals(study, include_infeasible=a.include_infeasible)  # over the front printed above
    for line in shown.lines(collapsed=False):  # that front says what it collapsed
        print(line)
    return 0


def cmd_front(a: argparse.Namespace) -> int:
    import pandas as pd

    from hpo.study import posthoc

    study, _ = _open(a)
    _print_front(study, a.include_infeasible)
    if not a.post_hoc:
        return 0
    pts = _post_hoc_points(study, a)
    # two-class studies also show tau as the threshold on p(minority) it amounts to (metrics.decision_threshold)
    table = [{"trial": r["trial"], "posthoc_tau": r["posthoc_tau"],
              **({"minority_threshold": r["minority_threshold"]} if "minority_threshold" in r else {}),
              **{k: round(v, 4) for k, v in r["values"].items()}} for r in posthoc.rows(study, pts)]
    plain, adjusted = posthoc.hypervolumes(study, pts, a.include_infeasible)
    print(f"\npost-hoc front over {len(pts)} (trial, tau) points, validation split ({len(table)} points):")
    print(pd.DataFrame(table).to_string(index=False))
    print(f"hypervolume: plain front {plain:.4f}, post-hoc front {adjusted:.4f}")
    _print_operating(study, pts)
    return 0


def _post_hoc_points(study, a: argparse.Namespace) -> list:
    """The (trial, tau) points `hpo front/export --post-hoc` read: those that met the study's
    constraints unless --include-infeasible; exit 2 when there are none."""
    from hpo.study import constraints, posthoc
    from hpo.views import artifacts

    pts = posthoc.points(study, artifacts.store(artifacts.artifact_dir(a.artifacts, create=False)),
                         include_infeasible=a.include_infeasible)
    stated = constraints.of_study(study)
    if not pts and stated and not a.include_infeasible:
        raise UserError(f"study {study.study_name!r}: no (trial, tau) point of a trial with stored logits met the "
                        f"constraints {', '.join(map(str, stated))}\n  fix: --include-infeasible shows them all")
    if not pts:
        raise UserError(f"study {study.study_name!r} has no trial with stored logits (trials store them since "
                        "this version); nothing to adjust")
    return pts


def _print_operating(study, pts: list) -> None:
    """Each trial's operating point under the study's constraints on its predictions."""
    import pandas as pd

    from hpo.study import constraints, posthoc, storage

    chosen, none = posthoc.operating(study, pts)
    if not chosen and not none:
        return
    names = storage.objective_names(study)
    on_pred = ", ".join(str(c) for c in constraints.of_study(study) if posthoc.on_predictions(c))
    print(f"\noperating points: per trial, the tau nearest 0 that meets {on_pred}:")
    if chosen:
        print(pd.DataFrame([{"trial": p.trial, "posthoc_tau": p.tau, **{k: round(v, 4) for k, v in zip(names, p.values)}}
                            for p in chosen]).to_string(index=False))
    if none:
        print(f"no tau meets them for trials {', '.join(map(str, none))}")


def cmd_export(a: argparse.Namespace) -> int:
    from hpo.study import export

    study, url = _open(a)
    doc = export.document(study, url, a.out, a.include_infeasible)
    if a.post_hoc:  # the (trial, tau) front instead: configs carry train.posthoc_tau
        from hpo.study import posthoc

        pts = _post_hoc_points(study, a)
        doc["configs"], doc["post_hoc"] = posthoc.rows(study, pts), True
        chosen, _ = posthoc.operating(study, pts)
        if chosen:  # each trial's tau that meets the constraints on its predictions
            doc["operating_points"] = [{"trial": p.trial, "posthoc_tau": p.tau} for p in chosen]
    path = export.write(doc, a.out, a.format)
    print(f"wrote {len(doc['configs'])} Pareto-best configs of {study.study_name!r} to {path}")
    from hpo.study import trust

    for line in trust.export_lines(doc):
        print(line)
    return 0


def cmd_report(a: argparse.Namespace) -> int:
    from hpo.views.report import write_report

    study, _ = _open(a)
    store = None
    if a.post_hoc:
        from hpo.views import artifacts

        store = artifacts.store(artifacts.artifact_dir(a.artifacts, create=False))
    page = write_report(study, Path(a.out), store)
    print(f"report of {study.study_name!r}: {page} (figures and CSV tables beside it)")
    return 0


def cmd_dashboard(a: argparse.Namespace) -> int:
    from hpo.study import storage
    from hpo.views import artifacts

    url = storage.resolve_url(a.storage)
    backing = storage.open_storage(url)
    page = f"http://{a.host}:{a.port}/dashboard"
    if a.study:  # fail early on a typo, and print the study's own page
        storage.load_study(backing, a.study)
        page += f"/studies/{backing.get_study_id_from_name(a.study)}"
    if a.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"WARNING: serving on {a.host}: optuna-dashboard has no authentication and its API can "
              "delete studies; anyone who reaches this port can.", file=sys.stderr)
    import optuna_dashboard

    folder = artifacts.artifact_dir(a.artifacts)
    print(f"optuna-dashboard on {page} for {storage.redact(url)}, artifacts in {folder} (Ctrl-C stops it)",
          flush=True)
    optuna_dashboard.run_server(backing, host=a.host, port=a.port, artifact_store=artifacts.store(folder))
    return 0


def cmd_studies(a: argparse.Namespace) -> int:
    from hpo.study import admin, storage

    url = storage.resolve_url(a.storage)
    rows = admin.summaries(storage.open_storage(url))
    print(f"{len(rows)} {'study' if len(rows) == 1 else 'studies'} in {storage.redact(url)}")
    table = [("study", "directions", "trials", "by state", "last activity", "live launchers")]
    for s in rows:
        table.append((s.name, ",".join(s.directions), str(s.n_trials),
                      ", ".join(f"{k} {v}" for k, v in sorted(s.counts.items())) or "-",
                      s.last_activity.isoformat(sep=" ", timespec="seconds") if s.last_activity else "-",
                      str(s.live_launchers)))
    if rows:
        widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
        for r in table:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def cmd_delete(a: argparse.Namespace) -> int:
    from hpo.study import admin, storage
    from hpo.tune import RAY_DIR
    from hpo.views.artifacts import artifact_dir

    url = storage.resolve_url(a.storage)
    backing = storage.open_storage(url)
    study = storage.load_study(backing, a.study)
    admin.check_free(study)  # and again by admin.delete, after the question
    plan = admin.plan(backing, study, artifact_dir(a.artifacts, create=False), RAY_DIR.resolve())
    what = [f"study {a.study!r} in {storage.redact(url)} with its {plan.n_trials} trials",
            f"{len(plan.artifact_files)} artifact files of its trials in {artifact_dir(a.artifacts, create=False)}"]
    what += [f"Ray's experiment folder {plan.ray_dir}"] if plan.ray_dir else []
    if not a.yes:
        if not sys.stdin.isatty():
            raise UserError(f"delete {a.study!r}: no terminal to confirm on; pass --yes to delete without asking")
        print("This removes:\n" + "\n".join(f"  {w}" for w in what))
        if input(f"Delete study {a.study!r}? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    admin.delete(plan)
    print("removed:\n" + "\n".join(f"  {w}" for w in what))
    return 0


def cmd_ensemble(a: argparse.Namespace) -> int:
    import pandas as pd

    from hpo.study import ensemble
    from hpo.study.export import write
    from hpo.views import artifacts

    study, _ = _open(a)
    try:
        result = ensemble.select(study, artifacts.store(artifacts.artifact_dir(a.artifacts, create=False)), a.size)
    except ValueError as exc:
        raise UserError(f"study {study.study_name!r}: {exc}; nothing to ensemble") from None
    rows = [{"what": f"ensemble {result['members']}", **{f"{s}_{k}": v for s in ("val", "test")
                                                           for k, v in zip(result["metrics"], result["ensemble"][s])}},
            {"what": f"best single (trial {result['single']['trial']})",
             **{f"{s}_{k}": v for s in ("val", "test") for k, v in zip(result["metrics"], result["single"][s])}}]
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if a.out:
        print(f"wrote {write(ensemble.document(study, result), a.out, 'yaml')} (re-train: hpo train --config {a.out})")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from hpo.study.export import configs_of, read_document
    from hpo.train.retrain import retrain

    doc = read_document(a.config)  # read once: a regular file in its folder, no YAML aliases
    configs = configs_of(doc, a.config)
    if "ensemble" in doc:
        from hpo.train.retrain import retrain_ensemble

        retrain_ensemble(configs, seeds=a.seeds)
        return 0
    if not 0 <= a.index < len(configs):
        raise UserError(f"--index {a.index}: {a.config} holds configs 0..{len(configs) - 1}")
    results = retrain(configs[a.index], seeds=a.seeds, out=a.out)
    from hpo.study import trust

    try:  # `hpo export` to the same file shows the spread; the results above stand either way
        recorded = trust.record_retrain(a.config, a.index, results)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"warning: the re-train spread was not recorded beside {a.config}: {type(exc).__name__}: "
              f"{str(exc)[:200]}", file=sys.stderr)
        return 0
    if recorded:
        print(f"re-train spread recorded in {recorded}")
    return 0


def cmd_check(a: argparse.Namespace) -> int:
    from hpo.spec import find_spec

    spec = find_spec(a.study, a.spaces_dir)
    from hpo.train import preflight
    from hpo.tune.data_check import remember

    # every check `hpo launch` runs before it touches the storage: data, minority, weights, folds, resources
    splits = preflight.check_study(spec)  # always checks; a pass is remembered, so the next launch need not
    if a.ray_address:
        from hpo.tune.ray_start import cluster_resources

        preflight.check_resources(spec, cluster_resources(a.ray_address), "the Ray cluster")
    else:
        preflight.check_resources(spec, preflight.machine_resources(spec), "this machine")
    from hpo.study import constraints

    constraints.check_classes(spec, splits.class_names)
    remember(spec, splits)  # the labels and the content digest a launch would find
    print(preflight.summary(spec, splits))
    for line in constraints.check_lines(spec):
        print(line)
    return 0


def cmd_init(a: argparse.Namespace) -> int:
    from hpo.spec.parse import STUDY_NAME
    from hpo.study import init

    # the folder's name made a study name (`my parts` -> `my_parts`) unless --name says otherwise
    name = a.name or re.sub(r"[^A-Za-z0-9_.-]", "_", Path(a.data).resolve().name).lstrip("._-")[:100]
    if not STUDY_NAME.fullmatch(name):
        raise UserError(f"--name {name[:120]!r}: not a study name; pass --name with letters, digits, '_' or '-'")
    path = Path(a.spaces_dir) / f"{name}.yaml"
    if path.exists() and not a.force:
        raise UserError(f"{path} exists; pass --force to replace it, or --name to write another study")
    from hpo.train import machine, survey, weights

    found = survey.survey(a.data)
    if len(found.classes) < 2:
        raise UserError(f"--data {a.data}: found {len(found.classes)} class folder(s); a study needs two or more")
    empty = [c for c, n in found.totals.items() if n == 0]
    if empty:
        raise UserError(f"--data {a.data}: no readable image in class folder(s) {empty[:5]} "
                        f"({len(found.unreadable)} unreadable file(s), first: {found.unreadable[:1]}); "
                        "fix or remove them")
    if a.arch:
        from hpo.train.models import check_timm_arch

        check_timm_arch(a.arch, "--arch")
    here = machine.Machine.here()
    arch = a.arch or ("resnet50" if here.gpus else weights.WHEEL_ARCH)
    data = init.Data(found.root, found.totals, found.median_side, found.grey, len(found.unreadable),
                     found.layout == "splits")
    k = len(found.classes)

    def step(recipe: init.Recipe) -> tuple[float, float]:
        return machine.step_seconds(recipe.model, k, 1 if found.grey else 3, recipe.size, recipe.batch_size)

    plan = init.plan(name, data, init.Machine(here.cpus, len(here.gpus), here.describe()),
                     ({}, False, "model: from scratch (--no-pretrained)") if a.no_pretrained else
                     weights.backbone(arch, a.weights), step, a.minutes or (60.0 if here.gpus else 10.0))
    text = init.render(plan, "hpo init " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["init"] else "hpo init")
    from hpo.spec.parse import parse_spec
    import yaml

    parse_spec(yaml.safe_load(text), str(path))  # what `hpo check` will read: valid, or a bug here
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(text)
    tmp.replace(path)
    print(f"{found.n_images} images in {len(found.classes)} classes: "
          + ", ".join(f"{c} {n}" for c, n in found.totals.items()))
    print("\n".join(plan.why))
    print(f"wrote {path}\nnext: hpo check --study {name}   then: hpo launch --study {name}")
    return 0


def storage_flag(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--storage", help="SQLAlchemy URL of the study database "
                    "(default: $HPO_STORAGE, else sqlite:///./storage/hpo.db)")


def artifacts_flag(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--artifacts", help="folder of the trial artifact store "
                    "(default: $HPO_ARTIFACTS, else ./storage/artifacts)")


def infeasible_flag(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--include-infeasible", action="store_true", help="also trials that missed one of the "
                    "study's constraints (left out by default)")


def add_admin_commands(sub: argparse._SubParsersAction) -> None:
    """`hpo studies` and `hpo delete`, after the habits of the `optuna` command."""
    sp = sub.add_parser("studies", help="list the studies: directions, trials by state, last activity")
    storage_flag(sp)
    sp.set_defaults(fn=cmd_studies)

    sp = sub.add_parser("delete", help="delete a study, its trials' artifact files and its Ray folder")
    sp.add_argument("--study", type=_study_name, required=True)
    storage_flag(sp)
    artifacts_flag(sp)
    sp.add_argument("--yes", action="store_true", help="do not ask (needed without a terminal)")
    sp.set_defaults(fn=cmd_delete)


def add_read_commands(sub: argparse._SubParsersAction) -> None:
    """The commands that read a study: status, front, export, report."""
    sp = sub.add_parser("status", help="trial counts by state and the Pareto front")
    sp.add_argument("--study", type=_study_name, required=True)
    infeasible_flag(sp)
    storage_flag(sp)
    sp.set_defaults(fn=cmd_status)

    sp = sub.add_parser("front", help="the Pareto front; --post-hoc also the front over post-hoc logit adjustments")
    sp.add_argument("--study", type=_study_name, required=True)
    infeasible_flag(sp)
    sp.add_argument("--post-hoc", action="store_true", help="sweep tau (logits - tau log prior) on each trial's "
                    "validation logits and show the front over all (trial, tau) points")
    storage_flag(sp)
    artifacts_flag(sp)
    sp.set_defaults(fn=cmd_front)

    sp = sub.add_parser("ensemble", help="choose K trials by greedy forward selection on validation logits; "
                        "report the averaged softmax against the best single trial")
    sp.add_argument("--study", type=_study_name, required=True)
    sp.add_argument("--size", type=_positive_int, default=5, help="members (repeats allowed; default %(default)s)")
    sp.add_argument("--out", help="write the ensemble as a file `hpo train` re-runs")
    storage_flag(sp)
    artifacts_flag(sp)
    sp.set_defaults(fn=cmd_ensemble)

    sp = sub.add_parser("export", help="write the Pareto-best configs to a file `hpo train` re-runs")
    sp.add_argument("--study", type=_study_name, required=True)
    infeasible_flag(sp)
    sp.add_argument("--post-hoc", action="store_true", help="export the post-hoc front (configs carry "
                    "train.posthoc_tau)")
    artifacts_flag(sp)
    sp.add_argument("--out", required=True, help="output file")
    sp.add_argument("--format", choices=["yaml", "json", "csv"], help="default: from the file suffix, else yaml")
    storage_flag(sp)
    sp.set_defaults(fn=cmd_export)

    sp = sub.add_parser("report", help="Pareto front, hypervolume history, per-loss table, importance: PNG + HTML")
    sp.add_argument("--study", type=_study_name, required=True)
    sp.add_argument("--out", required=True, help="output folder")
    sp.add_argument("--post-hoc", action="store_true", help="also the hypervolume history of the post-hoc front "
                    "(each trial's stored validation logits, tau swept)")
    storage_flag(sp)
    artifacts_flag(sp)
    sp.set_defaults(fn=cmd_report)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hpo", description="Hyperparameter search for class-imbalanced image "
                                "classification: Optuna studies in SQL, trials on Ray Tune.")
    sub = p.add_subparsers(dest="command", required=True)

    sp = sub.add_parser("launch", help="create or resume a study and run trials up to its budget")
    sp.add_argument("--study", type=_study_name, required=True, help="study name: search_spaces/NAME.yaml")
    storage_flag(sp)
    sp.add_argument("--spaces-dir", default="search_spaces", help="folder of study files (default: %(default)s)")
    sp.add_argument("--n-trials", type=_positive_int, help="study-wide budget of COMPLETE trials (default: the spec's)")
    sp.add_argument("--max-concurrent", type=_positive_int, help="trials at a time (default: the spec's)")
    sp.add_argument("--ray-address", help="join this Ray cluster instead of starting a local one")
    sp.add_argument("--verbose", action="store_true", help="show Ray's own logs and progress tables")
    sp.add_argument("--allow-changed-settings", action="store_true", help="resume a study whose fixed settings "
                    "changed; the change is recorded and later trials are kept apart from earlier ones")
    sp.add_argument("--warm-start", metavar="STUDY", help="start with the Pareto-best configs of this earlier study "
                    "(as warm_start.study in the study file; queued once)")
    artifacts_flag(sp)
    sp.set_defaults(fn=cmd_launch)

    sp = sub.add_parser("check", help="validate a study file and its data (no Ray, no trial): class counts, "
                        "minority classes, what is searched")
    sp.add_argument("--study", type=_study_name, required=True, help="study name: search_spaces/NAME.yaml")
    sp.add_argument("--spaces-dir", default="search_spaces", help="folder of study files (default: %(default)s)")
    sp.add_argument("--ray-address", help="check resources against this Ray cluster instead of this machine")
    sp.set_defaults(fn=cmd_check)

    sp = sub.add_parser("init", help="inspect an image folder and this machine; write a study file fitted to both")
    sp.add_argument("--data", required=True, help="ROOT/CLASS/*.png, or ROOT/{train,val,test}/CLASS/*.png")
    sp.add_argument("--name", help="study name (default: the folder's name)")
    sp.add_argument("--weights", help="a local pretrained weights file for --arch (no network needed)")
    sp.add_argument("--arch", help="timm architecture (default: resnet50 with a GPU, tf_efficientnet_lite0 without)")
    sp.add_argument("--minutes", type=_positive_float, help="time the study should take here (default: 10 on CPU, 60 on GPU)")
    sp.add_argument("--no-pretrained", action="store_true", help="train from scratch even where pretrained "
                    "weights can be had")
    sp.add_argument("--spaces-dir", default="search_spaces", help="folder of study files (default: %(default)s)")
    sp.add_argument("--force", action="store_true", help="replace an existing study file")
    sp.set_defaults(fn=cmd_init)

    add_read_commands(sub)
    sp = sub.add_parser("dashboard", help="serve optuna-dashboard on the study storage")
    sp.add_argument("--study", type=_study_name, help="print the URL of this study's page (and check it exists)")
    storage_flag(sp)
    artifacts_flag(sp)
    sp.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s; "
                    "anything else exposes an unauthenticated dashboard)")
    sp.add_argument("--port", type=_port, default=8080, help="TCP port, 1 to 65535 (default: %(default)s)")
    sp.set_defaults(fn=cmd_dashboard)

    sp = sub.add_parser("train", help="re-train an exported config and score it on the test split")
    sp.add_argument("--config", required=True, help="a file written by `hpo export`")
    sp.add_argument("--index", type=int, default=0, help="which config of the file (default: 0, the first)")
    sp.add_argument("--seeds", type=_positive_int, default=1, help="training seeds to average over")
    sp.add_argument("--out", help="also write the per-seed results as CSV here")
    sp.set_defaults(fn=cmd_train)
    add_admin_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    fn: Callable[[argparse.Namespace], int] = args.fn
    try:
        return fn(args)
    except UserError as exc:
        print(f"hpo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hpo: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `hpo status | head -2`: the reader left; no traceback, and none at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # a full disk or a read-only storage: one line, not a traceback
        reason = storage_failure(exc)
        if reason is None:
            raise
        print(f"hpo: error: {reason}; free space or make the storage writable, then run the command again "
              "(a relaunch sweeps trials this run left RUNNING)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
