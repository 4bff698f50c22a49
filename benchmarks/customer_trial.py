"""The customer trial: healthtrace tried as a new customer would, on a workspace it was not written with.

`benchmarks/customer_trial/` is a hand-written workspace of a fictional vendor, Brightloop (brightloop.io), with
ten accounts, their own usage export names and units, and 51 everyday documents (emails with quoted replies and
Outlook-style forwards, WebVTT calls, Markdown notes, a ticket JSON export, a chat export). `expected.yaml` says
what a CSM would say: each account's story direction between two dates, plausible end tiers, the reasons, and
per document the signals with a verbatim phrase.

The script copies the workspace to a temporary folder and drives only the documented CLI:
`healthtrace extract --format json` on every document, `healthtrace ingest --workspace`, `healthtrace score
--as-of A --as-of B --format jsonl`, `healthtrace why ACCOUNT --from A --to B --format json` and, where the CLI
has it, `healthtrace metrics check --workspace`. It runs twice: once with the vendor's domain given
(HEALTHTRACE_VENDOR_DOMAINS=brightloop.io, the plain form; the JSON-list form is tried if the plain one fails)
and once with it unset (the product must infer it). A feature the CLI does not have yet is reported as "n/a".

Figures:
* direction: accounts whose score moves in the story's direction between date_a and date_b (x/10)
* end_tier: accounts whose tier at date_b is one a CSM finds plausible (x/10); start_tier the same at date_a
  (a product that calls every account At Risk passes end_tier for the declining stories, not start_tier)
* reasons: share of the expected reasons (signal types, raw metric names) that `why` names as a driver pushing
  in the story's direction
* extraction recall / precision: an expected signal is found when a signal of an accepted type cites a span of
  the raw file that overlaps the phrase (offsets on the file as stored); precision is the share of extracted
  signals that match an expected one (a lower bound: expected lists name what a CSM would name, not everything)
* contacts: accounts whose count of customer contacts in the 90 days before date_b (the score's fact) lies in
  the range a CSM would count (never the vendor's own people, one person once)
* citations: every quote of `extract` and `why` must equal raw_file_text[start:end]
* metrics_check: share of the raw metric names that `metrics check` lists with a mapping or a reason

    .venv/bin/python benchmarks/customer_trial.py [--embedder minilm|hashing] [--mode both|vendor|inferred]

Ends with one line ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TRIAL = ROOT / "benchmarks" / "customer_trial"
VENDOR_DOMAIN = "brightloop.io"
TIMEOUT = 900


def default_cli() -> list[str]:
    exe = Path(sys.executable).with_name("healthtrace")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "api.cli"]


def load_expected(root: Path = TRIAL) -> dict[str, Any]:
    return yaml.safe_load((root / "expected.yaml").read_text("utf-8"))


def raw_text(path: Path) -> str:
    """The file as stored, decoded the way the product promises its offsets index it."""
    return path.read_bytes().decode("utf-8", "replace")


def phrase_spans(text: str, phrase: str) -> list[tuple[int, int]]:
    """Where a phrase lies in a text, whitespace-insensitively (a phrase may cross a line break)."""
    pattern = r"\s+".join(re.escape(w) for w in phrase.split())
    return [(m.start(), m.end()) for m in re.finditer(pattern, text)]


def norm(s: str) -> str:
    return " ".join(s.lower().split())


def expected_types(item: dict[str, Any]) -> set[str]:
    t = item["type"]
    return set(t) if isinstance(t, list) else {t}


def expected_phrases(item: dict[str, Any]) -> list[str]:
    p = item["phrase"]
    return list(p) if isinstance(p, list) else [p]


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(cmd, 124, e.stdout or "", f"timed out after {TIMEOUT}s")


def last_line(s: str) -> str:
    lines = [ln for ln in (s or "").strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def parse_json_output(out: str) -> Any:
    """A JSON document (after any warning lines), or JSON lines as a list."""
    out = out.strip()
    if not out:
        return None
    try:
        return json.loads(out)
    except json.JSONDecodeError:
        pass
    starts = [i for i in (out.find("["), out.find("{")) if i >= 0]
    if starts:  # a warning line before the document
        try:
            value, end = json.JSONDecoder().raw_decode(out, min(starts))
            if not out[end:].strip().startswith(("{", "[")):
                return value
        except json.JSONDecodeError:
            pass
    items = []
    for ln in out.splitlines():
        ln = ln.strip()
        if ln.startswith(("{", "[")):
            try:
                items.append(json.loads(ln))
            except json.JSONDecodeError:
                continue
    return items or None


# ---------------------------------------------------------------------------------------------- extraction


def evidence_of(sig: dict[str, Any]) -> list[dict[str, Any]]:
    ev = sig.get("evidence") or sig.get("citations") or []
    return [e for e in ev if isinstance(e, dict)]


def match_signal(sig: dict[str, Any], item: dict[str, Any], text: str) -> bool:
    """An extracted signal matches an expected one: accepted type and a cited span overlapping the phrase."""
    if sig.get("type") not in expected_types(item):
        return False
    spans = [sp for p in expected_phrases(item) for sp in phrase_spans(text, p)]
    for e in evidence_of(sig):
        s, t = e.get("start"), e.get("end")
        if isinstance(s, int) and isinstance(t, int) and any(s < pe and ps < t for ps, pe in spans):
            return True
    return False


def match_text(sig: dict[str, Any], item: dict[str, Any]) -> bool:
    """Diagnostic only: the quote's words contain the phrase or lie inside it, whatever the offsets say."""
    if sig.get("type") not in expected_types(item):
        return False
    for p in map(norm, expected_phrases(item)):
        if any((q := norm(e.get("quote") or "")) and (p in q or q in p) for e in evidence_of(sig)):
            return True
    return False


def verify_citation(text: str, ev: dict[str, Any]) -> bool:
    s, t, q = ev.get("start"), ev.get("end"), ev.get("quote")
    return isinstance(s, int) and isinstance(t, int) and isinstance(q, str) and 0 <= s <= t <= len(text) and text[s:t] == q


def extraction(cli: list[str], env: dict[str, str], ws: Path, expected: dict[str, Any]) -> dict[str, Any]:
    files: list[Path] = []
    for aid, acc in expected["accounts"].items():
        files += [ws / "documents" / aid / name for name in acc["documents"]]
    t0 = time.perf_counter()
    proc = run([*cli, "extract", *map(str, files), "--format", "json"], env, ws)
    wall = time.perf_counter() - t0
    data = parse_json_output(proc.stdout)
    if not isinstance(data, list):
        return {"status": f"failed (rc {proc.returncode}): {last_line(proc.stderr)}", "wall_s": round(wall, 2)}
    by_file: dict[str, list[dict[str, Any]]] = {}
    for sig in data:
        if isinstance(sig, dict):
            src = str(sig.get("source") or sig.get("source_path") or "")
            by_file.setdefault(str(Path(src).resolve()) if src else "", []).append(sig)
    n_exp = found = found_text = n_sig = correct = cit_total = cit_ok = 0
    per_type: dict[str, list[int]] = {}
    per_format: dict[str, list[int]] = {}
    unverified: list[str] = []
    misses: list[str] = []
    wrong: list[str] = []
    failed_files = [ln for ln in proc.stderr.splitlines() if ln.strip() and "error" in ln.lower()][:5]
    for f in files:
        text = raw_text(f)
        aid = f.parent.name
        items = expected["accounts"][aid]["documents"][f.name] or []
        sigs = by_file.get(str(f.resolve()), [])
        for sig in sigs:
            for e in evidence_of(sig):
                cit_total += 1
                good = verify_citation(text, e)
                cit_ok += good
                if not good:
                    unverified.append(f"{aid}/{f.name}: [{e.get('start')}:{e.get('end')}] {str(e.get('quote'))[:50]!r}")
        for item in items:
            n_exp += 1
            hit = any(match_signal(s, item, text) for s in sigs)
            found += hit
            found_text += hit or any(match_text(s, item) for s in sigs)
            for t in expected_types(item):
                per_type.setdefault(t, [0, 0])
            key = item["type"][0] if isinstance(item["type"], list) else item["type"]
            for tally in (per_type[key], per_format.setdefault(f.suffix.lstrip("."), [0, 0])):
                tally[0] += hit
                tally[1] += 1
            if not hit:
                misses.append(f"{aid}/{f.name}: {key} {expected_phrases(item)[0][:60]!r}")
        for sig in sigs:
            n_sig += 1
            ok = any(match_signal(sig, item, text) for item in items)
            correct += ok
            if not ok:
                q = (evidence_of(sig) or [{}])[0].get("quote") or ""
                wrong.append(f"{aid}/{f.name}: {sig.get('type')} {q[:60]!r}")
    return {
        "status": "ok",
        "wall_s": round(wall, 2),
        "expected": n_exp,
        "found": found,
        "recall": round(found / n_exp, 3) if n_exp else None,
        "recall_text_only": round(found_text / n_exp, 3) if n_exp else None,
        "signals": n_sig,
        "precision": round(correct / n_sig, 3) if n_sig else None,
        "citations": cit_total,
        "citations_verified": round(cit_ok / cit_total, 3) if cit_total else None,
        "per_format_recall": {t: f"{a}/{b}" for t, (a, b) in sorted(per_format.items()) if b},
        "per_type_recall": {t: f"{a}/{b}" for t, (a, b) in sorted(per_type.items()) if b},
        "unverified_citations": unverified,
        "misses": misses,
        "unexpected": wrong,
        "stderr": failed_files,
    }


# ---------------------------------------------------------------------------------------------- scoring


def metric_names_of(driver: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    m = driver.get("metric")
    if isinstance(m, dict):
        for k in ("metric", "raw_metric", "source_metric", "raw_name", "canonical", "name"):
            if isinstance(m.get(k), str):
                names.add(m[k])
        for k in ("raw_metrics", "sources", "aliases"):
            if isinstance(m.get(k), list):
                names |= {x for x in m[k] if isinstance(x, str)}
    key = driver.get("key")
    if isinstance(key, str) and key.startswith("metric:"):
        names.add(key.split(":")[1])
    return names


def reason_named(reason: str, kind: str, drivers: list[dict[str, Any]], direction: str,
                 aliases: dict[str, set[str]], meaning: str | None = None) -> bool:
    """A driver pushing in the story's direction names the reason: its signal type, or its metric by the raw
    export name, by the canonical name `metrics check` maps it to, or by the metric's meaning in its sentence."""
    sign = -1 if direction == "down" else 1
    for d in drivers:
        pts = d.get("points")
        if not isinstance(pts, int | float) or pts * sign <= 0:
            continue
        if kind == "signal" and reason in (d.get("signal_type"), d.get("reason_code")):
            return True
        if kind == "metric" and metric_names_of(d) & ({reason} | aliases.get(reason, set())):
            return True
        if kind == "metric" and d.get("kind") == "metric" and meaning and meaning.lower() in str(d.get("description") or "").lower():
            return True
    return False


def why_citations(why: dict[str, Any], ws: Path, bad: list[str] | None = None) -> tuple[int, int]:
    total = ok = 0
    cache: dict[str, str | None] = {}
    for d in why.get("drivers") or []:
        for c in d.get("citations") or []:
            total += 1
            path = c.get("source_path")
            if not isinstance(path, str):
                continue
            if path not in cache:
                p = Path(path) if Path(path).is_absolute() else ws / path
                cache[path] = raw_text(p) if p.is_file() else None
            text = cache[path]
            good = bool(text is not None and verify_citation(text, c))
            ok += good
            if not good and bad is not None:
                bad.append(f"{Path(path).name}: [{c.get('start')}:{c.get('end')}] {str(c.get('quote'))[:50]!r}")
    return total, ok


def metrics_check(cli: list[str], env: dict[str, str], ws: Path, expected: dict[str, Any]) -> tuple[dict[str, Any], dict[str, set[str]]]:
    """`healthtrace metrics check --workspace DIR`: every raw metric listed with a mapping or a reason."""
    with (ws / "usage.csv").open(newline="", encoding="utf-8") as f:
        raw = sorted({r["metric"] for r in csv.DictReader(f)})
    aliases: dict[str, set[str]] = {}
    proc = run([*cli, "metrics", "check", "--workspace", str(ws), "--format", "json"], env, ws)
    data = parse_json_output(proc.stdout) if proc.returncode in (0, 1) else None
    if data is None:
        proc = run([*cli, "metrics", "check", "--workspace", str(ws)], env, ws)
    if "No such command" in proc.stderr + proc.stdout:
        return {"status": "n/a", "detail": "the CLI has no `metrics check` command"}, aliases
    if proc.returncode not in (0, 1):
        return {"status": "n/a", "detail": f"rc {proc.returncode}: {last_line(proc.stderr or proc.stdout)}"}, aliases
    listed = mapped = unused = 0
    units_right = units_checked = 0
    unit_misses: list[str] = []
    unused_names: list[str] = []
    rows: list[dict[str, Any]] = []
    if isinstance(data, dict):
        data = next((v for v in data.values() if isinstance(v, list)), [data])
    if isinstance(data, list):
        rows = [r for r in data if isinstance(r, dict)]
    exp_metrics = expected.get("metrics") or {}
    unit_words = {"share": "share", "percent": "percent", "score": "score", "response": "respon"}
    for name in raw:
        row = next((r for r in rows if name in (r.get("raw"), r.get("raw_name"), r.get("metric"), r.get("name"))), None)
        if row is not None:
            canon = row.get("canonical") or row.get("mapped_to") or row.get("canonical_name")
            reason = row.get("reason_unused") or row.get("reason") or row.get("why") or row.get("note")
            used = row.get("used", bool(canon and canon != "ignore"))
            if used and canon:
                listed += 1
                mapped += 1
                aliases.setdefault(name, set()).add(str(canon))
            elif reason:
                listed += 1
                unused += 1
                unused_names.append(f"{name}: {str(reason)[:80]}")
            unit = str(row.get("unit_read") or row.get("unit") or "").lower()
            want = (exp_metrics.get(name) or {}).get("unit")
            if used and want in unit_words:
                units_checked += 1
                right = unit_words[want] in unit or (want == "share" and "0-1" in unit) or (want == "percent" and "0-100" in unit)
                units_right += right
                if not right:
                    unit_misses.append(f"{name}: read as {unit or '?'}, is {want}")
        else:  # text output: a line naming the metric and saying something about it
            line = next((ln for ln in proc.stdout.splitlines() if re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", ln)), None)
            if line and len(line.replace(name, "").strip(" |│:-")) > 3:
                listed += 1
                m = re.search(rf"{re.escape(name)}.*?(?:->|→|=>)\s*([a-z][a-z0-9_]*)", line)
                if re.search(r"not used|unused|ignored", line, re.I):
                    unused += 1
                    unused_names.append(line.strip()[:120])
                elif m:
                    mapped += 1
                    aliases.setdefault(name, set()).add(m.group(1))
    return {
        "status": "ok",
        "raw_metrics": len(raw),
        "listed": listed,
        "coverage": round(listed / len(raw), 3) if raw else None,
        "mapped": mapped,
        "unused": unused,
        "units_right": f"{units_right}/{units_checked}" if units_checked else "n/a",
        "unit_misses": unit_misses,
        "not_used": unused_names,
    }, aliases


def scoring(cli: list[str], env: dict[str, str], ws: Path, expected: dict[str, Any],
            aliases: dict[str, set[str]]) -> dict[str, Any]:
    a, b = str(expected["date_a"]), str(expected["date_b"])
    t0 = time.perf_counter()
    ing = run([*cli, "ingest", "--workspace", str(ws)], env, ws)
    out: dict[str, Any] = {"ingest_rc": ing.returncode, "ingest_s": round(time.perf_counter() - t0, 2)}
    if ing.returncode not in (0, 1):
        out["status"] = f"ingest failed (rc {ing.returncode}): {last_line(ing.stderr or ing.stdout)}"
        return out
    undated = [ln.strip() for ln in (ing.stdout + ing.stderr).splitlines() if "undated" in ln.lower()]
    out["undated_warnings"] = len(undated)
    sc = run([*cli, "score", "--as-of", a, "--as-of", b, "--format", "jsonl"], env, ws)
    rows = parse_json_output(sc.stdout)
    if not isinstance(rows, list):
        out["status"] = f"score failed (rc {sc.returncode}): {last_line(sc.stderr)}"
        return out
    scores: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        if isinstance(r, dict) and "account_id" in r:
            scores[(r["account_id"], str(r.get("as_of"))[:10])] = r
    min_move, flat_band = float(expected.get("min_move", 2.0)), float(expected.get("flat_band", 5.0))
    direction_ok = tier_ok = start_ok = reasons_total = reasons_named = cit_total = cit_ok = 0
    accounts: dict[str, Any] = {}
    bad_cites: list[str] = []
    for aid, acc in expected["accounts"].items():
        ra, rb = scores.get((aid, a)), scores.get((aid, b))
        info: dict[str, Any] = {"story": acc["direction"]}
        if ra is None or rb is None:
            info["status"] = "not scored"
            accounts[aid] = info
            reasons_total += len((acc.get("reasons") or {}).get("signals") or []) + len((acc.get("reasons") or {}).get("metrics") or [])
            continue
        delta = float(rb["score"]) - float(ra["score"])
        want = acc["direction"]
        moved = (delta <= -min_move) if want == "down" else (delta >= min_move) if want == "up" else abs(delta) < flat_band
        direction_ok += moved
        tier_ok += rb.get("tier") in acc["end_tiers"]
        start_ok += ra.get("tier") in (acc.get("start_tiers") or [])
        info.update({"a": f"{ra['score']} {ra.get('tier')}", "b": f"{rb['score']} {rb.get('tier')}",
                     "delta": round(delta, 2), "follows": moved, "tier_plausible": rb.get("tier") in acc["end_tiers"]})
        why = run([*cli, "why", aid, "--from", a, "--to", b, "--format", "json"], env, ws)
        wj = parse_json_output(why.stdout)
        drivers = wj.get("drivers") or [] if isinstance(wj, dict) else []
        if not isinstance(wj, dict):
            info["why"] = f"failed (rc {why.returncode}): {last_line(why.stderr)}"
        else:
            t, o = why_citations(wj, ws, bad_cites)
            cit_total, cit_ok = cit_total + t, cit_ok + o
            info["top_drivers"] = [f"{d.get('points'):+} {d.get('signal_type') or d.get('reason_code') or d.get('key')}"
                                   for d in drivers[:4]]
        named, missing = [], []
        reasons = acc.get("reasons") or {}
        for kind, key in (("signal", "signals"), ("metric", "metrics")):
            for r in reasons.get(key) or []:
                reasons_total += 1
                meaning = ((expected.get("metrics") or {}).get(r) or {}).get("meaning") if kind == "metric" else None
                if reason_named(r, kind, drivers, want, aliases, meaning):
                    reasons_named += 1
                    named.append(r)
                else:
                    missing.append(r)
        info["reasons_named"], info["reasons_missing"] = named, missing
        accounts[aid] = info
    contacts_ok, contacts_n, contacts = people(cli, env, ws, expected, b)
    n = len(expected["accounts"])
    out.update({
        "contacts_plausible": f"{contacts_ok}/{contacts_n}" if contacts_n else "n/a",
        "contacts_b": contacts,
        "status": "ok",
        "direction": f"{direction_ok}/{n}",
        "end_tier": f"{tier_ok}/{n}",
        "start_tier": f"{start_ok}/{n}",
        "reasons": round(reasons_named / reasons_total, 3) if reasons_total else None,
        "reasons_named": f"{reasons_named}/{reasons_total}",
        "why_citations": cit_total,
        "why_citations_verified": round(cit_ok / cit_total, 3) if cit_total else None,
        "why_unverified": bad_cites,
        "accounts": accounts,
    })
    return out


def people(cli: list[str], env: dict[str, str], ws: Path, expected: dict[str, Any], b: str) -> tuple[int, int, dict[str, Any]]:
    """Customer contacts in the 90 days before date_b as the score counts them (a fact of `score --full`)."""
    proc = run([*cli, "score", "--as-of", b, "--format", "json", "--full"], env, ws)
    data = parse_json_output(proc.stdout)
    rows = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
    ok = n = 0
    found: dict[str, Any] = {}
    for r in rows:
        if not isinstance(r, dict) or r.get("account_id") not in expected["accounts"]:
            continue
        value = None
        for c in r.get("contributions") or []:
            m = c.get("metric") if isinstance(c, dict) else None
            name = str((m or {}).get("metric") or c.get("key") or "")
            if "contact" in name and isinstance((m or {}).get("value"), int | float):
                value = m["value"]
                break
        want = expected["accounts"][r["account_id"]].get("contacts_b")
        if value is None or not want:
            continue
        n += 1
        ok += want[0] <= value <= want[1]
        found[r["account_id"]] = f"{value:g} (expected {want[0]}-{want[1]})"
    return ok, n, found


def one_mode(mode: str, cli: list[str], base_env: dict[str, str], expected: dict[str, Any], keep: bool,
             trial: Path = TRIAL) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix=f"ht-trial-{mode}-"))
    vendor = (expected.get("vendor_domains") or [VENDOR_DOMAIN])[0]
    try:
        ws = tmp / "workspace"
        shutil.copytree(trial, ws, ignore=shutil.ignore_patterns("__pycache__", "*.py", "README.md"))
        env = {**base_env, "HEALTHTRACE_HOME": str(tmp / "home")}
        env.pop("HEALTHTRACE_VENDOR_DOMAINS", None)
        form = "inferred"
        if mode == "vendor":
            env["HEALTHTRACE_VENDOR_DOMAINS"] = vendor
            form = "plain"
            probe = run([*cli, "stats"], env, ws)
            if probe.returncode != 0 and "VENDOR" in (probe.stderr + probe.stdout).upper():
                env["HEALTHTRACE_VENDOR_DOMAINS"] = json.dumps([vendor])
                form = "json list (the plain form failed)"
        res: dict[str, Any] = {"vendor_domains": form}
        res["metrics_check"], aliases = metrics_check(cli, env, ws, expected)
        res["extraction"] = extraction(cli, env, ws, expected)
        res["scoring"] = scoring(cli, env, ws, expected, aliases)
        if keep:
            res["workdir"] = str(tmp)
        return res
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def summary(res: dict[str, Any]) -> dict[str, Any]:
    ex, sc, mc = res["extraction"], res["scoring"], res["metrics_check"]
    ok = sc.get("status") == "ok"
    ex_ok = ex.get("status") == "ok"
    cites = [x for x in ((ex.get("citations"), ex.get("citations_verified")) if ex_ok else (None, None),
                         (sc.get("why_citations"), sc.get("why_citations_verified")) if ok else (None, None)) if x[0]]
    verified = round(sum(n * v for n, v in cites) / sum(n for n, _ in cites), 3) if cites else "n/a"
    return {
        "vendor_domains": res["vendor_domains"],
        "direction": sc.get("direction", "n/a") if ok else "n/a",
        "end_tier": sc.get("end_tier", "n/a") if ok else "n/a",
        "start_tier": sc.get("start_tier", "n/a") if ok else "n/a",
        "contacts_plausible": sc.get("contacts_plausible", "n/a") if ok else "n/a",
        "reasons": sc.get("reasons", "n/a") if ok else "n/a",
        "extraction_recall": ex.get("recall", "n/a") if ex_ok else "n/a",
        "extraction_precision": ex.get("precision", "n/a") if ex_ok else "n/a",
        "citations_verified": verified,
        "metrics_check_coverage": mc.get("coverage", "n/a") if mc.get("status") == "ok" else "n/a",
        "metrics_used": f"{mc['mapped']}/{mc['raw_metrics']}" if mc.get("status") == "ok" else "n/a",
        "metric_units_right": mc.get("units_right", "n/a") if mc.get("status") == "ok" else "n/a",
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embedder", choices=["minilm", "hashing"], default="minilm",
                    help="HEALTHTRACE_EMBEDDER for ingest (default: the product's own, minilm)")
    ap.add_argument("--mode", choices=["both", "vendor", "inferred"], default="both")
    ap.add_argument("--extractor", default="rules", help="the offline extractor to try (HEALTHTRACE_EXTRACTOR): rules, learned")
    ap.add_argument("--cli", default=None, help="the healthtrace command (default: the one beside this python)")
    ap.add_argument("--workspace", type=Path, default=TRIAL,
                    help="the trial workspace (default: benchmarks/customer_trial; benchmarks/customer_trial_b is a "
                         "second one, another vendor, written later and never used to choose anything)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary workspaces and homes")
    ap.add_argument("--verbose", "-v", action="store_true", help="print misses, unexpected signals and drivers")
    args = ap.parse_args(argv)
    cli = args.cli.split() if args.cli else default_cli()
    expected = load_expected(args.workspace)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHTRACE_")}
    base_env["HEALTHTRACE_EMBEDDER"] = args.embedder
    base_env["HEALTHTRACE_EXTRACTOR"] = args.extractor
    modes = ["vendor", "inferred"] if args.mode == "both" else [args.mode]
    t0 = time.perf_counter()
    results = {m: one_mode(m, cli, base_env, expected, args.keep, args.workspace) for m in modes}
    for m, res in results.items():
        ex, sc = res["extraction"], res["scoring"]
        print(f"== {m} (vendor domains: {res['vendor_domains']})")
        mc = res["metrics_check"]
        print(f"   metrics check: {json.dumps({k: v for k, v in mc.items() if k not in ('not_used', 'unit_misses')})}")
        for x in mc.get("not_used") or []:
            print(f"      not used: {x}")
        for x in mc.get("unit_misses") or []:
            print(f"      unit: {x}")
        print("   extraction: " + json.dumps({k: v for k, v in ex.items() if k not in ("misses", "unexpected", "per_type_recall", "unverified_citations")}))
        if ex.get("status") == "ok":
            print(f"   per type recall: {ex['per_type_recall']}")
        print("   scoring: " + json.dumps({k: v for k, v in sc.items() if k not in ("accounts", "why_unverified")}))
        if args.verbose:
            for x in sc.get("why_unverified") or []:
                print(f"   unverified why citation: {x}")
        for aid, info in (sc.get("accounts") or {}).items():
            line = f"   {aid:22} {info.get('story'):5} {info.get('a', '-'):>20} -> {info.get('b', '-'):<20}"
            line += f" follows={info.get('follows')} tier_ok={info.get('tier_plausible')} missing={info.get('reasons_missing')}"
            print(line)
            if args.verbose and info.get("top_drivers"):
                print(f"      drivers: {info['top_drivers']}")
        if args.verbose and ex.get("status") == "ok":
            for x in ex["misses"]:
                print(f"   miss: {x}")
            for x in ex["unexpected"]:
                print(f"   unexpected: {x}")
            for x in ex["unverified_citations"]:
                print(f"   unverified citation: {x}")
    result: dict[str, Any] = {"benchmark": "customer_trial", "workspace": args.workspace.name,
                              "accounts": len(expected["accounts"]),
                              "documents": sum(len(a["documents"]) for a in expected["accounts"].values()),
                              "embedder": args.embedder, "extractor": args.extractor, "wall_s": round(time.perf_counter() - t0, 1)}
    result.update({m: summary(r) for m, r in results.items()})
    print("RESULT " + json.dumps(result, sort_keys=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
