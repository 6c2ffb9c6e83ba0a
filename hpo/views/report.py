"""`hpo report`: a study on one HTML page with PNG figures.

- pareto_front.png: every COMPLETE trial, the Pareto front highlighted (first two objectives);
- hypervolume.png / .csv: hypervolume of the front after each trial, reference point 0 for
  maximised objectives and 1 for minimised ones (every hpo metric is a fraction in [0, 1]); with
  `--post-hoc`, also that of the post-hoc front (every trial's tau curve, hpo.study.posthoc);
- per_loss.csv: best and median of each objective per loss type;
- importance.png: fANOVA parameter importance for each objective (Optuna's evaluator);
- trust signals (hpo.study.trust): the front's support, identical points (shown once in the
  front table), parameters at a bound of their range, and whether any trial beats chance.

Trials a scheduler stopped early are left out everywhere: their values are partial.
"""
from __future__ import annotations

import html
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import optuna
import pandas as pd

from hpo.study import constraints, optuna_seam, settings, trust
from hpo.study import storage as st
from hpo.study.pareto import front_rows, hypervolume_history, signs

FIGSIZE, DPI = (8, 6), 100  # every PNG is 800 x 600 pixels


def per_loss_table(study: optuna.Study, full: list[optuna_seam.Row] | None = None) -> pd.DataFrame:
    names = st.objective_names(study)
    trials = settings.full_rows(study) if full is None else full
    configs = optuna_seam.user_attrs(study, trials, keys=[st.ATTR_CONFIG])
    rows = [{"loss": (configs[t.number].get(st.ATTR_CONFIG) or {}).get("loss", {}).get("name", "?"),
             **dict(zip(names, t.values))} for t in trials]
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    groups = df.groupby("loss")
    table = pd.DataFrame({"trials": groups.size()})
    for n, s in zip(names, signs(study.directions)):
        table[f"{n} best"] = groups[n].max() if s > 0 else groups[n].min()
        table[f"{n} median"] = groups[n].median()
    return table.sort_values(f"{names[0]} best", ascending=False)


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=FIGSIZE, dpi=DPI)


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=DPI)  # no bbox="tight": the size stays FIGSIZE x DPI
    plt.close(fig)
    return path


def plot_front(study: optuna.Study, path: Path, full: list[optuna_seam.Row] | None = None,
               best_rows: list[optuna_seam.Row] | None = None) -> Path:
    names = st.objective_names(study)
    fig, ax = _figure()
    trials = settings.full_rows(study) if full is None else full
    front = {t.number for t in (front_rows(study, trials) if best_rows is None else best_rows)}
    rest = [t for t in trials if t.number not in front]
    ax.scatter([t.values[0] for t in rest], [t.values[-1] for t in rest], c="lightgrey", label="trials")
    best = sorted((t for t in trials if t.number in front), key=lambda t: t.values[0])
    ax.plot([t.values[0] for t in best], [t.values[-1] for t in best], "o-", c="tab:red", label="Pareto front")
    for t in best:
        ax.annotate(str(t.number), (t.values[0], t.values[-1]), textcoords="offset points", xytext=(4, 4))
    ax.set(xlabel=names[0], ylabel=names[-1], title=f"{study.study_name}: {len(trials)} trials")
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def plot_hypervolume(history: list[tuple[int, float]], path: Path,
                     post_hoc: list[tuple[int, float]] | None = None) -> Path:
    fig, ax = _figure()
    ax.step([n for n, _ in history], [h for _, h in history], where="post", label="Pareto front of the trials")
    if post_hoc:
        ax.step([n for n, _ in post_hoc], [h for _, h in post_hoc], where="post",
                label="post-hoc front (each trial's tau curve, validation)")
        ax.legend(loc="lower right")
    ax.set(xlabel="trial", ylabel="hypervolume (reference 0 / 1)", title="hypervolume of the Pareto front")
    fig.tight_layout()
    return _save(fig, path)


def hypervolume_table(history: list[tuple[int, float]], post_hoc: list[tuple[int, float]] | None) -> pd.DataFrame:
    """hypervolume.csv: per trial, the plain front's hypervolume (and the post-hoc front's)."""
    table = pd.DataFrame(history, columns=["trial", "hypervolume"])
    if post_hoc is not None:  # trials without stored logits keep the post-hoc value of the trial before
        later = pd.DataFrame(post_hoc, columns=["trial", "post_hoc_hypervolume"])
        table = pd.merge_asof(table, later, on="trial")
    return table


def importances(study: optuna.Study) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Importance per objective, and why any objective has none (too few trials, say)."""
    out, problems = {}, []
    light = _params_and_values(study)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, name in enumerate(st.objective_names(study)):
            try:
                out[name] = optuna.importance.get_param_importances(light, target=lambda t, i=i: t.values[i])
            except (ValueError, RuntimeError) as exc:
                problems.append(f"{name}: {exc}")
    return out, problems


def _params_and_values(study: optuna.Study) -> optuna.Study:
    """The study's COMPLETE trials with their params and values only (`optuna_seam.frozen`, no
    attributes), in the order `study.get_trials` gives them: the same importances, without
    loading every trial's attributes."""
    if optuna_seam.rdb(study) is None:
        return study
    rows = optuna_seam.rows(study, (optuna.trial.TrialState.COMPLETE,))
    return optuna_seam.study_of_trials(study.directions, optuna_seam.frozen(study, rows, attrs=False))


def plot_importance(imp: dict[str, dict[str, float]], path: Path) -> Path:
    fig, ax = _figure()
    params = sorted({p for v in imp.values() for p in v})
    width = 0.8 / max(len(imp), 1)
    for j, (name, values) in enumerate(imp.items()):
        ax.barh(np.arange(len(params)) + j * width, [values.get(p, 0.0) for p in params], height=width, label=name)
    ax.set_yticks(np.arange(len(params)) + width * (len(imp) - 1) / 2, params)
    ax.set(xlabel="importance (fANOVA, normalised)", title="parameter importance")
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def write_report(study: optuna.Study, out: Path, artifact_store: Any = None) -> Path:
    """The report in OUT; with an artifact store, the hypervolume history of the post-hoc front
    (hpo.study.posthoc, from the stored validation logits) beside the plain one."""
    out.mkdir(parents=True, exist_ok=True)
    full = settings.full_rows(study)  # read once, used by every part below
    if not full:
        from hpo.errors import UserError

        raise UserError(f"study {study.study_name!r} has no COMPLETE trials to report on yet")
    history = hypervolume_history(study, constraints.feasible(study, full))  # of the trials that met them
    post_hoc = None
    if artifact_store is not None:
        from hpo.study import posthoc

        post_hoc = posthoc.hypervolume_history(study, posthoc.points(study, artifact_store)) or None
    best_rows = front_rows(study, full)
    plot_front(study, out / "pareto_front.png", full, best_rows)
    plot_hypervolume(history, out / "hypervolume.png", post_hoc)
    hypervolume_table(history, post_hoc).to_csv(out / "hypervolume.csv", index=False)
    imp, problems = importances(study)
    plot_importance(imp, out / "importance.png")
    table = per_loss_table(study, full)
    table.to_csv(out / "per_loss.csv")
    kept, _ = trust.collapse(best_rows, lambda r: r.values, lambda r: r.number)  # identical points once
    best = optuna_seam.frozen(study, kept, attrs=False)
    front = pd.DataFrame([{"trial": t.number, **dict(zip(st.objective_names(study), t.values)), **t.params}
                          for t in best])
    front.to_csv(out / "pareto_front.csv", index=False)
    page = out / "index.html"
    page.write_text(_html(study, history, table, front, problems, post_hoc, [*trust.signals(study, full).lines(), *constraints.lines(study, full)]))
    return page


def _html(study: optuna.Study, history: list[tuple[int, float]], table: pd.DataFrame, front: pd.DataFrame,
          problems: list[str], post_hoc: list[tuple[int, float]] | None = None, signals: Sequence[str] = ()) -> str:
    final = f"Final hypervolume {history[-1][1]:.4f}" + (
        f" (post-hoc front over every trial's tau curve, validation: {post_hoc[-1][1]:.4f})" if post_hoc else "")
    counts = ", ".join(f"{k} {v}" for k, v in sorted(optuna_seam.counts_by_state(study).items()))
    cls: Any = study.user_attrs.get("class_counts")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>hpo report: {html.escape(study.study_name)}</title>
<style>body{{font-family:sans-serif;max-width:900px;margin:2em auto}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}</style></head><body>
<h1>{html.escape(study.study_name)}</h1>
<p>Trials: {counts}. {final}. Training class counts: {cls}.</p>
<h2>Trust signals</h2>
<ul>{"".join(f"<li>{html.escape(line)}</li>" for line in signals)}</ul>
<h2>Pareto front</h2><img src="pareto_front.png" alt="Pareto front">
{front.to_html(index=False, float_format=lambda v: f"{v:.4g}")}
<h2>Hypervolume history</h2><img src="hypervolume.png" alt="hypervolume history">
<h2>Per loss type</h2>{table.to_html(float_format=lambda v: f"{v:.4f}")}
<h2>Parameter importance</h2><img src="importance.png" alt="parameter importance">
{"".join(f"<p>No importance for {html.escape(p)}</p>" for p in problems)}
</body></html>
"""
