"""`selfcritic train LOOP_RECIPE.yaml`: run the whole loop (trainer/loop.py) from the CLI.

A recipe with a loop section (`pairs:`, `policy_curve:`, `best_checkpoint:`,
`calibrate:`) comes here from `selfcritic train`; stdout gets the export directory.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

logger = logging.getLogger("selfcritic.trainer")


def run_loop_recipe(path: str, overrides: Sequence[str], *, print_only: bool = False,
                    export_only: Callable[[Any], int] | None = None) -> int:
    """Load the loop recipe and run it (or print it, or export its last checkpoint)."""
    from evaluation.pairs import DataError
    from trainer.loop import run_loop
    from trainer.loop_recipe import load_loop_recipe
    from trainer.recipe import RecipeError

    try:
        loop = load_loop_recipe(path, list(overrides))
    except RecipeError as error:
        logger.error("%s", error)
        return 2
    if print_only:
        sys.stdout.write(json.dumps(loop.to_dict(), indent=2, default=str) + "\n")
        return 0
    if export_only is not None:
        return export_only(loop.recipe)
    try:
        result = run_loop(loop)
    except (DataError, RecipeError, ValueError, FileNotFoundError, RuntimeError) as error:
        logger.error("%s", error)
        return 1
    sys.stdout.write(f"{result.export_dir}\n")
    return 0
