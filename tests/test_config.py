"""Config: TOML/YAML loading, overrides, validation messages."""

import pytest

from embedtune_core.config.files import apply_overrides, load_file
from embedtune_core.config.schema import RunConfig
from embedtune_core.errors import ConfigError


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_and_yaml_give_the_same_config(tmp_path):
    toml = write(tmp_path, "a.toml", 'name = "x"\n[training]\nbatch_size = 16\n[evaluation]\ndims = [32, 16]\n')
    yaml = write(tmp_path, "a.yaml", "name: x\ntraining:\n  batch_size: 16\nevaluation:\n  dims: [32, 16]\n")
    assert RunConfig.from_file(toml) == RunConfig.from_file(yaml)
    assert RunConfig.from_file(toml).training.batch_size == 16


def test_overrides_parse_values():
    data = apply_overrides({}, ["training.batch_size=64", "training.fp=1", "loss.options.dims=[8, 4]", "name=abc"])
    assert data["training"]["batch_size"] == 64
    assert data["loss"]["options"]["dims"] == [8, 4]
    with pytest.raises(ConfigError, match="unknown config key"):
        RunConfig.from_dict(data)


def test_overrides_take_a_toml_inline_table_as_the_config_file_writes_it():
    data = apply_overrides({}, ['loss.options={base = "mnrl", dims = [384, 64], weights = [1, 2]}',
                                "loss.options.base_options={scale: 20.0}", 'name="quoted name"'])
    assert data["loss"]["options"] == {"base": "mnrl", "dims": [384, 64], "weights": [1, 2], "base_options": {"scale": 20.0}}
    assert data["name"] == "quoted name"
    assert RunConfig.from_dict(data).loss.options["weights"] == [1, 2]


def test_defaults_follow_the_guide():
    config = RunConfig()
    assert config.training.warmup_ratio == 0.1
    assert config.training.epochs == 1
    assert config.model.trust_remote_code is False
    assert config is not None and RunConfig.from_dict({}) == config


@pytest.mark.parametrize(
    "data,key,fragment",
    [
        ({"trainig": {}}, "trainig", "did you mean 'training'"),
        ({"training": {"batch_sise": 8}}, "training.batch_sise", "did you mean 'training.batch_size'"),
        ({"training": {"batch_size": "big"}}, "training.batch_size", "must be an integer"),
        ({"training": {"batch_size": 0}}, "training.batch_size", "at least 1"),
        ({"training": {"warmup_ratio": 1.5}}, "training.warmup_ratio", "must be at most 1, got 1.5"),
        ({"training": {"learning_rate": float("nan")}}, "training.learning_rate", "finite"),
        ({"data": {"type": "pair"}}, "data.type", "did you mean 'pairs'"),
        ({"mining": {"output": "tuples"}}, "mining.output", "must be one of hard-negatives, triplets"),
        ({"model": {"trust_remote_code": "maybe"}}, "model.trust_remote_code", "true or false"),
        ({"training": {"seed": 2**32}}, "training.seed", "at most 4294967295"),
        ({"training": {"seed": -1}}, "training.seed", "at least 0"),
        ({"model": {"device": "gpu"}}, "model.device", "must be cpu, cuda, cuda:N or mps"),
        ({"name": "run\x00"}, "name", "NUL"),
        ({"data": {"columns": {"anchor": 3}}}, "data.columns", "entry 'anchor' must be a string"),
        ({"training": {"learning_rate": "fast"}}, "training.learning_rate", "must be a number"),
        ({"training": {"batch_size": "9" * 40}}, "training.batch_size", "too large"),
        ({"training": 3}, "training", "must be a table"),
        ({"name": "../escape"}, "name", "plain folder name"),
        ({"evaluation": {"dims": [0]}}, "evaluation.dims", "item 1 must be at least 1"),
    ],
)
def test_validation_names_the_key(data, key, fragment):
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict(data, source="cfg.toml")
    error = info.value
    assert error.key == key
    assert fragment in error.format()
    assert error.format().startswith("cfg.toml")


def test_toml_syntax_error_names_the_line(tmp_path):
    path = write(tmp_path, "bad.toml", 'name = "x"\n[training\nbatch_size = 3\n')
    with pytest.raises(ConfigError) as info:
        load_file(path)
    assert info.value.line == 2 and "invalid TOML" in info.value.message


def test_yaml_is_loaded_safely(tmp_path):
    path = write(tmp_path, "evil.yaml", "name: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_file(path)


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown config format"):
        load_file(write(tmp_path, "c.ini", "[x]\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_file(tmp_path / "nope.toml")


def test_numbers_written_as_text_are_numbers():
    """YAML reads 1e-5 as a string and -s hands every value over as text: a number is a number."""
    config = RunConfig.from_dict({"training": {"learning_rate": "2e-5", "batch_size": "64", "epochs": "1E0"}})
    assert config.training.learning_rate == 2e-5 and config.training.batch_size == 64 and config.training.epochs == 1.0
    data = apply_overrides({}, ["training.learning_rate=1e-4", "training.warmup_ratio=5E-2", "model.trust_remote_code=yes"])
    config = RunConfig.from_dict(data)
    assert config.training.learning_rate == 1e-4 and config.training.warmup_ratio == 0.05
    assert config.model.trust_remote_code is True
