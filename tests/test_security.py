"""Security: configs are parsed, never evaluated; remote model code stays off unless asked for;
models are saved as safetensors; packs load only from installed entry points or ``-p MODULE``,
never from the working folder by accident."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from embedtune_core.config.schema import RunConfig
from embedtune_core.testing import invoke

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent

# -- configs are data ---------------------------------------------------------------------------
CODE_LIKE = {
    "name": "__import__('os').system('touch pwned')",
    "model.name": "!!python/object/apply:os.system ['touch pwned']",
    "data.source": "$(touch pwned)",
    "data.reader": "`touch pwned`",
    "loss.name": "eval(compile('open(\"pwned\", \"w\")', 'x', 'exec'))",
    "mining.miner": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "output_dir": "${HOME}",
}


def _get(config, dotted):
    value = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _toml_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid TOML basic string


def test_code_looking_strings_in_toml_stay_strings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sections: dict[str, list[str]] = {}
    for key, value in CODE_LIKE.items():
        section, _, field = key.rpartition(".")
        sections.setdefault(section, []).append(f"{field} = {_toml_string(value)}")
    text = "\n".join(sections.pop("")) + "\n" + "".join(
        f"[{section}]\n" + "\n".join(lines) + "\n" for section, lines in sections.items())
    path = tmp_path / "pipeline.toml"
    path.write_text(text, encoding="utf-8")
    config = RunConfig.from_file(path)
    for key, value in CODE_LIKE.items():
        assert _get(config, key) == value
    assert not (tmp_path / "pwned").exists()


def test_code_looking_strings_in_yaml_stay_strings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "name: \"__import__('os').system('touch pwned')\"\n"
        "model:\n  name: \"!!python/object/apply:os.system ['touch pwned']\"\n"
        "data:\n  source: $(touch pwned)\n  reader: \"`touch pwned`\"\n"
        "mining:\n  miner: \"{{ ''.__class__ }}\"\n",
        encoding="utf-8",
    )
    config = RunConfig.from_file(path)
    assert config.name == CODE_LIKE["name"] and config.model.name == CODE_LIKE["model.name"]
    assert config.data.source == "$(touch pwned)" and config.data.reader == "`touch pwned`"
    assert config.mining.miner == "{{ ''.__class__ }}"
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system", "!!python/object/new:os.system",
                                 "!!python/name:os.system"])
def test_yaml_python_tags_are_rejected_and_never_run(tag, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "pipeline.yaml"
    path.write_text(f"name: {tag} ['touch pwned']\n", encoding="utf-8")
    result = invoke(["config", "validate", str(path)])
    assert result.exit_code == 2 and "invalid YAML" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "pwned").exists()


def test_overrides_with_python_tags_stay_strings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from embedtune_core.config.files import apply_overrides

    raw = "!!python/object/apply:os.system ['touch pwned']"
    data = apply_overrides({}, [f"model.name={raw}", "data.source=$(touch pwned)"])
    assert data == {"model": {"name": raw}, "data": {"source": "$(touch pwned)"}}
    assert RunConfig.from_dict(data).model.name == raw
    assert not (tmp_path / "pwned").exists()


# -- trust_remote_code ---------------------------------------------------------------------------
class Loaded(BaseException):
    """Stops the command once the model constructor has been called (a BaseException, as Ctrl-C is:
    nothing on the way turns it into an error message)."""


@pytest.fixture
def record_loads(monkeypatch):
    """Replace sentence-transformers' model classes with recorders that stop the command."""
    import sentence_transformers

    calls: list[tuple[str, tuple, dict]] = []

    def recorder(kind):
        def construct(*args, **kwargs):
            calls.append((kind, args, kwargs))
            raise Loaded(kind)
        return construct

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", recorder("SentenceTransformer"))
    monkeypatch.setattr(sentence_transformers, "CrossEncoder", recorder("CrossEncoder"))
    return calls


def _pipeline(tmp_path: Path, model: str, extra: str = "") -> Path:
    path = tmp_path / "pipeline.toml"
    path.write_text(f'[model]\nname = "{model}"\n{extra}\n[data]\nsource = "{DATA / "pairs.jsonl"}"\ntype = "pairs"\n',
                    encoding="utf-8")
    return path


def _commands(tmp_path: Path, model: str) -> dict[str, list[str]]:
    pairs = str(DATA / "pairs.jsonl")
    return {
        "run": ["run", str(_pipeline(tmp_path, model)), "-q"],
        "train": ["train", "--model", model, "--data", pairs, "--type", "pairs", "--output", str(tmp_path / "t"), "-q"],
        "eval": ["eval", "--model", model, "--data", pairs, "--type", "pairs"],
        "mine": ["mine", "--data", pairs, "--type", "pairs", "--miner", "dense", "--model", model, "-o",
                 str(tmp_path / "m.jsonl")],
    }


@pytest.mark.parametrize("command", ["run", "train", "eval", "mine"])
def test_remote_code_is_off_unless_asked_for(command, tiny_model, tmp_path, monkeypatch, record_loads):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Loaded):
        invoke(_commands(tmp_path, tiny_model)[command])
    kind, args, kwargs = record_loads[0]
    assert kind == "SentenceTransformer" and args[0] == tiny_model
    assert kwargs.get("trust_remote_code") is False


@pytest.mark.parametrize("command", ["run", "train"])
def test_remote_code_is_on_only_when_the_user_says_so(command, tiny_model, tmp_path, monkeypatch, record_loads):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Loaded):
        invoke(_commands(tmp_path, tiny_model)[command] + ["-s", "model.trust_remote_code=true"])
    assert record_loads[0][2]["trust_remote_code"] is True


def test_a_cross_encoder_gets_no_remote_code(tiny_model, tmp_path, monkeypatch, record_loads):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Loaded):
        invoke(["mine", "--data", str(DATA / "pairs.jsonl"), "--type", "pairs", "--miner", "bm25",
                "-O", f"cross_encoder={tiny_model}", "-O", "guard_scores=retrieval", "-o", str(tmp_path / "m.jsonl")])
    kind, _, kwargs = record_loads[0]
    assert kind == "CrossEncoder" and not kwargs.get("trust_remote_code", False)


# -- safetensors ---------------------------------------------------------------------------------
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"}


def test_models_are_saved_as_safetensors(tiny_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(["train", "--model", tiny_model, "--data", str(DATA / "pairs.jsonl"), "--type", "pairs",
                     "--output", str(tmp_path / "trained"), "-q", "-s", "training.max_steps=1",
                     "-s", "training.batch_size=4"])
    assert result.exit_code == 0, result
    pipeline = _pipeline(tmp_path, tiny_model, "[training]\nmax_steps = 1\nbatch_size = 4")
    result = invoke(["run", str(pipeline), "-q", "-s", "steps=[train]"])
    assert result.exit_code == 0, result
    for model in (tmp_path / "trained" / "model", tmp_path / "runs" / "run" / "model"):
        files = [p for p in model.rglob("*") if p.is_file()]
        assert any(p.name == "model.safetensors" for p in files), files
        assert not [p for p in files if p.suffix in PICKLE_SUFFIXES], files


# -- packs are not imported from the working folder ------------------------------------------------
PLUGIN_TRAPS = ["embedtune_plugins", "readers", "losses", "miners", "plugins", "conftest", "embedtune", "evil_pack"]
#: third-party modules the CLI imports: `python -m` must not take them from the working folder
TRAPS = PLUGIN_TRAPS + ["pluggy", "click", "attrs"]


def _set_traps(folder: Path, names: list[str] = TRAPS) -> None:
    """Modules named like plugins or like the CLI's dependencies (and an entry point of a fake
    distribution) that leave a mark when imported."""
    for name in names:
        (folder / f"{name}.py").write_text(
            "import pathlib\n"
            f"pathlib.Path({str(folder / ('IMPORTED_' + name))!r}).write_text('x')\n"
            "from embedtune_core import hookimpl\n"
            "@hookimpl\n"
            "def register_losses(register):\n"
            "    register('evil-loss', lambda model: None)\n",
            encoding="utf-8",
        )
    dist = folder / "evil_pack-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: evil-pack\nVersion: 1.0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text("[embedtune]\nevil = evil_pack\n", encoding="utf-8")


def _marks(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("IMPORTED_*"))


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    env.update(OMP_NUM_THREADS="1", **extra)
    return env


@pytest.mark.parametrize("how", ["console-script", "python-m"])
def test_packs_are_not_imported_from_the_working_folder(how, tmp_path):
    _set_traps(tmp_path)
    script = Path(sys.executable).parent / "embedtune"
    launcher = [str(script)] if how == "console-script" else [sys.executable, "-m", "embedtune_core"]
    if how == "console-script" and not script.exists():
        pytest.skip("the embedtune console script is not installed next to this Python")
    result = subprocess.run([*launcher, "components", "loss", "--json"], cwd=tmp_path, env=_clean_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    names = {c["name"] for c in json.loads(result.stdout)}
    assert "mnrl" in names and "evil-loss" not in names
    assert _marks(tmp_path) == []
    assert "warning" not in result.stderr


def test_an_explicit_flag_loads_a_module_from_pythonpath(tmp_path):
    """The positive control: named with -p and put on PYTHONPATH by the user, the module loads."""
    _set_traps(tmp_path, PLUGIN_TRAPS)
    result = subprocess.run([sys.executable, "-m", "embedtune_core", "-p", "evil_pack", "components", "loss", "--json"],
                            cwd=tmp_path, env=_clean_env(PYTHONPATH=str(tmp_path)), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "evil-loss" in {c["name"] for c in json.loads(result.stdout)}
    assert "IMPORTED_evil_pack" in _marks(tmp_path)


def test_in_process_cli_ignores_the_working_folder(tmp_path, monkeypatch):
    _set_traps(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = invoke(["components", "loss", "--json"])
    assert result.exit_code == 0 and "evil-loss" not in result.stdout
    assert _marks(tmp_path) == []
