"""What the pages share but is not a page: the sidebar with the app's own
navigation, and the run picker with its shortcut toggle. Kept out of
pages/ so Streamlit does not list these modules as pages."""
