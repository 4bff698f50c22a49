"""The one wiring: ``build_services(settings)`` builds the ledger, the vector memory, the API store, the
scoring-model access, the ingest options and the HTTP service once, for the CLI and the HTTP app alike.

This is the only module that reads settings (``HEALTHTRACE_*``, api/settings.py). Everything below it gets
plain values: ``memory`` gets URLs, paths and an embedder, ``extractors`` get their options, ``scoring`` gets a
compiled model and arrays. Stores open on first use, so a command that never touches the vector memory never
starts Chroma, and a command that only reads a workspace folder never creates a database.

Tests hand in the in-memory repositories (memory/fakes.py) instead of the real stores::

    services = build_services(settings, ledger=InMemoryLedger(), vectors=InMemoryVectorMemory())
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.settings import Settings

if TYPE_CHECKING:
    from api.service import HealthService
    from extractors.llm import LLMSetup
    from memory.api_store import ApiStore
    from memory.feedback import FeedbackStore
    from memory.ingest import IngestOptions
    from memory.metric_files import MappingFile
    from memory.repositories import LedgerRepository, ModelRecords, VectorRepository
    from scoring.model import ScoringModel


def current_settings() -> Settings:
    """The process's settings from the environment (cached; tests clear ``get_settings.cache_clear()``)."""
    from api.settings import get_settings

    return get_settings()


class Services:
    """What the commands and the routes use, built from one settings object. Close it when done (or use it
    as a context manager); stores handed in by the caller are left open."""

    def __init__(self, settings: Settings, *, ledger: LedgerRepository | None = None,
                 vectors: VectorRepository | None = None, store: ApiStore | None = None,
                 feedback: ModelRecords | None = None) -> None:
        self.settings = settings
        self._ledger = ledger
        self._own_ledger = ledger is None
        self._vectors = vectors
        self._store = store
        self._feedback = feedback
        self._given = (store is not None, feedback is not None)
        self._extractor_versions: Any = None
        self._health: HealthService | None = None
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ stores
    @property
    def ledger(self) -> Any:
        """The ledger (opened on first use: the configured database, else SQLite in HEALTHTRACE_HOME)."""
        with self._lock:
            if self._ledger is None:
                from memory.ledger import Ledger

                s = self.settings
                self._ledger = Ledger.open(s.database_url, home=s.home)
            return self._ledger

    def has_store(self) -> bool:
        """Is there a stored memory to read (a database URL, an open ledger, or the SQLite file)?"""
        s = self.settings
        return self._ledger is not None or bool(s.database_url) or (Path(s.home) / "healthtrace.db").exists()

    def ledger_if_exists(self) -> Any | None:
        """The ledger only when there is one: reading a folder must not create a database."""
        return self.ledger if self.has_store() else None

    @property
    def vectors(self) -> Any:
        """The vector memory (opened on first use: HEALTHTRACE_CHROMA_URL, else the embedded store in home)."""
        with self._lock:
            if self._vectors is None:
                self._vectors = self.open_vectors()
            return self._vectors

    def open_vectors(self, *, embed_threads: int | None = None) -> Any:
        """A new vector memory on the configured store; ``embed_threads`` limits the MiniLM model's threads
        (the API's background indexer leaves a core for the event loop)."""
        from memory.embeddings import MiniLMEmbedding, get_embedder
        from memory.vectors import VectorMemory

        s = self.settings
        embedder: Any = s.embedder
        if embed_threads is not None and s.embedder == "minilm":
            embedder = MiniLMEmbedding(threads=embed_threads)
        elif isinstance(embedder, str):
            embedder = get_embedder(embedder)
        return VectorMemory.open(s.chroma_url, s.chroma_path, embedder)

    @property
    def store(self) -> Any:
        """API keys, webhooks, audit log and state keys, in the ledger's database (None on a ledger without
        SQL, such as the in-memory fake, unless one was handed in)."""
        with self._lock:
            if self._store is None and self._sql():
                from memory.api_store import ApiStore

                self._store = ApiStore(self.ledger.engine)
            return self._store

    @property
    def feedback(self) -> Any:
        """Overrides and stored model versions, the one record of the active model (None on a ledger without
        SQL unless one was handed in, e.g. memory/fakes.py's InMemoryModelRecords)."""
        with self._lock:
            if self._feedback is None and self._sql():
                from memory.feedback import FeedbackStore

                self._feedback = FeedbackStore(self.ledger)
            return self._feedback

    @property
    def extractor_versions(self) -> Any:
        """The tenant's registered offline-extractor artefacts (memory/extractor_versions.py), stored in the
        ledger's database and under HEALTHTRACE_HOME/extractors (None on a ledger without SQL)."""
        with self._lock:
            if self._extractor_versions is None and self._sql():
                from memory.extractor_versions import ExtractorVersions

                self._extractor_versions = ExtractorVersions(self.ledger, self.settings.home)
            return self._extractor_versions

    def extractor_model_dir(self, tenant: str = "default") -> Path | None:
        """Folder of the tenant's active extractor version, or None for the artefact bundled in the package.
        Looking never creates a store."""
        if not self.has_store() or self.extractor_versions is None:
            return None
        return self.extractor_versions.active_dir(tenant=tenant)

    def extractor_options(self, name: str, *, tenant: str = "default") -> dict[str, Any]:
        """Options for ``get_extractor(name)``: the offline and learned extractors get the active version's
        artefact folder (nothing when the bundled one is active, so their output is the package's)."""
        if name not in ("offline", "learned"):
            return {}
        model_dir = self.extractor_model_dir(tenant)
        return {} if model_dir is None else {"model_dir": model_dir}

    def _sql(self) -> bool:
        return hasattr(self.ledger, "engine")

    @property
    def health(self) -> HealthService:
        """The HTTP API's service (ingest, rescore, reads), on this container's stores and model access."""
        with self._lock:
            if self._health is None:
                from api.service import HealthService

                self._health = HealthService(
                    self.ledger, self.store, self.settings, feedback=self.feedback,
                    extractor_versions=self.extractor_versions,
                    ingest_options=lambda tenant: self.ingest_options(tenant=tenant, vectors=False))
            return self._health

    # ------------------------------------------------------------------ scoring model
    def model(self, explicit: Path | None = None, *, tenant: str = "default") -> ScoringModel:
        """The model to score with, most specific first: ``explicit`` (``--model FILE``), then
        HEALTHTRACE_MODEL_FILE, then the model activated in the stored memory (``healthtrace models activate``),
        then the bundled default. Looking for an active model never creates a store."""
        from scoring.model import load_model, parse_model

        if explicit is not None or self.settings.model_file is not None:
            return load_model(explicit or self.settings.model_file)
        if self.has_store() and self.feedback is not None:
            active = self.feedback.active_model_yaml(tenant=tenant)
            if active is not None:
                import yaml

                model_id, version, text = active
                return parse_model(yaml.safe_load(text), source=f"stored model {model_id}@{version}")
        return load_model(None)

    def mapping(self, tenant: str = "default") -> MappingFile | None:
        """The tenant's metric mapping kept in home (metrics.yaml saved by ingest), if any."""
        from memory.metric_files import tenant_mapping

        return tenant_mapping(self.settings.home, tenant)

    # ------------------------------------------------------------------ ingest and extractors
    def metadata_options(self) -> dict[str, Any]:
        s = self.settings
        return {"unresponsive_days": s.unresponsive_days, "vendor_domains": list(s.vendor_domains)}

    def ingest_options(self, *, extractor: str | None = None, tenant: str = "default", vectors: bool = True,
                       **more: Any) -> IngestOptions:
        """The one ingest configuration (CLI, API, queue workers): the configured extractor unless one is
        chosen, the metadata pass's settings, the input bounds."""
        from memory.ingest import IngestOptions

        s = self.settings
        more.setdefault("max_file_bytes", s.max_file_bytes)
        name = extractor or s.extractor
        more.setdefault("extractor_options", self.extractor_options(name, tenant=tenant))
        return IngestOptions(extractor=name, vectors=vectors, tenant=tenant,
                             metadata_options=self.metadata_options(), **more)

    def llm_setup(self) -> LLMSetup:
        from api.llm_setup import llm_setup

        return llm_setup(self.settings)

    # ------------------------------------------------------------------ life
    def close(self) -> None:
        with self._lock:
            if self._own_ledger and self._ledger is not None:
                self._ledger.close()
                self._ledger = self._health = self._extractor_versions = None  # a later use opens them again
                if not self._given[0]:
                    self._store = None
                if not self._given[1]:
                    self._feedback = None

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_services(settings: Settings | None = None, *, ledger: LedgerRepository | None = None,
                   vectors: VectorRepository | None = None, store: ApiStore | None = None,
                   feedback: ModelRecords | None = None) -> Services:
    """The container. ``settings`` default to the environment's; the stores default to the configured ones
    (opened on first use); pass repositories (e.g. memory/fakes.py) to replace them."""
    return Services(settings if settings is not None else current_settings(), ledger=ledger, vectors=vectors,
                    store=store, feedback=feedback)
