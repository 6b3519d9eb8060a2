"""Small fixed training sets of every shape, for the training tests (texts from the tiny model's
vocabulary corpus and its neighbourhood)."""

ANCHORS = [
    "the patient has a high fever and a cough",
    "the tenant must hold the landlord harmless",
    "the bond yield rose as interest rates increased",
    "abnormality of the heart rhythm",
    "loss of hearing in one ear",
    "small head circumference at birth",
    "a contract is a legally binding agreement",
    "a building permit is required for an extension",
]
POSITIVES = [
    "elevated body temperature with coughing",
    "indemnification clause in the lease agreement",
    "stock prices fell after the earnings report",
    "irregular heartbeat and palpitations",
    "deafness in one ear",
    "short stature and delayed growth",
    "the liability of the seller is limited",
    "the company reported quarterly revenue growth",
]
NEGATIVES = POSITIVES[3:] + POSITIVES[:3]
NEGATIVES_2 = POSITIVES[5:] + POSITIVES[:5]


def columns(dataset_type):
    """The columns of a small training set of ``dataset_type`` (as a dict of lists)."""
    if dataset_type in ("pairs", "ir"):
        return {"anchor": list(ANCHORS), "positive": list(POSITIVES)}
    if dataset_type in ("triplets", "nli"):
        return {"anchor": list(ANCHORS), "positive": list(POSITIVES), "negative": list(NEGATIVES)}
    if dataset_type == "hard-negatives":
        return {"anchor": list(ANCHORS), "positive": list(POSITIVES), "negative_1": list(NEGATIVES),
                "negative_2": list(NEGATIVES_2)}
    if dataset_type == "sts":
        first = ANCHORS + ANCHORS
        second = POSITIVES + NEGATIVES
        scores = [4.5, 4.0, 3.5, 4.8, 4.2, 3.8, 3.0, 2.5] + [0.5, 1.0, 0.2, 0.8, 1.5, 0.0, 0.4, 1.2]
        return {"sentence1": first, "sentence2": second, "score": scores}
    raise ValueError(dataset_type)


def dataset(dataset_type, repeat=1):
    from datasets import Dataset

    data = columns(dataset_type)
    return Dataset.from_dict({k: v * repeat for k, v in data.items()})


def setup(registry, config, loss="mnrl", options=None, callbacks=()):
    """What the pipeline hands ``train()``: ``config`` with what loss ``loss`` declared (in-batch
    negatives, how it reads rows) and the callback objects."""
    from embedtune_core.training.losses import loss_traits
    from embedtune_core.training.trainer import TrainSetup

    traits = loss_traits(registry, loss, registry.resolve_options("loss", loss, options or {}))
    return TrainSetup(config=config, traits=traits, callbacks=tuple(callbacks))
