"""Core CLI behaviour: version, help, config commands, no torch on import."""

import json
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
    path.write_text('name = "demo"\n[training]\nbatch_size = 8\ncallbacks = []\n[evaluation]\nmetrics = []\n', encoding="utf-8")
    result = invoke(["config", "show", str(path), "-s", "training.epochs=2", "--json"])
    assert result.exit_code == 0, result
    data = json.loads(result.stdout)
    assert data["training"]["batch_size"] == 8 and data["training"]["epochs"] == 2.0
    toml_out = invoke(["config", "show", str(path)])
    assert 'name = "demo"' in toml_out.stdout and "[training]" in toml_out.stdout
    result = invoke(["config", "validate", str(path)])
    assert result.exit_code == 0 and "valid" in result.stdout, result


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
