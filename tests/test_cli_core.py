"""Core CLI behaviour: version, help, config commands, no torch on import."""

import json

import pytest
import subprocess
import sys

from embedtune_core import __version__
from embedtune_core.testing import invoke


def test_version():
    result = invoke(["--version"])
    assert result.exit_code == 0 and __version__ in result.stdout


def test_import_and_help_do_not_import_torch():
    code = (
        "import sys\n"
        "import embedtune_core, embedtune_core.config.schema, embedtune_core.plugins.registry\n"
        "from embedtune_core.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'datasets') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY=\n" in out or out.rstrip().endswith("HEAVY="), out


def test_every_command_help_works_without_torch():
    code = (
        "import sys\nfrom embedtune_core.cli.main import cli, main\nimport click\n"
        "ctx = click.Context(cli)\n"
        "for name in cli.list_commands(ctx):\n"
        "    try:\n        main([name, '--help'])\n    except SystemExit as e:\n        assert e.code in (0, None), (name, e.code)\n"
        "print('TORCH' if 'torch' in sys.modules else 'NOTORCH')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("NOTORCH")


def test_config_show_and_validate(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('name = "demo"\n[training]\nbatch_size = 8\ncallbacks = []\n[evaluation]\nmetrics = ["ndcg@5"]\n',
                    encoding="utf-8")
    result = invoke(["config", "show", str(path), "-s", "training.epochs=2", "--json"])
    assert result.exit_code == 0, result
    data = json.loads(result.stdout)
    assert data["training"]["batch_size"] == 8 and data["training"]["epochs"] == 2.0
    toml_out = invoke(["config", "show", str(path)])
    assert 'name = "demo"' in toml_out.stdout and "[training]" in toml_out.stdout
    result = invoke(["config", "validate", str(path)])
    assert result.exit_code == 0 and "valid" in result.stdout, result
    result = invoke(["config", "validate", str(path), "-s", "evaluation.metrics=[]"])
    assert result.exit_code == 2 and "evaluation.metrics is empty, but the run ranks its held-out data" in result.stderr


def test_config_show_prints_the_resolved_values_a_run_records(tmp_path):
    """The default source is a bundled IR set: its type decides the loss, the loss's declaration
    its options and the sampler, the machine the precision and device."""
    path = tmp_path / "p.toml"
    path.write_text('name = "demo"\n[mining]\nminer = "bm25"\n', encoding="utf-8")
    data = json.loads(invoke(["config", "show", str(path), "--json"]).stdout)
    assert data["data"]["type"] == "ir" and data["loss"]["name"] == "mnrl"
    assert data["loss"]["options"] == {"scale": 20.0, "similarity": "cosine", "gather_across_devices": False,
                                       "directions": ["query_to_doc"], "partition_mode": "joint",
                                       "hardness_mode": None, "hardness_strength": 0.0}
    assert data["training"]["batch_sampler"] == "no_duplicates" and data["training"]["precision"] == "fp32"
    assert data["model"]["device"] == "cpu" and data["mining"]["options"]["k1"] == 1.5
    assert data["training"]["callbacks"] == ["metrics-log", "progress"]
    assert data["steps"] == ["mine", "evaluate-before", "train", "evaluate-after"]  # the default pipeline, resolved


@pytest.mark.parametrize("text, key, fragment", [
    ('[loss]\nname = "mnrl"\noptions = { scael = 20 }\n', "loss.options.scael", "has no option 'scael'"),
    ('[data]\ncolumns = { anchor = 3 }\n', "data.columns", "entry 'anchor' must be a string"),
    ('name = "a\\u0000b"\n', "name", "NUL"),
    ('[training]\nseed = 5000000000\n', "training.seed", "at most 4294967295"),
    ('[model]\ndevice = "gpu"\n', "model.device", "must be cpu, cuda, cuda:N or mps"),
    ('[model]\nmax_seq_length = 4096\n', "model.max_seq_length", "more than the model's 512 position embeddings"),
    ('output_dir = "taken"\n', None, "the run folder path is a file"),
])
def test_config_validate_runs_the_checks_run_runs(tmp_path, monkeypatch, text, key, fragment):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "run").write_text("a file where the run folder would be")
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    for command in (["config", "validate", str(path)], ["run", str(path)]):
        result = invoke(command)
        assert result.exit_code == 2 and fragment in result.stderr, (command, result)
        assert key is None or f"key '{key}'" in result.stderr
        assert not (tmp_path / "runs").exists()


def test_config_validate_rejects_unknown_key_and_component(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text("[trainng]\nbatch_size = 8\n", encoding="utf-8")
    result = invoke(["config", "validate", str(path)])
    assert result.exit_code == 2
    assert "did you mean 'training'" in result.stderr and "Traceback" not in result.output
    path.write_text('[loss]\nname = "no-such-loss"\n', encoding="utf-8")
    result = invoke(["config", "validate", str(path)])
    assert result.exit_code == 2 and "loss.name" in result.stderr and "unknown loss" in result.stderr


def test_components_unknown_kind_is_a_clear_error():
    result = invoke(["components", "lossez"])
    assert result.exit_code == 2 and "unknown component kind" in result.stderr
