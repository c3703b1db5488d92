"""Everything a run leaves behind for people: tables, workbook, figures, the HTML/Markdown report, manifest.

``write_outputs`` is the one entry point the pipeline and CLI call; ``render_html`` / ``render_markdown``
and the figure functions are usable on their own.
"""
from .figures import ce_plane, ceac_plot, forest_plot, love_plot, standard_figures, subgroup_forest
from .html import render_html, render_markdown
from .writer import PrivacyError, write_outputs

__all__ = ["write_outputs", "render_html", "render_markdown", "love_plot", "forest_plot", "ce_plane",
           "ceac_plot", "subgroup_forest", "standard_figures", "PrivacyError"]
