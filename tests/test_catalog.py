"""One declaration per registered name: the torch-free catalog is the registries' own, and the
registry refuses a factory that would restate or contradict its declaration."""
from __future__ import annotations

import pytest

from hpo import catalog_build
from hpo.errors import UserError
from hpo.spec import catalog
from hpo.spec.options import Num
from hpo.spec.registry import Registry


def test_catalog_json_is_what_the_registries_declare_defaults_included() -> None:
    assert catalog.PATH.read_text() == catalog_build.text(), "run `make catalog`"


def test_every_kind_has_its_names_and_a_loss_option_round_trips() -> None:
    registered = catalog_build.registered()
    for kind in catalog.KINDS:
        assert sorted(catalog.names(kind)) == sorted(registered[kind]), kind
    gamma = catalog.options(catalog.LOSS, "focal")["gamma"]
    assert (gamma.default, gamma.low, gamma.problem(-1.0)) == (2.0, 0, "must be >= 0")


def test_a_factory_that_restates_a_default_is_refused() -> None:
    reg = Registry("test kind a")
    with pytest.raises(ValueError, match="no default in the signature"):
        @reg.register("x", gamma=Num(2.0))
        def x(gamma: float = 2.0) -> None: ...


def test_a_factory_whose_parameters_differ_from_its_declaration_is_refused() -> None:
    reg = Registry("test kind b")
    with pytest.raises(ValueError, match="the decorator declares"):
        @reg.register("x", gamma=Num(2.0))
        def x(gama: float) -> None: ...


def test_a_name_registered_twice_is_refused_and_build_fills_declared_defaults() -> None:
    reg = Registry("test kind c", fixed=("k",))

    @reg.register("x", gamma=Num(2.0))
    def x(k: int, gamma: float) -> tuple[int, float]:
        return k, gamma

    with pytest.raises(ValueError, match="registered twice"):
        reg.register("x", gamma=Num(2.0))(x)
    assert reg.build("x", k=3) == (3, 2.0)
    with pytest.raises(UserError, match="takes no parameter 'gama'"):
        reg.build("x", k=3, gama=1.0)
    with pytest.raises(UserError, match=r"unknown test kind c 'y'; known: x"):
        reg.get("y")
