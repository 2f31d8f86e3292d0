"""What every HTML page of micro shares: plotly.js as one local asset beside the pages.

The reports and the live page load plotly.js from a file beside them (`PLOTLY_ASSET`, written
once per folder) rather than embedding its 4.8 MB in every page or fetching it from a CDN: the
pages stay small and readable offline.
"""

from __future__ import annotations

from pathlib import Path

from plotly.offline import get_plotlyjs, get_plotlyjs_version

from micro import atomic

PLOTLY_ASSET = f"plotly-{get_plotlyjs_version()}.min.js"


def write_asset(folder: Path) -> Path:
    """plotly.js as `PLOTLY_ASSET` in `folder` (written once, atomically); its path."""
    path = Path(folder) / PLOTLY_ASSET
    if not path.is_file():
        atomic.write_bytes(path, get_plotlyjs().encode())
    return path
