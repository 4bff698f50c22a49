"""API latency under load: GET account health and why at a fixed arrival rate on loopback.

An in-process uvicorn server (one worker, the real app on a temporary SQLite ledger seeded through the API)
and an open-loop client in a child process (its own interpreter, so client and server do not share one
GIL): requests are sent on a fixed schedule whether or not earlier ones have answered, and
latency is measured from the scheduled send time, so a slow server cannot hide its queueing (no coordinated
omission). Bounded by a request count and a wall-clock limit. Also measures the real-time path: one usage
point in -> account rescored -> events, sequentially.

Second scenario (``--mixed-requests``, 0 to skip): GET p99 at ``--mixed-rate`` (100) requests/s while one
document a second (``--doc-rate``) is ingested through ``POST /v1/documents``, with background vector indexing
on and the real MiniLM embedder, as ``healthtrace serve`` runs; goal p99 <= 250 ms.

    .venv/bin/python benchmarks/api_load.py [--rate 200] [--requests 3000] [--accounts 50] [--mixed-requests 2000]

Ends with one line ``RESULT {json}``; goals p99 <= 50 ms (reads alone), <= 250 ms (reads while ingesting).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]


def seed(client, app, n_accounts: int):  # type: ignore[no-untyped-def]
    from api.service import today
    from api.testing import sample_email, seed_tenant

    st = app.state.ht
    seeded = seed_tenant(client, st.store, st.service, "bench")
    day0 = today()
    accounts = [{"account_id": f"bench-{i:04d}", "name": f"Bench {i}", "end_date": (day0 + timedelta(days=30 + i)).isoformat()}
                for i in range(n_accounts)]
    client.put("/v1/accounts", headers=seeded.write, json={"accounts": accounts})
    pts = []
    for i in range(n_accounts):
        for back in range(84, -1, -7):
            d = (day0 - timedelta(days=back)).isoformat()
            pts.append({"account_id": f"bench-{i:04d}", "date": d, "metric": "active_users", "value": 50 + (i % 7) * back / 10})
            pts.append({"account_id": f"bench-{i:04d}", "date": d, "metric": "seats_contracted", "value": 100})
    for j in range(0, len(pts), 5000):
        r = client.post("/v1/usage", headers=seeded.write, json={"points": pts[j : j + 5000]})
        assert r.status_code == 201, r.text
    for i in range(n_accounts):
        aid = f"bench-{i:04d}"
        for back in (60, 30):
            st.service.rescore("bench", aid, as_of=day0 - timedelta(days=back))
        text = sample_email(f"bench{i}", day0 - timedelta(days=2 + i % 5))
        r = client.post("/v1/documents", headers=seeded.write, json={"documents": [{"account_id": aid, "text": text}]})
        assert r.status_code == 201, r.text
    return seeded, [a["account_id"] for a in accounts]


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> int:
    """One keep-alive HTTP/1.1 GET on an open connection; returns the status code (body read and dropped).

    A few lines of asyncio instead of a full client library: at 200 requests/s a general-purpose async client
    costs more CPU per request than the server under test, and would measure itself."""
    writer.write(head)
    await writer.drain()
    status_line = await reader.readline()
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return int(status_line.split()[1])


async def open_loop(base: str, token: str, ids: list[str], rate: float, count: int, limit_s: float,
                    connections: int = 64):  # type: ignore[no-untyped-def]
    host, port = base.removeprefix("http://").split(":")
    lat: dict[str, list[float]] = {"health": [], "why": []}
    errors = 0
    interval = 1.0 / rate
    queue: asyncio.Queue = asyncio.Queue()

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        while True:
            item = await queue.get()
            if item is None:
                writer.close()
                return
            i, due = item
            kind = "health" if i % 2 == 0 else "why"
            aid = ids[i % len(ids)]
            path = f"/v1/accounts/{aid}/{kind}"
            head = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                    "Accept: application/json\r\n\r\n").encode()
            try:
                status = await _request(reader, writer, head)
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                errors += 1
                reader, writer = await asyncio.open_connection(host, int(port))
                continue
            if status == 200:
                lat[kind].append((time.perf_counter() - due) * 1000)
            else:
                errors += 1

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    await asyncio.sleep(0.2)
    start = time.perf_counter()
    sent = 0
    for i in range(count):
        due = start + i * interval
        now = time.perf_counter()
        if now - start > limit_s:
            break
        if due > now:
            await asyncio.sleep(due - now)
        queue.put_nowait((i, due))  # sent on schedule: latency counts from `due`, queueing included
        sent += 1
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - start
    return lat, errors, sent, elapsed


def run_client(base: str, token: str, ids: list[str], rate: float, count: int, limit_s: float):  # type: ignore[no-untyped-def]
    c0 = time.process_time()
    out = asyncio.run(open_loop(base, token, ids, rate, count, limit_s))
    return (*out, time.process_time() - c0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=200.0, help="requests per second (open loop)")
    ap.add_argument("--requests", type=int, default=3000, help="requests to send (bounded)")
    ap.add_argument("--time-limit", type=float, default=30.0, help="seconds of sending at most")
    ap.add_argument("--accounts", type=int, default=50)
    ap.add_argument("--ingest-samples", type=int, default=200)
    ap.add_argument("--mixed-rate", type=float, default=100.0, help="GET requests/s while documents arrive")
    ap.add_argument("--mixed-requests", type=int, default=2000, help="GETs in the mixed scenario (0: skip it)")
    ap.add_argument("--doc-rate", type=float, default=1.0, help="documents/s ingested in the mixed scenario")
    ap.add_argument("--mixed-embedder", default="minilm", choices=["minilm", "hashing"])
    args = ap.parse_args()

    import httpx
    import uvicorn

    home = Path(tempfile.mkdtemp(prefix="ht-bench-"))
    os.environ["HEALTHTRACE_HOME"] = str(home)
    from api.app import create_app
    from api.testing import make_settings

    settings = make_settings(home=home, api_rate_per_s=1e6, api_rate_burst=10**6)
    app = create_app(settings, webhooks=False, index_vectors=False)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    try:
        t0 = time.perf_counter()
        with httpx.Client(base_url=base, timeout=60) as client:
            seeded, ids = seed(client, app, args.accounts)
            seed_s = time.perf_counter() - t0
            # warm-up (imports, caches)
            for aid in ids[:10]:
                client.get(f"/v1/accounts/{aid}/health", headers=seeded.read)
                client.get(f"/v1/accounts/{aid}/why", headers=seeded.read)

            import multiprocessing as mp

            with mp.get_context("spawn").Pool(1) as pool:
                pool.apply(time.sleep, (0,))  # start the child before timing
                cpu0 = time.process_time()
                lat, errors, sent, elapsed, client_cpu = pool.apply(
                    run_client, (base, seeded.read_token, ids, args.rate, args.requests, args.time_limit))
                server_cpu = time.process_time() - cpu0

            # real-time path: one usage point -> rescore -> events, sequential
            from api.service import today

            ingest: list[float] = []
            for i in range(args.ingest_samples):
                aid = ids[i % len(ids)]
                body = {"points": [{"account_id": aid, "date": today().isoformat(), "metric": "active_users",
                                    "value": 10 + (i * 37) % 90}]}
                s = time.perf_counter()
                r = client.post("/v1/usage", headers=seeded.write, json=body)
                ingest.append((time.perf_counter() - s) * 1000)
                assert r.status_code == 201, r.text
    finally:
        server.should_exit = True
        thread.join(10)

    mixed = run_mixed(args) if args.mixed_requests else None
    both = lat["health"] + lat["why"]
    result = {
        "rate_rps": args.rate,
        "sent": sent,
        "achieved_rps": round(sent / elapsed, 1) if elapsed else None,
        "errors": errors,
        "accounts": args.accounts,
        "health_p50_ms": round(_pct(lat["health"], 50), 2),
        "health_p99_ms": round(_pct(lat["health"], 99), 2),
        "why_p50_ms": round(_pct(lat["why"], 50), 2),
        "why_p99_ms": round(_pct(lat["why"], 99), 2),
        "all_p99_ms": round(_pct(both, 99), 2),
        "ingest_rescore_p50_ms": round(statistics.median(ingest), 2) if ingest else None,
        "ingest_rescore_p99_ms": round(_pct(ingest, 99), 2),
        "goal_p99_ms": 50,
        "meets_goal": bool(both) and _pct(both, 99) <= 50 and errors == 0,
        "server_cpu_ms_per_req": round(server_cpu / max(sent, 1) * 1000, 2),
        "client_cpu_ms_per_req": round(client_cpu / max(sent, 1) * 1000, 2),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "seed_s": round(seed_s, 1),
        "cpus": os.cpu_count(),
    }
    if mixed is not None:
        result["mixed"] = mixed
        result["meets_goal"] = result["meets_goal"] and mixed["meets_goal"]
    print(f"health  p50 {result['health_p50_ms']} ms  p99 {result['health_p99_ms']} ms")
    print(f"why     p50 {result['why_p50_ms']} ms  p99 {result['why_p99_ms']} ms")
    print(f"ingest->rescore p50 {result['ingest_rescore_p50_ms']} ms  p99 {result['ingest_rescore_p99_ms']} ms")
    if mixed is not None:
        print(f"mixed: {mixed['rate_rps']} GET/s with {mixed['docs_ingested']} documents ingested at "
              f"{mixed['doc_rate']}/s: GET p50 {mixed['get_p50_ms']} ms  p99 {mixed['get_p99_ms']} ms  "
              f"max {mixed['get_max_ms']} ms, errors {mixed['errors']}; document POST p50 {mixed['doc_post_p50_ms']} ms")
    print("RESULT " + json.dumps(result))


def run_mixed(args: argparse.Namespace) -> dict[str, object]:
    """GETs at a fixed rate while documents are POSTed at ``doc_rate``, on a fresh server with vector indexing."""
    import httpx
    import uvicorn

    from api.app import create_app
    from api.service import today
    from api.testing import make_settings, sample_email

    home = Path(tempfile.mkdtemp(prefix="ht-bench-mixed-"))
    settings = make_settings(home=home, api_rate_per_s=1e6, api_rate_burst=10**6, embedder=args.mixed_embedder)
    app = create_app(settings, webhooks=False, index_vectors=True)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    posted: list[float] = []
    post_errors = 0
    stop = threading.Event()
    try:
        with httpx.Client(base_url=base, timeout=120) as client:
            seeded, ids = seed(client, app, args.accounts)
            for aid in ids[:10]:
                client.get(f"/v1/accounts/{aid}/health", headers=seeded.read)
                client.get(f"/v1/accounts/{aid}/why", headers=seeded.read)
            deadline = time.monotonic() + 120
            while app.state.ht.ledger.document_ids(indexed=False) and time.monotonic() < deadline:
                time.sleep(0.2)  # the seed's own documents embedded first

            def post_one(i: int) -> None:
                nonlocal post_errors
                aid = ids[i % len(ids)]
                text = sample_email(f"mixed{i}", today() - timedelta(days=1)) + \
                    f"Ticket {i}: the export is still failing and we are evaluating other vendors.\n" * 20
                s0 = time.perf_counter()
                with httpx.Client(base_url=base, timeout=120) as c:
                    r = c.post("/v1/documents", headers=seeded.write,
                               json={"documents": [{"account_id": aid, "text": text, "path": f"mixed/{i}.eml"}]})
                posted.append((time.perf_counter() - s0) * 1000)
                if r.status_code != 201:
                    post_errors += 1

            senders: list[threading.Thread] = []

            def feeder() -> None:
                """Open loop: one document every 1/doc_rate s, sent on schedule whether or not the last answered."""
                i = 0
                start = time.perf_counter()
                while not stop.is_set():
                    due = start + i / args.doc_rate
                    if due > time.perf_counter():
                        stop.wait(due - time.perf_counter())
                        continue
                    t = threading.Thread(target=post_one, args=(i,), daemon=True)
                    t.start()
                    senders.append(t)
                    i += 1

            feed = threading.Thread(target=feeder, daemon=True)
            import multiprocessing as mp

            with mp.get_context("spawn").Pool(1) as pool:
                pool.apply(time.sleep, (0,))
                feed.start()
                time.sleep(1.0)  # documents are arriving before the first GET
                lat, errors, sent, elapsed, _cpu = pool.apply(
                    run_client, (base, seeded.read_token, ids, args.mixed_rate, args.mixed_requests,
                                 args.time_limit * 2))
            stop.set()
            feed.join(120)
            for t in senders:
                t.join(120)
    finally:
        stop.set()
        server.should_exit = True
        thread.join(10)
    both = lat["health"] + lat["why"]
    p99 = _pct(both, 99)
    return {
        "rate_rps": args.mixed_rate, "sent": sent, "achieved_rps": round(sent / elapsed, 1) if elapsed else None,
        "errors": errors, "doc_rate": args.doc_rate, "docs_sent": len(senders), "docs_ingested": len(posted), "doc_post_errors": post_errors,
        "embedder": args.mixed_embedder,
        "get_p50_ms": round(_pct(both, 50), 2), "get_p99_ms": round(p99, 2), "get_max_ms": round(max(both), 2) if both else None,
        "doc_post_p50_ms": round(statistics.median(posted), 2) if posted else None,
        "doc_post_p99_ms": round(_pct(posted, 99), 2),
        "goal_p99_ms": 250, "meets_goal": bool(both) and p99 <= 250 and errors == 0 and post_errors == 0,
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


if __name__ == "__main__":
    main()
