"""creditscope core: data model, DuckDB store, ingest, credit schemes, trees, PRM scorers.

This package never imports streamlit; the dashboard is a thin layer over it.
"""
