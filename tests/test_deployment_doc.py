"""The serving snippet of docs/deployment.md runs with onnxruntime and tokenizers alone (no torch,
no embedtune) on a folder `embedtune export` wrote, and gives the embeddings embedtune gives."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from embedtune_core.testing import invoke

DOC = Path(__file__).resolve().parent.parent / "docs" / "deployment.md"
FOLDER = "deploy/onnx-int8-384d-float32"


def python_blocks():
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), flags=re.M | re.S)


def test_the_serving_snippet_needs_only_onnxruntime_and_tokenizers(tiny_model, tmp_path):
    out = tmp_path / "deploy"
    result = invoke(["export", tiny_model, "--data", "builtin:construction-faq", "-o", str(out), "--exporter",
                     "pytorch-fp32", "--exporter", "onnx-int8", "--embeddings", "float32", "--speed-texts", "10",
                     "--speed-rounds", "1", "-q"])
    assert result.exit_code == 0, result
    folder = out / "onnx-int8-32d-float32"
    [snippet] = python_blocks()
    assert FOLDER in snippet
    code = snippet.replace(FOLDER, str(folder)) + textwrap_check()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == "only onnxruntime", proc.stdout
    from embedtune_core.embedding.models import load_model

    model = load_model(str(folder))
    # the snippet's batches: int8 weights quantize activations per batch
    documents = model.encode_texts(["Elevated body temperature.", "Abnormally small head circumference."])
    expected = documents @ model.encode_texts(["fever"])[0]
    printed = np.array([float(x) for x in re.findall(r"-?\d+\.\d+(?:e-?\d+)?", lines[0])])
    assert np.allclose(printed, expected, atol=1e-5), (printed, expected)


def textwrap_check():
    return ("\nimport sys\n"
            "assert 'torch' not in sys.modules and not any(m.startswith('embedtune') for m in sys.modules), "
            "sorted(m for m in sys.modules if m.startswith(('torch', 'embedtune')))\n"
            "assert codes.shape == (2, (spec['dims'] + 7) // 8)\n"
            "print('only onnxruntime')\n")
