"""Plots are optional: matplotlib comes with the `plots` extra (pip install tinyprune[plots]).

`pyplot()` returns matplotlib's pyplot on the file-only Agg backend, or None when matplotlib
is not installed; writers then skip the PNG and say so in their report. This module draws nothing.
"""

from __future__ import annotations

import importlib.util

MISSING_NOTE = "no plot: matplotlib is not installed (pip install tinyprune[plots])"


def pyplot():
    """matplotlib.pyplot (Agg backend), or None without matplotlib."""
    if importlib.util.find_spec("matplotlib") is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
