"""Sentence embeddings (all-MiniLM-L6-v2, the domain stage's kNN) in this process vs as
embed-chunk tasks on a local Ray cluster (flows/ray_executor.py RayEmbedder).

    .venv/bin/python bench/embeddings_ray.py                  # 2,000 labelled texts, 2 Ray workers
    .venv/bin/python bench/embeddings_ray.py --texts 8000 --workers 2

Texts: the labelled pools the classifier is fitted on (pipeline/domain_classifier/labelled.py), a seeded
sample. Local: Embedder(threads=2), the model loaded before the clock starts. Ray: the cluster
started first (its start printed apart); the first pass includes each worker loading the model,
the second runs on warm workers. Prints texts/s and the largest difference between the local
and the Ray vectors.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CURATE_HOME", str(ROOT / ".curate"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray cluster")
    args = parser.parse_args()

    from pipeline.runtime_env import apply_defaults

    apply_defaults()
    import numpy as np

    from flows.ray_executor import RayEmbedder, ray_cluster
    from pipeline.domain_classifier.embed import Embedder
    from pipeline.domain_classifier.labelled import load_labelled
    from schemas.scaleout import ScaleoutConfig

    frame = load_labelled()
    texts = frame.sample(min(args.texts, frame.height), seed=0)["text"].to_list()
    print(f"{len(texts)} labelled texts, {sum(map(len, texts)) / len(texts):.0f} chars on average; "
          f"load average {os.getloadavg()[0]:.1f}")

    embedder = Embedder(threads=2)
    started = time.perf_counter()
    local = embedder.embed(texts)
    local_s = time.perf_counter() - started
    print(f"local (2 threads):         {local_s:6.1f} s  {len(texts) / local_s:6.1f} texts/s")

    scaleout = ScaleoutConfig(runner="ray", num_workers=args.workers)
    started = time.perf_counter()
    with ray_cluster(scaleout):
        print(f"ray start:                 {time.perf_counter() - started:6.1f} s")
        on_ray = RayEmbedder(scaleout)
        for attempt in ("first (workers load)", "warm workers"):
            started = time.perf_counter()
            vectors = on_ray.embed(texts)
            seconds = time.perf_counter() - started
            print(f"ray {attempt:<21} {seconds:6.1f} s  {len(texts) / seconds:6.1f} texts/s "
                  f"(max |local - ray| {np.abs(vectors - local).max():.1e})")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
