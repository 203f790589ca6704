// Staff console: queue, transcript, customer card (open tickets, bills, classes/tags), suggested
// replies with their sources, take-over / hand-back / staff replies, identity locks (and lifting one), and
// open operations alerts.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const el = Staff.el;
  const BILL_STATUS = { issued: "待缴", paid: "已缴清", partially_paid: "部分缴费", cancelled: "已作废", held: "待复核", draft: "草稿" };
  const TICKET_STATUS = { open: "待处理", in_progress: "处理中" };
  const OUTCOME = { resolved: "已解决", ticket: "已建单", transferred: "已转人工", abandoned: "未完成" };
  let current = null, channelFilter = "";

  function notice(text) { $("message").hidden = !text; $("message").textContent = text || ""; }

  function signedIn(on) {
    $("login").hidden = on; $("who").hidden = !on;
    if (on) refresh(); else { $("waiting").replaceChildren(); $("recent").replaceChildren(); $("locks").replaceChildren(); $("alerts").hidden = true; $("alert-count").hidden = true; }
  }

  async function refresh() {
    try { await Promise.all([loadQueue(), loadAlerts(), loadLocks()]); notice(""); }
    catch (err) { notice(err.message); if (err.message.includes("未登录")) { $("login").hidden = false; $("who").hidden = true; } }
  }

  function item(title, meta, text, onclick, cls) {
    const li = el("li", undefined, cls);
    const head = el("div", undefined, "item-head");
    head.append(el("strong", title), el("span", meta, "muted"));
    li.append(head, el("div", text, "item-text"));
    li.tabIndex = 0;
    li.onclick = onclick;
    li.onkeydown = (e) => { if (e.key === "Enter") onclick(); };
    return li;
  }

  async function loadQueue() {
    const data = await (await Staff.api("/api/assist/queue?limit=50" + (channelFilter ? "&channel=" + channelFilter : ""))).json();
    const waiting = $("waiting"), recent = $("recent");
    waiting.replaceChildren(); recent.replaceChildren();
    $("waiting-count").textContent = String(data.waiting_handoffs.length);
    $("waiting-count").classList.toggle("hot", data.waiting_handoffs.length > 0);
    if (!data.waiting_handoffs.length) waiting.appendChild(el("li", "暂无等待人工的客户", "plain muted"));
    for (const h of data.waiting_handoffs) {
      const li = item(h.no, Staff.channelName(h.channel) + " · " + Staff.ago(h.created_at), h.summary, () => open(h.conversation_id || ""), "waiting");
      li.dataset.conversation = h.conversation_id;
      waiting.appendChild(li);
    }
    if (!data.conversations.length) recent.appendChild(el("li", "暂无会话", "plain muted"));
    for (const c of data.conversations) {
      const who = c.account_no ? "户号 " + c.account_no : "未核实客户";
      const li = item(who, Staff.ago(c.started_at), c.last_text || "（尚无消息）", () => open(c.conversation_id));
      li.dataset.conversation = c.conversation_id;
      if (c.conversation_id === current) li.classList.add("selected");
      const tag = el("span", Staff.channelName(c.channel), "chip ch-" + c.channel);
      li.querySelector(".item-head").prepend(tag);
      recent.appendChild(li);
    }
  }

  function lockText(l) {
    const until = new Date(l.locked_until).toLocaleString("zh-CN", { hour12: false });
    return "锁定至 " + until + " · 错误 " + l.wrong_answers + " 次（" + l.channels.map(Staff.channelName).join("/") + "，"
      + l.conversations + " 个会话）" + (l.refused_right_answers ? " · 锁定期间正确回答被拒 " + l.refused_right_answers + " 次" : "");
  }

  async function loadLocks() {
    const locks = await (await Staff.api("/api/assist/identity-locks?limit=50")).json();
    const list = $("locks");
    list.replaceChildren();
    $("lock-count").textContent = String(locks.length);
    $("lock-count").classList.toggle("hot", locks.length > 0);
    if (!locks.length) list.appendChild(el("li", "无锁定", "plain muted"));
    for (const l of locks) {
      const what = l.scope === "account" ? "户号 " + l.key + (l.customer_exists ? "" : "（非本单位户号）")
        : l.scope === "source" ? "来源 " + l.key + "（多个不同户号核实失败）" : "会话 " + l.key;
      const open = l.account_no && l.customer_exists ? () => loadCustomer(l.account_no) : () => {};
      const li = item(what, Staff.ago(l.locked_at), lockText(l), open, "lock");
      const lift = el("button", "解除锁定", "ghost");
      lift.dataset.lock = String(l.id);
      lift.onclick = (e) => { e.stopPropagation(); liftLock(l, what); };
      li.querySelector(".item-head").appendChild(lift);
      list.appendChild(li);
    }
  }

  // Only after the customer proved who they are to a person (counter, hotline agent): the reason is kept
  // with the staff member's id; the wrong answers stay on record.
  async function liftLock(l, what) {
    const reason = (window.prompt("解除" + what + "的身份核实锁定。请填写如何人工核实了客户身份（必填，最多200字）：", "") || "").trim();
    if (!reason) return;
    try {
      await Staff.api("/api/assist/identity-locks/" + l.id + "/lift", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ reason }) });
      notice("已解除" + what + "的锁定，客户可以重新在线核实身份。");
    } catch (err) { notice(err.message); }
    loadLocks().catch((err) => notice(err.message));
  }

  async function loadAlerts() {
    const alerts = await (await Staff.api("/api/assist/alerts")).json();
    const box = $("alerts");
    box.replaceChildren();
    box.hidden = alerts.length === 0;
    $("alert-count").hidden = alerts.length === 0;
    $("alert-count").textContent = "告警 " + alerts.length;
    for (const a of alerts) {
      const row = el("div", undefined, "alert " + a.severity);
      row.append(el("strong", a.severity === "critical" ? "严重" : "警告"), el("span", a.message),
        el("span", "当前 " + (a.value || "—") + " · 阈值 " + a.threshold + " · " + Staff.ago(a.first_seen_at) + "起", "muted"));
      box.appendChild(row);
    }
  }

  function bubble(cls, who, text, extra) {
    const div = el("div", undefined, "bubble " + cls);
    div.appendChild(el("div", who, "who"));
    div.appendChild(el("div", text, "text"));
    if (extra) div.appendChild(extra);
    return div;
  }

  async function open(conversationId) {
    if (!conversationId) return;
    current = conversationId;
    for (const li of document.querySelectorAll("#recent li")) li.classList.toggle("selected", li.dataset.conversation === conversationId);
    let detail;
    try { detail = await (await Staff.api("/api/assist/conversations/" + encodeURIComponent(conversationId))).json(); }
    catch (err) { notice(err.message); return; }
    const t = detail.transcript;
    $("title").textContent = detail.verified_account ? "户号 " + detail.verified_account : "未核实客户";
    $("subtitle").textContent = [t ? Staff.channelName(t.channel) : "", conversationId, t && t.outcome ? OUTCOME[t.outcome] || t.outcome : "进行中",
      t && t.csat_score ? "满意度 " + t.csat_score + " 分" : ""].filter(Boolean).join(" · ");
    const mode = $("mode");
    mode.hidden = false;
    mode.textContent = detail.held_by_staff ? "人工处理中" : "智能客服应答中";
    mode.className = "chip " + (detail.held_by_staff ? "staff" : "bot");
    const box = $("transcript");
    box.replaceChildren();
    for (const turn of (t ? t.turns : [])) {
      const time = new Date(turn.created_at).toLocaleTimeString("zh-CN", { hour: "2-digit", minute: "2-digit" });
      if (turn.user_text) box.appendChild(bubble("customer", "客户 · " + time, turn.user_text));
      if (turn.reply_text) {
        let extra;
        const sources = (turn.citations || []).map((c) => c.title || c.article_id).filter(Boolean);
        const tools = (turn.tool_calls || []).map((c) => c.tool).filter(Boolean);
        if (sources.length || tools.length) {
          extra = el("div", undefined, "sources");
          for (const tool of tools) extra.appendChild(el("span", "工具 " + tool, "chip tool"));
          for (const s of sources) extra.appendChild(el("span", s, "chip source"));
        }
        const staff = turn.brain === "staff";
        box.appendChild(bubble(staff ? "staff" : "bot", (staff ? "人工客服" : "智能客服") + " · " + time, turn.reply_text, extra));
      }
    }
    if (!box.children.length) box.appendChild(el("div", "客户尚未发送消息", "empty"));
    box.scrollTop = box.scrollHeight;
    $("takeover").disabled = detail.held_by_staff;
    $("handback").disabled = !detail.held_by_staff;
    $("reply").querySelector("button").disabled = !detail.held_by_staff;
    loadSuggestions(conversationId);
    if (detail.verified_account) loadCustomer(detail.verified_account);
    else $("customer").replaceChildren(el("h3", "客户信息"), el("div", "客户尚未核实身份：核实后显示户号、工单与账单。", "muted"));
  }

  async function loadSuggestions(conversationId) {
    const list = $("suggestions");
    list.replaceChildren(el("li", "生成中…", "plain muted"));
    try {
      const items = await (await Staff.api("/api/assist/conversations/" + encodeURIComponent(conversationId) + "/suggestions")).json();
      list.replaceChildren();
      if (!items.length) list.appendChild(el("li", "暂无建议", "plain muted"));
      for (const s of items) {
        const li = el("li");
        li.appendChild(el("div", s.text, "text"));
        const sources = s.passages.map((p) => p.citation || p.title).concat(s.tool_results.map((r) => "工具：" + (r.tool || "结果")));
        li.appendChild(el("small", s.why + (sources.length ? " · 来源：" + sources.join("；") : "")));
        const use = el("button", "采用", "ghost");
        use.type = "button";
        use.onclick = () => { $("reply-text").value = s.text; $("reply-text").focus(); };
        li.appendChild(use);
        list.appendChild(li);
      }
    } catch (e) { list.replaceChildren(el("li", e.message, "plain muted")); }
  }

  function fact(label, value) { const div = el("div", undefined, "fact"); div.append(el("span", label, "muted"), el("span", value)); return div; }

  async function loadCustomer(account) {
    const box = $("customer");
    let c;
    try { c = await (await Staff.api("/api/assist/customers/" + account + "/card")).json(); }
    catch (err) { box.replaceChildren(el("h3", "客户信息"), el("div", err.message, "muted")); return; }
    const head = el("div", undefined, "customer-head");
    head.append(el("div", c.name.slice(0, 1), "avatar"), el("div", undefined, "id"));
    head.lastChild.append(el("strong", c.name), el("div", "户号 " + c.account_no + " · " + c.category_label, "muted"));
    const tags = el("div", undefined, "tags");
    const cx = c.experience;
    if (cx) {
      // Classes with their 服务责任单位 and standard; tags with the records that made them (hover).
      for (const k of cx.classes) {
        const chip = el("span", k.name, "chip class");
        chip.title = k.basis_label + " · " + k.responsible_unit + " · " + k.standard;
        tags.appendChild(chip);
      }
      for (const t of cx.tags) {
        const chip = el("span", t.label, "chip tag");
        chip.title = t.dimension + "：来源 " + t.evidence.map((e) => e.kind + " " + e.ids.slice(0, 5).join(",")).join("；");
        tags.appendChild(chip);
      }
      if (cx.portrait) tags.appendChild(el("span", "画像：" + cx.portrait.label, "chip portrait"));
    } else {
      for (const k of c.classes || []) tags.appendChild(el("span", k, "chip class"));
      for (const t of c.tags || []) tags.appendChild(el("span", t, "chip tag"));
    }
    if (c.withholding_agreement) tags.appendChild(el("span", "已签代扣", "chip ok"));
    if (c.unpaid_bills) tags.appendChild(el("span", "待缴 " + c.unpaid_bills + " 笔 · ¥" + c.unpaid_amount, "chip warn"));
    if (!tags.children.length) tags.appendChild(el("span", "暂无分类与标签", "muted"));
    const tickets = el("div", undefined, "tickets");
    tickets.appendChild(el("h4", "在办工单（" + c.open_tickets.length + "）"));
    if (!c.open_tickets.length) tickets.appendChild(el("div", "无在办工单", "muted"));
    for (const t of c.open_tickets) {
      const row = el("div", undefined, "ticket");
      row.append(el("span", t.kind_label, "chip"), el("span", t.title), el("span", t.no + " · " + (TICKET_STATUS[t.status] || t.status), "muted"));
      if (t.queue) row.appendChild(el("span", t.queue, "chip class"));
      tickets.appendChild(row);
    }
    const table = el("table");
    const header = el("tr");
    for (const h of ["账期", "金额（元）", "电量（kWh）", "状态"]) header.appendChild(el("th", h));
    table.appendChild(header);
    for (const b of c.bills) {
      const row = el("tr");
      row.append(el("td", b.period), el("td", b.amount), el("td", b.total_kwh));
      const status = el("td");
      status.appendChild(el("span", BILL_STATUS[b.status] || b.status, "chip st-" + b.status));
      row.appendChild(status);
      table.appendChild(row);
    }
    const parts = [el("h3", "客户信息"), head, tags];
    if (c.identity_lock) parts.push(el("div", "在线身份核实已锁定：" + lockText(c.identity_lock) + "。请人工核实身份后办理。", "lock-warning"));
    box.replaceChildren(...parts, fact("地址", c.address), tickets, el("h4", "近期账单"), table);
  }

  async function hold(action) {
    if (!current) return;
    try {
      await Staff.api("/api/assist/conversations/" + encodeURIComponent(current) + "/" + action, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: action === "takeover" ? "{}" : undefined });
    } catch (err) { notice(err.message); }
    open(current);
  }

  $("login").addEventListener("submit", (e) => { e.preventDefault(); Staff.setToken($("token").value); $("token").value = ""; signedIn(true); });
  $("logout").onclick = () => Staff.logout();
  $("takeover").onclick = () => hold("takeover");
  $("handback").onclick = () => hold("handback");
  for (const b of document.querySelectorAll(".filters button")) {
    b.onclick = () => {
      channelFilter = b.dataset.channel;
      for (const o of document.querySelectorAll(".filters button")) o.classList.toggle("on", o === b);
      refresh();
    };
  }
  $("reply").addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = $("reply-text").value.trim();
    if (!text || !current) return;
    try {
      await Staff.api("/api/assist/conversations/" + encodeURIComponent(current) + "/messages", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text }) });
      $("reply-text").value = "";
    } catch (err) { notice(err.message); }
    open(current);
  });
  Staff.onSession(signedIn);
  setInterval(() => { if (Staff.token()) refresh(); }, 10000);
})();
