"""Built-in negative miners: bm25, dense, contradiction, partial-match, domain-confusion and
curriculum.

The retrieval-based ones (bm25, dense, partial-match, domain-confusion) are
:class:`~embedtune_core.mining.miner.RetrievalMiner` subclasses over the toolkit's candidate
sources (:mod:`embedtune_core.mining.dense`, :mod:`embedtune_core.mining.lexical`) and share its
guards; each declares its options as an option set deriving from
:class:`~embedtune_core.mining.guards.GuardOptions`. See ``docs/mining.md`` for every option and
its default.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import attrs

from embedtune_core import hookimpl
from embedtune_core.data.shapes import negative_columns, nli_label
from embedtune_core.text import text_key
from embedtune_core.mining.dense import DenseSource, PoolSource, embed, encoder_gap, kmeans, request_encoder, \
    row_scores, search_device
from embedtune_core.mining.guards import GuardOptions
from embedtune_core.mining.lexical import BM25Source, OverlapSource
from embedtune_core.mining.miner import RetrievalMiner
from embedtune_core.mining.sources import CandidateSource
from embedtune_core.plugins.options import Range

#: the dataset types `embedtune init` mines for (every type with (anchor, positive) rows)
ROW_TYPES = ("pairs", "triplets", "nli", "ir", "hard-negatives")


# -- dense --------------------------------------------------------------------------------------
@attrs.frozen
class DenseOptions(GuardOptions):
    """The dense miner's options: the guards, and the search backend."""

    index: Annotated[Literal["auto", "torch", "faiss"],
                     "top-k backend: faiss for corpora of faiss_min_corpus texts when installed"] = "auto"
    faiss_min_corpus: Annotated[int, Range(ge=1), "corpus size from which index=auto uses faiss"] = 500_000


class DenseMiner(RetrievalMiner):
    """Hardest negatives by the model's cosine similarity, through the guards."""

    name = "dense"

    def __init__(self, options: DenseOptions) -> None:
        super().__init__(options)

    def source(self, data: Any, request: Any) -> CandidateSource:
        encoder = request_encoder(request, self.name)
        corpus_emb = embed(encoder, data.corpus)
        query_emb = embed(encoder, data.queries)
        return DenseSource(query_emb, corpus_emb, device=search_device(request), index=self.options.index,
                           faiss_min_corpus=self.options.faiss_min_corpus)


# -- bm25 ---------------------------------------------------------------------------------------
@attrs.frozen
class BM25Options(GuardOptions):
    """The bm25 miner's options: the guards, and BM25's."""

    k1: Annotated[float, Range(ge=0), "BM25 term-frequency saturation"] = 1.5
    b: Annotated[float, Range(ge=0, le=1), "BM25 length normalisation"] = 0.75
    method: Annotated[Literal["lucene", "robertson", "atire", "bm25l", "bm25+"], "BM25 variant (bm25s)"] = "lucene"
    stopwords: Annotated[str | None, "stopword list for bm25s' tokenizer (none: keep all words)"] = "en"
    backend: Annotated[Literal["numpy", "numba", "auto"], "bm25s retrieval backend"] = "numpy"


class BM25Miner(RetrievalMiner):
    """Lexical hard negatives: BM25 top-k (bm25s), through the guards."""

    name = "bm25"

    def __init__(self, options: BM25Options) -> None:
        super().__init__(options)

    def source(self, data: Any, request: Any) -> CandidateSource:
        o = self.options
        return BM25Source(data, k1=o.k1, b=o.b, method=o.method, stopwords=o.stopwords, backend=o.backend)


# -- partial match ------------------------------------------------------------------------------
@attrs.frozen
class PartialMatchOptions(GuardOptions):
    """The partial-match miner's options: the guards, and what counts as a key term."""

    stopwords: Annotated[str | None, "stopword list for bm25s' tokenizer"] = "en"
    entity_weight: Annotated[float, Range(ge=0), "weight factor of name- or code-like query words"] = 2.0
    min_shared: Annotated[int, Range(ge=1), "a candidate shares at least this many key terms with the query"] = 1
    max_overlap: Annotated[float, Range(gt=0, le=1),
                           "drop candidates covering more than this share of the query's key-term weight"] = 0.8


class PartialMatchMiner(RetrievalMiner):
    """Negatives that share key terms or names with the query without covering it, through the guards."""

    name = "partial-match"

    def __init__(self, options: PartialMatchOptions) -> None:
        super().__init__(options)

    def source(self, data: Any, request: Any) -> CandidateSource:
        o = self.options
        return OverlapSource(data, stopwords=o.stopwords, entity_weight=o.entity_weight, min_shared=o.min_shared,
                             max_overlap=o.max_overlap)


# -- domain confusion ---------------------------------------------------------------------------
@attrs.frozen
class DomainConfusionOptions(GuardOptions):
    """The domain-confusion miner's options: the guards, and how groups are found."""

    clusters: Annotated[int | None, Range(ge=2),
                        "k-means clusters when there are no categories (default: sqrt(corpus/2), 2 to 100)"] = None
    neighbours: Annotated[int, Range(ge=1), "how many nearest other categories negatives come from"] = 1


class DomainConfusionMiner(RetrievalMiner):
    """Negatives from the nearest other category (or k-means cluster of the corpus embeddings)."""

    name = "domain-confusion"

    def __init__(self, options: DomainConfusionOptions) -> None:
        super().__init__(options)

    def source(self, data: Any, request: Any) -> CandidateSource:
        import numpy as np

        from embedtune_core.errors import ConfigError, DataError

        encoder = request_encoder(request, self.name)
        corpus_emb = embed(encoder, data.corpus)
        query_emb = embed(encoder, data.queries)
        if data.categories is not None and any(c is not None for c in data.categories):
            names = list(dict.fromkeys(c for c in data.categories if c is not None))
            index = {c: i for i, c in enumerate(names)}
            labels = np.array([index.get(c, -1) if c is not None else -1 for c in data.categories], dtype=np.int64)
            if len(names) < 2:
                raise DataError(f"domain-confusion needs at least 2 categories, the data has {len(names)}")
            centroids = np.stack([corpus_emb[labels == i].mean(axis=0) for i in range(len(names))])
            centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
            how = "categories"
        else:
            k = self.options.clusters or int(min(100, max(2, round((len(data.corpus) / 2) ** 0.5))))
            if k < 2 or k > len(data.corpus):
                raise ConfigError(f"clusters must be between 2 and the corpus size ({len(data.corpus)}), got {k}", key="mining.options.clusters")
            labels, centroids = kmeans(corpus_emb, k, request.seed)
            names = [f"cluster-{i}" for i in range(k)]
            how = "k-means"
        n_groups = len(names)
        neighbours = max(1, min(self.options.neighbours, n_groups - 1))
        similarity = centroids @ centroids.T
        np.fill_diagonal(similarity, -np.inf)
        nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :neighbours]
        # each query belongs to the group of its positives (the most common), else its nearest centroid
        group_of = np.empty(len(data.queries), dtype=np.int64)
        for q, positives in enumerate(data.query_positives):
            found = labels[positives]
            found = found[found >= 0]
            group_of[q] = np.bincount(found).argmax() if len(found) else int(np.argmax(centroids @ query_emb[q]))
        pools = {g: np.flatnonzero(np.isin(labels, nearest[g])) for g in range(n_groups)}
        self.groups = {
            "groups": how,
            "group_count": n_groups,
            "nearest": {names[g]: [names[h] for h in nearest[g].tolist()] for g in range(min(n_groups, 50))},
        }
        return PoolSource(query_emb, corpus_emb, group_of, pools, device=search_device(request))

    def mine(self, request: Any) -> Any:
        result = super().mine(request)
        result.stats.extra.update(getattr(self, "groups", {}))
        return result



# -- contradiction ------------------------------------------------------------------------------
class ContradictionMiner:
    """NLI: a premise's contradiction hypotheses are its negatives, its entailments its positives.

    Takes NLI records (premise, hypothesis, label), or rows whose negatives are already
    labelled (the (anchor, positive, negative) triplets training data is built from NLI): then
    all labelled negatives of an anchor are pooled as its candidates.

    Options: ``sampling`` (top: the first n contradictions in data order; random: a seeded
    sample), ``short`` (fill, the default, with random hypotheses of other premises; or drop). Contradictions
    are labelled negatives, so no score margin applies; a contradiction whose text equals one of
    the premise's entailments (or the premise) is dropped as a likely false negative.
    """

    name = "contradiction"

    def __init__(
        self,
        sampling: Annotated[Literal["top", "random"], "top: the first n contradictions; random: a seeded sample"] = "top",
        short: Annotated[Literal["fill", "drop"], "premises with fewer contradictions than asked: fill with other "
                                                  "premises' hypotheses, or drop"] = "fill",
    ) -> None:
        self.sampling, self.short = sampling, short

    @staticmethod
    def group(dataset: Any) -> Any:
        """The records grouped by premise (a :class:`~embedtune_core.data.shapes.PremiseGroups`):
        from NLI records, or from (anchor, positive, negative...) rows whose negatives are labelled
        ones (the triplets training data built from NLI)."""
        from embedtune_core.data.shapes import PremiseGroups
        from embedtune_core.errors import DataError

        columns = list(getattr(dataset, "column_names", []) or [])
        groups = PremiseGroups()
        if {"premise", "hypothesis", "label"} <= set(columns):
            records = zip(dataset["premise"], dataset["hypothesis"], dataset["label"])
            for i, (premise, hypothesis, label) in enumerate(records):
                if not isinstance(premise, str) or not isinstance(hypothesis, str) or not premise.strip() or not hypothesis.strip():
                    raise DataError("premise and hypothesis must be non-empty text", record=i + 1)
                try:
                    groups.add(premise, hypothesis, nli_label(label))
                except (ValueError, TypeError):
                    raise DataError(f"NLI label must be 0/1/2 or entailment/neutral/contradiction, got {label!r}",
                                    record=i + 1, key="label") from None
            return groups
        negatives = negative_columns(columns)
        if {"anchor", "positive"} <= set(columns) and negatives:
            rows = zip(dataset["anchor"], dataset["positive"], *[dataset[c] for c in negatives])
            for i, (anchor, positive, *wrong) in enumerate(rows):
                if not all(isinstance(t, str) and t.strip() for t in (anchor, positive, *wrong)):
                    raise DataError("anchor, positive and negatives must be non-empty text", record=i + 1)
                groups.add(anchor, positive, 0)
                for text in wrong:
                    groups.add(anchor, text, 2)
            return groups
        raise DataError(
            "the contradiction miner needs NLI data (premise, hypothesis, label) or rows with labelled negatives",
            hint=f"columns found: {', '.join(columns) or 'none'}; use --type nli",
        )

    def mine(self, request: Any) -> Any:
        import attrs
        import datasets
        import numpy as np

        from embedtune_core.errors import DataError
        from embedtune_core.mining.miner import check_request
        from embedtune_core.mining.output import build_result
        from embedtune_core.mining.pairs import prepare_pairs
        from embedtune_core.mining.selection import Selection, fill_short
        from embedtune_core.types import MiningStats

        check_request(request)
        groups = self.group(request.dataset)
        premises, entail, contra, neutral = groups.premises, groups.entailments, groups.contradictions, groups.neutral
        keys = [k for k in premises if k in entail]
        if not keys:
            raise DataError("the data has no entailment (positive): no (premise, positive) pair to add negatives to")
        pairs = datasets.Dataset.from_dict(
            {
                "anchor": [premises[k] for k in keys for _ in dict.fromkeys(entail[k])],
                "positive": [h for k in keys for h in dict.fromkeys(entail[k])],
            }
        )
        hypotheses = list(dict.fromkeys(h for k in premises for h in contra.get(k, []) + entail.get(k, [])))
        corpus = list(dict.fromkeys(hypotheses + list(request.corpus or [])))
        data = prepare_pairs(attrs.evolve(request, dataset=pairs, corpus=corpus, categories=None))
        where = {t: i for i, t in enumerate(data.corpus)}
        n = request.num_negatives
        stats = MiningStats()
        dropped = {"known_positive": 0, "same_text": 0}
        negatives = np.full((len(data.queries), n), -1, dtype=np.int64)
        rng = np.random.default_rng(request.seed)
        for q, anchor in enumerate(data.queries):
            candidates = np.array([where[h] for h in dict.fromkeys(contra.get(text_key(anchor), []))],
                                  dtype=np.int64)
            stats.candidates_seen += len(candidates)
            if not len(candidates):
                continue
            qs = np.full(len(candidates), q)
            known = data.is_known_positive(qs, candidates)
            same = ~known & data.is_same_text(qs, candidates)
            dropped["known_positive"] += int(known.sum())
            dropped["same_text"] += int(same.sum())
            candidates = candidates[~known & ~same]
            if self.sampling == "random" and len(candidates) > n:
                candidates = candidates[np.sort(rng.choice(len(candidates), size=n, replace=False))]
            negatives[q, : min(n, len(candidates))] = candidates[:n]
        stats.extra["dropped"] = dropped
        selection = Selection(negatives=negatives, scores=None, positive_scores=np.zeros(len(data.queries), dtype=np.float32))
        if self.short == "fill":
            zero = lambda qs, ds: np.zeros(len(ds), dtype=np.float32)  # noqa: E731
            pool = np.array([where[h] for h in corpus], dtype=np.int64)
            selection.scores = np.zeros(negatives.shape, dtype=np.float32)
            fill_short(data, selection, GuardOptions(relative_margin=None), zero, rng, np.arange(len(data.queries)), stats, pool=pool)
        result = build_result(data, selection, request, stats, score_gaps=False)
        if request.encoder is not None:
            result.stats.mean_score_gap = encoder_gap(request.encoder, result.dataset)
        result.stats.extra.update(
            {
                "premises": len(premises),
                "premises_without_entailment": len(premises) - len(keys),
                "neutral_ignored": neutral,
                "score": "labels (no scores)" if request.encoder is None else "model cosine scores",
            }
        )
        return result



# -- curriculum ---------------------------------------------------------------------------------
@attrs.frozen
class CurriculumOptions:
    """The curriculum miner's options; the base miner's own go in ``base_options``."""

    base: Annotated[str, "the miner whose negatives are ordered"] = "dense"
    base_options: Annotated[dict, "options of the base miner"] = attrs.field(factory=dict)
    bands: Annotated[int, Range(ge=1), "number of hardness bands"] = 3
    schedule: Annotated[Literal["sequential", "cumulative"], "bands once each, or growing stages"] = "sequential"
    shuffle_within: Annotated[bool, "shuffle rows within a band (else sort them by hardness)"] = True


class CurriculumMiner:
    """Wraps another miner and orders its rows from easy to hard negatives, by score band.

    Each row's hardness is the mean cosine of its negatives to the anchor minus the positive's
    (by the model); rows are cut into ``bands`` equal-size bands of hardness. ``schedule``:
    ``sequential`` writes band 1 (easiest) to band N once each; ``cumulative`` writes N stages,
    stage k holding bands 1..k (easy rows repeat, the data grows harder stage by stage). Rows
    are shuffled within a band (stage) unless ``shuffle_within`` is false. It is registered with
    ``ordered=True``, so the pipeline trains its rows in this order (a sequential sampler).
    """

    name = "curriculum"

    def __init__(self, options: CurriculumOptions, *, registry: Any) -> None:
        self.options = options
        self.base_component = registry.get("negative_miner", options.base)
        # base_options were resolved with the wrapper's (metadata wraps="base")
        self.base = registry.build(self.base_component, options=options.base_options)

    def mine(self, request: Any) -> Any:
        import attrs
        import numpy as np

        from embedtune_core.mining.miner import check_request

        from embedtune_core.embedding.encode import CachedEncoder
        from embedtune_core.plugins.calling import contained

        check_request(request)
        encoder = CachedEncoder(request_encoder(request, self.name))
        with contained(self.base_component, "mining for the curriculum"):
            result = self.base.mine(attrs.evolve(request, encoder=encoder))
        dataset, stats = result.dataset, result.stats
        bands = self.options.bands
        if len(dataset) == 0:
            stats.extra.update({"base": self.options.base, "bands": []})
            return result
        pos, neg = row_scores(encoder, dataset)
        hardness = neg.mean(axis=1) - pos
        rng = np.random.default_rng(request.seed)
        rank = np.empty(len(hardness), dtype=np.int64)
        rank[np.argsort(hardness, kind="stable")] = np.arange(len(hardness))
        band = np.minimum(rank * bands // len(hardness), bands - 1)

        def arrange(rows: Any) -> Any:
            if self.options.shuffle_within:
                return rng.permutation(rows)
            return rows[np.argsort(hardness[rows], kind="stable")]

        order = []
        summary = []
        for b in range(bands):
            rows = np.flatnonzero(band == b)
            summary.append(
                {
                    "band": b + 1,
                    "rows": int(len(rows)),
                    "hardness_min": float(hardness[rows].min()) if len(rows) else None,
                    "hardness_max": float(hardness[rows].max()) if len(rows) else None,
                }
            )
            if self.options.schedule == "cumulative":
                order.append(arrange(np.flatnonzero(band <= b)))
            else:
                order.append(arrange(rows))
        order = np.concatenate(order) if order else np.zeros(0, dtype=np.int64)
        result.dataset = dataset.select(order.tolist())
        stats.extra.update(
            {
                "base": self.options.base,
                "schedule": self.options.schedule,
                "bands": summary,
            }
        )
        stats.rows_out = len(order)
        if result.stats.mean_score_gap is None:
            result.stats.mean_score_gap = float(-hardness.mean())
        return result


@hookimpl
def register_negative_miners(register):
    register("bm25", BM25Miner, description="lexical top-k with BM25 (bm25s), through the false-negative guards",
             model="guards")
    register("dense", DenseMiner, description="top-k by the model's cosine similarity, through the false-negative guards",
             model="required", default_for=ROW_TYPES)
    register("contradiction", ContradictionMiner,
             description="NLI: a premise's contradiction hypotheses (or labelled negatives) as its negatives",
             model="no", input="nli", accepts=("nli", "triplets", "hard-negatives"))
    register("partial-match", PartialMatchMiner,
             description="texts sharing key terms or names with the query without covering it", model="guards")
    register("domain-confusion", DomainConfusionMiner,
             description="negatives from the nearest other category or k-means cluster", model="required")
    register("curriculum", CurriculumMiner, description="wraps a miner and orders its rows from easy to hard negatives",
             model="required", ordered=True, wraps="base")
