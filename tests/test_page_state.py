"""What the pages share (ui/page_state.py): one decoded image pool for
every page, and session defaults that fill only what the session lacks."""

import os

from helpers import app, figures, trace_types
from streamlit.testing.v1 import AppTest

from resexplorer.services import analysis


def test_every_page_shares_one_decoded_image_pool(two_runs, monkeypatch):
    from ui.page_state import image_pool

    image_pool.clear()
    loads = []
    real = analysis.image_pool
    monkeypatch.setattr(analysis, "image_pool", lambda source: loads.append(source) or real(source))
    at = app("pages/attributions.py")  # the gallery of test images
    at.switch_page("pages/inside.py").run()  # the probes, computed on first view
    at.switch_page("pages/tta.py").run()
    next(b for b in at.button if b.key.startswith("tta_eval_")).click().run()  # the test set, scored
    assert not at.exception and not at.error
    scored = [fig for fig in figures(at) if "heatmap" in trace_types(fig)]
    assert len(scored) >= 2  # the test set just scored, clean and corrupted, drawn from the one pool
    assert loads == [os.environ["RESEXPLORER_DATA"]]  # decoded once, for all three pages


def _defaults_script():
    import streamlit as st

    from ui.choices import session_defaults

    session_defaults({"merge": "mean probs", "count": 3})
    st.selectbox("Merge", ["mean logits", "mean probs"], key="merge", persist_state="page")


def test_session_defaults_fill_only_the_keys_the_session_lacks():
    at = AppTest.from_function(_defaults_script)
    at.session_state["count"] = 7
    at.run()
    assert at.session_state["merge"] == "mean probs" and at.session_state["count"] == 7
    assert at.selectbox(key="merge").value == "mean probs" and not at.exception
    at.selectbox(key="merge").set_value("mean logits").run()
    at.run()
    assert at.session_state["merge"] == "mean logits"  # the user's choice, not the default again


def test_the_analyses_a_page_asks_for_are_counted_by_the_one_call_that_computes_them(monkeypatch):
    """One call takes the page's work list: what is cached is read, what is
    missing is one action whose bars count only the missing pieces."""
    from ui import page_state
    from ui.page_state import Analyses, Work

    cache = {"inside": {"cached": True}}  # the layer responses are cached; the gradients are not
    monkeypatch.setattr(page_state.analysis, "cached", lambda run, epoch, kind, **s: cache.get(kind))
    computed = []

    def compute(self, run, epoch, kind, action, pieces, settings):
        computed.append((run, kind, pieces.count if pieces else None, pieces.done if pieces else None))
        return None if run == "broken" else {"kind": kind}

    monkeypatch.setattr(Analyses, "_compute", compute)
    analyses = Analyses("synthetic", shipped=())
    work = [Work(run, 1, kind) for kind in ("inside", "gradients") for run in ("a", "b", "broken")]
    found = analyses.results(work)
    assert computed == [("a", "gradients", 3, 0), ("b", "gradients", 3, 1), ("broken", "gradients", 3, 2)]
    assert found == [{"cached": True}] * 3 + [{"kind": "gradients"}] * 2 + [None]
    computed.clear()
    later = [Work("broken", 1, "gradients"), Work("a", 1, "gradients")]  # the second needs the first
    assert analyses.results(later, stop_at_failure=True) == [None, None] and len(computed) == 1
    computed.clear()
    one = analyses.results([Work("a", 1, "gradients")])
    assert one == [{"kind": "gradients"}] and computed == [("a", "gradients", None, None)]  # one piece: no count
