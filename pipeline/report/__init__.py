"""`curate report`: the store's quality report as one self-contained HTML file.

scope.py (which run and export) -> queries.py (one aggregate per figure over the report_* views
of pipeline/store.py) -> charts.py (an Altair chart per query) -> html.py (one file, Vega inlined)
-> build.py (the whole)."""
