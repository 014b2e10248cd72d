"""Build data/labels/domains_train.jsonl: labelled questions of varied forms for the kNN domain classifier.
(Kept for provenance: it reads snapshots fetched outside the project, so it is not run by CI.)

None of these sources is one of the unseen set's (MMLU, AGIEval and its AQuA-RAT/LSAT/LogiQA/Gaokao
parts, CRUXEval, Exercism, TruthfulQA; data/labels/build/domains_unseen.py) or a benchmark in data/benchmarks.
Each row keeps the source's own label (`label`); MAPS below send it to a domain and sub-domain.

  OpenTriviaQA  uberspot/OpenTriviaQA @ dd31530bfbb19f9505b160b89c9df4b1127e3c70  categories/* (CC BY-SA 4.0)
                trivia multiple choice by category: history, geography, literature, ... -> other; animals -> science
  LegalBench    HazyResearch/legalbench @ ce482446b8eac4403b6db2c17223af4514bb24e3  tasks/*/train.tsv, only the
                tasks whose README gives CC BY 4.0 -> other/law
  AI2 science   allenai/aristo-mini @ 4d99fa4cb9eb1e64d0d21adfea15450d626cfcba  questions/AI2-*-NDMC-Feb2016-*.jsonl
                (Apache-2.0; AI2 elementary and 8th-grade science exam questions) -> science
  CoNaLa        conala-train.json (CoNaLa, Yin et al. 2018, from Stack Overflow, CC BY-SA 4.0), copy at
                shilliscmu/TranxConalaBaseline @ 5520285387d946e826f4cc5a4a0a1bf7361355e5 -> code/python_snippets
  h5bp          h5bp/Front-end-Developer-Interview-Questions @ c8023cdcc4e13d45c096c3f37160a8fa5ab066d6
                src/questions/*.md (MIT) -> code/web_development
  sysadmin      trimstray/test-your-sysadmin-skills @ d566322e4f6a656fb835bf34712a67db269d5f2d  README.md, the
                questions from "General Knowledge" on (MIT; system, network, devops, security) -> code/computer_science
  BBH           suzgunmirac/BIG-Bench-Hard @ 9ee07bd481feebf959a6b59d61ea57bdcf30964d  bbh/{formal_fallacies,
                web_of_lies,boolean_expressions,temporal_sequences}.json (MIT) -> logic (the other BBH tasks
                repeat the BIG-bench tasks the pools already have)
  FOLIO         Yale-LILY/FOLIO @ 5d7bb84c7edab3fb358e057d2807f19cf5cf5e2d  data/v0.0/folio-*.jsonl (CC BY-SA 4.0)
                -> logic/first_order_logic
  LogicBench    Mihir3009/LogicBench @ c014153303c98de4d5f09d41c3a235cd869be5c8  data/LogicBench(Eval)/{BQA,MCQA}
                (MIT) -> logic/{propositional_logic,first_order_logic,nonmonotonic_reasoning}
  SVAMP         arkilpatel/SVAMP @ 689d7ccac74b9983a2ac7cc3b264f441b99e7c53  SVAMP.json (MIT) -> math
  XQuAD         google-deepmind/xquad @ 7d30520c717524000f0d9d2f9c10a069acd9d285  xquad.en.json (CC BY-SA 4.0;
                SQuAD v1.1 dev questions): the questions of articles whose subject is clear, by article (XQUAD)
  OpenStax      openstax/osbooks-introduction-business @ 78c9e7ad4e581d4ff98e78ea30214840e1fa7e1e
                modules/*/index.cnxml, the "concept-check" and learning-outcome questions (CC BY 4.0) -> other/business
  OpenIntro     OpenIntroStat/openintro-statistics @ fee25091fb24e89c36296fd67c48c1fcf7a93b6e  ch_*/TeX/*.tex,
                the end-of-chapter exercises (CC BY-SA 3.0) -> math/statistics
  ODS           patmorin/ods @ 9d22c44906dda2017b2ef0c762025bee644b58aa  latex/*.tex, the exercises of Open Data
                Structures (CC BY 2.5 CA) -> code/algorithms
  ProofNet      zhangir-azerbayev/ProofNet @ 509ad79710ed4f46ff5c282ed5640c1aa9ac3f30
                benchmark/benchmark_to_publish/informal/*.tex, the exercise statements (MIT) -> math, by textbook
  OpenStax      openstax/osbooks-introduction-python-programming @ d6d069bb24677a375aa28a574bd506d4b893cfdf
                modules/*/index.cnxml, the "practice-program" notes (CC BY 4.0) -> code/python_programs

A training text that contains a question of data/labels/domains_unseen.jsonl or of data/benchmarks, by the
screen stage's n-gram rule (filters/screening/decontam.py), is dropped and counted (none was, of either; the
rows that repeat are dropped too). Run it with the project's Python (it imports that check):

    .venv/bin/python data/labels/build/domains_train.py [data/labels/domains_train.jsonl]
"""
import csv
import gzip
import html
import io
import json
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

SEED = 20240612
M = "/work/.mirror"
ROOT = Path(__file__).resolve().parents[3]
LETTERS = "ABCDEFGH"

REVS = {
    "uberspot+OpenTriviaQA": "dd31530bfbb19f9505b160b89c9df4b1127e3c70",
    "HazyResearch+legalbench": "ce482446b8eac4403b6db2c17223af4514bb24e3",
    "allenai+aristo-mini": "4d99fa4cb9eb1e64d0d21adfea15450d626cfcba",
    "shilliscmu+TranxConalaBaseline": "5520285387d946e826f4cc5a4a0a1bf7361355e5",
    "h5bp+Front-end-Developer-Interview-Questions": "c8023cdcc4e13d45c096c3f37160a8fa5ab066d6",
    "suzgunmirac+BIG-Bench-Hard": "9ee07bd481feebf959a6b59d61ea57bdcf30964d",
    "Yale-LILY+FOLIO": "5d7bb84c7edab3fb358e057d2807f19cf5cf5e2d",
    "Mihir3009+LogicBench": "c014153303c98de4d5f09d41c3a235cd869be5c8",
    "arkilpatel+SVAMP": "689d7ccac74b9983a2ac7cc3b264f441b99e7c53",
    "google-deepmind+xquad": "7d30520c717524000f0d9d2f9c10a069acd9d285",
    "openstax+osbooks-introduction-python-programming": "d6d069bb24677a375aa28a574bd506d4b893cfdf",
    "zhangir-azerbayev+ProofNet": "509ad79710ed4f46ff5c282ed5640c1aa9ac3f30",
    "trimstray+test-your-sysadmin-skills": "d566322e4f6a656fb835bf34712a67db269d5f2d",
    "openstax+osbooks-introduction-business": "78c9e7ad4e581d4ff98e78ea30214840e1fa7e1e",
    "OpenIntroStat+openintro-statistics": "fee25091fb24e89c36296fd67c48c1fcf7a93b6e",
    "patmorin+ods": "9d22c44906dda2017b2ef0c762025bee644b58aa",
}

# ---- the sources' labels -> (domain, sub-domain), and how many rows to draw per label
TRIVIA = {  # OpenTriviaQA category file -> (domain, sub-domain, rows); general, for-kids, newest, rated,
    # brain-teasers, science-technology and hobbies mix subjects (technology, medicine, riddles), so are left out
    "history": ("other", "history", 170), "geography": ("other", "geography", 150),
    "world": ("other", "geography", 60), "literature": ("other", "literature", 150),
    "religion-faith": ("other", "religion", 130), "humanities": ("other", "humanities", 170),
    "people": ("other", "people", 90), "sports": ("other", "sports", 70),
    "music": ("other", "entertainment", 40), "movies": ("other", "entertainment", 40),
    "television": ("other", "entertainment", 30), "celebrities": ("other", "entertainment", 20),
    "animals": ("science", "biology", 150),
}
LEGAL_PER_TASK, LEGAL_MAX_CHARS = 3, 1500
N_CONALA = 300
BBH = {"formal_fallacies": ("formal_fallacies", 130), "web_of_lies": ("truth_tellers", 110),
       "boolean_expressions": ("boolean_expressions", 60), "temporal_sequences": ("temporal_sequences", 110)}
N_FOLIO, N_LOGICBENCH_PER_RULE, N_SVAMP = 220, 14, 300
XQUAD = {  # Wikipedia article -> (domain, sub-domain); articles of mixed or unclear subject
    # (Nikola_Tesla, Apollo_program, Construction, Pharmacy, Steam_engine, IPCC) are left out
    **{a: ("other", "economics") for a in ["1973_oil_crisis", "Economic_inequality"]},
    **{a: ("other", "law") for a in ["European_Union_law", "Civil_disobedience"]},
    **{a: ("other", "history") for a in ["Normans", "Martin_Luther", "Huguenot", "Black_Death", "Genghis_Khan",
                                         "Yuan_dynasty", "Imperialism", "French_and_Indian_War"]},
    **{a: ("other", "politics") for a in ["Scottish_Parliament", "Islamism"]},
    **{a: ("other", "geography") for a in ["Warsaw", "Southern_California", "Victoria_(Australia)",
                                           "Fresno,_California", "Jacksonville,_Florida", "Kenya", "Rhine",
                                           "Newcastle_upon_Tyne"]},
    **{a: ("other", "education") for a in ["Teacher", "Private_school", "Harvard_University", "University_of_Chicago"]},
    **{a: ("other", "entertainment") for a in ["Super_Bowl_50", "Sky_(United_Kingdom)", "American_Broadcasting_Company",
                                               "Doctor_Who"]},
    "United_Methodist_Church": ("other", "religion"), "Victoria_and_Albert_Museum": ("other", "humanities"),
    **{a: ("science", "biology") for a in ["Ctenophora", "Immune_system", "Chloroplast", "Amazon_rainforest"]},
    **{a: ("science", "general_science") for a in ["Oxygen", "Geology", "Force"]},
    **{a: ("code", "computer_science") for a in ["Computational_complexity_theory", "Packet_switching"]},
    "Prime_number": ("math", "number_theory"),
}
PROOFNET = {"Artin": "abstract_algebra", "Dummit-Foote": "abstract_algebra", "Herstein": "abstract_algebra",
            "Axler": "linear_algebra", "Munkres": "topology", "Rudin": "analysis", "Pugh": "analysis",
            "Shakarchi": "analysis", "Ireland-Rosen": "number_theory"}  # Putnam, Cambridge Tripos: mixed
LOGICBENCH_TYPES = {"propositional_logic": "propositional_logic", "first_order_logic": "first_order_logic",
                    "nm_logic": "nonmonotonic_reasoning"}


def _decode(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:  # OpenTriviaQA mixes in Windows-1252 lines
        return line.decode("cp1252", errors="replace")


def git_show(repo, path):
    out = subprocess.run(["git", "-C", f"{M}/{repo}/repo", "show", f"{REVS[repo]}:{path}"],
                         check=True, capture_output=True).stdout
    return "".join(_decode(line) for line in out.splitlines(keepends=True))


def git_ls(repo, path):
    out = subprocess.run(["git", "-C", f"{M}/{repo}/repo", "ls-tree", "--name-only", REVS[repo], path],
                         check=True, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line]


def mc(stem, options):
    return stem.strip() + "\n" + "\n".join(f"{LETTERS[i]}) {str(o).strip()}" for i, o in enumerate(options))


def row(text, domain, sub, source, label):
    return {"text": re.sub(r"[ \t]+\n", "\n", text).strip(), "domain": domain, "subdomain": sub,
            "source": source, "label": label}


def sample(items, k, *key):
    items = list(items)
    random.Random("-".join(map(str, (SEED, *key)))).shuffle(items)
    return items[:k]


def trivia():
    rows = []
    for cat, (domain, sub, k) in TRIVIA.items():
        text = git_show("uberspot+OpenTriviaQA", f"categories/{cat}")
        items = []
        for block in re.split(r"\n(?=#Q )", text):
            lines = [ln.strip() for ln in block.strip().splitlines() if ln.strip()]
            if not lines or not lines[0].startswith("#Q "):
                continue
            # The question may wrap onto more lines before "^ answer"; options are "A x".
            stem, opts, rest = [lines[0][3:]], [], lines[1:]
            while rest and not rest[0].startswith("^"):
                stem.append(rest.pop(0))
            opts = [re.sub(r"^[A-H] ", "", ln) for ln in rest[1:] if re.match(r"^[A-H] ", ln)]
            if len(opts) >= 2:
                items.append(mc(" ".join(stem), opts))
        rows += [row(t, domain, sub, "opentriviaqa", cat) for t in sample(items, k, "trivia", cat)]
    return rows


def legalbench():
    rows = []
    for task in git_ls("HazyResearch+legalbench", "tasks/"):
        name = task.split("/")[-1]
        files = git_ls("HazyResearch+legalbench", f"{task}/")
        readme = next((f for f in files if f.lower().endswith("readme.md")), None)
        if readme is None or f"{task}/train.tsv" not in files:
            continue
        licence = re.search(r"\*\*License\*\*:\s*(.*)", git_show("HazyResearch+legalbench", readme))
        if not licence or not re.search(r"CC by 4\.0", licence.group(1), re.I):
            continue
        reader = csv.DictReader(io.StringIO(git_show("HazyResearch+legalbench", f"{task}/train.tsv")), delimiter="\t")
        texts = []
        for r in reader:
            parts = [r.get(c) for c in ("question", "text") if r.get(c)]
            text = "\n".join(p.strip() for p in parts)
            if 20 <= len(text) <= LEGAL_MAX_CHARS:
                texts.append(text)
        picked = sample(sorted(set(texts)), LEGAL_PER_TASK, "legal", name)
        rows += [row(t, "other", "law", "legalbench", name) for t in picked]
    return rows


def ai2_science():
    rows = []
    for path in git_ls("allenai+aristo-mini", "questions/"):
        label = "elementary" if "Elementary" in path else "8th_grade"
        for line in git_show("allenai+aristo-mini", path).splitlines():
            if line.strip():
                q = json.loads(line)["question"]
                rows.append(row(mc(q["stem"], [c["text"] for c in q["choices"]]), "science", "general_science",
                                "ai2_science", label))
    return rows


def conala():
    data = json.loads(git_show("shilliscmu+TranxConalaBaseline", "conala-train.json"))
    intents = sorted({d["intent"].strip() for d in data if d.get("intent") and len(d["intent"].split()) >= 4})
    return [row(t, "code", "python_snippets", "conala", "intent") for t in sample(intents, N_CONALA, "conala")]


def h5bp():
    rows = []
    for path in git_ls("h5bp+Front-end-Developer-Interview-Questions", "src/questions/"):
        name = path.split("/")[-1].removesuffix("-questions.md")
        if name == "fun":  # "What's a cool project you've recently worked on?": about the candidate
            continue
        for line in git_show("h5bp+Front-end-Developer-Interview-Questions", path).splitlines():
            m = re.match(r"^\* (.+)$", line)  # top-level questions; indented follow-ups lean on them
            if m and len(m.group(1).split()) >= 4:
                rows.append(row(m.group(1), "code", "web_development", "h5bp", name))
    return rows


def sysadmin():
    readme = git_show("trimstray+test-your-sysadmin-skills", "README.md")
    readme = readme[readme.index('<a name="general-knowledge">'):]  # before it: questions about the candidate
    questions = (re.findall(r"^<summary><b>(.*?)</b></summary>", readme, re.M)
                 + re.findall(r"^- <b>(.*?)</b>\s*$", readme, re.M))
    rows = []
    for q in questions:
        text = html.unescape(re.sub(r"<[^>]+>", "", q)).replace("***", "").replace("*", "").strip()
        if len(text.split()) >= 4:
            rows.append(row(text, "code", "computer_science", "sysadmin", "general-knowledge"))
    return rows


def bbh():
    rows = []
    for task, (sub, k) in BBH.items():
        examples = json.loads(git_show("suzgunmirac+BIG-Bench-Hard", f"bbh/{task}.json"))["examples"]
        rows += [row(e["input"], "logic", sub, "bbh", task) for e in sample(examples, k, "bbh", task)]
    return rows


def folio():
    items = {}
    for split in ("train", "validation"):
        for line in git_show("Yale-LILY+FOLIO", f"data/v0.0/folio-{split}.jsonl").splitlines():
            if line.strip():
                d = json.loads(line)
                premises = "\n".join(p.strip() for p in d["premises"])
                text = (f"Premises:\n{premises}\nConclusion: {d['conclusion'].strip()}"
                        "\nIs the conclusion true, false, or uncertain given the premises?")
                items[text] = split
    return [row(t, "logic", "first_order_logic", "folio", items[t]) for t in sample(sorted(items), N_FOLIO, "folio")]


def logicbench():
    rows = []
    base = "data/LogicBench(Eval)"
    for fmt in ("BQA", "MCQA"):
        for kind in git_ls("Mihir3009+LogicBench", f"{base}/{fmt}/"):
            sub = LOGICBENCH_TYPES[kind.split("/")[-1]]
            for rule in git_ls("Mihir3009+LogicBench", f"{kind}/"):
                samples = json.loads(git_show("Mihir3009+LogicBench", f"{rule}/data_instances.json"))["samples"]
                texts = []
                for s in samples:
                    if fmt == "BQA":
                        texts += [f"{s['context'].strip()}\n{qa['question'].strip()}" for qa in s["qa_pairs"][:1]]
                    else:
                        stem = f"{s['context'].strip()}\n{s['question'].strip()}"
                        texts.append(mc(stem, list(s["choices"].values())))
                label = f"{fmt}/{rule.split('/')[-1]}"
                rows += [row(t, "logic", sub, "logicbench", label)
                         for t in sample(texts, N_LOGICBENCH_PER_RULE // 2, "logicbench", label)]
    return rows


def svamp():
    data = json.loads(git_show("arkilpatel+SVAMP", "SVAMP.json"))
    texts = [f"{d['Body'].strip().rstrip('.')}. {d['Question'].strip()}" for d in data]
    return [row(t, "math", "arithmetic_word_problems", "svamp", d["Type"])
            for t, d in sample(list(zip(texts, data)), N_SVAMP, "svamp")]


def xquad():
    articles = json.loads(git_show("google-deepmind+xquad", "xquad.en.json"))["data"]
    return [row(qa["question"], *XQUAD[a["title"]], "xquad", a["title"])
            for a in articles if a["title"] in XQUAD for p in a["paragraphs"] for qa in p["qas"]]


def openstax_modules(repo):
    """(module id, its index.cnxml) of each module of an OpenStax book repository."""
    for module in git_ls(repo, "modules/"):
        if module.split("/")[-1].startswith("m"):
            yield module.split("/")[-1], git_show(repo, f"{module}/index.cnxml")


def business():
    rows = []
    for module, cnxml in openstax_modules("openstax+osbooks-introduction-business"):
        # Concept checks, and the learning outcomes restated as questions over each section summary.
        blocks = re.findall(r'<note[^>]*class="concept-check"[^>]*>(.*?)</note>', cnxml, re.S)
        blocks += re.findall(r'<section[^>]*class="section-summary"[^>]*>(.*?)</section>', cnxml, re.S)
        for block in blocks:
            for item in re.findall(r"<item[^>]*>(.*?)</item>", block, re.S):
                text = _cnxml_text(item)
                if text.endswith("?") or len(text.split()) >= 5:
                    rows.append(row(text, "other", "business", "openstax_business", module))
    return rows


def _braced(text, start):
    """The text inside the brace group opening at text[start] ("{"), and the index after it."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0) if text[i - 1] != "\\" else 0
        if depth == 0:
            return text[start + 1:i], i + 1
    raise ValueError(f"unbalanced braces from {start}")


def _latex_text(tex):
    tex = re.sub(r"(?<!\\)%.*", "", tex)  # comments
    tex = re.sub(r"\\(label|ref|secref|figref|index|footnote|Figure|Section)\{[^}]*\}", "", tex)
    tex = re.sub(r"\\begin\{(figure|center|tabular|minipage)\}.*?\\end\{\1\}", "", tex, flags=re.S)
    tex = re.sub(r"\\(begin|end)\{[a-z*]+\}(\[[^]]*\])?", "", tex)
    tex = re.sub(r"\\item\b", "\n-", tex)
    tex = re.sub(r"\\(noindent|newline|hfill|vfill|medskip|smallskip|bigskip|centering)\b", "", tex)
    tex = re.sub(r"\\[vh]space\*?\{[^}]*\}", "", tex)
    tex = re.sub(r"\\[a-zA-Z]+\*?\{([^{}]*)\}", r"\1", tex)  # \textit{x} -> x
    tex = tex.replace("#", "").replace("~", " ").replace("\\\\", " ")
    return re.sub(r"[ \t]+", " ", re.sub(r"\s*\n\s*", "\n", tex)).strip()


def openintro():
    repo = "OpenIntroStat+openintro-statistics"
    rows = []
    for chapter in git_ls(repo, "."):
        if not chapter.startswith("ch_"):
            continue
        for path in git_ls(repo, f"{chapter}/TeX/"):
            tex = git_show(repo, path)
            for m in re.finditer(r"\\eoce\{", tex):  # \eoce{\qt{title} exercise}
                content, _ = _braced(tex, m.end() - 1)
                if content.startswith("\\qt{"):
                    content = content[_braced(content, 3)[1]:]
                text = _latex_text(content)
                if 40 <= len(text) <= 1500:
                    rows.append(row(text, "math", "statistics", "openintro_stats", chapter))
    return rows


def ods():
    rows = []
    for path in git_ls("patmorin+ods", "latex/"):
        if not path.endswith(".tex"):
            continue
        for body in re.findall(r"\\begin\{exc\}(.*?)\\end\{exc\}", git_show("patmorin+ods", path), re.S):
            text = _latex_text(body)
            if 40 <= len(text) <= 1500:
                rows.append(row(text, "code", "algorithms", "ods", path.split("/")[-1].removesuffix(".tex")))
    return rows


def proofnet():
    rows = []
    for book, sub in PROOFNET.items():
        tex = git_show("zhangir-azerbayev+ProofNet", f"benchmark/benchmark_to_publish/informal/{book}.tex")
        for m in re.finditer(r"\\paragraph\{Exercise ([^}]*)\}(.*?)\\begin\{proof\}", tex, re.S):
            text = re.sub(r"\s+", " ", m.group(2)).strip()
            if len(text) >= 20:
                rows.append(row(text, "math", sub, "proofnet", book))
    return rows


def _cnxml_text(fragment):
    # MathML: its text pieces run together (ax2+bx+c=0); code keeps its lines.
    text = re.sub(r"<m:math.*?</m:math>", lambda m: re.sub(r"\s+", "", re.sub(r"<[^>]+>", "", m.group(0))),
                  fragment, flags=re.S)
    text = re.sub(r"<code[^>]*>\s*(.*?)</code>", lambda m: m.group(1), text, flags=re.S)
    text = re.sub(r"<item[^>]*>", "\n- ", text)
    text = re.sub(r"<(media|title)[^>]*>.*?</\1>", "", text, flags=re.S)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    text = "\n".join(line.strip() for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def python_programs():
    rows = []
    for module, cnxml in openstax_modules("openstax+osbooks-introduction-python-programming"):
        for note in re.findall(r'<note class="practice-program"[^>]*>(.*?)</note>', cnxml, re.S):
            text = _cnxml_text(note)
            if len(text) >= 40:
                rows.append(row(text, "code", "python_programs", "openstax_python", module))
    return rows


# ---- near duplicates of the unseen set (and of the benchmarks): the screen stage's own check
def near_duplicates(references):
    """A function telling whether a text contains one of the reference texts, by the decontamination
    screen's n-gram rule (filters/screening/decontam.py). Its rewrite rule is off: on trivia it matched
    186 questions to one unseen MMLU item ("Who is the author of Admonitions for Women?" with four
    one- or two-word options), sharing only the option letters and a question word."""
    sys.path.insert(0, str(ROOT))
    from filters.screening.decontam import DecisionRule, NgramIndex

    index = NgramIndex([("reference", str(i), t) for i, t in enumerate(references)],
                       DecisionRule(order_free_min_coverage=0))
    return lambda text: index.match(text) is not None


def reference_texts():
    unseen = [json.loads(line)["question"] for line in (ROOT / "data/labels/domains_unseen.jsonl").open()]
    bench = []
    for f in sorted((ROOT / "data/benchmarks").glob("*.jsonl*")):
        with (gzip.open if f.suffix == ".gz" else open)(f, "rt", encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    d = json.loads(line)
                    bench += [d[k] for k in ("problem", "question", "prompt") if isinstance(d.get(k), str)]
    return unseen, bench


def main():
    rows = (trivia() + legalbench() + ai2_science() + conala() + h5bp() + sysadmin() + bbh() + folio()
            + logicbench() + svamp() + xquad() + python_programs() + proofnet() + business()
            + openintro() + ods())
    unseen, bench = reference_texts()
    like_unseen, like_bench = near_duplicates(unseen), near_duplicates(bench)
    out, seen, dropped = [], set(), Counter()
    for r in rows:
        if not r["text"] or r["text"] in seen:
            dropped["repeated or empty"] += 1
            continue
        if like_unseen(r["text"]):
            dropped[f"near-duplicate of an unseen question ({r['source']})"] += 1
            continue
        if like_bench(r["text"]):
            dropped[f"near-duplicate of a benchmark question ({r['source']})"] += 1
            continue
        seen.add(r["text"])
        out.append(r)
    dest = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "data/labels/domains_train.jsonl"
    with dest.open("w", encoding="utf-8") as f:
        for r in out:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(len(out), "rows to", dest)
    print("dropped:", dict(dropped))
    print(Counter(r["domain"] for r in out))
    print(sorted(Counter((r["domain"], r["subdomain"], r["source"]) for r in out).items()))


if __name__ == "__main__":
    main()
