"""Scale-out of the CPU-heavy verdict stages: the coordinator's side (listing, chunking,
ingest) and the workers' side (pure checks that write a Parquet part), in plain Python.

Who schedules the chunks (Prefect tasks on Ray) lives in flows/scaleout_flow.py; nothing
here imports Prefect or Ray, so the same pieces run under any executor.
"""
