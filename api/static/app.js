/* healthtrace dashboard: plain JS, inline SVG, no CDN. Data is put into the page with textContent only. */
(function () {
  "use strict";
  var KEY = "healthtrace.key";
  var PAGE = 25;
  var state = { offset: 0, total: 0 };
  var SVG = "http://www.w3.org/2000/svg";
  var TIER_COLORS = { "Healthy": "#2e9e5b", "Attention": "#d9a400", "At Risk": "#e06c1b", "Critical": "#c62828" };

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function tierBadge(tier) {
    return el("span", { "class": "tier " + String(tier || "").replace(/ /g, "-") }, tier || "not scored");
  }
  function overrideText(o) {
    // the CSM's own call, shown beside the computed score (never mixed into it)
    return "CSM override: " + o.tier + (o.score !== null && o.score !== undefined ? " (" + fmt(o.score) + ")" : "") +
      ", " + String(o.reason_code || "").replace(/_/g, " ") + " · " + o.as_of + (o.author ? " · " + o.author : "");
  }
  function fmt(x) { return x === null || x === undefined ? "–" : Number(x).toFixed(0); }

  // ---------------------------------------------------------------- key handling
  function takeKeyFromHash() {
    var m = /[#&]key=([^&]+)/.exec(location.hash);
    if (m) {
      localStorage.setItem(KEY, decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname + "#/");
    }
  }
  function key() { return localStorage.getItem(KEY); }

  function api(path) {
    return fetch(path, { headers: { "Authorization": "Bearer " + key(), "Accept": "application/json" } })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (body) {
          if (r.status === 401) { localStorage.removeItem(KEY); showLogin((body.error || {}).message); throw new Error("unauthorized"); }
          if (!r.ok) throw new Error((body.error && body.error.message) || ("HTTP " + r.status));
          return body;
        });
      });
  }
  function fail(err) { if (err && err.message !== "unauthorized") $("error").textContent = err.message; }

  function show(section) {
    ["login", "portfolio", "account"].forEach(function (s) { $(s).hidden = s !== section; });
    $("logout").hidden = section === "login";
    $("error").textContent = "";
  }
  function showLogin(message) {
    show("login");
    $("login-error").textContent = message || "";
  }

  // ---------------------------------------------------------------- portfolio
  function tierChart(tiers) {
    var box = $("tier-chart"); clear(box);
    var names = ["Critical", "At Risk", "Attention", "Healthy"];
    var max = Math.max.apply(null, names.map(function (t) { return tiers[t] || 0; }).concat([1]));
    var w = 520, barH = 26, gap = 10, left = 90;
    var s = svg("svg", { width: "100%", viewBox: "0 0 " + w + " " + (names.length * (barH + gap)), role: "img" });
    names.forEach(function (t, i) {
      var n = tiers[t] || 0, y = i * (barH + gap);
      var label = svg("text", { x: 0, y: y + barH * 0.65 }); label.textContent = t; s.appendChild(label);
      var bw = Math.max(2, (w - left - 50) * n / max);
      var rect = svg("rect", { x: left, y: y, width: bw, height: barH, rx: 4, fill: TIER_COLORS[t], "data-tier": t });
      s.appendChild(rect);
      var v = svg("text", { x: left + bw + 6, y: y + barH * 0.65 }); v.textContent = String(n); s.appendChild(v);
    });
    box.appendChild(s);
  }

  function loadPortfolio() {
    show("portfolio");
    var params = new URLSearchParams({ sort: "risk", limit: String(PAGE), offset: String(state.offset) });
    var tier = $("tier-filter").value; if (tier) params.append("tier", tier);
    var q = $("search").value.trim(); if (q) params.set("q", q);
    api("/v1/whoami").then(function (me) { $("who").textContent = "tenant " + me.tenant + " · " + me.scope + " key"; }).catch(fail);
    api("/v1/accounts?" + params.toString()).then(function (page) {
      state.total = page.total;
      tierChart(page.tiers || {});
      var body = $("account-rows"); clear(body);
      page.items.forEach(function (a) {
        var tr = el("tr", { "data-tier": a.tier || "" });
        var td = el("td"); var link = el("a", { href: "#/account/" + encodeURIComponent(a.account_id), "class": "account-link" }, a.name || a.account_id);
        td.appendChild(link); if (a.name) td.appendChild(el("div", { "class": "muted" }, a.account_id)); tr.appendChild(td);
        tr.appendChild(el("td", { "class": "num" }, fmt(a.score)));
        var tt = el("td"); tt.appendChild(tierBadge(a.tier));
        if (a.override) tt.appendChild(el("div", { "class": "muted override" }, overrideText(a.override)));
        tr.appendChild(tt);
        tr.appendChild(el("td", { "class": "reason" }, (a.top_reasons || [])[0] || ""));
        tr.appendChild(el("td", { "class": "muted" }, a.as_of || ""));
        body.appendChild(tr);
      });
      if (!page.items.length) body.appendChild(el("tr")).appendChild(el("td", { colspan: "5", "class": "muted" },
        "No scored accounts yet. Run `make demo` (or ingest data) and reload."));
      $("page-info").textContent = page.total ? (state.offset + 1) + "–" + Math.min(state.offset + PAGE, page.total) + " of " + page.total : "";
      $("prev").disabled = state.offset === 0; $("next").disabled = state.offset + PAGE >= page.total;
    }).catch(fail);
  }

  // ---------------------------------------------------------------- account page
  function historyChart(points) {
    var box = $("history-chart"); clear(box);
    if (!points.length) { box.appendChild(el("p", { "class": "muted" }, "No stored scores yet.")); return; }
    var w = 760, h = 220, l = 34, r = 10, t = 10, b = 26;
    var s = svg("svg", { width: "100%", viewBox: "0 0 " + w + " " + h, role: "img", "aria-label": "score history" });
    var bands = [[70, 100, "Healthy"], [50, 70, "Attention"], [30, 50, "At Risk"], [0, 30, "Critical"]];
    function y(v) { return t + (h - t - b) * (1 - v / 100); }
    bands.forEach(function (bd) {
      s.appendChild(svg("rect", { x: l, y: y(bd[1]), width: w - l - r, height: y(bd[0]) - y(bd[1]), fill: TIER_COLORS[bd[2]], opacity: 0.07 }));
      var tx = svg("text", { x: 2, y: y(bd[0]) - 2 }); tx.textContent = String(bd[0]); s.appendChild(tx);
    });
    var n = points.length;
    function x(i) { return n === 1 ? (l + w - r) / 2 : l + (w - l - r) * i / (n - 1); }
    var d = points.map(function (p, i) { return (i ? "L" : "M") + x(i).toFixed(1) + " " + y(p.score).toFixed(1); }).join(" ");
    s.appendChild(svg("path", { d: d, fill: "none", stroke: "#2d5bd3", "stroke-width": 2 }));
    points.forEach(function (p, i) {
      var c = svg("circle", { cx: x(i), cy: y(p.score), r: 3.5, fill: TIER_COLORS[p.tier] || "#2d5bd3" });
      var title = svg("title", {}); title.textContent = p.as_of + ": " + p.score.toFixed(1) + " (" + p.tier + ")";
      c.appendChild(title); s.appendChild(c);
    });
    (n > 1 ? [0, n - 1] : [0]).forEach(function (i) {
      var tx = svg("text", { x: x(i), y: h - 6, "text-anchor": i === 0 ? "start" : "end" }); tx.textContent = points[i].as_of; s.appendChild(tx);
    });
    box.appendChild(s);
  }

  function citationButton(c) {
    var label = "“" + (c.quote.length > 90 ? c.quote.slice(0, 87) + "…" : c.quote) + "”";
    var date = c.occurred_at || c.date;
    var b = el("button", { "class": "citation", type: "button", title: "open the source passage",
      "data-source": c.source_id, "data-start": String(c.start), "data-end": String(c.end) },
      label + (date ? " · " + String(date).slice(0, 10) : ""));
    b.addEventListener("click", function () { openSource(c); });
    return b;
  }

  function openSource(c) {
    api("/v1/documents/" + encodeURIComponent(c.source_id)).then(function (doc) {
      var pre = $("source-text"); clear(pre);
      var text = doc.text;
      pre.appendChild(document.createTextNode(text.slice(0, c.start)));
      var m = el("mark", { "data-source": c.source_id }); m.textContent = text.slice(c.start, c.end);
      pre.appendChild(m);
      pre.appendChild(document.createTextNode(text.slice(c.end)));
      // a file name, never the absolute path on the server
      $("source-title").textContent = (doc.title || (doc.path ? String(doc.path).split(/[\\/]/).pop() : "") || doc.kind) + (doc.occurred_at ? " · " + doc.occurred_at.slice(0, 10) : "");
      $("source").hidden = false;
      m.scrollIntoView({ block: "center" });
      $("source").scrollIntoView({ block: "nearest" });
    }).catch(fail);
  }

  function contributions(health) {
    var box = $("contributions"); clear(box);
    // reasons only: category starting points and 0-100 bounds are arithmetic, not something a CSM acts on
    var items = health.contributions.filter(function (c) {
      return Math.abs(c.points) >= 0.05 && c.kind !== "baseline" && c.kind !== "clamp";
    });
    items.sort(function (a, b) { return Math.abs(b.points) - Math.abs(a.points); });
    var max = Math.max.apply(null, items.map(function (c) { return Math.abs(c.points); }).concat([1]));
    items.forEach(function (c) {
      var row = el("div", { "class": "contrib" });
      var left = el("div"); left.appendChild(el("div", null, c.reason));
      if (c.category) left.appendChild(el("span", { "class": "muted" }, c.category + " · " + c.kind));
      (c.evidence || []).slice(0, 2).forEach(function (ev) { left.appendChild(el("br")); left.appendChild(citationButton(ev)); });
      row.appendChild(left);
      var bar = el("div", { "class": "bar" }); var span = el("span");
      var pct = 50 * Math.abs(c.points) / max;
      span.style.left = (c.points >= 0 ? 50 : 50 - pct) + "%"; span.style.width = pct + "%";
      span.style.background = c.points >= 0 ? "#2e9e5b" : "#c62828";
      bar.appendChild(span); row.appendChild(bar);
      row.appendChild(el("div", { "class": "pts " + (c.points >= 0 ? "pos" : "neg") }, (c.points >= 0 ? "+" : "") + c.points.toFixed(1)));
      box.appendChild(row);
    });
    (health.notes || []).forEach(function (n) { box.appendChild(el("p", { "class": "muted" }, n)); });
  }

  function renderChange(box, ch) {
    var div = el("div", { "class": "change" });
    div.appendChild(el("div", { "class": "when" }, ch.from_as_of + " → " + ch.to_as_of + " · " + (ch.delta >= 0 ? "+" : "") + ch.delta.toFixed(1) + " points"));
    div.appendChild(el("p", null, ch.text));
    // the biggest movers, plus every driver that carries evidence (a quote is what a CSM can act on)
    var shown = ch.drivers.filter(function (d, i) { return i < 5 || (d.citations || []).length; }).slice(0, 10);
    shown.forEach(function (d) {
      var dv = el("div", { "class": "driver" });
      dv.appendChild(el("span", { "class": d.points >= 0 ? "pos" : "neg" }, (d.points >= 0 ? "+" : "") + d.points.toFixed(1) + " "));
      dv.appendChild(document.createTextNode(d.description + " "));
      (d.citations || []).slice(0, 3).forEach(function (c) { dv.appendChild(citationButton(c)); });
      div.appendChild(dv);
    });
    box.appendChild(div);
  }

  function loadAccount(id) {
    show("account"); $("source").hidden = true;
    var base = "/v1/accounts/" + encodeURIComponent(id);
    api(base).then(function (a) {
      $("acct-name").textContent = a.name || a.account_id;
      $("acct-meta").textContent = [a.account_id, a.segment, a.end_date ? "renews " + a.end_date : null, a.as_of ? "as of " + a.as_of : null]
        .filter(Boolean).join(" · ");
      $("acct-score").textContent = fmt(a.score);
      var t = $("acct-tier"); clear(t); t.appendChild(tierBadge(a.tier));
      if (a.override) t.appendChild(el("div", { "class": "muted override" }, overrideText(a.override) +
        (a.override.note ? ": “" + a.override.note + "”" : "")));
    }).catch(fail);
    api(base + "/history").then(function (h) { historyChart(h.points); }).catch(fail);
    api(base + "/health").then(contributions).catch(fail);
    var box = $("changes"); clear(box);
    api(base + "/changes?limit=5").then(function (res) {
      if (res.changes.length) { res.changes.forEach(function (c) { renderChange(box, c); }); return; }
      return api(base + "/why").then(function (w) { renderChange(box, w); });
    }).catch(function (e) { box.appendChild(el("p", { "class": "muted" }, e.message)); });
  }

  // ---------------------------------------------------------------- routing
  function route() {
    takeKeyFromHash();
    if (!key()) { showLogin(); return; }
    var m = /^#\/account\/(.+)$/.exec(location.hash);
    if (m) loadAccount(decodeURIComponent(m[1])); else loadPortfolio();
  }

  $("login-form").addEventListener("submit", function (e) {
    e.preventDefault();
    localStorage.setItem(KEY, $("key-input").value.trim());
    $("key-input").value = "";
    location.hash = "#/"; route();
  });
  $("logout").addEventListener("click", function () { localStorage.removeItem(KEY); $("who").textContent = ""; showLogin(); });
  $("tier-filter").addEventListener("change", function () { state.offset = 0; loadPortfolio(); });
  var timer = null;
  $("search").addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(function () { state.offset = 0; loadPortfolio(); }, 250); });
  $("prev").addEventListener("click", function () { state.offset = Math.max(0, state.offset - PAGE); loadPortfolio(); });
  $("next").addEventListener("click", function () { state.offset += PAGE; loadPortfolio(); });
  $("source-close").addEventListener("click", function () { $("source").hidden = true; });
  window.addEventListener("hashchange", route);
  route();
})();
