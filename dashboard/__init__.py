"""creditscope dashboard: Streamlit pages and the pure figure builders they draw with."""
