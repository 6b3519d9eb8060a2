"""`embedtune new-pack`: the scaffold is complete, installs, and passes its own test straight away."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from embedtune_core.testing import invoke

ROOT = Path(__file__).resolve().parent.parent


def env_with(*paths):
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def embedtune(*args, env):
    code = "import sys; from embedtune_core.cli.main import main; main(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    parent = tmp_path_factory.mktemp("packs")
    result = invoke(["new-pack", "acme-bank", "--dir", str(parent)])
    assert result.exit_code == 0, result
    return parent / "embedtune-acme-bank"


def test_scaffold_has_every_part(pack):
    files = sorted(str(p.relative_to(pack)) for p in pack.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "embedtune_acme_bank/__init__.py",
        "embedtune_acme_bank/losses.py",
        "embedtune_acme_bank/miners.py",
        "embedtune_acme_bank/steps.py",
        "pyproject.toml",
        "tests/conftest.py",
        "tests/test_embedtune_acme_bank.py",
    ]
    pyproject = (pack / "pyproject.toml").read_text()
    assert 'name = "embedtune-acme-bank"' in pyproject
    assert '[project.entry-points.embedtune]\nacme-bank = "embedtune_acme_bank"' in pyproject
    assert "{{" not in "".join(p.read_text() for p in pack.rglob("*") if p.is_file())


def test_refuses_to_overwrite(pack):
    marker = pack / "README.md"
    before = marker.read_text()
    result = invoke(["new-pack", "acme-bank", "--dir", str(pack.parent)])
    assert result.exit_code == 2 and "folder exists" in result.stderr and "Traceback" not in result.output
    assert marker.read_text() == before


@pytest.mark.parametrize("bad", ["acme bank", "1bank", "acme_bank", "acme--bank", "embedtune-"])
def test_rejects_unusable_names(tmp_path, bad):
    result = invoke(["new-pack", bad, "--dir", str(tmp_path)])
    assert result.exit_code == 2 and "not a usable pack name" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_distribution_prefix_is_not_doubled(tmp_path):
    result = invoke(["new-pack", "embedtune-shop", "--dir", str(tmp_path)])
    assert result.exit_code == 0 and (tmp_path / "embedtune-shop" / "embedtune_shop" / "miners.py").exists()


def test_new_pack_help_does_not_import_torch():
    code = ("import sys; from embedtune_core.cli.main import main\n"
            "try:\n    main(['new-pack', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize("where", ["pack", "parent"])
def test_scaffold_passes_its_own_test_before_it_is_installed(pack, where):
    """From the pack's folder or from the folder above it, with nothing on PYTHONPATH."""
    cwd = pack if where == "pack" else pack.parent
    env = env_with()
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(pack / "tests")],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "5 passed" in result.stdout


def test_scaffold_loads_as_an_explicit_plugin(pack):
    result = embedtune("-p", "embedtune_acme_bank", "components", "--json", env=env_with(pack))
    assert result.returncode == 0, result.stderr
    mine = {(c["kind"], c["qualified_name"]) for c in json.loads(result.stdout) if c["plugin"] == "embedtune_acme_bank"}
    assert mine == {("negative_miner", "embedtune_acme_bank:word-overlap"),
                    ("loss", "embedtune_acme_bank:in-batch-softmax"),
                    ("step", "embedtune_acme_bank:positive-gap")}


@pytest.mark.slow
def test_scaffold_installs_with_pip_and_is_listed(pack, tmp_path):
    """A real `pip install` (into a throwaway target folder): the entry point metadata it writes
    makes `embedtune plugins` list the pack under its entry-point name."""
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target),
         str(pack)],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"),
    )
    assert install.returncode == 0, install.stderr[-3000:]
    assert list(target.glob("embedtune_acme_bank-0.1.0.dist-info/entry_points.txt"))
    listed = embedtune("plugins", env=env_with(target))
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["acme-bank"]["error"] is None and rows["acme-bank"]["version"] == "0.1.0"
    assert sorted(rows["acme-bank"]["hooks"]) == ["register_losses", "register_negative_miners", "register_pipeline_steps"]
    resolved = embedtune("components", "--json", env=env_with(target))
    names = {c["qualified_name"] for c in json.loads(resolved.stdout)}
    assert {"acme-bank:word-overlap", "acme-bank:in-batch-softmax"} <= names
