// labelhub console: hand-written, no framework, no build step.
// Every action is an ordinary API request; the server decides access.
// Cookie-authenticated requests that change state send X-CSRF-Token.
"use strict";
(function () {
  const MESSAGES = window.LH_MESSAGES || {};
  const main = document.getElementById("main");
  const nav = document.getElementById("nav");
  const alertBox = document.getElementById("alert");
  const who = document.getElementById("who");
  const signoutBtn = document.getElementById("signout");
  let session = null;
  let formInfo = null;
  let pageToken = 0;

  // ---------- helpers ----------
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  const scopeRank = { read: 1, print: 2, admin: 3 };
  function can(scope) { return session && scopeRank[session.scope] >= scopeRank[scope]; }
  function fmtTime(s) { if (!s) return "–"; const d = new Date(s); return isNaN(d) ? s : d.toLocaleString(); }
  function mm(media) { if (!media) return "–"; return /^\d+(\.\d+)?$/.test(media) ? media + " mm" : media + " mm"; }

  // The human text of an error code (with its detail where it says more).
  function describe(code, detail, fallback) {
    if (code === "media_mismatch" || code === "wrong_media") {
      const d = detail || {};
      if (d.expected && d.loaded) return "Wrong tape: needs " + mm(d.expected) + ", " + mm(d.loaded) + " loaded.";
      if (d.expected) return "Wrong tape: needs " + mm(d.expected) + ".";
    }
    const m = MESSAGES[code];
    if (m) return m;
    return fallback || (code ? "Error: " + code.replace(/_/g, " ") : "Something went wrong.");
  }

  // replaceChildren without the null/false placeholders of conditional parts.
  function fillWith(el, ...kids) { el.replaceChildren(...kids.flat().filter((k) => k !== null && k !== undefined && k !== false)); }

  function showAlert(text, kind) {
    alertBox.replaceChildren(h("p", { text }), h("button", { type: "button", class: "link", onclick: hideAlert, "aria-label": "Dismiss message" }, "Dismiss"));
    alertBox.className = "alert" + (kind === "info" ? " info" : "");
    alertBox.hidden = false;
  }
  function hideAlert() { alertBox.hidden = true; alertBox.replaceChildren(); }

  class ApiError extends Error {
    constructor(status, problem) {
      const code = problem.error_code || "";
      let text = describe(code, problem.error_detail, problem.detail);
      if (code === "validation_error" && problem.detail) text = MESSAGES.validation_error + " " + problem.detail;
      else if (problem.detail && MESSAGES[code] && code !== "internal_error") text += " (" + problem.detail + ")";
      super(text);
      this.status = status; this.code = code; this.problem = problem;
    }
  }

  async function api(method, path, body, opts) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && method !== "HEAD" && session) headers["X-CSRF-Token"] = session.csrf_token;
    let resp;
    try {
      resp = await fetch(path, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw new ApiError(0, { error_code: "backend_unavailable", detail: "" });
    }
    if (!resp.ok) {
      let problem = {};
      try { problem = await resp.json(); } catch (e) { problem = { error_code: "", detail: "HTTP " + resp.status }; }
      const err = new ApiError(resp.status, problem);
      if (resp.status === 401 && !(opts && opts.signIn)) { session = null; stopEvents(); route(); }
      throw err;
    }
    if (opts && opts.raw) return resp;
    if (resp.status === 204) return null;
    const type = resp.headers.get("Content-Type") || "";
    return type.includes("json") ? resp.json() : resp;
  }

  // Runs an action from a button: busy while it runs, restored in every
  // case (no spinner is ever left behind), errors shown in words.
  async function act(button, fn) {
    if (button) { button.disabled = true; button.setAttribute("aria-busy", "true"); }
    try { hideAlert(); return await fn(); }
    catch (e) { showAlert(e.message || String(e)); return undefined; }
    finally { if (button) { button.disabled = false; button.removeAttribute("aria-busy"); } }
  }

  // Tables become label/value cards on a phone: each cell carries its
  // column's name (CSS shows it in front of the value).
  new MutationObserver(() => {
    for (const t of main.querySelectorAll("table")) {
      const heads = [...t.querySelectorAll("thead th")].map((th) => th.textContent);
      for (const tr of t.querySelectorAll("tbody tr")) {
        [...tr.children].forEach((td, i) => { if (!td.dataset.label) td.dataset.label = heads[i] || ""; });
      }
    }
  }).observe(main, { childList: true, subtree: true });

  // ---------- live events: SSE, falling back to long-polls ----------
  const listeners = new Set();
  let sources = [];
  let pollStop = null;
  function onEvent(fn) { listeners.add(fn); return () => listeners.delete(fn); }
  function dispatch(ev) { for (const fn of [...listeners]) { try { fn(ev); } catch (e) { /* one view's bug must not stop others */ } } }
  function stopEvents() { for (const s of sources) s.close(); sources = []; if (pollStop) pollStop(); pollStop = null; }
  function startEvents() {
    stopEvents();
    const printers = session && session.printers.length > 1 ? session.printers : [null];
    for (const p of printers) {
      const url = "/api/events" + (p ? "?printer_id=" + encodeURIComponent(p) : "");
      if (!window.EventSource) { longPoll(p); continue; }
      const es = new EventSource(url);
      let failures = 0;
      for (const name of ["printer.status", "printer.tape_changed", "printer.changed", "job.state_changed", "job.created"]) {
        es.addEventListener(name, (m) => { failures = 0; try { dispatch(JSON.parse(m.data)); } catch (e) { /* ignore */ } });
      }
      es.addEventListener("session.ended", () => { es.close(); session = null; route(); });
      es.onopen = () => { failures = 0; document.body.dataset.live = "sse"; };
      es.onerror = () => {
        failures += 1;
        if (es.readyState === EventSource.CLOSED || failures > 3) { es.close(); sources = sources.filter((s) => s !== es); longPoll(p); }
      };
      sources.push(es);
    }
  }
  function longPoll(printer) {
    let stopped = false;
    const prev = pollStop;
    pollStop = () => { stopped = true; if (prev) prev(); };
    document.body.dataset.live = "poll";
    (async () => {
      let since = null;
      while (!stopped && session) {
        try {
          let url = "/api/events?wait=25" + (since === null ? "" : "&since=" + since) + (printer ? "&printer_id=" + encodeURIComponent(printer) : "");
          const r = await api("GET", url);
          for (const e of r.events) dispatch(e);
          since = r.next;
        } catch (e) {
          await new Promise((res) => setTimeout(res, 3000));
        }
      }
    })();
  }

  // ---------- shell ----------
  const PAGES = [
    ["printers", "Printers", "read"],
    ["print", "Print", "print"],
    ["jobs", "Jobs", "read"],
    ["admin", "Admin", "admin"],
  ];
  function drawNav(current) {
    nav.replaceChildren();
    if (!session) return;
    for (const [id, label, scope] of PAGES) {
      if (!can(scope)) continue; // a key never sees what it cannot use
      nav.append(h("a", { href: "#/" + id, "aria-current": id === current ? "page" : null, dataset: { page: id } }, label));
    }
    who.textContent = session.key_name + " (" + session.scope + ")";
    signoutBtn.hidden = false;
  }
  signoutBtn.addEventListener("click", () => act(signoutBtn, async () => {
    try { await api("DELETE", "/api/session"); } finally {
      session = null; stopEvents(); who.textContent = ""; signoutBtn.hidden = true; location.hash = "#/signin"; route();
    }
  }));

  function page(title, ...kids) {
    document.title = title + " · labelhub";
    main.replaceChildren(h("h1", { text: title }), ...kids);
  }

  async function route() {
    const token = ++pageToken;
    const [, name, arg] = (location.hash || "#/printers").split("/");
    if (!session) {
      try { session = await api("GET", "/api/session", undefined, { signIn: true }); startEvents(); }
      catch (e) { session = null; }
    }
    if (token !== pageToken) return;
    listeners.clear();
    if (!session) { drawNav(null); who.textContent = ""; signoutBtn.hidden = true; return signIn(); }
    const pageName = name || "printers";
    drawNav(pageName === "batch" ? "print" : pageName);
    const def = PAGES.find((p) => p[0] === pageName);
    if (def && !can(def[2])) return page("Not allowed", h("p", { text: describe("insufficient_scope") }));
    switch (pageName) {
      case "print": return printPage(token);
      case "batch": return batchPage(arg, token);
      case "jobs": return jobsPage(token);
      case "admin": return adminPage(arg || "printers", token);
      case "signin": location.hash = "#/printers"; return undefined;
      default: return printersPage(token);
    }
  }
  window.addEventListener("hashchange", () => { hideAlert(); route(); main.focus(); });

  // ---------- sign in ----------
  function signIn() {
    document.title = "Sign in · labelhub";
    const input = h("input", { id: "key", name: "key", type: "password", autocomplete: "off", required: true, spellcheck: "false", placeholder: "lh_pat_…" });
    const btn = h("button", { type: "submit" }, "Sign in");
    const form = h("form", { class: "stack card signin", onsubmit: (e) => {
      e.preventDefault();
      act(btn, async () => {
        session = await api("POST", "/api/session", { key: input.value }, { signIn: true });
        input.value = "";
        startEvents();
        if (!location.hash || location.hash === "#/signin") location.hash = "#/printers"; else route();
      });
    } },
      h("h1", { text: "Sign in" }),
      h("p", { class: "muted", text: "Paste an API key once. The browser keeps a session; the key itself is not stored." }),
      h("label", { for: "key" }, "API key", input),
      btn);
    main.replaceChildren(form);
    input.focus();
  }

  // ---------- printers (home) ----------
  function printerState(p, st) {
    if (!p.enabled) return ["disabled", "Disabled", null];
    if (st.paused) {
      let reason = st.paused_reason === "operator" ? "Paused by an operator." : describe(st.paused_reason, st.paused_detail);
      return ["paused", "Paused", reason];
    }
    if (st.online === false) return ["offline", "Offline", st.error_state ? describe(st.error_state) : (st.last_error ? describe(st.last_error) : MESSAGES.printer_offline)];
    if (st.error_state) return ["offline", "Not ready", describe(st.error_state, st.paused_detail)];
    if (st.online === null || st.online === undefined) return ["queued", "Unknown", st.note || "No status yet."];
    return ["online", "Online", null];
  }

  async function printersPage(token) {
    const grid = h("div", { class: "grid", id: "printers" });
    page("Printers", grid);
    let printers;
    try { printers = await api("GET", "/api/printers"); }
    catch (e) { grid.replaceChildren(h("p", { class: "reason", text: e.message })); return; }
    if (token !== pageToken) return;
    if (!printers.length) grid.replaceChildren(h("p", { class: "muted", text: "No printers you may use." }));
    const cards = new Map();
    for (const p of printers) {
      const card = h("section", { class: "card printer", "aria-labelledby": "p-" + p.id, dataset: { printer: p.slug } });
      cards.set(p.id, { card, p });
      grid.append(card);
      fillPrinter(card, p);
    }
    const timers = new Map();
    onEvent((e) => {
      const entry = e.printer_id && cards.get(e.printer_id);
      if (!entry) return;
      clearTimeout(timers.get(e.printer_id));
      timers.set(e.printer_id, setTimeout(async () => {
        try { entry.p = await api("GET", "/api/printers/" + entry.p.id); } catch (err) { /* shown by fillPrinter */ }
        fillPrinter(entry.card, entry.p);
      }, 100));
    });
  }

  async function fillPrinter(card, p) {
    let st, queue;
    try {
      [st, queue] = await Promise.all([api("GET", "/api/printers/" + p.id + "/status"), api("GET", "/api/printers/" + p.id + "/queue")]);
    } catch (e) {
      card.replaceChildren(h("h2", { id: "p-" + p.id, text: p.name }), h("p", { class: "reason", text: e.message }));
      return;
    }
    const [cls, label, reason] = printerState(p, st);
    const btns = [];
    if (can("print")) {
      if (st.paused) {
        const b = h("button", { type: "button", dataset: { action: "resume" } }, "Resume");
        b.addEventListener("click", () => act(b, async () => { await api("POST", "/api/printers/" + p.id + "/resume"); fillPrinter(card, p); }));
        btns.push(b);
      } else {
        const b = h("button", { type: "button", class: "secondary", dataset: { action: "pause" } }, "Pause");
        b.addEventListener("click", () => act(b, async () => { await api("POST", "/api/printers/" + p.id + "/pause"); fillPrinter(card, p); }));
        btns.push(b);
      }
      const pr = h("a", { class: "button secondary", href: "#/print", onclick: () => { sessionStorage.setItem("lh-printer", p.id); } }, "Print…");
      btns.push(pr);
    }
    card.dataset.state = cls;
    fillWith(card,
      h("header", {}, h("h2", { id: "p-" + p.id, text: p.name }), h("span", { class: "badge " + cls, dataset: { role: "state" } }, label)),
      reason ? h("p", { class: "reason", dataset: { role: "reason" } }, reason) : null,
      h("dl", { class: "facts" },
        h("dt", {}, "Model"), h("dd", {}, p.model),
        h("dt", {}, "Loaded"), h("dd", { dataset: { role: "media" } }, st.media ? mm(st.media) : (p.media ? mm(p.media) + " (configured)" : "–")),
        h("dt", {}, "Queue"), h("dd", { dataset: { role: "queue" } }, String(queue.length) + (queue.length === 1 ? " job" : " jobs")),
        h("dt", {}, "Last error"), h("dd", { dataset: { role: "last-error" } }, st.last_error ? describe(st.last_error, null, st.last_error) : "none"),
        h("dt", {}, "Checked"), h("dd", {}, st.captured_at ? fmtTime(st.captured_at) : "not yet")),
      btns.length ? h("div", { class: "actions" }, btns) : null);
  }

  // ---------- print ----------
  const FIELD_LABELS = {
    title: "Title", primary_id: "Primary ID", qr_payload: "QR code content", secondary: "Secondary lines",
    items: "Items", barcode: "Barcode content", barcode_type: "Barcode type", image: "Image (PNG or JPEG)",
    image_mode: "Image mode", threshold: "Threshold (1–255)",
  };
  const LIST_FIELDS = new Set(["secondary", "items"]);

  async function printPage(token) {
    page("Print", h("p", { class: "muted", text: "Loading…" }));
    let printers;
    try {
      if (!formInfo) formInfo = await api("GET", "/api/content-types");
      printers = (await api("GET", "/api/printers")).filter((p) => p.enabled);
    } catch (e) { page("Print", h("p", { class: "reason", text: e.message })); return; }
    if (token !== pageToken) return;
    if (!printers.length) { page("Print", h("p", { class: "muted", text: "No printers you may use." })); return; }
    const wanted = sessionStorage.getItem("lh-printer");
    const printerSel = h("select", { id: "printer", name: "printer" }, printers.map((p) => h("option", { value: p.id, selected: p.id === wanted }, p.name + " (" + (p.loaded_media || p.media || "?") + " mm)")));
    const typeSel = h("select", { id: "content_type", name: "content_type" }, formInfo.content_types.map((c) => h("option", { value: c.name, selected: c.name === "qr_two_lines" }, c.name.replace(/_/g, " "))));
    const fields = h("fieldset", { id: "fields" }, h("legend", {}, "Label"));
    const copies = h("input", { id: "copies", name: "copies", type: "number", min: "1", max: "500", value: "1", inputmode: "numeric" });
    const autoCut = h("input", { id: "auto_cut", name: "auto_cut", type: "checkbox", checked: true });
    const halfCut = h("input", { id: "half_cut", name: "half_cut", type: "checkbox" });
    const img = h("img", { id: "preview-img", alt: "Preview of the label at printed size" });
    const previewNote = h("p", { class: "muted", id: "preview-note", "aria-live": "polite" }, "The preview appears when the label is complete.");
    const submit = h("button", { type: "submit", id: "submit" }, "Print");
    const inputs = {};

    function drawFields() {
      const ct = formInfo.content_types.find((c) => c.name === typeSel.value);
      fields.replaceChildren(h("legend", {}, "Label: " + typeSel.value.replace(/_/g, " ")));
      for (const k of Object.keys(inputs)) delete inputs[k];
      for (const [name, required] of [...ct.required.map((n) => [n, true]), ...ct.optional.map((n) => [n, false])]) {
        let input;
        const id = "f-" + name;
        if (LIST_FIELDS.has(name)) input = h("textarea", { id, name, required, rows: "3" });
        else if (name === "barcode_type") input = h("select", { id, name }, h("option", { value: "code128" }, "Code 128"), h("option", { value: "ean13" }, "EAN-13"));
        else if (name === "image_mode") input = h("select", { id, name }, h("option", { value: "threshold" }, "Threshold (logos, text)"), h("option", { value: "dither" }, "Dither (photos)"));
        else if (name === "threshold") input = h("input", { id, name, type: "number", min: "1", max: "255", value: "128" });
        else if (name === "image") input = h("input", { id, name, type: "file", accept: "image/png,image/jpeg", required });
        else input = h("input", { id, name, type: "text", required, autocomplete: "off" });
        inputs[name] = input;
        const hint = LIST_FIELDS.has(name) ? " (one per line" + (required ? "" : ", optional") + ")" : (required ? "" : " (optional)");
        fields.append(h("label", { for: id }, FIELD_LABELS[name] || name, h("span", { class: "hint" }, hint), input));
        input.addEventListener(name === "image" ? "change" : "input", schedulePreview);
      }
      schedulePreview();
    }

    async function labelData() {
      const data = {};
      for (const [name, input] of Object.entries(inputs)) {
        if (LIST_FIELDS.has(name)) { const lines = input.value.split("\n").map((s) => s.trim()).filter(Boolean); if (lines.length) data[name] = lines; }
        else if (name === "image") { const f = input.files && input.files[0]; if (f) data.image = await readFile(f); }
        else if (name === "threshold") { if (input.value) data.threshold = Number(input.value); }
        else if (input.value.trim() !== "") data[name] = input.value;
      }
      return data;
    }
    function readFile(f) {
      return new Promise((res, rej) => { const r = new FileReader(); r.onload = () => res(r.result); r.onerror = () => rej(new Error(MESSAGES.invalid_image)); r.readAsDataURL(f); });
    }
    function complete(data) {
      const ct = formInfo.content_types.find((c) => c.name === typeSel.value);
      return ct.required.every((n) => data[n] !== undefined);
    }

    let timer = null, seq = 0, lastUrl = null;
    function schedulePreview() { clearTimeout(timer); timer = setTimeout(preview, 300); }
    async function preview() {
      const mine = ++seq;
      const p = printers.find((x) => x.id === printerSel.value);
      const data = await labelData().catch(() => ({}));
      if (!complete(data)) { previewNote.textContent = "The preview appears when the label is complete."; img.hidden = true; return; }
      previewNote.textContent = "Drawing…";
      try {
        const resp = await api("POST", "/api/render/preview", { content_type: typeSel.value, data, model: p.model, media: p.loaded_media || p.media || undefined, high_resolution: false }, { raw: true });
        const buf = await resp.arrayBuffer();
        if (mine !== seq) return;
        let hash = 2166136261; const bytes = new Uint8Array(buf);
        for (let i = 0; i < bytes.length; i++) { hash ^= bytes[i]; hash = Math.imul(hash, 16777619) >>> 0; }
        if (lastUrl) URL.revokeObjectURL(lastUrl);
        lastUrl = URL.createObjectURL(new Blob([buf], { type: "image/png" }));
        const model = formInfo.models.find((m) => m.name === p.model);
        const dpi = model ? model.dpi : 180;
        img.onload = () => {
          img.style.width = (img.naturalWidth / dpi * 25.4).toFixed(2) + "mm";
          previewNote.textContent = "Shown at printed size: " + (img.naturalWidth / dpi * 25.4).toFixed(1) + " × " + (img.naturalHeight / dpi * 25.4).toFixed(1) + " mm.";
        };
        img.dataset.hash = String(hash);
        img.src = lastUrl;
        img.hidden = false;
      } catch (e) {
        if (mine !== seq) return;
        img.hidden = true;
        previewNote.textContent = e.message;
      }
    }

    printerSel.addEventListener("change", () => { sessionStorage.setItem("lh-printer", printerSel.value); schedulePreview(); });
    typeSel.addEventListener("change", drawFields);
    const form = h("form", { class: "stack", id: "print-form", onsubmit: (e) => {
      e.preventDefault();
      act(submit, async () => {
        const data = await labelData();
        const item = { content_type: typeSel.value, data, options: { copies: Number(copies.value) || 1, auto_cut: autoCut.checked, half_cut: halfCut.checked } };
        const r = await api("POST", "/api/print/" + encodeURIComponent(printerSel.value) + "/batch", { items: [item] });
        location.hash = "#/batch/" + r.batch_id;
      });
    } },
      h("label", { for: "printer" }, "Printer", printerSel),
      h("label", { for: "content_type" }, "Label type", typeSel),
      fields,
      h("fieldset", {}, h("legend", {}, "Copies and cutting"),
        h("label", { for: "copies" }, "Copies", copies),
        h("label", { class: "check", for: "auto_cut" }, autoCut, "Cut after each label"),
        h("label", { class: "check", for: "half_cut" }, halfCut, "Half cut (keep labels on one backing)")),
      h("div", { class: "actions" }, submit));
    main.replaceChildren(h("h1", { text: "Print" }), h("div", { class: "print-layout" }, form,
      h("section", { class: "preview", "aria-labelledby": "preview-h" }, h("h2", { id: "preview-h", text: "Preview" }), previewNote, img)));
    img.hidden = true;
    drawFields();
  }

  // ---------- batch ----------
  async function batchPage(id, token) {
    const box = h("div", { id: "batch" }, h("p", { class: "muted", text: "Loading…" }));
    page("Batch", box);
    let version = 0;
    async function refresh() {
      let b;
      try { b = await api("GET", "/api/batches/" + encodeURIComponent(id)); }
      catch (e) { box.replaceChildren(h("p", { class: "reason", text: e.message })); return true; }
      if (token !== pageToken) return true;
      version = b.version;
      const s = b.summary;
      const finished = s.done + s.failed + s.cancelled;
      const bar = h("span", {});
      bar.style.width = (s.total ? (finished / s.total) * 100 : 0) + "%";
      box.replaceChildren(
        h("p", { id: "batch-summary", dataset: { terminal: String(s.all_terminal) } },
          s.done + " of " + s.total + " printed" + (s.failed ? ", " + s.failed + " failed" : "") + (s.cancelled ? ", " + s.cancelled + " cancelled" : "") + (s.all_terminal ? ". Finished." : ".")),
        h("div", { class: "progress", role: "progressbar", "aria-label": "Batch progress", "aria-valuemin": "0", "aria-valuemax": String(s.total), "aria-valuenow": String(finished) }, bar),
        h("div", { class: "table-wrap" }, h("table", {},
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Label"), h("th", { scope: "col" }, "State"), h("th", { scope: "col" }, "Error"))),
          h("tbody", {}, b.jobs.map((j, i) => h("tr", { dataset: { job: j.id, state: j.state } },
            h("td", {}, (i + 1) + ". " + ((j.payload && j.payload.label_data && (j.payload.label_data.primary_id || j.payload.label_data.title)) || (j.payload && j.payload.content_type) || "") + (j.copy_total > 1 ? " (copy " + (j.copy_index + 1) + " of " + j.copy_total + ")" : "")),
            h("td", {}, h("span", { class: "badge " + j.state }, j.state)),
            h("td", {}, j.error_code ? describe(j.error_code, j.error_detail, j.error) : "")))))),
        h("p", {}, h("a", { href: "#/print" }, "Print another label"), " · ", h("a", { href: "#/jobs" }, "All jobs")));
      return s.all_terminal;
    }
    // Listen before the first snapshot: an event that lands between the
    // snapshot and the subscription would otherwise be lost, and the page
    // would wait for a change that already happened.
    let finished = false;
    const off = onEvent((e) => {
      if (finished || e.batch_id !== id) return;
      refresh().then((end) => { if (end) { finished = true; off(); } });
    });
    if (await refresh()) { finished = true; off(); return; }
    // Fallback when the event stream is not available: long-poll the batch.
    (async () => {
      while (token === pageToken && document.body.dataset.live === "poll") {
        try { await api("GET", "/api/batches/" + encodeURIComponent(id) + "?wait=25&since=" + version); } catch (e) { break; }
        if (await refresh()) break;
      }
    })();
  }

  // ---------- jobs ----------
  const STATES = ["queued", "paused", "printing", "done", "failed", "cancelled", "failed_restart"];
  async function jobsPage(token) {
    let printers = [];
    try { printers = await api("GET", "/api/printers"); } catch (e) { showAlert(e.message); }
    if (token !== pageToken) return;
    const names = new Map(printers.map((p) => [p.id, p.name]));
    const printerSel = h("select", { id: "filter-printer" }, h("option", { value: "" }, "All printers"), printers.map((p) => h("option", { value: p.id }, p.name)));
    if (session.printers.length > 1) printerSel.firstChild.remove();
    const stateSel = h("select", { id: "filter-state" }, h("option", { value: "" }, "All states"), STATES.map((s) => h("option", { value: s }, s.replace("_", " "))));
    const tbody = h("tbody", { id: "jobs" });
    const more = h("button", { type: "button", class: "secondary", id: "next-page" }, "Older jobs");
    const first = h("button", { type: "button", class: "secondary" }, "Newest");
    const status = h("p", { class: "muted", "aria-live": "polite" });
    let cursor = null, cursors = [];
    async function load(c) {
      let url = "/api/jobs?limit=20";
      if (printerSel.value) url += "&printer_id=" + encodeURIComponent(printerSel.value);
      if (stateSel.value) url += "&state=" + encodeURIComponent(stateSel.value);
      if (c) url += "&cursor=" + encodeURIComponent(c);
      const resp = await api("GET", url, undefined, { raw: true });
      const body = await resp.json();
      const list = Array.isArray(body) ? body : (body.items || body.jobs || []);
      cursor = resp.headers.get("X-Next-Cursor");
      more.hidden = !cursor;
      first.hidden = !c;
      status.textContent = list.length ? "" : "No jobs.";
      tbody.replaceChildren(...list.map(jobRow));
    }
    function jobRow(j) {
      const btns = [];
      if (can("print") && (j.state === "queued" || j.state === "paused")) {
        const b = h("button", { type: "button", class: "danger", dataset: { action: "cancel" } }, "Cancel");
        b.addEventListener("click", () => act(b, async () => { await api("POST", "/api/jobs/" + j.id + "/cancel"); await load(cursors[cursors.length - 1]); }));
        btns.push(b);
      }
      if (can("print") && ["done", "failed", "cancelled", "failed_restart"].includes(j.state)) {
        const b = h("button", { type: "button", class: "secondary", dataset: { action: "retry" } }, "Retry");
        b.addEventListener("click", () => act(b, async () => { await api("POST", "/api/jobs/" + j.id + "/retry"); await load(null); }));
        btns.push(b);
      }
      const p = j.payload || {};
      return h("tr", { dataset: { job: j.id, state: j.state } },
        h("td", {}, fmtTime(j.created_at)),
        h("td", {}, names.get(j.printer_id) || j.printer_id),
        h("td", {}, h("div", {}, (p.content_type || "").replace(/_/g, " "), h("br"), h("span", { class: "muted" }, (p.label_data && (p.label_data.primary_id || p.label_data.title)) || ""))),
        h("td", {}, h("span", { class: "badge " + j.state }, j.state.replace("_", " "))),
        h("td", {}, j.error_code ? describe(j.error_code, j.error_detail, j.error) : ""),
        h("td", {}, btns.length ? h("div", { class: "actions" }, btns) : ""));
    }
    const reload = (btn) => act(btn, () => { cursors = []; return load(null); });
    printerSel.addEventListener("change", () => reload(null));
    stateSel.addEventListener("change", () => reload(null));
    more.addEventListener("click", () => act(more, () => { cursors.push(cursor); return load(cursor); }));
    first.addEventListener("click", () => reload(first));
    page("Jobs",
      h("div", { class: "row" }, h("label", { for: "filter-printer" }, "Printer", printerSel), h("label", { for: "filter-state" }, "State", stateSel)),
      h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, ["Created", "Printer", "Label", "State", "Error", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
        tbody)),
      status, h("div", { class: "actions" }, first, more));
    await reload(null);
    let t = null;
    onEvent((e) => { if (e.job_id) { clearTimeout(t); t = setTimeout(() => load(cursors[cursors.length - 1]).catch(() => {}), 300); } });
  }

  // ---------- admin ----------
  async function adminPage(tab, token) {
    const tabs = h("nav", { class: "tabs", "aria-label": "Admin sections" },
      [["printers", "Printers"], ["keys", "API keys"], ["audit", "Audit log"]].map(([id, label]) =>
        h("a", { href: "#/admin/" + id, "aria-current": id === tab ? "page" : null }, label)));
    const body = h("div", { id: "admin-body" });
    page("Admin", tabs, body);
    if (tab === "keys") return adminKeys(body, token);
    if (tab === "audit") return adminAudit(body, token);
    return adminPrinters(body, token);
  }

  function printerForm(existing, done) {
    const v = existing || {};
    const field = (name, label, attrs, hint) => {
      const input = h("input", Object.assign({ id: "pf-" + name, name, type: "text", autocomplete: "off" }, attrs));
      return [input, h("label", { for: "pf-" + name }, label, hint ? h("span", { class: "hint" }, " " + hint) : null, input)];
    };
    const [name, nameL] = field("name", "Name", { required: true, value: v.name || "" });
    const [slug, slugL] = field("slug", "Short name (slug)", { required: true, value: v.slug || "", pattern: "[a-z0-9][a-z0-9-]*", disabled: !!existing }, "lower case, digits, -");
    const models = h("datalist", { id: "models" }, (formInfo ? formInfo.models : []).map((m) => h("option", { value: m.name })));
    const [model, modelL] = field("model", "Model", { required: true, value: v.model || "", list: "models", disabled: !!existing }, "e.g. PT-P750W, QL-820NWB");
    const [uri, uriL] = field("uri", "Connection", { required: true, value: (v.connection && v.connection.uri) || "" }, "tcp://host:9100, usb:///dev/usb/lp0, emulator:");
    const [media, mediaL] = field("media", "Medium", { value: v.media || "" }, "e.g. 12, 62 (optional)");
    const result = h("div", { id: "test-result", "aria-live": "polite" });
    const testBtn = h("button", { type: "button", class: "secondary", id: "test-connection" }, "Test connection");
    testBtn.addEventListener("click", () => act(testBtn, async () => {
      result.replaceChildren();
      const r = await api("POST", "/api/v1/admin/connection-test", { model: model.value, slug: slug.value || undefined, connection: { uri: uri.value } });
      const summary = r.ok ? "Connected: ready" + (r.media ? ", " + mm(r.media) + " loaded" : "") + "."
        : r.error ? describe(r.error.code, null, r.error.message) + " (" + r.error.message + ")"
        : "Connected, but: " + describe(r.problem.code, null, r.problem.message);
      result.replaceChildren(h("p", { class: r.ok ? "" : "reason", dataset: { ok: String(r.ok) } }, summary),
        h("details", {}, h("summary", {}, "Status block"), h("pre", {}, JSON.stringify(r.details || r.error || {}, null, 2))));
    }));
    const save = h("button", { type: "submit" }, existing ? "Save changes" : "Add printer");
    const form = h("form", { class: "stack card", id: existing ? "edit-printer" : "add-printer", onsubmit: (e) => {
      e.preventDefault();
      act(save, async () => {
        if (existing) await api("PUT", "/api/v1/admin/printers/" + encodeURIComponent(v.slug), { name: name.value, connection: { uri: uri.value }, media: media.value || undefined });
        else await api("POST", "/api/v1/admin/printers", { name: name.value, slug: slug.value, model: model.value, connection: { uri: uri.value }, media: media.value || undefined });
        showAlert(existing ? "Printer saved." : "Printer added.", "info");
        done();
      });
    } }, h("h2", {}, existing ? "Edit " + v.name : "Add a printer"), nameL, slugL, modelL, models, uriL, mediaL, h("div", { class: "actions" }, testBtn, save), result);
    return form;
  }

  // The in-row confirmation of a delete (no window.confirm: it is a real
  // group of buttons, reached by Tab, left with "Keep" or Escape). When
  // labels still wait, the API answers printer_has_jobs: say so and offer
  // the explicit second action that cancels them (?cancel_queued=true).
  function confirmDelete(p, close, done) {
    const path = "/api/v1/admin/printers/" + encodeURIComponent(p.slug);
    const yes = h("button", { type: "button", class: "danger", dataset: { action: "confirm-delete" } }, "Delete printer");
    const keep = h("button", { type: "button", class: "secondary", dataset: { action: "keep" } }, "Keep");
    const why = h("div", { dataset: { role: "delete-problem" }, "aria-live": "polite" });
    const box = h("div", { class: "confirm", role: "group", "aria-label": "Delete " + p.name + "?" },
      h("p", {}, "Delete “" + p.name + "” and its job history?"), h("div", { class: "actions" }, yes, keep), why);
    const remove = (button, cancelQueued) => act(button, async () => {
      try {
        const r = await api("DELETE", path + (cancelQueued ? "?cancel_queued=true" : ""));
        const n = r && r.jobs_cancelled;
        showAlert("Printer “" + p.name + "” deleted." + (n ? " " + n + (n === 1 ? " waiting label was" : " waiting labels were") + " cancelled." : ""), "info");
        done();
      } catch (e) {
        if (e.code !== "printer_has_jobs") throw e;
        const resp = await api("GET", "/api/printers/" + encodeURIComponent(p.id) + "/queue?limit=200", undefined, { raw: true });
        const n = (await resp.json()).filter((j) => j.state === "queued" || j.state === "paused").length;
        const count = n + (resp.headers.get("X-Next-Cursor") ? " or more" : "");
        const force = h("button", { type: "button", class: "danger", dataset: { action: "delete-cancel-queued" } },
          "Delete and cancel " + count + (n === 1 && count === "1" ? " waiting label" : " waiting labels"));
        force.addEventListener("click", () => remove(force, true));
        why.replaceChildren(h("p", { class: "reason" }, describe(e.code)), h("div", { class: "actions" }, force));
        force.focus();
      }
    });
    yes.addEventListener("click", () => remove(yes, false));
    keep.addEventListener("click", close);
    box.addEventListener("keydown", (e) => { if (e.key === "Escape") { e.preventDefault(); close(); } });
    requestAnimationFrame(() => keep.focus());
    return box;
  }

  async function adminPrinters(body, token) {
    try { if (!formInfo) formInfo = await api("GET", "/api/content-types"); } catch (e) { showAlert(e.message); }
    let list;
    try { list = await api("GET", "/api/v1/admin/printers?include_disabled=true"); }
    catch (e) { body.replaceChildren(h("p", { class: "reason", text: e.message })); return; }
    if (token !== pageToken) return;
    const formSlot = h("div", {});
    const reload = () => adminPrinters(body, token);
    const rows = list.map((p) => {
      const edit = h("button", { type: "button", class: "secondary" }, "Edit");
      edit.addEventListener("click", () => { formSlot.replaceChildren(printerForm(p, reload)); formSlot.querySelector("input").focus(); });
      const toggle = h("button", { type: "button", class: p.enabled ? "danger" : "secondary" }, p.enabled ? "Disable" : "Enable");
      toggle.addEventListener("click", () => act(toggle, async () => { await api("POST", "/api/v1/admin/printers/" + encodeURIComponent(p.slug) + (p.enabled ? "/disable" : "/enable")); reload(); }));
      const del = h("button", { type: "button", class: "danger", dataset: { action: "delete" }, "aria-label": "Delete " + p.name }, "Delete");
      const buttons = h("div", { class: "actions" }, edit, toggle, del);
      const cell = h("td", {}, buttons);
      del.addEventListener("click", () => cell.replaceChildren(confirmDelete(p, () => { cell.replaceChildren(buttons); del.focus(); }, reload)));
      return h("tr", { dataset: { printer: p.slug } }, h("td", {}, p.name), h("td", {}, p.slug), h("td", {}, p.model),
        h("td", {}, (p.connection && p.connection.uri) || ""),
        h("td", {}, h("span", { class: "badge " + (p.enabled ? "online" : "disabled") }, p.enabled ? "enabled" : "disabled")),
        cell);
    });
    const add = h("button", { type: "button", id: "add-printer-btn" }, "Add a printer");
    add.addEventListener("click", () => { formSlot.replaceChildren(printerForm(null, reload)); formSlot.querySelector("input").focus(); });
    body.replaceChildren(
      h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, ["Name", "Slug", "Model", "Connection", "State", "Actions"].map((t) => h("th", { scope: "col" }, t)))), h("tbody", {}, rows))),
      h("div", { class: "actions" }, add), formSlot);
  }

  async function adminKeys(body, token) {
    let keys, printers = [];
    try { [keys, printers] = await Promise.all([api("GET", "/api/admin/api-keys"), api("GET", "/api/printers")]); }
    catch (e) { body.replaceChildren(h("p", { class: "reason", text: e.message })); return; }
    if (token !== pageToken) return;
    const reveal = h("div", { id: "new-key", "aria-live": "polite" });
    const reload = () => adminKeys(body, token).then(() => body.prepend(reveal));
    const rows = keys.map((k) => {
      const btn = k.enabled ? h("button", { type: "button", class: "danger" }, "Revoke") : null;
      if (btn) btn.addEventListener("click", () => act(btn, async () => {
        if (!window.confirm("Revoke the key " + k.name + "? Programs and sessions using it stop working at once.")) return;
        await api("DELETE", "/api/admin/api-keys/" + k.id); reveal.replaceChildren(); reload();
      }));
      return h("tr", { dataset: { key: k.id } }, h("td", {}, k.name), h("td", {}, h("code", {}, k.key_prefix + "…")), h("td", {}, k.scopes.join(", ")),
        h("td", {}, k.allowed_printer_ids.length ? k.allowed_printer_ids.map((id) => (printers.find((p) => p.id === id) || { name: id }).name).join(", ") : "all"),
        h("td", {}, h("span", { class: "badge " + (k.enabled ? "online" : "disabled") }, k.enabled ? "active" : "revoked")),
        h("td", {}, fmtTime(k.last_used_at)), h("td", {}, btn || ""));
    });
    const name = h("input", { id: "kf-name", required: true, maxlength: "100", autocomplete: "off" });
    const scope = h("select", { id: "kf-scope" }, ["read", "print", "admin"].map((s) => h("option", { value: s, selected: s === "print" }, s)));
    const boxes = printers.map((p) => h("input", { type: "checkbox", id: "kf-p-" + p.id, value: p.id }));
    const create = h("button", { type: "submit" }, "Create key");
    const form = h("form", { class: "stack card", id: "create-key", onsubmit: (e) => {
      e.preventDefault();
      act(create, async () => {
        // null = every printer; an empty list is refused by the API.
        const picked = boxes.filter((b) => b.checked).map((b) => b.value);
        const r = await api("POST", "/api/admin/api-keys", { name: name.value, scopes: [scope.value], allowed_printer_ids: picked.length ? picked : null });
        const secret = h("p", { class: "secret", id: "plaintext" }, r.plaintext);
        const copy = h("button", { type: "button", class: "secondary" }, "Copy");
        copy.addEventListener("click", () => act(copy, async () => {
          try { await navigator.clipboard.writeText(r.plaintext); copy.textContent = "Copied"; }
          catch (err) { const range = document.createRange(); range.selectNodeContents(secret); const sel = getSelection(); sel.removeAllRanges(); sel.addRange(range); copy.textContent = "Selected: press Ctrl+C"; }
        }));
        name.value = "";
        await reload();
        reveal.replaceChildren(h("div", { class: "card" }, h("h2", {}, "New key “" + r.name + "”"),
          h("p", {}, "This is the only time the key is shown. Copy it now."), secret, h("div", { class: "actions" }, copy)));
      });
    } }, h("h2", {}, "Create an API key"),
      h("label", { for: "kf-name" }, "Name", name),
      h("label", { for: "kf-scope" }, "Scope", h("span", { class: "hint" }, " read: look; print: print and control; admin: everything"), scope),
      h("fieldset", {}, h("legend", {}, "Printers (none ticked = all)"), printers.map((p, i) => h("label", { class: "check", for: "kf-p-" + p.id }, boxes[i], p.name))),
      h("div", { class: "actions" }, create));
    body.replaceChildren(reveal,
      h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, ["Name", "Key", "Scope", "Printers", "State", "Last used", "Actions"].map((t) => h("th", { scope: "col" }, t)))), h("tbody", {}, rows))),
      form);
  }

  async function adminAudit(body, token) {
    const tbody = h("tbody", { id: "audit" });
    const older = h("button", { type: "button", class: "secondary" }, "Older entries");
    let before = null;
    async function load() {
      const r = await api("GET", "/api/admin/audit?limit=50" + (before ? "&before_id=" + before : ""));
      if (token !== pageToken) return;
      tbody.replaceChildren(...r.items.map((a) => h("tr", {}, h("td", {}, fmtTime(a.at)), h("td", {}, a.actor), h("td", {}, a.action),
        h("td", {}, a.target_type + " " + (a.target_id || "")), h("td", {}, a.source_ip || ""))));
      before = r.next_before_id;
      older.hidden = !before;
    }
    older.addEventListener("click", () => act(older, load));
    body.replaceChildren(h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, ["When", "Who", "Action", "Target", "From"].map((t) => h("th", { scope: "col" }, t)))), tbody)), h("div", { class: "actions" }, older));
    await act(null, load);
  }

  route();
})();
