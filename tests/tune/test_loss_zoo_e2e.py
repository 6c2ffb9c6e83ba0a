"""The loss zoo through the real `hpo launch`, and bad loss names exiting 2 with the known ones."""
from __future__ import annotations

from pathlib import Path

import optuna
import pandas as pd
import pytest
from PIL import Image

from conftest import SPACES, hpo, write_study
from hpo.spec import catalog
from hpo.spec.schema import LOSS



def test_loss_zoo_study_runs_several_loss_types(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'zoo.db'}"
    r = hpo("launch", "--study", "loss_zoo", "--spaces-dir", str(SPACES), "--storage", url,
            "--n-trials", "6", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    done = optuna.load_study(study_name="loss_zoo", storage=url).get_trials(
        states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) == 6
    kinds = {t.params["loss"] for t in done}
    assert len(kinds) > 1, kinds
    for t in done:  # conditional parameters exist exactly where their loss uses them
        loss = t.params["loss"]
        assert ("C" in t.params) == (loss == "ldam")
        assert ("gamma" in t.params) == (loss in ("focal", "cb_focal"))
        assert ("tau" in t.params) == (loss == "logit_adjusted")
        uses_beta = loss == "cb_focal" or (loss == "weighted_ce" and t.params.get("weighting") == "ens")
        assert ("one_minus_beta" in t.params) == uses_beta
        # the config holds exactly the chosen loss's declared options and the loss section's own fields
        assert set(t.user_attrs["config"]["loss"]) == {*LOSS.fields, *catalog.options(catalog.LOSS, loss)}

    # hpo report on the same study: the files, the images' size, one per-loss row per loss type
    r = hpo("report", "--study", "loss_zoo", "--storage", url, "--out", str(tmp_path / "report"))
    assert r.returncode == 0, r.stderr
    for png in ("pareto_front.png", "hypervolume.png", "importance.png"):
        with Image.open(tmp_path / "report" / png) as im:
            assert im.size == (800, 600) and im.getextrema() != ((255, 255),) * len(im.getbands())
    table = pd.read_csv(tmp_path / "report" / "per_loss.csv")
    assert set(table["loss"]) == kinds and table["trials"].sum() == 6
    page = (tmp_path / "report" / "index.html").read_text()
    assert all(f'src="{p}"' in page for p in ("pareto_front.png", "hypervolume.png", "importance.png"))


@pytest.mark.parametrize("overrides, listed", [
    ({"loss": {"name": "ldamm"}}, "known: balanced_softmax, cb_focal, ce, focal, ldam, logit_adjusted, poly1, recall, weighted_ce"),
    ({"loss": {"name": "weighted_ce", "weighting": "inverse"}}, "known: ens, ins, isns"),
    ({"search": {"margin": {"low": 0.1, "high": 1.0}}}, "searchable parameters: loss, epochs, lr"),
    ({"loss": {"name": "focal", "C": 0.5}}, "their parameters: drw_beta, drw_start, gamma"),
    ({"search": {"loss": {"choices": ["ce", "ldam"]}, "gamma": {"low": 0.0, "high": 2.0}}},
     "no loss in ['ce', 'ldam'] takes"),
])
def test_unknown_loss_weighting_or_parameter_exits_2_listing_known_names(tmp_path: Path, overrides: dict,
                                                                         listed: str) -> None:
    path = write_study(tmp_path / "spaces", "bad", **overrides)
    r = hpo("launch", "--study", "bad", "--spaces-dir", str(path.parent), "--storage", f"sqlite:///{tmp_path / 'x.db'}")
    assert r.returncode == 2, r.stdout + r.stderr
    assert listed in r.stderr and str(path) in r.stderr
