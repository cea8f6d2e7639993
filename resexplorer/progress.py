"""How long-running work says how far it has got, one definition for the
whole package (the science, the analyses, the downloads, the pages' progress
bars all take it)."""

from __future__ import annotations

from collections.abc import Callable

# The share done, 0 to 1, and what is being done ("1,000 of 10,000 images").
Progress = Callable[[float, str], None]
# Counted work whose total is known as it goes (decoding a data set): done, total, what.
CountProgress = Callable[[int, int, str], None]
