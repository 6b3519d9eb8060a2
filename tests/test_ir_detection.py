"""A BEIR or TREC IR folder is recognised without --type / data.type."""

import shutil
from pathlib import Path

import pytest

from embedtune_core.config.schema import RunConfig
from embedtune_core.data.loading import detect_type, load_data
from embedtune_core.testing import invoke

IR = Path(__file__).parent / "data" / "ir"


def _trec_folder(tmp_path):
    folder = tmp_path / "trec"
    folder.mkdir()
    for name in ("corpus.jsonl", "queries.jsonl"):
        shutil.copy(IR / name, folder / name)
    lines = []
    for raw in (IR / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        query, doc, grade = raw.split("\t")
        lines.append(f"{query} 0 {doc} {grade}")
    (folder / "qrels.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_layouts_that_show_their_type(tmp_path):
    assert detect_type(str(IR)) == "ir"
    assert detect_type(str(_trec_folder(tmp_path))) == "ir"
    half = tmp_path / "half"
    half.mkdir()
    shutil.copy(IR / "corpus.jsonl", half / "corpus.jsonl")
    shutil.copy(IR / "queries.jsonl", half / "queries.jsonl")
    assert detect_type(str(half)) is None  # no qrels: not an IR folder
    assert detect_type(str(IR / "corpus.jsonl")) is None and detect_type(None) is None


@pytest.mark.parametrize("folder", ["beir", "trec"])
def test_data_validate_needs_no_type_for_an_ir_folder(tmp_path, folder):
    path = IR if folder == "beir" else _trec_folder(tmp_path)
    result = invoke(["data", "validate", str(path)])
    assert result.exit_code == 0, result
    assert "valid ir data" in result.stdout


def test_a_pipeline_written_by_init_reads_a_beir_folder(tmp_path, monkeypatch, registry):
    monkeypatch.chdir(tmp_path)
    assert invoke(["init", "--type", "ir", "-o", "pipeline.toml"]).exit_code == 0
    text = (tmp_path / "pipeline.toml").read_text(encoding="utf-8")
    assert '\ntype = "ir"\n' in text  # init names the type it was asked for
    # the user points source at their BEIR folder and drops the type line: still IR
    edited = text.replace('source = "builtin:hpo-lay"', f'source = "{IR}"').replace('\ntype = "ir"\n', "\n")
    (tmp_path / "pipeline.toml").write_text(edited, encoding="utf-8")
    config = RunConfig.from_file(tmp_path / "pipeline.toml")
    assert config.data.type is None
    bundle = load_data(registry, config.data.source, dataset_type=config.data.type, reader=config.data.reader)
    assert bundle.dataset_type == "ir" and len(bundle.train.queries) > 0
    assert invoke(["config", "validate", "pipeline.toml"]).exit_code == 0


def test_files_of_rows_still_need_a_type(tmp_path):
    result = invoke(["data", "validate", str(Path(__file__).parent / "data" / "pairs.jsonl")])
    assert result.exit_code == 2 and "cannot tell the type" in result.stderr


def test_init_writes_the_data_it_is_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert invoke(["init", "--type", "ir", "--data", str(IR), "-o", "pipeline.toml"]).exit_code == 0
    config = RunConfig.from_file(tmp_path / "pipeline.toml")
    assert config.data.source == str(IR) and config.data.type == "ir"
