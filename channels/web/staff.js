// Shared by the staff pages: the token lives in sessionStorage and goes out as a Bearer header.
"use strict";
const Staff = {
  token() { return sessionStorage.getItem("powerdesk.staff") || ""; },
  setToken(value) { sessionStorage.setItem("powerdesk.staff", value); },
  async api(path, options) {
    const opts = Object.assign({ headers: {} }, options || {});
    opts.headers = Object.assign({ Authorization: "Bearer " + Staff.token() }, opts.headers);
    const response = await fetch(path, opts);
    if (response.status === 401 || response.status === 403) throw new Error("未登录或无坐席权限");
    if (!response.ok) throw new Error((await response.json().catch(() => ({}))).detail || "请求失败");
    return response;
  },
  el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; },
};
