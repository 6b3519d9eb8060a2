"""The miner toolkit shared by built-in and pack miners.

One module per part: :mod:`.pairs` (the rows, corpus and positives as arrays), :mod:`.sources`
(the candidate-source interface, scored and tiered sources), :mod:`.dense` (the model's top-k,
top-k within pools, k-means, row scores) and :mod:`.lexical` (BM25 over the block-wise index of
:mod:`.bm25_index`, key-term overlap): the engines every built-in miner uses, there for packs
too; :mod:`.guards` (the false-negative guards, declared once), :mod:`.selection` (choosing
negatives, random fill-ins), :mod:`.output` (the dataset and statistics), :mod:`.taxonomy` (an
is-a hierarchy for tiered miners) and :mod:`.miner` (the base classes, running a registered
miner). The names below are the public toolkit (``dense`` and ``lexical`` are imported on use:
they need numpy and, for BM25, bm25s); ``docs/mining.md`` describes every option.
"""

from embedtune_core.mining.guards import DEFAULT_RELATIVE_MARGIN, GuardOptions, failed_guards
from embedtune_core.mining.miner import RetrievalMiner, TieredMiner, check_request, run_miner
from embedtune_core.mining.output import build_result, expected_columns, stats_rows
from embedtune_core.mining.pairs import PairData, prepare_pairs
from embedtune_core.mining.selection import Selection, fill_short, select_negatives
from embedtune_core.mining.sources import CandidateSource, EmbeddingCache, ScoreSource, TieredSource
from embedtune_core.text import jaccard, loose_text_key, words

__all__ = [
    "DEFAULT_RELATIVE_MARGIN", "CandidateSource", "EmbeddingCache", "GuardOptions", "PairData", "RetrievalMiner",
    "ScoreSource", "Selection", "TieredMiner", "TieredSource", "build_result", "check_request", "expected_columns",
    "failed_guards", "fill_short", "jaccard", "loose_text_key", "prepare_pairs", "run_miner", "select_negatives",
    "stats_rows", "words",
]
