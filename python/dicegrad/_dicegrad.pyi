"""The compiled part of dicegrad (Rust). Use the functions of the package ``dicegrad``, which
convert their arguments and document them; these take them converted."""

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import numpy.typing as npt

__version__: str

def gradient(
    input: npt.NDArray[np.float32], target: npt.NDArray[Any], options: Dict[str, Any]
) -> npt.NDArray[np.float32]:
    """The gradient of the loss ``options`` describe with respect to every value of ``input``
    (float32, C order, read in place), in its shape. Raises ValueError for values, shapes or
    parameters that cannot be used, TypeError for arguments of the wrong type."""

def analyze(
    input: npt.NDArray[np.float32], target: npt.NDArray[Any], options: Dict[str, Any]
) -> Tuple[str, List[List[Tuple[str, bytes]]]]:
    """The report of the mini-batch as JSON text (see ``dicegrad.analyze``), and with
    ``options["pictures"]`` the PNG pictures of each of its reports: (name, bytes)."""

def mimic_weights(
    input: npt.NDArray[np.float32], target: npt.NDArray[Any], options: Dict[str, Any]
) -> Tuple[bool, List[Tuple[List[float], Optional[List[float]]]]]:
    """Whether the loss pools the mini-batch, and per set of weights (one pooled, one per sample)
    the raw a_k and the normalised weights (None when undetermined). Raises ValueError for a loss
    without a Dice-type part."""

def parameters() -> List[Tuple[str, str, str, Optional[List[str]]]]:
    """Every loss parameter: (keyword, help, default, choices)."""
