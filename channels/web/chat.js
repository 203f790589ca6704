// Web chat client: no framework, no CDN. The conversation id lives in localStorage; the
// transcript and dialogue state live on the server, so a reload or a dropped connection
// resumes the same conversation. Replies stream as server-sent events over a POST.
"use strict";
(function () {
  const KEY = "powerdesk.conversation";
  const API = "/api/chat/conversations";
  const $ = (id) => document.getElementById(id);
  const log = $("log"), statusEl = $("status"), textInput = $("text"), sendBtn = $("send");
  let conversationId = null;
  let busy = false;
  let lastPosition = 0;  // the newest transcript turn this page has shown
  let staffPoll = null;

  function newId() {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function setStatus(text) { statusEl.textContent = text; }

  function bubble(role, text) {
    const div = document.createElement("div");
    div.className = "msg " + role;
    div.textContent = text;
    log.appendChild(div);
    log.scrollTop = log.scrollHeight;
    return div;
  }

  function showCitations(div, citations) {
    if (!citations || !citations.length) return;
    const list = document.createElement("ol");
    list.className = "citations";
    list.setAttribute("aria-label", "参考来源");
    for (const c of citations) {
      const item = document.createElement("li");
      item.textContent = (c.title || c.article_id || "知识库") + (c.source ? "（" + c.source + "）" : "");
      list.appendChild(item);
    }
    div.appendChild(list);
  }

  function showChoices(div, choices) {
    // Quick replies of a clarifying question: a button sends the option's words as the answer.
    if (!choices || !choices.length) return;
    const row = document.createElement("div");
    row.className = "choices";
    for (const choice of choices) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "choice";
      button.textContent = choice;
      button.addEventListener("click", () => { row.remove(); send(choice); });
      row.appendChild(button);
    }
    div.appendChild(row);
  }

  function applyAwaiting(awaiting) {
    const identity = /account|identity|verif|phone|last4|id_/i.test(awaiting || "");
    $("identity").hidden = !identity;
    if (awaiting === "csat") showCsat();
  }

  function showCsat() { $("csat").hidden = false; }

  async function start() {
    conversationId = localStorage.getItem(KEY);
    if (conversationId) {
      const response = await fetch(API + "/" + encodeURIComponent(conversationId));
      if (response.ok) {
        const transcript = await response.json();
        if (!transcript.turns.length) bubble("bot", "您好，请问有什么可以帮您？");
        else bubble("system", "已恢复您的会话");
        for (const turn of transcript.turns) {
          if (turn.user_text) bubble("user", turn.user_text);
          if (turn.reply_text) showCitations(bubble("bot", turn.reply_text), turn.citations);
          lastPosition = Math.max(lastPosition, turn.position);
        }
        if (transcript.csat_score) { $("csat").hidden = false; $("csat-done").hidden = false; }
        setStatus("已连接");
        return;
      }
      if (response.status !== 404) throw new Error("无法恢复会话");
      // 404: the conversation expired or this browser no longer holds its cookie: start anew.
      localStorage.removeItem(KEY);
    }
    const response = await fetch(API, { method: "POST" });
    const created = await response.json();
    conversationId = created.conversation_id;
    localStorage.setItem(KEY, conversationId);
    bubble("bot", created.greeting);
    setStatus("已连接");
  }

  async function streamReply(text, messageId, div) {
    const response = await fetch(API + "/" + encodeURIComponent(conversationId) + "/messages", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "text/event-stream" },
      body: JSON.stringify({ text: text, message_id: messageId }),
    });
    if (response.status === 429) throw Object.assign(new Error("发送太频繁，请稍后再试"), { final: true });
    if (!response.ok) {
      const detail = await response.json().catch(() => ({}));
      const retryAfter = Number(response.headers.get("Retry-After")) || 0;
      throw Object.assign(new Error(detail.detail || "发送失败"), { final: response.status < 500, retryAfter });
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "", shown = "", final = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const event = (block.match(/^event: (.*)$/m) || [])[1];
        const data = JSON.parse((block.match(/^data: (.*)$/m) || [])[1] || "{}");
        if (event === "delta") { shown += data.text; div.textContent = shown; log.scrollTop = log.scrollHeight; }
        // A later sentence failed the grounding guard (or the model failed): what was shown is withdrawn.
        if (event === "retract") { shown = ""; div.textContent = "…"; }
        if (event === "reply") final = data;
      }
    }
    if (!final) throw new Error("连接中断");
    div.textContent = final.text;
    return final;
  }

  async function send(text) {
    if (busy || !text.trim()) return;
    busy = true; sendBtn.disabled = true;
    bubble("user", text);
    const div = bubble("bot", "…");
    const messageId = newId();  // the same id on every retry: the server answers it once
    for (let attempt = 0; ; attempt++) {
      try {
        const reply = await streamReply(text, messageId, div);
        showCitations(div, reply.citations);
        showChoices(div, reply.choices);
        applyAwaiting(reply.awaiting);
        if (reply.handoff) bubble("system", "已为您转接人工客服");
        if (reply.held_by_staff) watchStaffReplies();
        pullNewTurns();
        setStatus("已连接");
        break;
      } catch (error) {
        if (error.final || attempt >= 6) { div.textContent = error.message; setStatus("发送失败"); break; }
        setStatus(error.retryAfter ? "正在处理，请稍候…" : "连接中断，正在重连…");
        await new Promise((r) => setTimeout(r, error.retryAfter ? error.retryAfter * 1000 : 500 * (attempt + 1)));
      }
    }
    busy = false; sendBtn.disabled = false; textInput.focus();
  }

  async function transcript() {
    const response = await fetch(API + "/" + encodeURIComponent(conversationId));
    return response.ok ? response.json() : null;
  }

  // Turns this page did not send itself (a staff member's replies while they hold the
  // conversation) are shown; everything else up to the newest position is already on screen.
  async function pullNewTurns() {
    const data = await transcript().catch(() => null);
    if (!data) return;
    for (const turn of data.turns) {
      if (turn.position > lastPosition && !turn.user_text && turn.reply_text) bubble("bot", turn.reply_text);
    }
    lastPosition = Math.max(lastPosition, ...data.turns.map((t) => t.position));
  }

  function watchStaffReplies() {
    if (!staffPoll) staffPoll = setInterval(pullNewTurns, 3000);
  }

  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = textInput.value;
    textInput.value = "";
    send(text);
  });
  $("identity").addEventListener("submit", (e) => {
    e.preventDefault();
    send("户号" + $("account").value.trim() + "，手机号后四位" + $("last4").value.trim());
    $("identity").hidden = true;
  });
  $("end").addEventListener("click", showCsat);
  $("new").addEventListener("click", () => { localStorage.removeItem(KEY); location.reload(); });
  for (const button of document.querySelectorAll("#csat [data-score]")) {
    button.addEventListener("click", async () => {
      const response = await fetch(API + "/" + encodeURIComponent(conversationId) + "/csat", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ score: Number(button.dataset.score) }),
      });
      if (response.ok) { $("csat-done").hidden = false; for (const b of document.querySelectorAll("#csat [data-score]")) b.disabled = true; }
      else { $("csat-done").hidden = false; $("csat-done").textContent = "请先咨询后再评价"; }
    });
  }
  start().catch(() => setStatus("连接失败，请刷新重试"));
})();
