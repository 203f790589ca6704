// Staff console: queue, transcript, suggested replies with sources, take-over/hand-back, bills.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let current = null;

  async function loadQueue() {
    const data = await (await Staff.api("/api/assist/queue?limit=50")).json();
    const waiting = $("waiting"), recent = $("recent");
    waiting.replaceChildren(); recent.replaceChildren();
    for (const h of data.waiting_handoffs) {
      const li = Staff.el("li", h.no + " · " + h.summary.slice(0, 30));
      li.onclick = () => open(h.conversation_id || "");
      waiting.appendChild(li);
    }
    for (const c of data.conversations) {
      const li = Staff.el("li", "[" + c.channel + "] " + (c.account_no || "未核实") + " · " + (c.last_text || "").slice(0, 20));
      li.dataset.conversation = c.conversation_id;
      li.onclick = () => open(c.conversation_id);
      recent.appendChild(li);
    }
    $("who").textContent = "已登录";
    loadLocks().catch((err) => { $("locks").replaceChildren(Staff.el("li", err.message)); });
  }

  function lockText(l) {
    const until = new Date(l.locked_until).toLocaleString("zh-CN", { hour12: false });
    const what = l.scope === "account" ? "户号 " + l.key + (l.customer_exists ? "" : "（非本单位户号）") : "会话 " + l.key;
    return what + " · 锁定至 " + until + " · 错误 " + l.wrong_answers + " 次（" + l.channels.join("/") + "，"
      + l.conversations + " 个会话）" + (l.refused_right_answers ? " · 锁定期间正确回答被拒 " + l.refused_right_answers + " 次" : "");
  }

  async function loadLocks() {
    const list = $("locks");
    const locks = await (await Staff.api("/api/assist/identity-locks?limit=50")).json();
    list.replaceChildren();
    for (const l of locks) {
      const li = Staff.el("li", lockText(l));
      if (l.account_no && l.customer_exists) li.onclick = () => loadBills(l.account_no);  // the customer's card
      list.appendChild(li);
    }
    if (!locks.length) list.appendChild(Staff.el("li", "无", "muted"));
  }

  async function open(conversationId) {
    if (!conversationId) return;
    current = conversationId;
    const detail = await (await Staff.api("/api/assist/conversations/" + encodeURIComponent(conversationId))).json();
    $("title").textContent = conversationId + (detail.verified_account ? "（户号 " + detail.verified_account + "）" : "（未核实）");
    const box = $("transcript");
    box.replaceChildren();
    for (const t of (detail.transcript ? detail.transcript.turns : [])) {
      if (t.user_text) box.appendChild(Staff.el("div", "客户：" + t.user_text, "turn-user"));
      if (t.reply_text) box.appendChild(Staff.el("div", t.reply_text, t.tool_calls.length || t.citations.length ? "turn-bot" : "turn-bot"));
    }
    $("takeover").disabled = detail.held_by_staff;
    $("handback").disabled = !detail.held_by_staff;
    $("reply").querySelector("button").disabled = !detail.held_by_staff;
    loadSuggestions(conversationId);
    if (detail.verified_account) loadBills(detail.verified_account); else $("bills").textContent = "客户尚未核实身份";
  }

  async function loadSuggestions(conversationId) {
    const list = $("suggestions");
    list.replaceChildren();
    try {
      const items = await (await Staff.api("/api/assist/conversations/" + encodeURIComponent(conversationId) + "/suggestions")).json();
      for (const s of items) {
        const li = Staff.el("li", s.text);
        const sources = s.passages.map((p) => p.citation || p.title).concat(s.tool_results.map((r) => "工具：" + (r.tool || "结果")));
        li.appendChild(Staff.el("small", s.why + (sources.length ? " · 来源：" + sources.join("；") : "")));
        li.onclick = () => { $("reply-text").value = s.text; };
        list.appendChild(li);
      }
    } catch (e) { list.appendChild(Staff.el("li", e.message)); }
  }

  async function loadBills(account) {
    const data = await (await Staff.api("/api/assist/customers/" + account + "/bills?limit=6")).json();
    const table = Staff.el("table");
    table.innerHTML = "<tr><th>账期</th><th>金额(元)</th><th>电量(kWh)</th><th>状态</th></tr>";
    for (const b of data.bills) {
      const row = Staff.el("tr");
      for (const v of [b.period, b.amount, b.total_kwh, b.status]) row.appendChild(Staff.el("td", String(v)));
      table.appendChild(row);
    }
    const card = [Staff.el("div", data.name + " · " + data.category, "muted")];
    if (data.identity_lock) card.push(Staff.el("div", "在线身份核实已锁定：" + lockText(data.identity_lock) + "。请人工核实身份后办理。", "lock-warning"));
    $("bills").replaceChildren(...card, table);
  }

  async function hold(action) {
    if (!current) return;
    await Staff.api("/api/assist/conversations/" + encodeURIComponent(current) + "/" + action, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: action === "takeover" ? "{}" : undefined });
    open(current);
  }

  $("login").addEventListener("submit", (e) => { e.preventDefault(); Staff.setToken($("token").value); loadQueue().catch((err) => { $("who").textContent = err.message; }); });
  $("takeover").onclick = () => hold("takeover");
  $("handback").onclick = () => hold("handback");
  $("reply").addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = $("reply-text").value.trim();
    if (!text || !current) return;
    await Staff.api("/api/assist/conversations/" + encodeURIComponent(current) + "/messages", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text }) });
    $("reply-text").value = "";
    open(current);
  });
  if (Staff.token()) loadQueue().catch((err) => { $("who").textContent = err.message; });
  setInterval(() => { if (Staff.token()) loadQueue().catch(() => {}); }, 10000);
})();
