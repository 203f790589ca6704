// KPI dashboard: table-1 figures as inline SVG bar charts (no chart library, no CDN) and CSV export.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const CHANNELS = { all: "全部渠道", web: "网页", wechat: "微信服务号", ivr: "热线" };
  const NS = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, text) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // One horizontal bar per row: label, bar scaled to the largest value (or 100 for percentages).
  function barChart(rows, unit) {
    const width = 240, rowH = 22, labelW = 70;
    const max = unit === "%" ? 100 : Math.max(1e-9, ...rows.map((r) => r.value || 0));
    const chart = svg("svg", { width: width, height: rows.length * rowH + 4, role: "img" });
    rows.forEach((r, i) => {
      const y = i * rowH + 2;
      chart.appendChild(svg("text", { x: 0, y: y + 14, "font-size": 12 }, r.label));
      const w = r.value === null ? 0 : ((width - labelW - 50) * r.value) / max;
      chart.appendChild(svg("rect", { x: labelW, y: y + 3, width: Math.max(w, 0), height: 14, fill: "#2680c2" }));
      chart.appendChild(svg("text", { x: labelW + w + 4, y: y + 14, "font-size": 11 }, r.value === null ? "无数据" : r.value + unit));
    });
    return chart;
  }

  function card(title, figure, chart) {
    const div = Staff.el("div", undefined, "card");
    div.appendChild(Staff.el("h3", title));
    div.appendChild(Staff.el("div", figure.numerator_label + " " + figure.numerator + " / " + figure.denominator_label + " " + figure.denominator, "muted"));
    if (chart) div.appendChild(chart);
    return div;
  }

  async function load() {
    const period = $("period").value.trim();
    localStorage.setItem("powerdesk.kpi.period", period);
    const data = await (await Staff.api("/api/kpi?period=" + encodeURIComponent(period))).json();
    $("message").textContent = "账期 " + data.period;
    const billing = $("billing"); billing.replaceChildren();
    for (const f of data.billing) {
      billing.appendChild(card(f.name, f, barChart([{ label: "本期", value: f.value === null ? null : Number(f.value) }], "%")));
    }
    const service = $("service"); service.replaceChildren();
    for (const f of data.service.all) {
      const rows = Object.keys(data.service).map((ch) => {
        const g = data.service[ch].find((x) => x.code === f.code);
        return { label: CHANNELS[ch] || ch, value: g.value === null ? null : Number(g.value) };
      });
      service.appendChild(card(f.name + "（" + f.unit + "）", f, barChart(rows, f.unit)));
    }
  }

  async function downloadCsv() {
    const period = $("period").value.trim();
    const blob = await (await Staff.api("/api/kpi.csv?period=" + encodeURIComponent(period))).blob();
    const link = Staff.el("a");
    link.href = URL.createObjectURL(blob);
    link.download = "kpi-" + period + ".csv";
    link.click();
  }

  $("period").value = localStorage.getItem("powerdesk.kpi.period") || new Date().toISOString().slice(0, 7);
  $("token").value = Staff.token();
  $("login").addEventListener("submit", (e) => { e.preventDefault(); Staff.setToken($("token").value); load().catch((err) => { $("message").textContent = err.message; }); });
  $("csv").onclick = () => downloadCsv().catch((err) => { $("message").textContent = err.message; });
  if (Staff.token()) load().catch((err) => { $("message").textContent = err.message; });
})();
