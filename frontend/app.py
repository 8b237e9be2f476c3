"""Deep Draw: draw a doodle, a neural network guesses what it is. ``streamlit run frontend/app.py``."""

from pathlib import Path

import streamlit as st

# Not "pages/": Streamlit would also serve that folder as old-style pages, bypassing this file.
PAGES = Path(__file__).resolve().parent / "views"
# A file of the app's own: a material icon as favicon is fetched from Google's font servers.
ICON = Path(__file__).resolve().parent / "icon.png"

st.set_page_config(page_title="Deep Draw", page_icon=str(ICON), layout="wide")

page = st.navigation(
    [
        st.Page(PAGES / "draw.py", title="Draw", icon=":material/brush:", default=True),
        st.Page(PAGES / "probabilities.py", title="Probabilities", icon=":material/bar_chart:"),
        st.Page(PAGES / "challenge.py", title="Challenge", icon=":material/timer:"),
        st.Page(PAGES / "submit.py", title="Submit", icon=":material/photo_library:"),
        st.Page(PAGES / "teach.py", title="Teach", icon=":material/school:"),
    ]
)
st.sidebar.caption("Guesses by a neural network trained on Google's Quick, Draw! drawings (CC BY 4.0).")
page.run()
