"""ui/gc_freeze.py: the code the app loaded is kept out of the collection
Streamlit runs after every script run, and nothing is kept for good."""

import gc
import sys
import types
import weakref

from helpers import app

from ui import gc_freeze
from ui.gc_freeze import freeze_loaded_code


class _Cycle:
    def __init__(self):
        self.me = self


def test_a_page_run_freezes_what_it_loaded_and_collections_then_walk_only_new_objects():
    app("app.py")  # any page: the frame does it
    assert gc.get_freeze_count() > 100_000  # torch, plotly, streamlit: the objects Streamlit's collection walked
    assert not freeze_loaded_code()  # nothing new loaded: no collection, no freeze
    tracked = len(gc.get_objects())  # what a collection walks now
    assert tracked < gc.get_freeze_count() / 4


def test_garbage_frozen_with_the_code_is_collected_at_the_next_freeze(monkeypatch):
    freeze_loaded_code()
    cycle = _Cycle()
    alive = weakref.ref(cycle)
    monkeypatch.setattr(gc_freeze, "_modules_at_freeze", 0)  # as if modules were loaded since
    assert freeze_loaded_code()
    del cycle  # a cycle, frozen with the code, then dropped: refcounting alone never frees it
    gc.collect()
    assert alive() is not None  # frozen: the collector does not see it
    monkeypatch.setitem(sys.modules, "a_module_loaded_later", types.ModuleType("a_module_loaded_later"))
    assert freeze_loaded_code()
    assert alive() is None  # unfrozen, collected, not kept for good
