"""The baseline of bench/app_speed.py: a bare Streamlit page with one small
plotly chart, so the app's first renders compare with what Streamlit and
plotly.js cost on their own. Run by app_speed.py; not part of the app."""

import plotly.graph_objects as go
import streamlit as st

st.title("A bare page")
figure = go.Figure([go.Scatter(x=[1, 2, 3, 4], y=[30.0, 20.0, 15.0, 12.0], name="test error")])
st.plotly_chart(figure, width="stretch")
