"""Build data/labels/domains_unseen.jsonl from sources the domain classifier never saw.
(Kept for provenance: it reads snapshots fetched outside the project, so it is not run by CI.)

Reads raw files from public repository snapshots (not committed to the project):
  MMLU       hendrycks/test @ 785eba57b455b9f9be12a0d3c1106d67274fea0e  data/test/*.csv (MIT)
  AGIEval    microsoft/AGIEval @ b1187aa0bf0e14125cb9a6c58f25288a4e272e64  data/v1/{lsat-lr,lsat-ar,aqua-rat}.jsonl
  CRUXEval   facebookresearch/cruxeval @ 190faf16d175b5847b0af05d937872b1fb395942  data/cruxeval.jsonl (MIT)
  Exercism   exercism/problem-specifications @ 03f83310ed0547b902d211a05d23b3d74661df02  exercises/*/ (MIT)
  TruthfulQA TruthfulQA.csv (sylinrl/TruthfulQA, Apache-2.0), copy at
             benedictflorance/truthfulqa_experiments @ 6fdfd38288e86296582a584694df5cf43d1f634a datasets/TruthfulQA.csv
"""
import csv
import json
import random
import re
import subprocess
import sys
from collections import Counter

SEED = 20240611
M = "/work/.mirror"
MMLU_DIR = "/tmp/unseen/mmlu/data/test"


def git_show(repo, rev, path):
    return subprocess.run(["git", "-C", f"{M}/{repo}/repo", "show", f"{rev}:{path}"],
                          check=True, capture_output=True, text=True).stdout


def git_ls(repo, rev, path):
    out = subprocess.run(["git", "-C", f"{M}/{repo}/repo", "ls-tree", "--name-only", f"{rev}", path],
                         check=True, capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if l]


def mc(stem, options, letters="ABCDE"):
    return stem.strip() + "\n" + "\n".join(f"{letters[i]}) {str(o).strip()}" for i, o in enumerate(options))


# ---- subject -> domain (MMLU); subjects not listed are left out (see README)
MMLU = {
    "math": {s: 12 for s in ["abstract_algebra", "college_mathematics", "elementary_mathematics",
                             "high_school_mathematics", "high_school_statistics"]},
    "code": {"college_computer_science": 30, "high_school_computer_science": 30},
    "science": {s: 11 for s in ["astronomy", "college_biology", "college_chemistry", "college_physics",
                                "conceptual_physics", "electrical_engineering", "high_school_biology",
                                "high_school_chemistry", "high_school_physics"]},
    "logic": {"formal_logic": 25, "logical_fallacies": 25},
    "other": {s: 3 for s in ["high_school_european_history", "high_school_us_history", "high_school_world_history",
                             "prehistory", "high_school_geography", "high_school_government_and_politics",
                             "us_foreign_policy", "security_studies", "international_law", "jurisprudence",
                             "professional_law", "high_school_macroeconomics", "high_school_microeconomics",
                             "sociology", "world_religions", "philosophy", "moral_disputes", "business_ethics",
                             "management", "marketing", "public_relations", "global_facts"]},
}
# Rows skipped after review (subject, 0-based row in the test CSV). Besides these, take() skips every item
# whose text also occurs in the project's data (seen_in_project: MMLU high-school math reuses MATH problems).
EXCLUDE = {
    ("high_school_computer_science", 23),   # school policy on the digital divide: not about computing
    ("high_school_computer_science", 10),  # "...the upgraded system?": refers to a scenario the item lacks
}
TQA_OTHER = ["Law", "History", "Sociology", "Economics", "Fiction", "Myths and Fairytales", "Language", "Religion",
             "Politics", "Proverbs", "Superstitions", "Paranormal", "Conspiracies", "Misquotations", "Advertising",
             "Confusion: People", "Confusion: Places", "Education", "Subjective"]
N_TQA, N_LSAT_LR, N_LSAT_AR, N_AQUA, N_CRUX, N_EXERCISM = 34, 25, 25, 40, 25, 25
CODE_CUE = re.compile(r"\b(write (a |some |the )?(program|code|function)|implement|your program|a function|"
                      r"the function|algorithm)\b", re.I)


PROJECT = "/work/main/data"


def _project_text():
    """All strings in the project's pools and benchmarks (what the classifier was fitted on, and the
    decontamination targets), whitespace-normalized and lower-cased."""
    import glob
    import gzip
    strs = []

    def walk(o):
        if isinstance(o, str):
            strs.append(o)
        elif isinstance(o, dict):
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    for f in glob.glob(f"{PROJECT}/seeds/**/*.json*", recursive=True) + glob.glob(f"{PROJECT}/benchmarks/*.json*"):
        txt = (gzip.open if f.endswith(".gz") else open)(f, "rt", encoding="utf-8").read()
        try:
            walk(json.loads(txt))
        except json.JSONDecodeError:
            for line in txt.splitlines():
                if line.strip():
                    walk(json.loads(line))
    return _norm(" ||| ".join(strs))


def _norm(s):
    return re.sub(r"\s+", " ", s).lower()


_SEEN = None


def seen_in_project(question):
    """True when a 50-char window (with >= 30 letters) of the question stem occurs in the project's data."""
    global _SEEN
    if _SEEN is None:
        _SEEN = _project_text()
    stem = _norm(question.split("\nA) ")[0])
    wins = [stem[i:i + 50] for i in range(0, max(1, len(stem) - 50), 25)]
    return any(sum(c.isalpha() for c in w) >= 30 and w in _SEEN for w in wins)


def take(rng, items, k, key):
    items = list(items)
    rng.shuffle(items)
    out = []
    for it in items:
        if key(it) in EXCLUDE or seen_in_project(it["question"]):
            continue
        out.append(it)
        if len(out) == k:
            break
    assert len(out) == k, (k, len(out))
    return out


def main():
    rows = []
    for domain, subjects in MMLU.items():
        for subj, k in subjects.items():
            rng = random.Random(f"{SEED}-mmlu-{subj}")
            with open(f"{MMLU_DIR}/{subj}_test.csv", encoding="utf-8") as f:
                items = [{"i": i, "question": mc(r[0], r[1:5]), "domain": domain, "source": "mmlu",
                          "subject": subj} for i, r in enumerate(csv.reader(f))]
            rows += take(rng, items, k, key=lambda it: (it["subject"], it["i"]))

    # AGIEval LSAT (logic) and AQuA-RAT (math)
    def agieval(name):
        return [json.loads(l) for l in git_show("microsoft+AGIEval", "b1187aa0bf0e14125cb9a6c58f25288a4e272e64",
                                                  f"data/v1/{name}.jsonl").splitlines() if l.strip()]

    def strip_letter(o):
        return re.sub(r"^\s*\(?[A-E]\)\s*", "", o)

    lr = [{"i": i, "question": ((d["passage"] or "").strip() + "\n" + mc(d["question"], [strip_letter(o) for o in d["options"]])).strip(),
           "domain": "logic", "source": "agieval", "subject": "lsat-lr"} for i, d in enumerate(agieval("lsat-lr"))]
    rows += take(random.Random(f"{SEED}-lsat-lr"), lr, N_LSAT_LR, key=lambda it: ("lsat-lr", it["i"]))
    # LSAT-AR repeats each logic-game passage for several questions: one question per passage.
    ar, seen = [], set()
    for i, d in enumerate(agieval("lsat-ar")):
        if d["passage"] in seen:
            continue
        seen.add(d["passage"])
        ar.append({"i": i, "question": (d["passage"].strip() + "\n" + mc(d["question"], [strip_letter(o) for o in d["options"]])),
                   "domain": "logic", "source": "agieval", "subject": "lsat-ar"})
    rows += take(random.Random(f"{SEED}-lsat-ar"), ar, N_LSAT_AR, key=lambda it: ("lsat-ar", it["i"]))
    aq = [{"i": i, "question": mc(d["question"], [strip_letter(o) for o in d["options"]]),
           "domain": "math", "source": "agieval", "subject": "aqua-rat"} for i, d in enumerate(agieval("aqua-rat"))]
    rows += take(random.Random(f"{SEED}-aqua"), aq, N_AQUA, key=lambda it: ("aqua-rat", it["i"]))

    # CRUXEval: output prediction, asked as a question
    crux = [json.loads(l) for l in git_show("facebookresearch+cruxeval", "HEAD", "data/cruxeval.jsonl").splitlines() if l.strip()]
    cq = [{"i": i, "question": f"What does the following Python function return for f({d['input']})?\n\n{d['code']}",
           "domain": "code", "source": "cruxeval", "subject": "output_prediction"} for i, d in enumerate(crux)]
    rows += take(random.Random(f"{SEED}-crux"), cq, N_CRUX, key=lambda it: ("cruxeval", it["i"]))

    # Exercism: exercises whose text explicitly asks for a program (CODE_CUE), deprecated ones skipped
    rev = "03f83310ed0547b902d211a05d23b3d74661df02"
    ex = []
    for path in sorted(git_ls("exercism+problem-specifications", rev, "exercises/")):
        slug = path.split("/")[-1]
        files = {p.split("/")[-1] for p in git_ls("exercism+problem-specifications", rev, f"exercises/{slug}/")}
        if ".deprecated" in files:
            continue
        parts = []
        for fn in (["introduction.md", "instructions.md"] if "instructions.md" in files else ["description.md"]):
            if fn in files:
                parts.append(git_show("exercism+problem-specifications", rev, f"exercises/{slug}/{fn}"))
        text = "\n\n".join(parts)
        text = re.sub(r"^#+ (Introduction|Instructions|Description)\s*$", "", text, flags=re.M)
        text = re.sub(r"^\[[^\]]+\]:\s*\S+.*$", "", text, flags=re.M)  # markdown link references
        text = re.sub(r"\[([^\]]+)\]\[[^\]]*\]", r"\1", text)
        text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # inline links
        text = re.sub(r"^~~~~(exercism/\w+)?\s*$", "", text, flags=re.M)  # exercism admonition fences
        text = re.sub(r"\n{3,}", "\n\n", text).strip()
        if text and CODE_CUE.search(text):
            ex.append({"i": slug, "question": text, "domain": "code", "source": "exercism", "subject": slug})
    rows += take(random.Random(f"{SEED}-exercism"), ex, N_EXERCISM, key=lambda it: ("exercism", it["i"]))

    # TruthfulQA: non-STEM categories -> other (the bare question, as the generation task asks it)
    tqa = list(csv.DictReader(open("/tmp/unseen/TruthfulQA.csv", encoding="utf-8")))
    tq = [{"i": i, "question": d["Question"].strip(), "domain": "other", "source": "truthfulqa",
           "subject": d["Category"]} for i, d in enumerate(tqa) if d["Category"] in TQA_OTHER]
    rows += take(random.Random(f"{SEED}-tqa"), tq, N_TQA, key=lambda it: ("truthfulqa", it["i"]))

    # dedupe on text, stable order by domain then source/subject
    out, seen_q = [], set()
    for r in rows:
        if r["question"] in seen_q:
            continue
        seen_q.add(r["question"])
        out.append({"question": r["question"], "domain": r["domain"], "source": r["source"], "subject": r["subject"]})
    dest = sys.argv[1] if len(sys.argv) > 1 else "/tmp/unseen/domains_unseen.jsonl"
    with open(dest, "w", encoding="utf-8") as f:
        for r in out:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(len(out), Counter(r["domain"] for r in out))
    print(Counter((r["domain"], r["source"]) for r in out))


if __name__ == "__main__":
    main()
