// Shared by the staff pages. The staff token lives in sessionStorage (never localStorage, never a
// cookie a customer page could send) and lasts the browser session rather than one tab: a tab
// opened later asks the open tabs for it over a BroadcastChannel, and signing out clears them all.
"use strict";
const Staff = (function () {
  const KEY = "powerdesk.staff";
  const channel = "BroadcastChannel" in window ? new BroadcastChannel("powerdesk-staff") : null;
  const listeners = [];
  if (channel) {
    channel.onmessage = (event) => {
      const msg = event.data || {};
      if (msg.type === "ask" && sessionStorage.getItem(KEY)) channel.postMessage({ type: "token", token: sessionStorage.getItem(KEY) });
      else if (msg.type === "token" && msg.token && !sessionStorage.getItem(KEY)) { sessionStorage.setItem(KEY, msg.token); listeners.forEach((f) => f(true)); }
      else if (msg.type === "logout") { sessionStorage.removeItem(KEY); listeners.forEach((f) => f(false)); }
    };
  }
  return {
    token() { return sessionStorage.getItem(KEY) || ""; },
    setToken(value) { sessionStorage.setItem(KEY, value); if (channel) channel.postMessage({ type: "token", token: value }); },
    logout() { sessionStorage.removeItem(KEY); if (channel) channel.postMessage({ type: "logout" }); listeners.forEach((f) => f(false)); },
    // Calls back with true once a token is known (at once, or when another tab answers).
    onSession(callback) {
      listeners.push(callback);
      if (sessionStorage.getItem(KEY)) callback(true);
      else if (channel) channel.postMessage({ type: "ask" });
    },
    async api(path, options) {
      const opts = Object.assign({ headers: {} }, options || {});
      opts.headers = Object.assign({ Authorization: "Bearer " + Staff.token() }, opts.headers);
      const response = await fetch(path, opts);
      if (response.status === 401 || response.status === 403) throw new Error("未登录或无坐席权限");
      if (!response.ok) throw new Error((await response.json().catch(() => ({}))).detail || "请求失败");
      return response;
    },
    el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = text; if (cls) e.className = cls; return e; },
    channelName(ch) { return { web: "网页", wechat: "微信", ivr: "热线", alipay: "支付宝" }[ch] || ch; },
    ago(iso) {
      const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
      if (s < 60) return "刚刚";
      if (s < 3600) return Math.floor(s / 60) + " 分钟前";
      if (s < 86400) return Math.floor(s / 3600) + " 小时前";
      return Math.floor(s / 86400) + " 天前";
    },
  };
})();
