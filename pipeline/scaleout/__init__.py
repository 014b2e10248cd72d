"""Verdicts computed away from the database: Parquet parts written by workers and ingested by
the run's process (parts.py). The loop that hands out chunks is pipeline/verdict_loop.py; the
Ray executor that runs them is flows/ray_executor.py. Nothing here imports Prefect or Ray."""
