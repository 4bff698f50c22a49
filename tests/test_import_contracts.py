"""Import contracts between the packages, checked on the source (AST, lazy imports inside functions included).

* ``scoring`` is the pure core: it imports none of ``memory``, ``api``, ``sqlalchemy``, ``chromadb``,
  ``langchain*`` or ``openai`` (readers in ``memory`` hand it domain objects and numpy columns);
* ``extractors`` and ``memory`` import nothing from ``api`` (settings values are passed in);
* no import cycles between first-party modules.

``make test`` runs this file with the rest of the suite.
"""

from __future__ import annotations

import ast
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("extractors", "memory", "scoring", "prompts", "api")
SCORING_FORBIDDEN = ("memory", "api", "sqlalchemy", "chromadb", "langchain", "openai")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            rel = f.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = f
    return out


def _imports(module: str, path: Path) -> set[str]:
    """Every module name an import statement in the file names (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    pkg = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{a.name}" for a in node.names)  # "from scoring import engine"
    return found


MODULES = _modules()
IMPORTS = {m: _imports(m, p) for m, p in MODULES.items()}


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def _violations(prefix: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m, names in IMPORTS.items():
        if _top(m) != prefix:
            continue
        bad = sorted(n for n in names if any(_top(n) == f or _top(n).startswith(f) and f == "langchain"
                                            for f in forbidden))
        if bad:
            out[str(MODULES[m].relative_to(ROOT))] = bad
    return out


def test_scoring_is_pure() -> None:
    assert _violations("scoring", SCORING_FORBIDDEN) == {}


def test_memory_imports_nothing_from_api() -> None:
    assert _violations("memory", ("api",)) == {}


def test_extractors_import_nothing_from_api() -> None:
    """The LLM extractor included: the edge builds its client config from settings and passes it in."""
    assert _violations("extractors", ("api",)) == {}


def _first_party_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for m, names in IMPORTS.items():
        for n in names:
            # the longest first-party module the name points at ("scoring.engine.score_batch" -> scoring.engine)
            parts = n.split(".")
            for k in range(len(parts), 0, -1):
                cand = ".".join(parts[:k])
                if cand in MODULES and cand != m:
                    if MODULES[cand].name != "__init__.py":
                        graph[m].add(cand)
                    break
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles_between_scoring_modules() -> None:
    graph = _first_party_graph()
    scoring = {m: {n for n in deps if _top(n) == "scoring"} for m, deps in graph.items() if _top(m) == "scoring"}
    assert _cycles(scoring) == []


def test_no_import_cycles_between_packages_core() -> None:
    """The core packages form layers: extractors <- scoring <- memory (readers) <- api."""
    graph = _first_party_graph()
    core = {m: {n for n in deps if _top(n) in ("extractors", "scoring", "memory")}
            for m, deps in graph.items() if _top(m) in ("extractors", "scoring", "memory")}
    assert _cycles(core) == []


def test_the_checker_sees_lazy_imports() -> None:
    """Guard against a checker that passes because it reads nothing."""
    assert "scoring.engine" in IMPORTS["scoring.scorer"]
    assert "scoring.batch" in IMPORTS["memory.scoring_inputs"]
    assert "langchain_openai.ChatOpenAI" in IMPORTS["extractors.llm"]  # imported inside chat_model()
