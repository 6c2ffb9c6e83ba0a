"""Plain PyTorch training core: no Ray, no Optuna, so each piece is unit-testable alone."""
