"""The built-in losses: built through the registry they are sentence-transformers' own classes with
the configured options, they reject bad options and mismatched data, and each one trains."""

import pytest
import torch

from embedtune_core.config.schema import TrainingConfig
from embedtune_core.errors import ComponentError
from embedtune_core.training.losses import build_loss, fit_dataset, loss_traits, recommend_loss
from embedtune_core.training.trainer import train
from training_samples import columns, dataset, setup


@pytest.fixture
def model(tiny_model):
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    model = SentenceTransformer(tiny_model, device="cpu")
    model.eval()
    return model


def st():
    from sentence_transformers.sentence_transformer import losses

    return losses


def batch_loss(loss, model, data):
    """The loss of one batch holding all of ``data`` (a dict of columns), without dropout."""
    model.eval()
    text_columns = [c for c in data if c not in ("score", "label")]
    features = [model.tokenize(data[c]) for c in text_columns]
    labels = torch.tensor(data["score"], dtype=torch.float32) if "score" in data else None
    with torch.no_grad():
        return float(loss(features, labels))


# -- the plugin builds sentence-transformers' class with the configured options -----------------
def test_mnrl_is_sentence_transformers_mnrl_with_options(registry, model):
    from sentence_transformers import util

    loss = build_loss(registry, "mnrl", model, {"scale": "10", "similarity": "dot"}, dataset_type="pairs")
    assert type(loss) is st().MultipleNegativesRankingLoss
    assert loss.scale == 10.0 and loss.similarity_fct is util.dot_score
    reference = st().MultipleNegativesRankingLoss(model, scale=10.0, similarity_fct=util.dot_score)
    data = columns("pairs")
    assert batch_loss(loss, model, data) == pytest.approx(batch_loss(reference, model, data), rel=1e-6)
    default = build_loss(registry, "mnrl", model, {}, dataset_type="pairs")
    assert default.scale == 20.0 and default.similarity_fct is util.cos_sim


@pytest.mark.parametrize("name", ["mnrl", "cached-mnrl"])
def test_mnrl_directions_and_hardness_reach_sentence_transformers(registry, model, name):
    """The symmetric / GTE terms and the hardness weighting are sentence-transformers' own options."""
    options = {"directions": ["query_to_doc", "doc_to_query"], "partition_mode": "per_direction",
               "hardness_mode": "in_batch_negatives", "hardness_strength": "9"}
    loss = build_loss(registry, name, model, options, dataset_type="pairs")
    assert loss.directions == ("query_to_doc", "doc_to_query") and loss.partition_mode == "per_direction"
    assert loss.hardness_mode == "in_batch_negatives" and loss.hardness_strength == 9.0
    reference = st().MultipleNegativesRankingLoss(model, directions=("query_to_doc", "doc_to_query"),
                                                  partition_mode="per_direction", hardness_mode="in_batch_negatives",
                                                  hardness_strength=9.0)
    data = columns("pairs")
    assert batch_loss(loss, model, data) == pytest.approx(batch_loss(reference, model, data), rel=1e-5)
    default = build_loss(registry, name, model, {}, dataset_type="pairs")
    assert default.directions == ("query_to_doc",) and default.hardness_mode is None


def test_cached_mnrl_matches_sentence_transformers(registry, model):
    loss = build_loss(registry, "cached-mnrl", model, {"mini_batch_size": "2", "scale": 30}, dataset_type="pairs")
    assert type(loss) is st().CachedMultipleNegativesRankingLoss
    assert loss.mini_batch_size == 2 and loss.scale == 30.0
    reference = st().CachedMultipleNegativesRankingLoss(model, scale=30.0, mini_batch_size=2)
    plain = st().MultipleNegativesRankingLoss(model, scale=30.0)
    data = columns("pairs")
    value = batch_loss(loss, model, data)
    assert value == pytest.approx(batch_loss(reference, model, data), rel=1e-6)
    assert value == pytest.approx(batch_loss(plain, model, data), rel=1e-5)  # same loss, less memory


def test_cosent_matches_sentence_transformers(registry, model):
    loss = build_loss(registry, "cosent", model, {"scale": "15"}, dataset_type="sts")
    assert type(loss) is st().CoSENTLoss and loss.scale == 15.0
    data = columns("sts")
    assert batch_loss(loss, model, data) == pytest.approx(batch_loss(st().CoSENTLoss(model, scale=15.0), model, data), rel=1e-6)


@pytest.mark.parametrize("distance,margin", [("manhattan", "0.3"), ("cosine", None), ("euclidean", None)])
def test_triplet_matches_sentence_transformers(registry, model, distance, margin):
    options = {"distance": distance} | ({"margin": margin} if margin is not None else {})
    loss = build_loss(registry, "triplet", model, options, dataset_type="triplets")
    metric = getattr(st().TripletDistanceMetric, distance.upper())
    expected_margin = float(margin) if margin is not None else {"cosine": 0.5}.get(distance, 5.0)
    assert type(loss) is st().TripletLoss
    assert loss.distance_metric is metric and loss.triplet_margin == expected_margin
    reference = st().TripletLoss(model, distance_metric=metric, triplet_margin=expected_margin)
    data = columns("triplets")
    assert batch_loss(loss, model, data) == pytest.approx(batch_loss(reference, model, data), rel=1e-6)


def test_matryoshka_matches_sentence_transformers(registry, model):
    options = {"base": "mnrl", "base_options": {"scale": 10}, "dims": "32,16", "weights": [1, 0.5]}
    loss = build_loss(registry, "matryoshka", model, options, dataset_type="pairs")
    assert type(loss) is st().MatryoshkaLoss and type(loss.loss) is st().MultipleNegativesRankingLoss
    assert loss.matryoshka_dims == (32, 16) and loss.matryoshka_weights == (1.0, 0.5) and loss.loss.scale == 10.0
    reference = st().MatryoshkaLoss(model, st().MultipleNegativesRankingLoss(model, scale=10.0), [32, 16], [1, 0.5])
    data = columns("pairs")
    assert batch_loss(loss, model, data) == pytest.approx(batch_loss(reference, model, data), rel=1e-6)


def test_matryoshka_default_dims():
    from embedtune_plugins.losses import default_matryoshka_dims

    assert default_matryoshka_dims(384) == [384, 256, 128, 64]
    assert default_matryoshka_dims(768) == [768, 512, 256, 128, 64]
    assert default_matryoshka_dims(1024) == [1024, 512, 256, 128, 64]
    assert default_matryoshka_dims(32) == [32, 16, 8]


def test_matryoshka_default_dims_follow_the_model(registry, model):
    loss = build_loss(registry, "matryoshka", model, {"base": "cosent"}, dataset_type="sts")
    assert loss.matryoshka_dims == (32, 16, 8) and type(loss.loss) is st().CoSENTLoss


# -- bad options and mismatched data ------------------------------------------------------------
@pytest.mark.parametrize(
    "name,options,words",
    [
        ("mnrl", {"similarity": "cos"}, ["similarity", "cosine, dot", "did you mean 'cosine'"]),
        ("mnrl", {"scale": "big"}, ["scale", "must be a number"]),
        ("mnrl", {"scale": 0}, ["scale", "greater than 0"]),
        ("mnrl", {"temperature": 0.05}, ["loss 'mnrl' has no option 'temperature'", "it accepts: scale"]),
        ("mnrl", {"directions": ["doc_to_query"]}, ["directions", "must include query_to_doc"]),
        ("mnrl", {"directions": ["query_to_doc", "doc_to_doc"], "partition_mode": "per_direction"},
         ["partition_mode", "use partition_mode = joint"]),
        ("mnrl", {"hardness_mode": "hard"}, ["hardness_mode", "in_batch_negatives"]),
        ("cached-mnrl", {"mini_batch_size": "0"}, ["mini_batch_size", "at least 1"]),
        ("cached-mnrl", {"mini_batch_size": "many"}, ["mini_batch_size", "must be an integer"]),
        ("triplet", {"distance": "l2"}, ["distance", "cosine, euclidean, manhattan"]),
        ("triplet", {"margin": "-1"}, ["margin", "at least 0"]),
        ("matryoshka", {"dims": [64, 32]}, ["dims", "exceed the model's embedding size 32"]),
        ("matryoshka", {"dims": "32,16", "weights": "1"}, ["weights", "1 values for 2 dims"]),
        ("matryoshka", {"base": "mnlr"}, ["unknown loss 'mnlr'", "did you mean 'mnrl'"]),
        ("matryoshka", {"base": "matryoshka"}, ["cannot wrap 'matryoshka'"]),
        ("matryoshka", {"base_options": "scale=3"}, ["base_options", "must be a table"]),
        ("matryoshka", {"base_options": {"scale": "x"}}, ["loss 'mnrl' option 'scale'"]),
    ],
)
def test_bad_loss_options_are_clear_errors(registry, model, name, options, words):
    with pytest.raises(ComponentError) as info:
        build_loss(registry, name, model, options, dataset_type="triplets")
    message = info.value.format()
    for word in words:
        assert word in message, message


def test_recommended_losses(registry):
    assert {t: recommend_loss(registry, t) for t in ("pairs", "triplets", "nli", "ir", "hard-negatives", "sts")} == {
        "pairs": "mnrl", "triplets": "mnrl", "nli": "mnrl", "ir": "mnrl", "hard-negatives": "mnrl", "sts": "cosent"}


def test_no_loss_named_uses_the_guides_choice(registry, model):
    assert type(build_loss(registry, None, model, {}, dataset_type="sts")) is st().CoSENTLoss
    assert type(build_loss(registry, None, model, {}, dataset_type="ir")) is st().MultipleNegativesRankingLoss


def test_accepts_mismatch_is_an_error_before_training(registry, model):
    with pytest.raises(ComponentError) as info:
        build_loss(registry, "cosent", model, {}, dataset_type="pairs")
    assert "loss 'cosent' trains on sts, but the data is pairs; use mnrl" in info.value.format()
    with pytest.raises(ComponentError) as info:
        build_loss(registry, "triplet", model, {}, dataset_type="pairs")
    assert "trains on triplets, nli, hard-negatives, but the data is pairs" in info.value.format()
    with pytest.raises(ComponentError) as info:
        build_loss(registry, "mnrl", model, {}, dataset_type="sts")
    assert "use cosent" in info.value.format()


def test_matryoshka_accepts_what_its_base_accepts(registry, model):
    def accepts(options):
        return loss_traits(registry, "matryoshka", registry.resolve_options("loss", "matryoshka", options)).accepts

    assert set(accepts({})) == {"pairs", "triplets", "nli", "ir", "hard-negatives"}
    assert accepts({"base": "cosent"}) == ("sts",)
    with pytest.raises(ComponentError) as info:
        build_loss(registry, "matryoshka", model, {"base": "cosent"}, dataset_type="pairs")
    assert "loss 'matryoshka' (base 'cosent') trains on sts, but the data is pairs" in info.value.format()


def test_losses_are_listed_with_what_they_accept(registry):
    listed = {c.name: c.as_dict() for c in registry.components("loss")}
    assert {"mnrl", "cached-mnrl", "cosent", "triplet", "matryoshka"} <= set(listed)
    assert listed["cosent"]["accepts"] == ["sts"]
    assert listed["mnrl"]["plugin"] == "losses"


def test_triplet_reads_hard_negatives_as_one_triplet_per_negative(registry, model):
    loss = build_loss(registry, "triplet", model, {}, dataset_type="hard-negatives")
    assert isinstance(loss, st().TripletLoss)
    triplet = loss_traits(registry, "triplet", {}).input
    fitted = fit_dataset(dataset("hard-negatives"), triplet)
    assert triplet == "triplets" and fitted.column_names == ["anchor", "positive", "negative"] and len(fitted) == 16
    mnrl = loss_traits(registry, "mnrl", {}).input
    assert fit_dataset(dataset("hard-negatives"), mnrl).column_names == ["anchor", "positive", "negative_1", "negative_2"]


# -- each loss trains --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,dataset_type,options",
    [
        ("mnrl", "pairs", {}),
        ("mnrl", "hard-negatives", {}),
        ("cached-mnrl", "pairs", {"mini_batch_size": 3}),
        ("cosent", "sts", {}),
        ("triplet", "triplets", {"distance": "cosine"}),
        ("triplet", "hard-negatives", {}),
        ("matryoshka", "pairs", {}),
        ("matryoshka", "sts", {"base": "cosent", "dims": [32, 16]}),
    ],
)
def test_each_loss_lowers_its_loss(registry, model, tmp_path, name, dataset_type, options):
    loss = build_loss(registry, name, model, options, dataset_type=dataset_type)
    training = setup(registry, TrainingConfig(max_steps=8, batch_size=8, learning_rate=1e-3, warmup_ratio=0.0,
                                              logging_steps=1), name, options)
    data = fit_dataset(dataset(dataset_type), training.traits.input).to_dict()
    before = batch_loss(loss, model, data)
    result = train(model, dataset(dataset_type), loss, training, tmp_path / "run", quiet=True)
    after = batch_loss(loss, model, data)
    assert result.global_step == 8 and result.reason == "completed"
    assert after < before, (before, after)
    logged = [row["loss"] for row in result.log_history if "loss" in row]
    assert len(logged) == 8 and all(v == v for v in logged)


def in_batch_retrieval_loss(model, dim):
    """MNRL's loss of the sample pairs computed from embeddings truncated to ``dim``."""
    from sentence_transformers import util

    anchors = model.encode(columns("pairs")["anchor"], convert_to_tensor=True, truncate_dim=dim)
    positives = model.encode(columns("pairs")["positive"], convert_to_tensor=True, truncate_dim=dim)
    assert anchors.shape[1] == dim
    scores = util.cos_sim(anchors, positives) * 20
    return float(torch.nn.functional.cross_entropy(scores, torch.arange(len(anchors))))


def test_matryoshka_embeddings_truncated_to_each_dim_still_work(registry, model, tmp_path):
    loss = build_loss(registry, "matryoshka", model, {}, dataset_type="pairs")
    dims = list(loss.matryoshka_dims)
    assert dims == [32, 16, 8]
    before = {dim: in_batch_retrieval_loss(model, dim) for dim in dims}
    config = TrainingConfig(max_steps=10, batch_size=8, learning_rate=1e-3, warmup_ratio=0.0)
    train(model, dataset("pairs"), loss, setup(registry, config, "matryoshka"), tmp_path / "run", quiet=True)
    model.eval()
    after = {dim: in_batch_retrieval_loss(model, dim) for dim in dims}
    for dim in dims:
        assert after[dim] < before[dim], (dim, before, after)


# -- the documented custom loss -----------------------------------------------------------------
def docs_example(heading):
    """The first python code block under ``heading`` in docs/writing-plugins.md, as a module."""
    import pathlib
    import re
    import types

    text = (pathlib.Path(__file__).resolve().parent.parent / "docs" / "writing-plugins.md").read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    module = types.ModuleType(f"docs_example_{heading.replace(' ', '_')}")
    exec(compile(code, f"docs/writing-plugins.md ({heading})", "exec"), module.__dict__)
    return module, code


def test_docs_custom_loss_example_registers_and_trains(plugin_set, throwaway_plugin, model, tmp_path):
    from embedtune_core.plugins.registry import build_registry

    module, code = docs_example("A custom loss")
    assert len(code.strip().splitlines()) <= 22
    throwaway_plugin(module, "docs-losses")
    registry = build_registry(plugin_set)
    component = registry.get("loss", "cosine-margin")
    assert component.plugin == "docs-losses" and set(component.info.accepts) == {"pairs", "triplets", "hard-negatives"}
    with pytest.raises(ComponentError, match="trains on pairs, triplets, hard-negatives, but the data is sts"):
        build_loss(registry, "cosine-margin", model, {}, dataset_type="sts")
    # a margin above 1 keeps every pair inside it, so the loss is positive whatever the start
    loss = build_loss(registry, "cosine-margin", model, {"margin": "1.5"}, dataset_type="pairs")
    assert isinstance(loss, module.CosineMarginLoss) and loss.margin == 1.5
    data = columns("pairs")
    before = batch_loss(loss, model, data)
    config = TrainingConfig(max_steps=6, batch_size=8, learning_rate=1e-3, warmup_ratio=0.0)
    result = train(model, dataset("pairs"), loss, setup(registry, config, "cosine-margin"), tmp_path / "run", quiet=True)
    assert result.global_step == 6 and batch_loss(loss, model, data) < before
    wrapped = build_loss(registry, "matryoshka", model, {"base": "cosine-margin", "dims": [32, 16]}, dataset_type="pairs")
    assert isinstance(wrapped.loss, module.CosineMarginLoss)


def test_docs_custom_callback_example_gets_its_options(plugin_set, throwaway_plugin, model, tmp_path, capsys):
    from embedtune_core.plugins.registry import build_registry

    module, _ = docs_example("A custom callback")
    throwaway_plugin(module, "docs-callbacks")
    registry = build_registry(plugin_set)
    loss = build_loss(registry, "mnrl", model, {}, dataset_type="pairs")
    printer = registry.create("callback", "print-eval-loss", prefix="dev")
    config = TrainingConfig(max_steps=2, batch_size=4, eval_steps=1)
    train(model, dataset("pairs"), loss, setup(registry, config, callbacks=[printer]), tmp_path / "run",
          eval_dataset=dataset("pairs"), quiet=True)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("dev ")]
    assert [line.split()[1] for line in lines] == ["1", "2"]


def test_gist_is_sentence_transformers_gist_with_the_base_model_as_guide(registry, model):
    import copy

    loss = build_loss(registry, "gist", model, {"temperature": "0.05"}, dataset_type="pairs")
    assert type(loss) is st().GISTEmbedLoss and loss.temperature == 0.05
    assert loss.guide is not model and not any(p.requires_grad for p in loss.guide.parameters())
    guide_state = {k: v.clone() for k, v in loss.guide.state_dict().items()}
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in guide_state.items())  # the base model
    reference = st().GISTEmbedLoss(model, copy.deepcopy(model), temperature=0.05)
    data = columns("pairs")
    assert batch_loss(loss, model, data) == pytest.approx(batch_loss(reference, model, data), rel=1e-6)
    assert loss_traits(registry, "gist", {}).in_batch_negatives  # the no-duplicates sampler


def test_gist_masks_what_the_guide_ranks_above_the_positive(registry, model):
    """Two rows with the same positive text: each row's in-batch candidate scores exactly its own
    positive under any guide, so with a margin it is masked as a false negative and no longer
    counts; MNRL at the same temperature counts it, and its loss is at least log 2 (the two
    candidates tie). Independent of the (random) weights of the tiny model."""
    import math

    same = {"anchor": ["a cough and fever", "fever and a cough"], "positive": ["coughing with fever", "coughing with fever"]}
    gist = build_loss(registry, "gist", model, {"temperature": 0.05, "margin": 0.05}, dataset_type="pairs")
    mnrl = build_loss(registry, "mnrl", model, {"scale": 20}, dataset_type="pairs")
    assert batch_loss(mnrl, model, same) >= math.log(2) - 1e-4
    assert batch_loss(gist, model, same) < batch_loss(mnrl, model, same) - 0.1


def test_gist_trains(registry, model, tmp_path):
    loss = build_loss(registry, "gist", model, {}, dataset_type="pairs")
    training = setup(registry, TrainingConfig(max_steps=6, batch_size=8, learning_rate=1e-3, warmup_ratio=0.0), "gist")
    data = columns("pairs")
    before = batch_loss(loss, model, data)
    guide_before = {k: v.clone() for k, v in loss.guide.state_dict().items()}
    result = train(model, dataset("pairs"), loss, training, tmp_path / "run", quiet=True)
    assert result.global_step == 6 and batch_loss(loss, model, data) < before
    assert all(torch.equal(v, loss.guide.state_dict()[k]) for k, v in guide_before.items())  # the guide stays
