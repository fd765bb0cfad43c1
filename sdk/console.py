"""One place that makes rich consoles (imported only by commands that draw tables)."""

from __future__ import annotations

from rich.console import Console


def console() -> Console:
    """Terminal width on a terminal; wide enough for every table when piped to a file or CI log."""
    c = Console()
    return c if c.is_terminal else Console(width=160)
