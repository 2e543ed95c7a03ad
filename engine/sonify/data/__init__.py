"""Data shipped with sonify: ``catalog.csv``, the default track catalogue of
``sonify recommend`` (read with ``importlib.resources``)."""
