"""Everything a run leaves behind for people: tables, workbook, figures, the HTML/Markdown report, manifest.

``write_outputs`` is the one entry point the pipeline and CLI call; ``render_html`` / ``render_markdown``
and the figure functions are usable on their own. Names are imported on first use, so a command that only
checks its output folder (``report.outdir``) does not pay for matplotlib and seaborn.
"""
from importlib import import_module

_WHERE = {"write_outputs": "writer", "PrivacyError": "writer", "render_html": "html", "render_markdown": "html",
          "love_plot": "figures", "forest_plot": "figures", "ce_plane": "figures", "ceac_plot": "figures",
          "subgroup_forest": "figures", "standard_figures": "figures"}

__all__ = ["write_outputs", "render_html", "render_markdown", "love_plot", "forest_plot", "ce_plane",
           "ceac_plot", "subgroup_forest", "standard_figures", "PrivacyError"]


def __getattr__(name):
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
