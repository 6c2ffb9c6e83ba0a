"""The study note optuna-dashboard shows above a study: what was searched, on which data, the
trust warnings of its trials so far (hpo.study.trust: parameters at a bound, no trial beating chance)
and, as the report says them, the study's constraints with how many trials missed each
(hpo.study.constraints)."""
from __future__ import annotations

import hashlib
import threading
from typing import TYPE_CHECKING, Sequence

import optuna
import yaml

from hpo.spec import StudySpec
from hpo.study import constraints, trust

if TYPE_CHECKING:
    from hpo.train.preflight import DataSummary
    from hpo.train.splits import Splits

ATTR_NOTE = "hpo_note"  # study attribute: digest of the note's study-file-and-data part hpo last wrote
ATTR_NOTE_TRUST = "hpo_note_trust"  # study attribute: digest of the trust and constraint lines the note last showed ("" none)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def markdown(spec: StudySpec, splits: "Splits | DataSummary", warnings: Sequence[str] = (),
             constrained: Sequence[str] = ()) -> str:
    """The note; `warnings`: the trust warnings, `constrained`: the constraint lines (both of the trials so far)."""
    data = spec.sections["data"]
    from hpo.train.splits import profile as applied

    lt = {**data["longtail"], "profile": applied(data)}
    profile = "none (the data's own counts)" if lt["profile"] == "none" else f"{lt['profile']}, ratio {lt['ratio']}"
    rows = "\n".join(f"| {i} | {name} | {n} |" for i, (name, n) in enumerate(zip(splits.class_names, splits.class_counts)))
    k, repeats = int(data["split"]["folds"]), int(data["split"]["repeats"])
    folded = "" if k < 2 else (
        f"\n**k-fold objectives**: each trial trains {k * repeats} models ({k} stratified folds of the "
        f"{len(splits.train.y) + len(splits.val.y)} non-test images{f', drawn {repeats} times' if repeats > 1 else ''}) "
        "and reports each objective's mean over the folds; the trial attributes `fold_values` (each fold's "
        "value) and `fold_std` (their standard deviation) show how much one split would have moved it.\n")
    return f"""# {spec.name}

{spec.description}

Objectives: {", ".join(f"**{o.name}** ({o.direction})" for o in spec.objectives)}.
Data: `{data['name']}`, long tail {profile}; {len(splits.train.y)} training, {len(splits.val.y)} validation,
{len(splits.test.y)} test images (the test split is never scored by a trial).
{folded}
| class | name | training images |
| --- | --- | --- |
{rows}

Study file `{spec.path}`:

```yaml
{yaml.safe_dump(dict(spec.raw), sort_keys=False).strip()}
```
""" + _section("Trust signals", warnings) + _section("Constraints", constrained)


def _section(title: str, items: Sequence[str]) -> str:
    return f"\n## {title}\n\n" + "".join(f"- {w}\n" for w in items) if items else ""


def save(study: optuna.Study, spec: StudySpec, splits: "Splits | DataSummary") -> None:
    """Write the note when its text changed since the last launch (its digest is kept on the
    study): optuna-dashboard's note API imports Optuna's importance module and with it all of
    scikit-learn, ~1 s of a relaunch's start otherwise. A note edited in the dashboard stays
    until the study file, the data or the trust warnings change."""
    Later(study, spec, splits).finish()


def _write(study: optuna.Study, text: str, digest: str) -> None:
    import optuna_dashboard

    optuna_dashboard.save_note(study, text)
    study.set_user_attr(ATTR_NOTE, digest)


class Later:
    """`save`, but the write (and optuna-dashboard's import, ~1.2 s on 2 cores) off the launch's
    way to its first trial: `start` writes on a thread (the launch calls it once its first trial
    is asked), `finish` waits for that thread, or writes now when `start` was never called (a
    launch that asked no trial). Nothing to do when the note is unchanged. `finish` then adds
    the trust warnings of the trials so far (once they ran), when they changed."""

    def __init__(self, study: optuna.Study, spec: StudySpec, splits: "Splits | DataSummary") -> None:
        text = markdown(spec, splits)
        digest = _digest(text)
        self._note = (study, spec, splits, digest)
        self._args = None if study.user_attrs.get(ATTR_NOTE) == digest else (study, text, digest)
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        if self._args is not None and self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True, name="hpo-note")
            self._thread.start()

    def _run(self) -> None:
        try:
            _write(*self._args)
        except BaseException as exc:  # noqa: BLE001 - raised again by `finish`, in the launch's thread
            self.error = exc

    def finish(self) -> None:
        """Wait for the note (or write it now), then show the trust warnings; raises what a write raised."""
        if self._thread is None and self._args is not None:
            self._run()
        self.join()
        rewritten, self._args = self._args is not None, None
        if self.error is not None:
            raise self.error
        self._warnings(rewritten)

    def _warnings(self, rewritten: bool) -> None:
        """Rewrite the note with the study's trust warnings and constraint lines when they differ
        from those it shows (none, when the note was just `rewritten` from the study file)."""
        study, spec, splits, digest = self._note
        warnings, constrained = trust.signals(study).warnings(), constraints.lines(study)
        shown = _digest("\n".join([*warnings, *constrained])) if warnings or constrained else ""
        if not rewritten and study.user_attrs.get(ATTR_NOTE_TRUST, "") == shown:
            return
        if warnings or constrained or not rewritten:
            _write(study, markdown(spec, splits, warnings, constrained), digest)
        study.set_user_attr(ATTR_NOTE_TRUST, shown)

    def join(self) -> None:
        """Wait for a write `start` began (a launch ending on an error: the error is the one to see)."""
        if self._thread is not None:
            self._thread.join()
