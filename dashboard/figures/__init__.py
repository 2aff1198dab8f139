"""Pure plotly figure builders (no streamlit): they take core structures and return figures."""
