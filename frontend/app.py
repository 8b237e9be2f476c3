"""Deep Draw: draw a doodle, a neural network guesses what it is. ``streamlit run frontend/app.py``."""

from pathlib import Path

import streamlit as st

import api_client

# Not "pages/": Streamlit would also serve that folder as old-style pages, bypassing this file.
PAGES = Path(__file__).resolve().parent / "views"

st.set_page_config(page_title="Deep Draw", page_icon=":material/draw:", layout="wide")

page = st.navigation(
    [
        st.Page(PAGES / "draw.py", title="Draw", icon=":material/brush:", default=True),
        st.Page(PAGES / "probabilities.py", title="Probabilities", icon=":material/bar_chart:"),
        st.Page(PAGES / "challenge.py", title="Challenge", icon=":material/timer:"),
        st.Page(PAGES / "submit.py", title="Submit", icon=":material/photo_library:"),
        st.Page(PAGES / "teach.py", title="Teach", icon=":material/school:"),
    ]
)
st.sidebar.caption(f"Guesses by the Deep Draw API at {api_client.api_url()}")
page.run()
