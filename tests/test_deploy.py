"""`embedtune export` and exported variants: the ONNX round trip, int8 weights, quantized
embedding search against brute force, deployment.json and the recommended-variant rule, a variant
folder as a model, a pack's exporter, and bad input."""

import json
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

from embedtune_core import hookimpl
from embedtune_core.testing import TINY_CORPUS, invoke

DATA = "builtin:construction-faq"


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
    """One export of the tiny model (every built-in exporter, dims 32 and 16), shared."""
    out = tmp_path_factory.mktemp("export") / "deploy"
    result = invoke(["export", tiny_model, "--data", DATA, "-o", str(out), "--dims", "16", "--speed-texts", "40",
                     "--speed-rounds", "1", "-q"])
    assert result.exit_code == 0, result
    return out, result


def deployment_of(out):
    return json.loads((Path(out) / "deployment.json").read_text())


# -- the ONNX graph -------------------------------------------------------------------------------
def test_onnx_export_gives_the_pytorch_embeddings(tiny_model, tmp_path):
    from embedtune_core.deploy.onnx_export import export_onnx
    from embedtune_core.embedding.encode import encode
    from embedtune_core.embedding.exported import OnnxModel, VariantSpec
    from embedtune_core.embedding.models import load_model

    model = load_model(tiny_model, device="cpu")
    inputs = export_onnx(model, tmp_path)
    assert (tmp_path / "model.onnx").stat().st_size > 0 and (tmp_path / "tokenizer.json").exists()
    spec = VariantSpec(format="onnx", dims=32, full_dim=32, max_seq_length=inputs["max_seq_length"])
    texts = TINY_CORPUS + ["  padded text with spaces  ", "x"]
    onnx = OnnxModel(tmp_path, spec, threads=1).encode_texts(texts, batch_size=4)
    reference = encode(model, texts, batch_size=4)
    assert np.abs(onnx - reference).max() < 1e-4


def test_int8_variant_loads_and_ranks_like_the_float_model(exported):
    from embedtune_core.embedding.models import load_model

    out, _ = exported
    fp32 = load_model(str(out / "onnx-fp32-32d-float32"))
    int8 = load_model(str(out / "onnx-int8-32d-float32"))
    assert type(int8).__name__ == "OnnxModel" and int8.get_sentence_embedding_dimension() == 32
    a, b = fp32.encode_texts(TINY_CORPUS), int8.encode_texts(TINY_CORPUS)
    assert np.mean(np.sum(a * b, axis=1)) > 0.9  # the same embeddings, give or take the rounding
    import onnx

    graph = onnx.load(str(out / "onnx-int8-32d-float32" / "model.onnx")).graph
    int8 = [t.name for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8) >= 2 * 6  # the weights of every linear layer (the tiny BERT has 2 x 6)


# -- quantized embeddings against brute force -------------------------------------------------------
def brute_force(queries, corpus, embedding, candidates, k, ranges=None):
    """Candidates by the quantized product (ties: lower index), re-scored by the float query."""
    from embedtune_core.embedding.quantized import dequantize, quantize

    codes = quantize(corpus, embedding, ranges)
    stored = dequantize(codes, embedding, corpus.shape[1], ranges)
    if embedding == "binary":
        space_q, space_c = np.where(queries > 0, 1.0, -1.0), stored
    else:
        space_q, space_c = quantize(queries, "int8", ranges).astype(np.float64), codes.astype(np.float64)
    out = []
    for i, q in enumerate(space_q):
        coarse = space_c @ q
        picked = sorted(range(len(corpus)), key=lambda j: (-coarse[j], j))[:candidates]
        fine = {j: float(np.dot(queries[i], stored[j])) for j in picked}
        out.append(sorted(picked, key=lambda j: (-fine[j], j))[:k])
    return np.array(out)


@pytest.mark.parametrize("embedding", ["binary", "int8"])
def test_quantized_search_matches_brute_force(embedding):
    from embedtune_core.embedding.quantized import QuantizedSearch, int8_ranges

    rng = np.random.default_rng(3)
    corpus = rng.normal(size=(300, 24)).astype(np.float32)
    queries = rng.normal(size=(20, 24)).astype(np.float32)
    search = QuantizedSearch(corpus, embedding, candidates=30)
    scores, indices = search.search(queries, 10)
    ranges = int8_ranges(corpus) if embedding == "int8" else None
    assert (indices == brute_force(queries, corpus, embedding, 30, 10, ranges)).all()
    assert (np.diff(scores, axis=1) <= 1e-6).all()


def test_binary_codes_are_sentence_transformers_quantization():
    from sentence_transformers.util import quantize_embeddings

    from embedtune_core.embedding.quantized import bytes_per_vector, quantize

    vectors = np.random.default_rng(0).normal(size=(5, 64)).astype(np.float32)
    assert (quantize(vectors, "binary") == quantize_embeddings(vectors, precision="ubinary")).all()
    assert [bytes_per_vector(384, e) for e in ("float32", "int8", "binary")] == [1536, 384, 48]


# -- deployment.json --------------------------------------------------------------------------------
def test_deployment_json_lists_every_variant(exported):
    out, result = exported
    deployment = deployment_of(out)
    names = [v["name"] for v in deployment["variants"]]
    assert len(names) == 3 * 2 * 3 and len(set(names)) == len(names)
    assert deployment["reference"] == names[0] == "pytorch-fp32-32d-float32"
    assert deployment["recommended"] in names + [None]
    keys = {"name", "exporter", "backend", "weights", "dims", "embedding", "ndcg@10", "mrr@10", "retention",
            "texts_per_second", "speedup", "model_mb", "bytes_per_vector", "path"}
    for variant in deployment["variants"]:
        assert keys <= set(variant), keys - set(variant)
        assert Path(variant["path"]) == out / variant["name"]
        assert (Path(variant["path"]) / "embedtune_variant.json").exists()
    reference = deployment["variants"][0]
    assert reference["retention"] == 1.0 and reference["speedup"] == 1.0
    assert {(v["dims"], v["embedding"], v["bytes_per_vector"]) for v in deployment["variants"]} >= {
        (32, "float32", 128), (16, "int8", 16), (16, "binary", 2)}
    same_model = [v for v in deployment["variants"] if v["backend"] == "onnx" and v["weights"] == "fp32"]
    assert len({v["texts_per_second"] for v in same_model}) == 1  # speed belongs to the model
    assert "recommended" in result.stdout or "no variant keeps" in result.stdout or result.stdout == ""
    assert (out / "report.html").read_text().count("<svg") == 1


def variant(name, retention, tps, mb, size):
    return {"name": name, "retention": retention, "texts_per_second": tps, "model_mb": mb, "bytes_per_vector": size}


def test_the_recommended_variant_is_the_smallest_fastest_that_keeps_enough():
    from embedtune_core.deploy.deployment import recommend

    variants = [variant("reference", 1.0, 90, 90, 1536), variant("onnx-int8-float", 0.995, 200, 23, 1536),
                variant("onnx-int8-int8", 0.991, 200, 23, 384), variant("onnx-fp32-int8", 0.993, 110, 90, 384),
                variant("onnx-int8-binary", 0.96, 200, 23, 48), variant("onnx-int8-128-int8", 0.989, 200, 23, 128)]
    assert recommend(variants) == "onnx-int8-int8"  # 48 and 128 bytes keep < 99%; of the 384s the faster
    assert recommend(variants, 0.95) == "onnx-int8-binary"
    assert recommend(variants, 0.9999) == "reference"
    assert recommend([variant("a", 0.98, 1, 1, 1)]) is None
    tie = [variant("b", 0.995, 200, 30, 384), variant("a", 0.995, 200, 23, 384)]
    assert recommend(tie) == "a"  # same size and speed: the smaller model


# -- a variant folder is a model ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["onnx-int8-32d-binary", "onnx-fp32-16d-int8", "pytorch-fp32-16d-binary"])
def test_eval_of_a_variant_gives_its_recorded_metrics(exported, name):
    out, _ = exported
    recorded = next(v for v in deployment_of(out)["variants"] if v["name"] == name)
    result = invoke(["eval", "--model", str(out / name), "--data", DATA, "--json"])
    assert result.exit_code == 0, result
    after = json.loads(result.stdout)["after"]
    assert after["ndcg@10"] == pytest.approx(recorded["ndcg@10"], abs=1e-9)
    assert after["map@100"] == pytest.approx(recorded["map@100"], abs=1e-9)


def test_a_variant_is_a_baseline_and_a_mining_model(exported, tmp_path):
    out, _ = exported
    variant_folder = str(out / "onnx-int8-32d-int8")
    result = invoke(["eval", "--model", variant_folder, "--against", str(out / "pytorch-fp32-32d-float32"),
                     "--data", DATA, "--json"])
    assert result.exit_code == 0, result
    mined = tmp_path / "mined.jsonl"
    result = invoke(["mine", "--data", DATA, "--miner", "dense", "--model", variant_folder, "-n", "1",
                     "-o", str(mined)])
    assert result.exit_code == 0, result
    assert mined.read_text().count("\n") > 10


def test_model_files_of_a_variant_are_read_before_loading(exported):
    from embedtune_core.embedding.info import model_info

    out, _ = exported
    info = model_info(str(out / "onnx-int8-16d-float32"))
    assert info.dim == 16 and info.max_positions == 66


# -- exporters are plugins ----------------------------------------------------------------------------
PACK = '''
from embedtune_core import hookimpl


class CopyExporter:
    """The shared ONNX export under another runtime's name."""

    def __init__(self, note: str = "plain"):
        self.note = note

    def export(self, request):
        import shutil

        for name in ("model.onnx", "tokenizer.json"):
            shutil.copyfile(request.onnx() / name, request.folder / name)


@hookimpl
def register_exporters(register):
    register("copy", CopyExporter, format="onnx", backend="packrt", weights="fp32", default=False)
'''


def test_a_pack_outside_the_repository_adds_an_exporter(tiny_model, tmp_path, monkeypatch):
    (tmp_path / "pack").mkdir()
    (tmp_path / "pack" / "exporter_pack.py").write_text(textwrap.dedent(PACK), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "pack"))
    out = tmp_path / "deploy"
    result = invoke(["-p", "exporter_pack", "export", tiny_model, "--data", DATA, "-o", str(out), "--exporter",
                     "pytorch-fp32", "--exporter", "copy", "--exporter-option", "copy.note=x", "--embeddings",
                     "float32", "--speed-texts", "20", "--speed-rounds", "1", "-q"])
    assert result.exit_code == 0, result
    deployment = deployment_of(out)
    assert [v["name"] for v in deployment["variants"]] == ["pytorch-fp32-32d-float32", "packrt-fp32-32d-float32"]
    pack = deployment["variants"][1]
    assert pack["exporter"] == "copy" and pack["retention"] == pytest.approx(1.0, abs=1e-3)
    result = invoke(["eval", "--model", pack["path"], "--data", DATA, "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["after"]["ndcg@10"] == pytest.approx(pack["ndcg@10"])


def test_hook_register_exporters(registry, plugin_set, throwaway_plugin):
    from embedtune_core.plugins.registry import build_registry

    class Pack:
        @hookimpl
        def register_exporters(self, register):
            register("tp-export", lambda level=1: None, format="sentence-transformers", weights="fp16",
                     default=False)

    assert {"pytorch-fp32", "onnx-fp32", "onnx-int8"} <= set(registry.names("exporter"))
    assert registry.get("exporter", "pytorch-fp32").info.reference
    throwaway_plugin(Pack(), "tp-exporters")
    component = build_registry(plugin_set).get("exporter", "tp-export")
    assert component.info.weights == "fp16" and not component.info.default
    assert "level" in component.declaration.specs


# -- bad input --------------------------------------------------------------------------------------
def one_error(result, *words):
    assert result.exit_code == 2, result
    assert "Traceback" not in result.output and result.stderr.count("error:") == 1, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def test_a_damaged_variant_folder_is_one_error(exported, tmp_path):
    out, _ = exported
    missing = tmp_path / "missing"
    shutil.copytree(out / "onnx-int8-32d-float32", missing)
    (missing / "model.onnx").unlink()
    one_error(invoke(["eval", "--model", str(missing), "--data", DATA]), "model.onnx", "missing")
    garbled = tmp_path / "garbled"
    shutil.copytree(out / "onnx-int8-32d-float32", garbled)
    (garbled / "embedtune_variant.json").write_text('{"format": "onnx", "dims": ', encoding="utf-8")
    one_error(invoke(["eval", "--model", str(garbled), "--data", DATA]), "not valid JSON")
    wrong = tmp_path / "wrong"
    shutil.copytree(out / "onnx-int8-32d-float32", wrong)
    (wrong / "embedtune_variant.json").write_text('{"format": "tflite", "dims": 32, "full_dim": 32}', encoding="utf-8")
    one_error(invoke(["eval", "--model", str(wrong), "--data", DATA]), "format")
    broken = tmp_path / "broken"
    shutil.copytree(out / "onnx-int8-32d-float32", broken)
    (broken / "model.onnx").write_bytes(b"not a graph")
    one_error(invoke(["eval", "--model", str(broken), "--data", DATA]), "does not load")


def test_bad_export_invocations_are_one_error(exported, tiny_model, tmp_path):
    out, _ = exported
    one_error(invoke(["export", tiny_model, "--data", DATA, "-o", str(tmp_path / "x"), "--exporter", "onnx-int9"]),
              "unknown exporter 'onnx-int9'", "onnx-int8")
    one_error(invoke(["export", tiny_model, "--data", DATA, "-o", str(out)]), "not empty", "--overwrite")
    one_error(invoke(["export", tiny_model, "--data", DATA, "-o", str(tmp_path / "x"), "--exporter", "onnx-int8"]),
              "reference")
    one_error(invoke(["export", tiny_model, "--data", DATA, "-o", str(tmp_path / "x"), "--dims", "64"]), "dim 64")
    one_error(invoke(["export", str(out / "onnx-int8-32d-float32"), "--data", DATA, "-o", str(tmp_path / "x")]),
              "already an exported variant")
    one_error(invoke(["export", tiny_model, "--data", DATA, "-o", str(tmp_path / "x"), "--exporter-option",
                      "onnx-int8.per_chanel=false"]), "per_chanel")
    assert not (tmp_path / "x").exists()
    one_error(invoke(["train", "--model", str(out / "onnx-int8-32d-float32"), "--data", DATA, "--output",
                      str(tmp_path / "run")]), "cannot be trained")
