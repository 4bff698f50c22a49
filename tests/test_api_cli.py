"""`healthtrace serve` prints a dashboard link whose key works (uvicorn itself is replaced by a probe)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from typer.testing import CliRunner


def test_serve_prints_a_working_dashboard_key(monkeypatch):
    import uvicorn

    from api.cli import app as cli

    seen: dict[str, object] = {}

    def fake_run(app, host: str, port: int, **kw) -> None:  # type: ignore[no-untyped-def]
        seen.update(app=app, host=host, port=port)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    runner = CliRunner()
    r = runner.invoke(cli, ["serve", "--port", "8123"])
    assert r.exit_code == 0, r.output
    m = re.search(r"Dashboard: http://127\.0\.0\.1:8123/dashboard/#key=(\S+)", r.stdout)
    assert m, r.stdout
    token = m.group(1)
    assert seen["port"] == 8123 and seen["host"] == "127.0.0.1"
    with TestClient(seen["app"]) as c:  # type: ignore[arg-type]
        me = c.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"}).json()
        assert me["tenant"] == "default" and me["scope"] == "read"
        assert c.post("/v1/outcomes", headers={"Authorization": f"Bearer {token}"},
                      json={"outcomes": [{"account_id": "x", "date": "2026-01-01", "outcome": "renewed"}]}
                      ).status_code == 403
    # a second start replaces the dashboard key: the first one stops working
    r2 = runner.invoke(cli, ["serve", "--port", "8123"])
    token2 = re.search(r"#key=(\S+)", r2.stdout).group(1)  # type: ignore[union-attr]
    with TestClient(seen["app"]) as c:  # type: ignore[arg-type]
        assert c.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        assert c.get("/v1/whoami", headers={"Authorization": f"Bearer {token2}"}).status_code == 200
