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

    from ui.page_state import session_defaults

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
