"""Study files -> validated, frozen StudySpecs; the catalog of registered names. Imports nothing
heavy (no torch, Ray or Optuna), so `hpo --help` and validation stay fast."""
from hpo.spec.parse import find_spec, load_spec, parse_spec, validate_config
from hpo.spec.study import Objective, Param, StudySpec

__all__ = ["find_spec", "load_spec", "parse_spec", "validate_config", "Objective", "Param", "StudySpec"]
