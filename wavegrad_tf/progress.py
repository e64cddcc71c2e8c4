"""Progress of a long job, the way command-line users expect it: tqdm's bar on stderr (count, rate, ETA), shown
only on a terminal and only when the caller asks (the commands do; a library call stays silent)."""

from __future__ import annotations

import sys
from typing import Iterable, Optional


def bar(items: Optional[Iterable] = None, total: Optional[int] = None, unit: str = "item", show: bool = True,
        desc: Optional[str] = None):
    """A bar over `items` (iterate it) or of `total` steps (call `update`)."""
    from tqdm import tqdm

    return tqdm(items, total=total, unit=unit, desc=desc, disable=None if show else True, file=sys.stderr,
                dynamic_ncols=True, leave=False)
