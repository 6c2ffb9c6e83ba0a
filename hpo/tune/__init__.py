"""Ray Tune side of hpo. This file stays import-light: `hpo delete` reads RAY_DIR without Ray."""
from pathlib import Path

RAY_DIR = Path("storage/ray")  # Tune's experiment folders (one per study), trial logs included
