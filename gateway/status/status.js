// The live part of the gateway's status page: it follows /status/events
// (server-sent events, one status snapshot a second) and redraws the
// devices and sinks from each one, falling back to polling status.json
// when event streams are unavailable. Every text from the gateway or a
// device goes into the page as a text node (textContent), never as HTML.
"use strict";

(function () {
  const $ = (sel) => document.querySelector(sel);

  // el makes an element with attributes and children; strings become text
  // nodes, null and undefined are skipped.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) e.setAttribute(k, String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  // Formats, as the server renders them (status_http.go).
  function dur(s) {
    if (!s || s <= 0) return "0 s";
    if (s < 0.001) return (s * 1e6).toFixed(0) + " µs";
    if (s < 1) return (s * 1e3).toFixed(s < 0.01 ? 2 : 1) + " ms";
    if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + Math.floor(s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }
  function ts(t) {
    if (!t) return "–";
    const d = new Date(t);
    if (isNaN(d)) return "–";
    const p = (n) => String(n).padStart(2, "0");
    return d.getUTCFullYear() + "-" + p(d.getUTCMonth() + 1) + "-" + p(d.getUTCDate()) + " " +
      p(d.getUTCHours()) + ":" + p(d.getUTCMinutes()) + ":" + p(d.getUTCSeconds()) + " UTC";
  }
  function ago(now, t) {
    if (!t) return "–";
    const s = (new Date(now) - new Date(t)) / 1000;
    return dur(Math.max(0, s)) + " ago (" + ts(t) + ")";
  }
  function rate(r) {
    return (r || 0).toFixed(r && r < 10 ? 2 : 1) + "/s";
  }
  function bytes(n) {
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(n) : n.toFixed(1)) + " " + u[i];
  }
  const state = (s) => el("span", { class: "state state-" + s, "data-state": s }, s);

  function device(d, now, open) {
    const facts = [
      el("div", {}, el("dt", {}, "since"), el("dd", { class: "since" }, ago(now, d.since))),
      el("div", {}, el("dt", {}, "last cycle"), el("dd", { class: "last-cycle" }, ago(now, d.last_cycle))),
    ];
    const mb = d.modbus, ua = d.opcua;
    if (mb) {
      facts.push(el("div", {}, el("dt", {}, "poll latency"), el("dd", { class: "latency" },
        dur(mb.poll_latency_seconds) + " (mean " + dur(mb.poll_latency_mean_seconds) + ", max " + dur(mb.poll_latency_max_seconds) + ")")));
      facts.push(el("div", {}, el("dt", {}, "cycles"), el("dd", { class: "cycles" },
        mb.cycles + " (" + mb.requests + " requests, " + mb.overruns + " overruns)")));
    }
    if (ua) {
      facts.push(el("div", {}, el("dt", {}, "session"), el("dd", { class: "session" },
        (ua.connected ? "connected" : "not connected") + " (" + ua.mode + ", " + ua.connects + " connects, " +
        ua.notifications + " notifications, " + ua.reads + " reads)")));
    }
    let samples = rate(d.samples_per_second) + " · " + d.samples.good + " good, " + d.samples.uncertain + " uncertain, " + d.samples.bad + " bad";
    if (d.suppressed) samples += ", " + d.suppressed + " suppressed";
    if (d.dropped) samples += ", " + d.dropped + " dropped";
    facts.push(el("div", {}, el("dt", {}, "samples"), el("dd", { class: "samples" }, samples)));

    const rows = d.points.length ? d.points.map((p) => el("tr", { "data-point": p.name },
      el("td", { class: "point" }, p.name),
      el("td", { class: "value" }, p.text),
      el("td", { class: "unit" }, p.unit || ""),
      el("td", { class: "quality q-" + p.quality }, p.quality),
      el("td", { class: "age" }, dur(p.age_seconds)),
      el("td", { class: "reason" }, p.error || ""))) :
      [el("tr", { class: "empty" }, el("td", { colspan: 6 }, "no values yet"))];

    const parts = [
      el("h3", {}, el("span", { class: "name" }, d.name), " ", state(d.state)),
      el("p", { class: "transport" }, d.transport + ", every " + dur(d.interval_seconds)),
      d.error ? el("p", { class: "error" }, d.error) : null,
      el("dl", { class: "facts" }, facts),
      el("table", { class: "values" },
        el("thead", {}, el("tr", {}, ["point", "value", "unit", "quality", "age", "error"].map((h) => el("th", {}, h)))),
        el("tbody", {}, rows)),
      d.values_not_shown ? el("p", { class: "note" }, d.values_not_shown + " samples of points past the page's limit not shown") : null,
    ];
    if (mb) {
      const plan = mb.plan;
      parts.push(el("details", { class: "plan", open: open ? "" : null },
        el("summary", {}, "read plan: " + plan.requests.length + " requests, estimated " + dur(plan.cost_seconds) + " a cycle"),
        el("table", {},
          el("thead", {}, el("tr", {}, ["table", "addresses", "count", "points"].map((h) => el("th", {}, h)))),
          el("tbody", {}, plan.requests.map((r) => el("tr", {},
            el("td", {}, r.table), el("td", {}, r.address + "–" + (r.address + r.quantity - 1)),
            el("td", {}, r.quantity), el("td", {}, r.points.join(" ")))))),
        plan.unplanned && plan.unplanned.length ? el("p", { class: "note" }, "not read (no request may): " + plan.unplanned.join(" ")) : null));
    }
    if (ua) {
      parts.push(el("details", { class: "plan", open: open ? "" : null },
        el("summary", {}, "nodes: " + ua.nodes.length),
        el("table", {},
          el("thead", {}, el("tr", {}, ["point", "node", "unit"].map((h) => el("th", {}, h)))),
          el("tbody", {}, ua.nodes.map((n) => el("tr", {}, el("td", {}, n.name), el("td", {}, n.node), el("td", {}, n.unit || "")))))));
    }
    return el("article", { class: "device", "data-device": d.name }, parts);
  }

  function sink(s, now) {
    let dropped = rate(s.dropped_per_second) + "\n" + s.dropped + " total";
    if (s.rejected) dropped += ", " + s.rejected + " rejected";
    if (s.failed) dropped += ", " + s.failed + " failed";
    const br = () => el("br");
    return el("tr", { "data-sink": s.name },
      el("td", { class: "sink" }, el("span", { class: "name" }, s.name), br(), el("span", { class: "target" }, s.target)),
      el("td", { class: "sink-state" }, state(s.state), s.since ? [br(), el("span", { class: "since" }, ago(now, s.since))] : null),
      el("td", { class: "queue" }, s.queued + " waiting" + (s.in_flight ? ", " + s.in_flight + " in flight" : ""),
        br(), el("span", { class: "overflow" }, "queue " + s.queue_size + ", overflow " + s.overflow)),
      el("td", { class: "spool" }, s.spool ? s.spool.samples + " samples, " + bytes(s.spool.bytes) : "–"),
      el("td", { class: "delivered" }, rate(s.delivered_per_second), br(), s.delivered + " total"),
      el("td", { class: "dropped" }, dropped.split("\n")[0], br(), dropped.split("\n")[1]),
      el("td", { class: "error" }, s.error || ""));
  }

  function render(st) {
    $("#config").textContent = st.config;
    $("#started").textContent = ts(st.started);
    $("#snapshot").textContent = ts(st.time);
    const h = $("#health");
    h.className = "health " + (st.healthy ? "health-ok" : "health-bad");
    h.setAttribute("data-healthy", String(st.healthy));
    h.replaceChildren(st.healthy ? "healthy" : "unhealthy",
      ...(st.healthy ? [] : [el("ul", {}, st.unhealthy.map((u) => el("li", {}, u)))]));
    // Keep the read plans a reader opened.
    const open = new Set();
    for (const d of document.querySelectorAll("#devices article.device")) {
      if (d.querySelector("details[open]")) open.add(d.getAttribute("data-device"));
    }
    $("#devices").replaceChildren(...st.devices.map((d) => device(d, st.time, open.has(d.name))));
    $("#sinks").replaceChildren(...st.sinks.map((s) => sink(s, st.time)));
    $("#rate").textContent = "rates over the last " + dur(st.rate_seconds);
  }

  function live(mode, text) {
    const l = $("#live");
    l.setAttribute("data-live", mode);
    l.textContent = text;
  }

  // Polling status.json, for when event streams fail.
  let polling = false;
  async function poll() {
    polling = true;
    for (;;) {
      try {
        const r = await fetch("status.json", { cache: "no-store" });
        if (!r.ok) throw new Error(r.status + " " + r.statusText);
        const st = await r.json();
        render(st);
        live("live", "live (polling), updated " + ts(st.time));
      } catch (e) {
        live("lost", "no answer from the gateway (" + e.message + "); retrying");
      }
      await new Promise((ok) => setTimeout(ok, 2000));
    }
  }

  function stream() {
    if (!window.EventSource) { poll(); return; }
    const es = new EventSource("status/events");
    let got = false, failures = 0;
    es.addEventListener("status", (ev) => {
      got = true;
      failures = 0;
      const st = JSON.parse(ev.data);
      render(st);
      live("live", "live, updated " + ts(st.time));
    });
    es.addEventListener("end", () => {
      es.close();
      live("ended", "the gateway stopped; this is its last status (reconnecting when it is back)");
      setTimeout(stream, 5000);
    });
    es.onerror = () => {
      failures++;
      // Refused (503: too many streams; a proxy that does not pass
      // them), or no stream after several tries: poll instead.
      if (!polling && (es.readyState === EventSource.CLOSED || (!got && failures >= 3))) {
        es.close();
        poll();
        return;
      }
      live("lost", "connection to the gateway lost; reconnecting");
    };
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", stream);
  } else {
    stream();
  }
})();
