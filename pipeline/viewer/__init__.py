"""`curate view`: a local, read-only web app to browse the store's samples (app.py), over queries
(queries.py) that open the file read-only per request (db.py), with BM25 search (search.py)."""
