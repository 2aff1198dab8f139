"""One module per rollout-log format; :mod:`core.ingest.registry` discovers them all.

Every public module here (name not starting with ``_``) is an adapter and defines, at module level:

- ``NAME``: the ``--format`` name;
- ``PRIORITY``: detection order, lower first (specific trainer formats 10-50, generic ones such as
  ``openai_messages`` 80, the native format 90);
- ``CHECKED_AGAINST``: the tool and version/commit the adapter was checked against;
- ``detect(path, head) -> str | None``: None when the adapter reads the file, else why not;
- ``read(path, options) -> Rollouts``: the canonical frames (see :mod:`core.ingest.base`);
- optionally ``COMPANIONS``: glob patterns of side files read together with a main file, which are
  never ingested on their own (e.g. verifiers' ``*.metadata.json``).

Adding a format means adding a module; there is no list to edit.
"""
