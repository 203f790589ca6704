// KPI dashboard: each table-1 KPI as a 12-period trend (inline SVG, no chart library or CDN) with
// its target line from channels/ops_policy.yaml, per channel where it applies, and CSV export.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const el = Staff.el;
  const NS = "http://www.w3.org/2000/svg";
  const SERIES = { all: ["全部渠道", "#0b5ed7"], web: ["网页", "#0ea5e9"], wechat: ["微信", "#16a34a"], ivr: ["热线", "#9333ea"], alipay: ["支付宝", "#f59e0b"] };
  let loadedPeriod = "";

  function svg(tag, attrs, text) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  const num = (p) => (p && p.value !== null ? Number(p.value) : null);
  const fmt = (v) => {
    const s = Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
    return s.includes(".") ? s.replace(/\.?0+$/, "") : s;
  };

  // A line chart of several series over the same periods, with a dashed target line.
  function trendChart(periods, series, unit, target) {
    const W = 320, H = 132, L = 34, R = 16, T = 12, B = 22;
    const values = series.flatMap((s) => s.points.map(num)).filter((v) => v !== null);
    if (target !== null) values.push(target);
    let lo = values.length ? Math.min(...values) : 0, hi = values.length ? Math.max(...values) : 1;
    const pad = (hi - lo) * 0.15 || Math.max(Math.abs(hi) * 0.1, 1);
    lo -= pad; hi += pad;
    lo = Math.max(0, lo);  // every table-1 figure is a share, a time or a count: never below zero
    if (unit === "%") hi = Math.min(100, hi);
    if (lo > 0 && lo < (hi - lo)) lo = 0;
    if (hi <= lo) hi = lo + 1;
    const x = (i) => L + (i * (W - L - R)) / Math.max(periods.length - 1, 1);
    const y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "近 12 个账期趋势" });
    for (const tick of [lo, (lo + hi) / 2, hi]) {
      chart.appendChild(svg("line", { x1: L, x2: W - R, y1: y(tick), y2: y(tick), stroke: "#eef1f5" }));
      chart.appendChild(svg("text", { x: L - 4, y: y(tick) + 3, "font-size": 9, "text-anchor": "end", fill: "#8592a6" }, fmt(tick)));
    }
    periods.forEach((p, i) => {
      if (i % 3 === 0 || i === periods.length - 1) {
        const anchor = i === periods.length - 1 ? "end" : i === 0 ? "start" : "middle";
        chart.appendChild(svg("text", { x: x(i), y: H - 6, "font-size": 9, "text-anchor": anchor, fill: "#8592a6" }, p.slice(2).replace("-", "/")));
      }
    });
    if (target !== null) {
      chart.appendChild(svg("line", { x1: L, x2: W - R, y1: y(target), y2: y(target), stroke: "#dc2626", "stroke-dasharray": "4 3", "stroke-width": 1, class: "target" }));
      chart.appendChild(svg("text", { x: W - 2, y: y(target) - 3, "font-size": 9, "text-anchor": "end", fill: "#dc2626" }, "目标 " + fmt(target) + unit));
    }
    for (const s of series) {
      // A gap (a period without a figure) breaks the line rather than drawing through zero.
      let path = "", drawing = false;
      s.points.forEach((p, i) => {
        const v = num(p);
        if (v === null) { drawing = false; return; }
        path += (drawing ? " L" : " M") + x(i).toFixed(1) + "," + y(v).toFixed(1);
        drawing = true;
      });
      path = path.trim();
      if (path) chart.appendChild(svg("path", { d: path, fill: "none", stroke: s.color, "stroke-width": s.main ? 2.2 : 1.3, "stroke-linejoin": "round", class: "series", "data-series": s.key }));
      s.points.forEach((p, i) => {
        const v = num(p);
        if (v !== null) chart.appendChild(svg("circle", { cx: x(i), cy: y(v), r: s.main ? 2.6 : 1.8, fill: s.color, class: "point" }));
        else if (p && p.pending > 0 && s.main) chart.appendChild(svg("text", { x: x(i), y: T + 8, "font-size": 9, "text-anchor": "middle", fill: "#b45309", class: "pending-mark" }, "待定"));
      });
    }
    return chart;
  }

  // The headline: the end period's figure, or (when it has none) the latest period that has one.
  function headline(periods, points) {
    const last = points[points.length - 1];
    if (last && (last.value !== null || last.pending > 0)) return { point: last, period: periods[periods.length - 1] };
    for (let i = points.length - 1; i >= 0; i--) if (num(points[i]) !== null) return { point: points[i], period: periods[i] };
    return { point: last, period: periods[periods.length - 1] };
  }

  function card(kpi, periods, series, mainPoints) {
    const div = el("div", undefined, "kpi-card");
    div.dataset.code = kpi.code;
    const { point, period } = headline(periods, mainPoints);
    const title = el("h3", kpi.name);
    title.appendChild(el("span", "账期 " + period, "muted"));
    div.appendChild(title);
    const value = el("div", undefined, "kpi-value");
    const v = num(point);
    const target = kpi.target === null ? null : Number(kpi.target);
    if (v !== null) {
      value.appendChild(el("strong", point.value + point.unit, "value"));
      if (target !== null) {
        const met = kpi.better === "higher" ? v >= target : v <= target;
        value.appendChild(el("span", (met ? "达标" : "未达标") + " · 目标 " + kpi.target + kpi.unit, "status " + (met ? "met" : "missed")));
      }
    } else if (point && point.pending > 0) {
      value.appendChild(el("strong", "待定", "value pending"));
    } else {
      value.appendChild(el("strong", "无数据", "value muted"));
    }
    div.appendChild(value);
    let basis = "";
    if (point && point.pending > 0) basis = point.pending + " 个首次接触仍在回访窗口内，窗口结束后计入";
    if (point && point.denominator !== undefined && (v !== null)) basis = point.numerator_label + " " + point.numerator + " / " + point.denominator_label + " " + point.denominator + (basis ? "；" + basis : "");
    div.appendChild(el("div", basis, "basis"));
    div.appendChild(trendChart(periods, series, kpi.unit, target));
    if (series.length > 1) {
      const legend = el("div", undefined, "legend");
      for (const s of series) { const item = el("span", s.label); const swatch = el("i"); swatch.style.background = s.color; item.prepend(swatch); legend.appendChild(item); }
      div.appendChild(legend);
    }
    return div;
  }

  async function load() {
    const period = $("period").value.trim();
    const data = await (await Staff.api("/api/kpi/trend" + (period ? "?end=" + encodeURIComponent(period) : ""))).json();
    loadedPeriod = data.periods[data.periods.length - 1];
    $("period").value = loadedPeriod;
    $("message").textContent = "账期 " + loadedPeriod + " · 近 12 个账期 " + data.periods[0] + " 至 " + loadedPeriod +
      (period ? "" : "（最近有数据的账期）");
    const one = (kpi) => [{ key: "all", label: SERIES.all[0], color: SERIES.all[1], main: true, points: kpi.points }];
    $("billing").replaceChildren(...data.billing.map((k) => card(k, data.periods, one(k), k.points)));
    $("platform").replaceChildren(...data.platform.map((k) => card(k, data.periods, one(k), k.points)));
    $("service").replaceChildren(...data.service.map((k) => {
      const series = Object.keys(k.channels).map((ch) => ({ key: ch, label: (SERIES[ch] || [ch])[0], color: (SERIES[ch] || [0, "#64748b"])[1], main: ch === "all", points: k.channels[ch] }));
      return card(k, data.periods, series, k.channels.all);
    }));
    await loadIndicators(loadedPeriod);
  }

  // The guide's four kinds of CX indicators: value, formula, numerator / denominator and the records behind it.
  async function loadIndicators(period) {
    const data = await (await Staff.api("/api/kpi/indicators?period=" + encodeURIComponent(period))).json();
    $("cx").replaceChildren(...Object.entries(data.kinds).map(([kind, title]) => {
      const div = el("div", undefined, "kpi-card");
      div.appendChild(el("h3", title));
      for (const i of data.indicators.filter((x) => x.kind === kind)) {
        const value = el("div", undefined, "kpi-value");
        value.appendChild(el("strong", i.value === null ? "无数据" : fmt(Number(i.value)) + i.unit));
        value.appendChild(el("span", i.name, "muted"));
        div.appendChild(value);
        div.appendChild(el("div", i.formula + "：" + i.numerator_label + " " + i.numerator + " / " + i.denominator_label + " " + i.denominator, "basis"));
        div.appendChild(el("div", "来源：" + i.records, "basis"));
      }
      return div;
    }));
  }

  // The satisfaction report is one self-contained HTML page; fetched with the staff token, opened as a blob.
  async function openReport() {
    const period = loadedPeriod || $("period").value.trim();
    const blob = await (await Staff.api("/api/cx/report?format=html&period=" + encodeURIComponent(period))).blob();
    window.open(URL.createObjectURL(new Blob([blob], { type: "text/html" })), "_blank");
  }

  async function downloadCsv() {
    const period = loadedPeriod || $("period").value.trim();
    const blob = await (await Staff.api("/api/kpi.csv?period=" + encodeURIComponent(period))).blob();
    const link = el("a");
    link.href = URL.createObjectURL(blob);
    link.download = "kpi-" + period + ".csv";
    link.click();
  }

  const fail = (err) => {
    $("message").textContent = err.message;
    if (err.message.includes("未登录")) { $("login").hidden = false; $("who").hidden = true; }
  };
  function signedIn(on) { $("login").hidden = on; $("who").hidden = !on; if (on) load().catch(fail); }
  $("login").addEventListener("submit", (e) => { e.preventDefault(); Staff.setToken($("token").value); $("token").value = ""; signedIn(true); });
  $("logout").onclick = () => Staff.logout();
  $("controls").addEventListener("submit", (e) => { e.preventDefault(); load().catch(fail); });
  $("csv").onclick = () => downloadCsv().catch(fail);
  $("cx-report").onclick = () => openReport().catch(fail);
  Staff.onSession(signedIn);
})();
