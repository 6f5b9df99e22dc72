"""`import cirscope` must not import torch, open_clip or umap."""

import subprocess
import sys


def test_import_is_light():
    code = (
        "import sys, cirscope as cs; g = cs.datasets.shapes(3); cs.Gallery; cs.Space; cs.Embedder.toy(); "
        "print(','.join(m for m in ('torch', 'open_clip', 'umap', 'torchvision') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_version_is_exposed():
    import cirscope

    assert cirscope.__version__.count(".") >= 2
