"""How embedtune's commands grow with the data: time and peak memory per command and size, and
the fitted growth exponent.

Synthetic data is generated here (seeded), made of made-up words: pairs in topics of about 20
pairs, each text mixing common words (Zipf ranks 100 and up of a 30,000-word vocabulary: the
most frequent words of a language are stopwords that BM25 removes) with words of its topic (40
per topic), an IR folder built the same way (N documents, --eval-queries queries with one
relevant document each) and TREC files (N queries x --depth documents, graded qrels). Every command runs as its own process
with the tiny BERT of the tests (built once), one torch thread, and is measured with os.wait4: wall
seconds, CPU seconds (user + system: steadier than wall time on a shared machine) and the child's
peak resident memory (ru_maxrss).

    embedtune mine --miner dense      N pairs (-O relative_margin=null: the untrained tiny model
                                      scores every pair alike, and the margin would drop them all)
    embedtune mine --miner bm25       N pairs (-O guard_scores=retrieval: BM25 alone, no model)
    embedtune eval                    N documents, --eval-queries queries
    embedtune metrics                 N queries x --depth documents
    embedtune data stats              N pairs, tokens counted with the tiny model's tokenizer

The growth exponent is the slope of log(value) against log(size) (least squares over the sizes
measured; CPU seconds for time): 1 is linear, 2 quadratic. Fixed costs (starting Python, torch,
loading the model) weigh on small sizes and pull the exponent below the true one there.

    python benchmarks/scale_bench.py                                   # 10k, 30k: a few minutes
    python benchmarks/scale_bench.py --sizes 10000,100000,1000000 --commands metrics,stats
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

COMMANDS = ("mine-dense", "mine-bm25", "eval", "metrics", "stats")
VOCABULARY = 30_000


# -- synthetic data ---------------------------------------------------------------------------
def make_words(rng: np.random.Generator, count: int = VOCABULARY) -> np.ndarray:
    syllables = np.array(["ka", "lo", "mi", "re", "tu", "san", "vel", "or", "ia", "pen", "dra", "qu", "ex", "ti"])
    parts = rng.integers(0, len(syllables), size=(count, 3))
    lengths = rng.integers(1, 4, count)
    return np.asarray(["".join(syllables[p[:n]]) + str(i) for i, (p, n) in enumerate(zip(parts, lengths))])


class Texts:
    """Texts of a domain: common words (Zipf ranks 100 and up of a general vocabulary: the most
    frequent words of a language are stopwords, which BM25's tokenizer removes) mixed with the
    words of a topic (``topics`` topics of 40 words each, drawn Zipf-like within the topic)."""

    def __init__(self, rng: np.random.Generator, topics: int) -> None:
        self.rng = rng
        self.common = make_words(rng)
        self.topic_words = np.char.add("t", make_words(rng, max(topics, 1) * 40)).reshape(max(topics, 1), 40)
        self.topics = max(topics, 1)

    def make(self, topic: int, common: int, specific: int) -> str:
        rng = self.rng
        words = list(self.common[(rng.zipf(1.2, common) + 99) % VOCABULARY])
        words += list(self.topic_words[topic, np.minimum(rng.zipf(1.5, specific) - 1, 39)])
        rng.shuffle(words)
        return " ".join(words)


def write_pairs(path: str, n: int, seed: int) -> None:
    """``n`` pairs in topics of about 20 pairs: an anchor (4-8 common + 3-6 topic words) and a
    positive (10-30 common + 5-12 topic words)."""
    rng = np.random.default_rng(seed)
    texts = Texts(rng, n // 20)
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(n):
            topic = int(rng.integers(0, texts.topics))
            anchor = texts.make(topic, int(rng.integers(4, 9)), int(rng.integers(3, 7)))
            positive = texts.make(topic, int(rng.integers(10, 31)), int(rng.integers(5, 13)))
            handle.write(json.dumps({"anchor": f"{anchor} {i}", "positive": f"{positive} p{i}"}) + "\n")


def write_ir(folder: str, n_docs: int, n_queries: int, seed: int) -> None:
    """``n_docs`` documents in topics of about 20, ``n_queries`` queries each with one relevant
    document (a query shares that document's topic)."""
    rng = np.random.default_rng(seed)
    texts = Texts(rng, n_docs // 20)
    os.makedirs(folder, exist_ok=True)
    topic_of = rng.integers(0, texts.topics, n_docs)
    with open(os.path.join(folder, "corpus.jsonl"), "w", encoding="utf-8") as handle:
        for i, topic in enumerate(topic_of.tolist()):
            text = texts.make(topic, int(rng.integers(10, 31)), int(rng.integers(5, 13)))
            handle.write(json.dumps({"_id": f"d{i}", "text": text}) + "\n")
    relevant = rng.choice(n_docs, n_queries, replace=False)
    with open(os.path.join(folder, "queries.jsonl"), "w", encoding="utf-8") as q, \
            open(os.path.join(folder, "qrels.txt"), "w", encoding="utf-8") as qrels:
        for i, d in enumerate(relevant.tolist()):
            text = texts.make(int(topic_of[d]), int(rng.integers(4, 9)), int(rng.integers(3, 7)))
            q.write(json.dumps({"_id": f"q{i}", "text": text}) + "\n")
            qrels.write(f"q{i} 0 d{d} 1\n")


def write_trec(folder: str, n_queries: int, depth: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "run.txt"), "w", encoding="ascii") as run, \
            open(os.path.join(folder, "qrels.txt"), "w", encoding="ascii") as qrels:
        for start in range(0, n_queries, 10_000):
            block = min(10_000, n_queries - start)
            # distinct documents per query: an offset plus multiples of a prime coprime to 10^6
            docs = (rng.integers(0, 1_000_000, size=(block, 1)) + 104_729 * np.arange(depth)) % 1_000_000
            scores = -np.sort(-rng.normal(size=(block, depth)), axis=1)
            lines = []
            for r in range(block):
                q = start + r
                row = docs[r]
                lines.extend(f"q{q} Q0 doc{d} {k + 1} {s:.6f} bench\n" for k, (d, s) in enumerate(zip(row, scores[r])))
                judged = rng.choice(depth, 5, replace=False)
                qrels.write("".join(f"q{q} 0 doc{row[j]} {int(rng.integers(0, 4))}\n" for j in judged))
                qrels.write(f"q{q} 0 unretrieved{q} 1\n")
            run.write("".join(lines))


# -- measuring --------------------------------------------------------------------------------
def measure(command: list[str], log: str) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (GB) of one child process; its
    output goes to ``log``. On a shared machine the CPU time is the steadier figure."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    with open(log, "w", encoding="utf-8") as out:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        with open(log, encoding="utf-8") as handle:
            raise SystemExit(f"{' '.join(command)} failed:\n{handle.read()[-3000:]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024 / 1024


def tiny_vocab_model(work: str) -> str:
    """The tiny BERT with a vocabulary of the synthetic texts (5,000 pairs of the 100k set) and
    wide word embeddings: every text its own vector, texts that share words closer, as with a
    trained model. (The default tiny model's vocabulary does not hold the synthetic words: its
    texts collapse to a few dozen distinct vectors.)"""
    from embedtune_core.testing import build_tiny_model

    folder = os.path.join(work, "tiny-vocab")
    model = os.path.join(folder, "model")
    if os.path.exists(os.path.join(model, "modules.json")):
        return model
    pairs = os.path.join(work, "pairs-100000.jsonl")
    if not os.path.exists(pairs):
        write_pairs(pairs, 100_000, 0)
    texts = []
    with open(pairs, encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            if number == 5000:
                break
            row = json.loads(line)
            texts += [row["anchor"], row["positive"]]
    return str(build_tiny_model(folder, texts=texts, word_embedding_std=0.5))


def search_lines(log: str) -> str:
    """The search rows of a mining log (which search, its recall against exact search)."""
    with open(log, encoding="utf-8", errors="replace") as handle:
        rows = [line.strip() for line in handle if line.startswith("search")]
    return "; ".join(" ".join(row.split()) for row in rows)


def command_for(name: str, n: int, work: str, model: str, args: argparse.Namespace) -> list[str]:
    embedtune = os.path.join(os.path.dirname(sys.executable), "embedtune")
    pairs = os.path.join(work, f"pairs-{n}.jsonl")
    if name in ("mine-dense", "mine-bm25", "stats") and not os.path.exists(pairs):
        write_pairs(pairs, n, args.seed)
    if name == "mine-dense":
        return [embedtune, "mine", "--data", pairs, "--type", "pairs", "--miner", "dense", "--model", model,
                "-O", "relative_margin=null", "-o", os.path.join(work, f"dense-{n}.jsonl"), "--overwrite"]
    if name == "mine-bm25":
        return [embedtune, "mine", "--data", pairs, "--type", "pairs", "--miner", "bm25", "-O", "guard_scores=retrieval",
                "-o", os.path.join(work, f"bm25-{n}.jsonl"), "--overwrite"]
    if name == "stats":
        return [embedtune, "data", "stats", pairs, "-t", "pairs", "--model", model, "--json"]
    if name == "eval":
        folder = os.path.join(work, f"ir-{n}")
        if not os.path.exists(folder):
            write_ir(folder, n, min(args.eval_queries, n), args.seed)
        return [embedtune, "eval", "--model", model, "--data", folder, "--type", "ir", "-m", "ndcg@10", "--json"]
    if name == "metrics":
        folder = os.path.join(work, f"trec-{n}")
        if not os.path.exists(folder):
            write_trec(folder, n, args.depth, args.seed)
        return [embedtune, "metrics", os.path.join(folder, "qrels.txt"), os.path.join(folder, "run.txt"), "--json"]
    raise ValueError(name)


def slope(sizes: list[int], values: list[float]) -> float:
    if len(sizes) < 2:
        return float("nan")
    return float(np.polyfit(np.log(sizes), np.log(values), 1)[0])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,30000", help="comma-separated sizes N")
    parser.add_argument("--commands", default=",".join(COMMANDS), help=f"comma-separated, of {', '.join(COMMANDS)}")
    parser.add_argument("--eval-queries", type=int, default=1000)
    parser.add_argument("--depth", type=int, default=100, help="documents per query in the TREC run")
    parser.add_argument("--work", default=None, help="folder for the data and outputs (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="tiny", choices=["tiny", "tiny-vocab"],
                        help="tiny: the tests' tiny BERT; tiny-vocab: the same with a vocabulary of the data")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the measurements here")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    commands = [c for c in args.commands.split(",") if c]
    unknown = set(commands) - set(COMMANDS)
    if unknown:
        raise SystemExit(f"unknown command(s): {', '.join(sorted(unknown))}")
    work = args.work or tempfile.mkdtemp(prefix="embedtune-scale-")
    os.makedirs(work, exist_ok=True)
    from embedtune_core.testing import build_tiny_model

    model = os.path.join(work, "tiny-model", "model")
    if args.model == "tiny-vocab":
        model = tiny_vocab_model(work)
    elif not os.path.exists(os.path.join(model, "modules.json")):
        model = str(build_tiny_model(os.path.join(work, "tiny-model")))
    print(f"python {platform.python_version()}, {os.cpu_count()} cpus, OMP_NUM_THREADS=1; work folder {work}")
    rows = []
    for name in commands:
        for n in sizes:
            log = os.path.join(work, f"{name}-{n}.log")
            seconds, cpu, peak = measure(command_for(name, n, work, model, args), log)
            rows.append({"command": name, "size": n, "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
                         "peak_gb": round(peak, 3), "search": search_lines(log) if name == "mine-dense" else ""})
            print(f"{name:<11} {n:>9,}  {seconds:9.1f} s wall  {cpu:9.1f} s cpu  {peak:7.2f} GB  {rows[-1]['search']}",
                  flush=True)
    print()
    print("| command | " + " | ".join(f"{n:,}" for n in sizes) + " | CPU time exponent | memory exponent |")
    print("|---|" + "---|" * (len(sizes) + 2))
    for name in commands:
        mine = [r for r in rows if r["command"] == name]
        cells = [f"{r['seconds']:.0f} s ({r['cpu_seconds']:.0f} s CPU), {r['peak_gb']:.2f} GB" for r in mine]
        ns = [r["size"] for r in mine]
        print(f"| {name} | " + " | ".join(cells) + f" | {slope(ns, [r['cpu_seconds'] for r in mine]):.2f}"
              f" | {slope(ns, [r['peak_gb'] for r in mine]):.2f} |")
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    sys.exit(main())
