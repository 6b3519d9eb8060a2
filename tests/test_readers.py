"""The six type readers: every format, column mapping, splits, and the conversions."""

import json
import os
import shutil

import pytest

from embedtune_core.data.loading import (
    check_leakage,
    eval_ir,
    load_data,
    split_train_eval,
    to_ir,
    to_training_dataset,
)
from embedtune_core.errors import DataError
from embedtune_core.types import DATASET_TYPES, DataBundle, IRData

HERE = os.path.dirname(__file__)
DATA = os.path.join(HERE, "data")

ROW_SAMPLES = {
    "pairs": "pairs.jsonl",
    "triplets": "triplets.jsonl",
    "sts": "sts.jsonl",
    "nli": "nli.jsonl",
    "hard-negatives": "hard_negatives.jsonl",
}


def sample(name):
    return os.path.join(DATA, name)


def rows_of(path):
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_one_reader_per_type_with_its_type(registry):
    for dataset_type in DATASET_TYPES:
        component = registry.get("dataset_reader", dataset_type)
        assert component.info.dataset_type == dataset_type
        assert not component.info.bundled


@pytest.mark.parametrize("dataset_type", sorted(ROW_SAMPLES))
def test_jsonl_reads_every_record_in_conventional_columns(registry, dataset_type):
    path = sample(ROW_SAMPLES[dataset_type])
    bundle = load_data(registry, path, dataset_type=dataset_type)
    assert isinstance(bundle, DataBundle) and bundle.dataset_type == dataset_type
    columns = bundle.train.column_names
    assert tuple(columns[: len(DATASET_TYPES[dataset_type])]) == DATASET_TYPES[dataset_type]
    raw = rows_of(path)
    assert len(bundle.train) == len(raw)
    first_text_field = {"pairs": "anchor", "triplets": "anchor", "sts": "sentence1", "nli": "premise"}
    if dataset_type in first_text_field:
        field = first_text_field[dataset_type]
        assert bundle.train[field] == [r[field] for r in raw]


@pytest.mark.parametrize("fmt", ["parquet", "saved", "json-array", "csv", "tsv"])
@pytest.mark.parametrize("dataset_type", sorted(ROW_SAMPLES))
def test_every_format_gives_the_same_rows(registry, tmp_path, dataset_type, fmt):
    import datasets

    reference = load_data(registry, sample(ROW_SAMPLES[dataset_type]), dataset_type=dataset_type).train
    rows = reference.to_list()
    if fmt == "parquet":
        path = tmp_path / "data.parquet"
        reference.to_parquet(str(path))
    elif fmt == "saved":
        path = tmp_path / "saved"
        datasets.DatasetDict({"train": reference}).save_to_disk(str(path))
    elif fmt == "json-array":
        path = tmp_path / "data.json"
        path.write_text(json.dumps(rows), encoding="utf-8")
    else:
        import csv

        path = tmp_path / f"data.{fmt}"
        with open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t" if fmt == "tsv" else ",")
            writer.writerow(reference.column_names)
            for row in rows:
                writer.writerow([row[c] for c in reference.column_names])
    bundle = load_data(registry, str(path), dataset_type=dataset_type)
    assert bundle.train.column_names == reference.column_names
    got = bundle.train.to_list()
    if dataset_type == "sts":
        assert [r["score"] for r in got] == pytest.approx([r["score"] for r in rows])
        got = [{k: v for k, v in r.items() if k != "score"} for r in got]
        rows = [{k: v for k, v in r.items() if k != "score"} for r in rows]
    assert got == rows


def test_csv_aliases_and_explicit_column_mapping(registry, tmp_path):
    bundle = load_data(registry, sample("pairs.csv"), dataset_type="pairs")
    assert bundle.train.column_names == ["anchor", "positive"]
    assert bundle.train[0]["anchor"] == rows_of(sample("pairs.jsonl"))[0]["anchor"]
    path = tmp_path / "faq.jsonl"
    path.write_text(
        "\n".join(json.dumps({"id": i, "q_text": f"question {i}", "a_text": f"answer {i}", "other": 1}) for i in range(3)),
        encoding="utf-8",
    )
    mapped = load_data(registry, str(path), dataset_type="pairs", options={"columns": {"anchor": "q_text", "positive": "a_text"}})
    assert mapped.train.to_list() == [{"anchor": f"question {i}", "positive": f"answer {i}"} for i in range(3)]
    with pytest.raises(DataError) as err:
        load_data(registry, str(path), dataset_type="pairs")
    assert "missing field 'anchor'" in err.value.message and "q_text" in err.value.hint


def test_snli_file_as_users_have_it(registry):
    bundle = load_data(registry, sample("snli_sample.jsonl"), dataset_type="nli")
    raw = rows_of(sample("snli_sample.jsonl"))
    labelled = [r for r in raw if r["gold_label"] != "-"]
    assert len(bundle.train) == len(labelled)
    assert bundle.train["label"] == [{"entailment": 0, "neutral": 1, "contradiction": 2}[r["gold_label"]] for r in labelled]
    assert bundle.info["reader_notes"]["skipped_unlabelled"] == 1


def test_nli_numeric_and_string_labels_agree(registry):
    by_name = load_data(registry, sample("nli.jsonl"), dataset_type="nli").train
    by_number = load_data(registry, sample("nli.csv"), dataset_type="nli").train
    assert by_name.to_list() == by_number.to_list()


def test_sts_score_range_rescales_to_0_5(registry, tmp_path):
    path = tmp_path / "sts01.jsonl"
    path.write_text(
        "\n".join(json.dumps({"sentence1": f"a{i}", "sentence2": f"b{i}", "score": s}) for i, s in enumerate([0.0, 0.5, 1.0])),
        encoding="utf-8",
    )
    bundle = load_data(registry, str(path), dataset_type="sts", options={"score_range": [0, 1]})
    assert bundle.train["score"] == pytest.approx([0.0, 2.5, 5.0])


def test_hard_negatives_list_and_numbered_columns(registry):
    listed = load_data(registry, sample("hard_negatives.jsonl"), dataset_type="hard-negatives").train
    raw = rows_of(sample("hard_negatives.jsonl"))
    assert listed.column_names == ["anchor", "positive", "negative_1", "negative_2"]
    assert listed["negative_2"] == [r["negatives"][1] for r in raw]
    numbered = load_data(registry, sample("hard_negatives.csv"), dataset_type="hard-negatives").train
    assert numbered.column_names == ["anchor", "positive", "negative_1", "negative_2", "negative_3"]


def test_split_folder_gives_train_and_eval(registry):
    bundle = load_data(registry, os.path.join(DATA, "pairs_splits"), dataset_type="pairs")
    assert len(bundle.train) == 8 and len(bundle.eval) == 2


def test_saved_dataset_dict_picks_splits(registry, tmp_path):
    import datasets

    ds = load_data(registry, sample("pairs.jsonl"), dataset_type="pairs").train
    datasets.DatasetDict({"train": ds.select(range(7)), "test": ds.select(range(7, 10))}).save_to_disk(str(tmp_path / "dd"))
    bundle = load_data(registry, str(tmp_path / "dd"), dataset_type="pairs")
    assert len(bundle.train) == 7 and len(bundle.eval) == 3
    swapped = load_data(registry, str(tmp_path / "dd"), dataset_type="pairs", options={"split": "test", "eval_split": "train"})
    assert len(swapped.train) == 3 and len(swapped.eval) == 7


def test_hub_names_go_through_load_dataset(registry, monkeypatch):
    import datasets

    calls = []
    ds = datasets.Dataset.from_dict({"question": ["q1", "q2"], "answer": ["a1", "a2"]})

    def fake_load_dataset(path, **kwargs):
        calls.append((path, kwargs))
        return ds

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    bundle = load_data(registry, "someone/faq-pairs", dataset_type="pairs", options={"split": "train", "subset": "en"})
    assert calls == [("someone/faq-pairs", {"split": "train", "name": "en"})]
    assert bundle.train.to_list() == [{"anchor": "q1", "positive": "a1"}, {"anchor": "q2", "positive": "a2"}]


def test_hub_failure_is_a_data_error(registry, monkeypatch):
    import datasets

    def offline(path, **kwargs):
        raise ConnectionError("Couldn't reach the hub")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError) as err:
        load_data(registry, "someone/missing", dataset_type="pairs")
    assert "someone/missing" in err.value.message and "local file" in err.value.hint


def test_ir_beir_folder(registry):
    bundle = load_data(registry, os.path.join(DATA, "ir"), dataset_type="ir")
    assert isinstance(bundle.train, IRData) and isinstance(bundle.eval, IRData)
    assert set(bundle.train.queries) == {"q1", "q2", "q3", "q4"}
    assert bundle.train.qrels["q1"] == {"d1": 2, "d2": 0}
    assert bundle.eval.qrels == {"q5": {"d5": 1}, "q6": {"d6": 2, "d4": 1}}
    assert bundle.train.corpus["d1"].startswith("Macrocephaly Occipitofrontal")
    assert bundle.train.corpus["d6"] == "An irregular or abnormal heart rhythm."
    assert len(bundle.corpus) == 6
    assert eval_ir(bundle) is bundle.eval


def test_ir_trec_qrels(registry):
    bundle = load_data(registry, os.path.join(DATA, "ir_trec"), dataset_type="ir")
    assert bundle.eval is None
    assert len(bundle.train.queries) == 6
    assert bundle.train.qrels["q6"] == {"d6": 2}
    pairs, training_type = to_training_dataset(bundle)
    assert training_type == "pairs" and pairs.column_names == ["anchor", "positive"]
    # q1's grade-0 judgement of d2 is not a training pair
    assert len(pairs) == 6
    assert ("big head", bundle.train.corpus["d2"]) not in list(zip(pairs["anchor"], pairs["positive"]))


def test_nli_to_triplets(registry):
    bundle = load_data(registry, sample("nli.jsonl"), dataset_type="nli")
    triplets, training_type = to_training_dataset(bundle)
    assert training_type == "triplets"
    assert triplets.column_names == ["anchor", "positive", "negative"]
    raw = rows_of(sample("nli.jsonl"))
    labels = {(r["premise"], r["hypothesis"]): r["label"] for r in raw}
    for row in triplets:
        assert labels[(row["anchor"], row["positive"])] == "entailment"
        assert labels[(row["anchor"], row["negative"])] == "contradiction"
    # the tenant premise has no contradiction: it is left out
    assert "The tenant must pay rent monthly." not in triplets["anchor"]
    assert len(triplets) == 4


def test_to_training_dataset_keeps_other_types(registry):
    for dataset_type in ("pairs", "triplets", "sts", "hard-negatives"):
        bundle = load_data(registry, sample(ROW_SAMPLES[dataset_type]), dataset_type=dataset_type)
        dataset, training_type = to_training_dataset(bundle)
        assert training_type == dataset_type and dataset.to_list() == bundle.train.to_list()


def test_to_ir_from_triplets_and_hard_negatives(registry):
    triplets = load_data(registry, sample("triplets.jsonl"), dataset_type="triplets").train
    ir = to_ir(triplets, "triplets")
    assert len(ir.queries) == 10 and len(ir.corpus) == 20
    for query_id, text in ir.queries.items():
        (doc_id, grade), = ir.qrels[query_id].items()
        row = triplets[triplets["anchor"].index(text)]
        assert ir.corpus[doc_id] == row["positive"] and grade == 1
    assert to_ir(triplets, "triplets").queries == ir.queries  # stable ids
    hard = load_data(registry, sample("hard_negatives.jsonl"), dataset_type="hard-negatives").train
    hard_ir = to_ir(hard, "hard-negatives")
    texts = set(hard["positive"]) | set(hard["negative_1"]) | set(hard["negative_2"])
    assert set(hard_ir.corpus.values()) == texts


def test_to_ir_deduplicates_and_groups_anchors():
    import datasets

    ds = datasets.Dataset.from_dict({"anchor": ["a", "a", "b"], "positive": ["x", "y", "x"]})
    ir = to_ir(ds, "pairs")
    assert len(ir.queries) == 2 and len(ir.corpus) == 2
    by_text = {t: q for q, t in ir.queries.items()}
    assert len(ir.qrels[by_text["a"]]) == 2 and len(ir.qrels[by_text["b"]]) == 1


def test_split_train_eval_never_splits_an_anchor():
    import datasets

    anchors = [f"anchor {i // 3}" for i in range(60)]
    ds = datasets.Dataset.from_dict({"anchor": anchors, "positive": [f"p{i}" for i in range(60)]})
    train, evaluation = split_train_eval(ds, 0.25, seed=3)
    assert len(train) + len(evaluation) == 60
    assert set(train["anchor"]).isdisjoint(evaluation["anchor"])
    assert len(set(evaluation["anchor"])) == 5
    again = split_train_eval(ds, 0.25, seed=3)
    assert again[1]["anchor"] == evaluation["anchor"]
    assert check_leakage(train, evaluation, "pairs") == []
    assert split_train_eval(ds, 0.25, seed=4)[1]["anchor"] != evaluation["anchor"]


def test_split_ir_by_query_keeps_corpus(registry):
    bundle = load_data(registry, os.path.join(DATA, "ir_trec"), dataset_type="ir")
    train, evaluation = split_train_eval(bundle, 0.5, seed=0)
    assert set(train.queries).isdisjoint(evaluation.queries)
    assert set(train.queries) | set(evaluation.queries) == set(bundle.train.queries)
    assert train.corpus == evaluation.corpus == bundle.train.corpus
    assert all(train.qrels[q] == bundle.train.qrels[q] for q in train.queries)


def test_check_leakage_finds_shared_anchors_up_to_case_and_spacing():
    import datasets

    train = datasets.Dataset.from_dict({"anchor": ["Big head", "fever"], "positive": ["x", "y"]})
    evaluation = datasets.Dataset.from_dict({"anchor": ["big  head", "cough", "Big head"], "positive": ["x", "z", "x"]})
    assert check_leakage(train, evaluation, "pairs") == ["big  head"]


def test_eval_ir_converts_row_eval_splits(registry):
    bundle = load_data(registry, os.path.join(DATA, "pairs_splits"), dataset_type="pairs")
    ir = eval_ir(bundle)
    assert sorted(ir.queries.values()) == sorted(bundle.eval["anchor"])
    sts = load_data(registry, sample("sts.jsonl"), dataset_type="sts")
    assert eval_ir(sts) is None


def test_bom_and_crlf_files(registry, tmp_path):
    jsonl = tmp_path / "crlf.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + b'{"anchor": "q1", "positive": "a1"}\r\n\r\n{"anchor": "q2", "positive": "a2"}\r\n')
    assert load_data(registry, str(jsonl), dataset_type="pairs").train.to_list() == [
        {"anchor": "q1", "positive": "a1"},
        {"anchor": "q2", "positive": "a2"},
    ]
    csv_path = tmp_path / "crlf.csv"
    csv_path.write_bytes(b"\xef\xbb\xbfanchor,positive\r\nq1,a1\r\nq2,\r\n")
    with pytest.raises(DataError) as err:
        load_data(registry, str(csv_path), dataset_type="pairs")
    assert err.value.line == 3 and err.value.key == "positive"


def test_a_folder_with_one_split_is_never_evaluated_on_its_training_rows(registry, tmp_path):
    """One split file (even one named test), a saved dataset with one split, an IR folder with
    one qrels file: that split trains and there is no held-out split read from the same rows."""
    import datasets

    source = os.path.join(DATA, "pairs_splits", "test.jsonl")
    for name in ("train", "test", "validation"):
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(source, folder / f"{name}.jsonl")
        bundle = load_data(registry, str(folder), dataset_type="pairs")
        assert bundle.eval is None and bundle.train.to_list() == rows_of(source), name
    rows = load_data(registry, sample("pairs.jsonl"), dataset_type="pairs").train
    datasets.DatasetDict({"test": rows}).save_to_disk(str(tmp_path / "dd"))
    saved = load_data(registry, str(tmp_path / "dd"), dataset_type="pairs")
    assert saved.eval is None and saved.train.to_list() == rows.to_list()
    ir = tmp_path / "ir"
    shutil.copytree(os.path.join(DATA, "ir"), ir)
    for qrels in sorted((ir / "qrels").iterdir())[1:]:
        qrels.unlink()
    only = load_data(registry, str(ir), dataset_type="ir")
    assert only.eval is None and only.train.qrels


def test_a_folder_with_train_and_test_holds_out_exactly_the_test_file(registry):
    folder = os.path.join(DATA, "pairs_splits")
    bundle = load_data(registry, folder, dataset_type="pairs")
    assert bundle.train.to_list() == rows_of(os.path.join(folder, "train.jsonl"))
    assert bundle.eval.to_list() == rows_of(os.path.join(folder, "test.jsonl"))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_term_in_another_case_stays_on_its_side_of_the_split(seed):
    """'Term7' and 'term7' are one term: a pairs split never trains on one and holds out the other."""
    from embedtune_core.data.splits import pairs_bundle

    rows = [(f"Term{i}", f"definition {i}") for i in range(40)] + [(f"term{i}", f"another text {i}") for i in range(40)]
    bundle = pairs_bundle(rows, eval_fraction=0.3, seed=seed, source="test", info={})
    train = {a.lower() for a in bundle.train["anchor"]}
    held = {a.lower() for a in bundle.eval["anchor"]}
    assert held and train and not train & held
    assert len(bundle.train) + len(bundle.eval) == 80


@pytest.mark.parametrize("seed", [1, 2])
def test_an_ir_split_trains_and_mines_on_training_documents_only(seed):
    """Held-out queries are ranked against every document, but no held-out query, nor a document
    judged for one, is in the training data or the mining corpus."""
    from embedtune_core.data.splits import ir_bundle

    rows = [(f"q{i}", f"question {i}", f"d{i}", f"answer {i}") for i in range(30)]
    rows += [(f"q{i}b", f"question {i} again", f"d{i}", f"answer {i}") for i in range(0, 30, 3)]  # a group of two
    bundle = ir_bundle(rows, eval_fraction=0.3, seed=seed, source="test", info={})
    held_docs = {d for judged in bundle.eval.qrels.values() for d in judged}
    assert held_docs and not held_docs & set(bundle.train.corpus)
    assert set(bundle.corpus) == set(bundle.train.corpus.values())
    assert not set(bundle.eval.queries) & set(bundle.train.queries)
    assert len(bundle.eval.corpus) == 30 and len(bundle.train.corpus) == 30 - len(held_docs)
    assert bundle.info["eval_queries"] == len(bundle.eval.queries) and bundle.info["documents"] == 30
