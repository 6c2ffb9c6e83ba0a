"""Study files -> StudySpec: valid files load, bad ones fail early naming file, field and value."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
import yaml

from conftest import SPACES, hpo, write_study
from hpo.errors import SpecError
from hpo.spec import load_spec, parse_spec


# what each shipped study trades off: minority-class F1 against macro accuracy, unless listed here
# (face_mask competes with a write-up that reported G-mean)
SHIPPED_OBJECTIVES = {"face_mask": ["g_mean", "minority_f1"]}


def test_shipped_study_files_validate() -> None:
    paths = sorted(SPACES.glob("*.yaml"))
    assert set(SHIPPED_OBJECTIVES) <= {p.stem for p in paths}
    for path in paths:
        spec = load_spec(path)
        assert spec.name == path.stem
        assert spec.metric_names == SHIPPED_OBJECTIVES.get(path.stem, ["minority_f1", "macro_acc"]), path.name
        assert [o.direction for o in spec.objectives] == ["maximize", "maximize"], path.name


def test_cb_focal_beta_searches_one_minus_beta_on_a_log_scale() -> None:
    spec = load_spec(SPACES / "cb_focal_beta.yaml")
    beta = next(p for p in spec.search if p.name == "beta")
    assert (beta.optuna_name, beta.log, beta.complement) == ("one_minus_beta", True, True)
    assert beta.low == pytest.approx(1e-5) and beta.high == pytest.approx(1e-1)
    cfg = spec.trial_config({"one_minus_beta": 1e-3, "lr": 0.01, "batch_size": 64})
    # the trial's config is explicit: the loss's declared defaults are filled in
    assert cfg["loss"] == {"name": "cb_focal", "beta": pytest.approx(0.999), "gamma": 2.0, "form": "softmax",
                           "drw_start": 1.0, "drw_beta": 0.9999, "reduction": "weighted_mean"}
    assert cfg["train"]["lr"] == 0.01 and cfg["train"]["batch_size"] == 64


def test_spec_is_frozen_and_trial_configs_do_not_share_state() -> None:
    spec = load_spec(SPACES / "cb_focal_beta.yaml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.n_trials = 3  # type: ignore[misc]
    a = spec.trial_config({"lr": 0.5})
    a["train"]["epochs"] = 999
    assert spec.trial_config({})["train"]["epochs"] != 999


@pytest.mark.parametrize("overrides, field, value", [
    ({"train": {"epochz": 3}}, "train.epochz", "3"),
    ({"colour": "blue"}, "colour", "'blue'"),
    ({"search": {"lr": {"low": 0.5, "high": 0.1, "log": True}}}, "search.lr.high", "0.1"),
    ({"search": {"lr": {"low": 0.0, "high": 0.1, "log": True}}}, "search.lr.low", "0.0"),
    ({"search": {"beta": {"low": 0.5, "high": 1.5, "complement": True}}}, "search.beta.high", "1.5"),
    ({"search": {"momentun": {"low": 0.5, "high": 0.9}}}, "search.momentun", "'momentun'"),
    ({"search": {"batch_size": {"choices": [16, 0]}}}, "search.batch_size.choices", "0"),
    ({"budget": {"n_trials": 0}}, "budget.n_trials", "0"),
    ({"objectives": [{"name": "f1_of_the_tail"}]}, "objectives[0].name", "'f1_of_the_tail'"),
    ({"loss": {"name": "cb_focal", "C": 0.5}}, "loss.C", "0.5"),
    ({"train": {"lr": True}}, "train.lr", "True"),
    ({"train": {"label_smoothing": 1.0}}, "train.label_smoothing", "1.0"),
    ({"train": {"optimizer": "adagrad"}}, "train.optimizer", "'adagrad'"),
    ({"train": {"augment": {"rotate": 500}}}, "train.augment.rotate", "500"),
    ({"schedule": {"name": "step", "milestones": [0.9, 0.5]}}, "schedule.milestones", "[0.9, 0.5]"),
    ({"schedule": {"name": "cosine", "patience": 3}}, "schedule.patience", "3"),
    ({"model": {"name": "timm", "weights": "no/such.safetensors"}}, "model.weights", "'no/such.safetensors'"),
    # issue 12: booleans are YAML booleans, numbers finite, steps positive, names plain
    ({"search": {"lr": {"low": 1.0e-3, "high": 0.3, "log": "no"}}}, "search.lr.log", "'no'"),
    ({"search": {"beta": {"low": 1.0e-5, "high": 0.1, "complement": "false"}}}, "search.beta.complement", "'false'"),
    ({"search": {"gamma": {"low": 0.0, "high": 3.0, "step": 0}}}, "search.gamma.step", "0"),
    ({"search": {"gamma": {"low": 0.0, "high": 3.0, "step": -0.5}}}, "search.gamma.step", "-0.5"),
    ({"search": {"gamma": {"low": 0.0, "high": 3.0, "step": float("inf")}}}, "search.gamma.step", "inf"),
    ({"search": {"threshold": {"type": "int", "low": 0, "high": 60, "step": 2.5}}}, "search.threshold.step", "2.5"),
    ({"search": {"gamma": {"low": 0.0, "high": float("inf")}}}, "search.gamma.high", "inf"),
    ({"search": {"gamma": {"low": float("nan"), "high": 3.0}}}, "search.gamma.low", "nan"),
    ({"search": {"lr": {"low": "1e-3", "high": 0.3, "log": True}}}, "search.lr.low", "'1e-3'"),
    ({"train": {"lr": "1e-3"}}, "train.lr", "'1e-3'"),
    ({"search": None}, "search", "None"),
    ({"study": "../../etc/x"}, "study", "'../../etc/x'"),
    ({"study": ".."}, "study", "'..'"),
    ({"study": "two\nlines"}, "study", "'two\\nlines'"),
    ({"study": "a" * 101}, "study", "'" + "a" * 101 + "'"),
])
def test_bad_field_exits_2_naming_file_field_and_value(tmp_path: Path, overrides: dict, field: str,
                                                        value: str) -> None:
    path = write_study(tmp_path / "spaces", "bad", **overrides)
    r = hpo("launch", "--study", "bad", "--spaces-dir", str(path.parent),
            "--storage", f"sqlite:///{tmp_path / 'never.db'}")
    assert r.returncode == 2, r.stderr
    assert str(path) in r.stderr and f"'{field}'" in r.stderr and f"= {value}" in r.stderr, r.stderr
    assert not (tmp_path / "never.db").exists(), "bad input must not touch the storage"


def test_unknown_loss_lists_the_known_names(tmp_path: Path) -> None:
    raw = yaml.safe_load((SPACES / "cb_focal_beta.yaml").read_text())
    raw["loss"] = {"name": "ldamm"}
    with pytest.raises(SpecError, match=r"unknown loss .ldamm.; known: balanced_softmax, cb_focal, ce, focal, ldam, logit_adjusted, poly1, recall, weighted_ce"):
        parse_spec(raw, "x.yaml")


def test_missing_study_file_exits_2_and_lists_known_studies(tmp_path: Path) -> None:
    r = hpo("launch", "--study", "nope", "--spaces-dir", str(SPACES))
    assert r.returncode == 2
    assert "nope.yaml" in r.stderr and "cb_focal_beta" in r.stderr


def test_conditional_parameter_must_follow_its_parent() -> None:
    raw = yaml.safe_load((SPACES / "cb_focal_beta.yaml").read_text())
    raw["search"] = {"gamma": {"low": 0.0, "high": 2.0, "when": {"loss": ["cb_focal"]}}}
    with pytest.raises(SpecError, match=r"search.gamma.when"):
        parse_spec(raw, "x.yaml")


def test_schedule_and_optimiser_search_as_categoricals_with_conditional_options() -> None:
    raw = yaml.safe_load((SPACES / "cb_focal_beta.yaml").read_text())
    raw["search"] = {"optimizer": {"choices": ["sgd", "adamw"]},
                     "momentum": {"low": 0.8, "high": 0.99, "when": {"optimizer": ["sgd"]}},
                     "schedule": {"choices": ["cosine", "step", "plateau"]},
                     "patience": {"type": "int", "low": 1, "high": 4, "when": {"schedule": ["plateau"]}},
                     "magnitude": {"low": 0.0, "high": 1.0}}
    spec = parse_spec(raw, "x.yaml")
    cfg = spec.trial_config({"optimizer": "adamw", "schedule": "plateau", "patience": 3, "magnitude": 0.4})
    assert cfg["train"]["optimizer"] == "adamw" and "momentum" not in cfg["train"]
    assert cfg["schedule"] == {"name": "plateau", "warmup_epochs": 0, "monitor": "macro_acc", "factor": 0.1,
                               "patience": 3}
    assert cfg["train"]["augment"]["magnitude"] == 0.4
    assert spec.trial_config({"optimizer": "sgd", "momentum": 0.95})["train"]["momentum"] == 0.95


def test_exponent_without_a_dot_is_text_and_the_message_says_how_to_write_it() -> None:
    raw = yaml.safe_load((SPACES / "cb_focal_beta.yaml").read_text().replace("low: 1.0e-3", "low: 1e-3"))
    assert raw["search"]["lr"]["low"] == "1e-3"  # PyYAML (YAML 1.1) reads it as a string
    with pytest.raises(SpecError, match=r"'search.lr.low' = '1e-3': must be of type number\n  fix: .*write 1.0e-3"):
        parse_spec(raw, "x.yaml")


def test_quoted_boolean_says_to_write_true_or_false() -> None:
    raw = yaml.safe_load((SPACES / "cb_focal_beta.yaml").read_text())
    raw["search"]["beta"]["log"] = "yes"
    with pytest.raises(SpecError, match=r"'search.beta.log' = 'yes': must be of type bool\n  fix: write true or false"):
        parse_spec(raw, "x.yaml")


def test_a_study_name_of_exactly_100_characters_is_fine() -> None:
    raw = yaml.safe_load((SPACES / "cb_focal_beta.yaml").read_text())
    assert parse_spec({**raw, "study": "a" * 100}, "x.yaml").name == "a" * 100


def _launch_file(tmp_path: Path, text: str, name: str = "raw"):
    (tmp_path / "spaces").mkdir(exist_ok=True)
    path = tmp_path / "spaces" / f"{name}.yaml"
    path.write_text(text)
    r = hpo("launch", "--study", name, "--spaces-dir", str(path.parent), "--storage", f"sqlite:///{tmp_path / 'never.db'}")
    assert r.returncode == 2, r.stderr
    assert str(path) in r.stderr, r.stderr
    assert not (tmp_path / "never.db").exists(), "bad input must not touch the storage"
    return r


@pytest.mark.parametrize("text", ["", "\n# only a comment\n", "---\n"])
def test_empty_study_file_exits_2_with_a_fix(tmp_path: Path, text: str) -> None:
    r = _launch_file(tmp_path, text)
    assert "the study file is empty" in r.stderr and "fix:" in r.stderr


def test_study_file_without_search_exits_2_with_a_fix(tmp_path: Path) -> None:
    r = _launch_file(tmp_path, "description: no search here\ntrain: {epochs: 2}\n")
    assert "'search' = None" in r.stderr and "needs a search: section" in r.stderr and "fix:" in r.stderr


def test_study_flag_must_be_a_plain_name(tmp_path: Path) -> None:
    write_study(tmp_path / "spaces", "ok")
    r = hpo("launch", "--study", "../spaces/ok", "--spaces-dir", str(tmp_path / "spaces"),
            "--storage", f"sqlite:///{tmp_path / 'never.db'}")
    assert r.returncode == 2 and "'../spaces/ok' is not a study name" in r.stderr, r.stderr
    assert "[A-Za-z0-9][A-Za-z0-9_.-]{0,99}" in r.stderr  # the documented pattern is shown
    assert not (tmp_path / "never.db").exists()


COMMANDS_WITH_STUDY = [["launch"], ["check"], ["status"], ["front"], ["ensemble"], ["export", "--out", "x.yaml"],
                       ["report", "--out", "rep"], ["delete", "--yes"], ["dashboard"]]


@pytest.mark.parametrize("name", ["..", ".", "a/b", "a\nb", "x" * 101, "-x"])
@pytest.mark.parametrize("command", COMMANDS_WITH_STUDY, ids=lambda c: c[0])
def test_every_study_flag_is_checked_before_the_storage_is_opened(
        command: list[str], name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from hpo.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main([command[0], f"--study={name}", "--storage", f"sqlite:///{tmp_path / 'never.db'}", *command[1:]]
             if command[0] not in ("check",) else [command[0], f"--study={name}"])
    assert exc.value.code == 2
    assert "is not a study name" in capsys.readouterr().err
    assert not (tmp_path / "never.db").exists() and not (tmp_path / "storage").exists()


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_billion_laughs_is_refused_at_the_first_anchor_in_well_under_a_second(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(BILLION_LAUGHS)
    start = time.perf_counter()
    with pytest.raises(SpecError, match=r"field '<file>'.*anchors and aliases .&a / \*a. are not allowed"):
        load_spec(path)
    assert time.perf_counter() - start < 0.2


def test_any_alias_or_merge_key_is_refused_and_exits_2(tmp_path: Path) -> None:
    text = (SPACES / "cb_focal_beta.yaml").read_text() + "\nx_defaults: &d {epochs: 3}\n"
    r = _launch_file(tmp_path, text)
    assert "anchors and aliases" in r.stderr and "write the values out in full" in r.stderr
    merged = "train: &t {epochs: 3}\nloss: {<<: *t}\nsearch: {lr: {low: 0.01, high: 0.1}}\n"
    with pytest.raises(SpecError, match=r"anchors and aliases"):
        (tmp_path / "m.yaml").write_text(merged)
        load_spec(tmp_path / "m.yaml")


# --- files that are not what they seem: read only as regular files in their folder, echoed only in part ---

SECRET = "Zq9-secret-line-not-to-echo"


def _check(tmp_path: Path, name: str, timeout: float = 60):
    """`hpo check` of spaces/NAME.yaml: exit 2, one error naming the file, no storage touched."""
    r = hpo("check", "--study", name, "--spaces-dir", str(tmp_path / "spaces"), cwd=tmp_path, timeout=timeout)
    assert r.returncode == 2, r.stdout + r.stderr
    assert str(tmp_path / "spaces" / f"{name}.yaml") in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "storage").exists()
    return r


def test_a_study_file_symlinked_out_of_its_folder_is_refused_unread(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "shadow"
    outside.parent.mkdir()
    outside.write_text(f"root:{SECRET}:19000:0:99999:7:::\n")
    (tmp_path / "spaces").mkdir()
    (tmp_path / "spaces" / "passwd.yaml").symlink_to(outside)
    r = _check(tmp_path, "passwd")
    assert "a symlink to" in r.stderr and "outside the folder" in r.stderr and "not read" in r.stderr
    assert SECRET not in r.stderr


def test_a_symlink_to_a_study_file_in_the_same_folder_is_followed(tmp_path: Path) -> None:
    write_study(tmp_path / "spaces", "real")
    (tmp_path / "spaces" / "alias.yaml").symlink_to("real.yaml")
    with pytest.raises(SpecError, match=r"field 'study' = 'real': differs from the file name 'alias.yaml'"):
        load_spec(tmp_path / "spaces" / "alias.yaml")  # read: it is in the folder; then named by its file


def test_a_fifo_or_a_folder_named_like_a_study_file_is_refused_without_blocking(tmp_path: Path) -> None:
    import os

    (tmp_path / "spaces").mkdir()
    os.mkfifo(tmp_path / "spaces" / "pipe.yaml")  # opening it for reading would wait for a writer
    assert "not a regular file" in _check(tmp_path, "pipe", timeout=30).stderr
    (tmp_path / "spaces" / "dir.yaml").mkdir()
    assert "Is a directory" in _check(tmp_path, "dir").stderr


def test_a_study_file_that_is_not_a_mapping_is_echoed_only_in_part(tmp_path: Path) -> None:
    """A text file (a copied /etc/passwd) reads as one long YAML string: the error shows its start."""
    (tmp_path / "spaces").mkdir()
    lines = [f"user{i}:x:{i}:{i}::/home/user{i}:/bin/sh" for i in range(50)] + [f"root:{SECRET}:0:0"]
    (tmp_path / "spaces" / "copied.yaml").write_text("\n".join(lines) + "\n")
    r = _check(tmp_path, "copied")
    assert "must be a mapping of sections" in r.stderr and "'user0:x:0:0::" in r.stderr
    assert SECRET not in r.stderr and len(r.stderr) < 600, r.stderr


def test_a_yaml_syntax_error_names_line_and_column_not_the_text(tmp_path: Path) -> None:
    (tmp_path / "spaces").mkdir()
    (tmp_path / "spaces" / "broken.yaml").write_text(f"search:\n  lr: {{low: 0.01\nnote: {SECRET}: x\n")
    r = _check(tmp_path, "broken")
    assert "not valid YAML" in r.stderr and "(line 3, column" in r.stderr and SECRET not in r.stderr, r.stderr


def test_a_study_named_unlike_its_file_is_refused_naming_both_and_the_fix(tmp_path: Path) -> None:
    """`hpo status --study FILE_NAME` would find nothing: the study must be named by its file."""
    path = write_study(tmp_path / "spaces", "mine")
    path.write_text(path.read_text().replace("study: mine", "study: other"))
    r = hpo("launch", "--study", "mine", "--spaces-dir", str(path.parent),
            "--storage", f"sqlite:///{tmp_path / 'never.db'}", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "field 'study' = 'other': differs from the file name 'mine.yaml'" in r.stderr
    assert "rename the file to other.yaml, or set `study: mine`" in r.stderr
    assert not (tmp_path / "never.db").exists()


def test_an_error_shows_a_huge_value_cut_to_a_bounded_length_at_once() -> None:
    from hpo.errors import SHOWN_CHARS, shown

    huge = {"a": ["x" * 10**7] * 10**5, "b": [[[[[1]]]]]}
    start = time.perf_counter()
    text = shown(huge)
    assert time.perf_counter() - start < 0.1 and len(text) <= SHOWN_CHARS + 8, text
    with pytest.raises(SpecError) as err:
        parse_spec("x" * 10**6, "huge.yaml")
    assert len(str(err.value)) < 300


@pytest.mark.parametrize("where", ["train key", "search key", "loss name"])
def test_a_megabyte_key_or_name_is_shown_cut_short(where: str) -> None:
    raw = yaml.safe_load((SPACES / "cb_focal_beta.yaml").read_text())
    huge = "k" * 10**6
    if where == "train key":
        raw["train"][huge] = 1
    elif where == "search key":
        raw["search"][huge] = {"low": 1.0, "high": 2.0}
    else:
        raw["loss"] = {"name": huge}
    with pytest.raises(SpecError) as err:
        parse_spec(raw, "x.yaml")
    assert len(str(err.value)) < 2000 and "k" * 241 not in str(err.value)  # field: 240, value: 120
