"""Keeping Streamlit's garbage collection after each script run cheap.

Streamlit runs a full collection, gc.collect(2), at the end of every script
run (runner.postScriptGC), fragments included. With torch, torchvision,
captum and plotly loaded the process holds over 400,000 objects that the
collector walks each time: 0.2 s of a core, holding the GIL, at every run.
The Playground redraws twice a second, so its training thread lost more
than half its time to it (py-spy on bench/playground_speed.py's server).

Almost all of those objects are the code itself (modules, classes,
functions), alive as long as the process. gc.freeze() moves what is alive
into a generation the collector ignores, so each collection after it walks
only what the runs made since. It is done again whenever new modules have
been loaded, after unfreezing and collecting, so what became garbage
meanwhile is collected rather than kept for good.
"""

from __future__ import annotations

import gc
import sys
import threading

_lock = threading.Lock()
_modules_at_freeze = 0


def freeze_loaded_code() -> bool:
    """Freeze what is alive now if modules were loaded since the last
    freeze; returns whether it froze. Cheap when nothing new was loaded."""
    global _modules_at_freeze
    if len(sys.modules) == _modules_at_freeze:
        return False
    with _lock:
        if len(sys.modules) == _modules_at_freeze:
            return False
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        _modules_at_freeze = len(sys.modules)
        return True
