"""Ingest: load logs into the served database without stopping the dashboard (it owns the file)."""

import tempfile
from pathlib import Path

import streamlit as st

from core.errors import CreditscopeError
from core.ingest import registry
from core.ingest.runner import ingest
from dashboard import resources as res

st.title("Ingest")
st.write("The dashboard holds the database open, so load new logs here: a path on this machine, or an upload.")
formats = ["auto", *[m.NAME for m in registry.adapters()]]

with st.form("ingest_form"):
    paths = st.text_area("Files, folders or globs (one per line)", key="ingest_paths")
    uploads = st.file_uploader("…or upload files", accept_multiple_files=True, key="ingest_uploads")
    fmt = st.selectbox("Format", formats, key="ingest_format")
    run = st.text_input("Run name (optional)", key="ingest_run")
    submitted = st.form_submit_button("Ingest")

if submitted:
    targets = [p.strip() for p in paths.splitlines() if p.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        for upload in uploads or []:
            target = Path(tmp) / Path(upload.name).name
            target.write_bytes(upload.getvalue())
            targets.append(str(target))
        if not targets:
            st.warning("Give at least one path or upload.")
            st.stop()
        try:
            with st.spinner("Loading…"):
                report = ingest(res.store(), targets, fmt=fmt, run=run.strip() or None)
        except CreditscopeError as exc:
            st.error(f"Nothing was loaded: {exc}")
            st.stop()
    res.clear_data_caches()
    st.success(f"Loaded {report.n_trajectories} trajectories, {report.n_steps} steps.")
    st.dataframe([vars(s) for s in report.sources], key="ingest_report")
