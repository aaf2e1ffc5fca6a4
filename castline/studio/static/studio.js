// castline studio: shared helpers. Data is only ever put on the page with textContent.
"use strict";

const studio = {
  async api(path, options = {}) {
    const response = await fetch(path, { credentials: "same-origin", ...options });
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      if (response.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); }
      throw new Error((body && body.error) || `HTTP ${response.status}`);
    }
    return body;
  },
  el(tag, text, attrs = {}) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    return node;
  },
  row(cells) {
    const tr = document.createElement("tr");
    for (const cell of cells) {
      const td = document.createElement("td");
      if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell === null || cell === undefined ? "" : String(cell);
      tr.appendChild(td);
    }
    return tr;
  },
  money(value) { return value === null || value === undefined ? "" : "$" + Number(value).toFixed(4); },
  date(ts) { return ts ? new Date(ts * 1000).toLocaleString() : ""; },
  budgetBar(cost, budget) {
    const meter = studio.el("meter", null, { min: "0", max: String(Number(budget) || 1), value: String(Number(cost) || 0) });
    meter.title = `${studio.money(cost)} of ${studio.money(budget)}`;
    meter.setAttribute("high", String((Number(budget) || 1) * 0.8));
    return meter;
  },
  status(text) { return studio.el("span", text, { class: "status-" + text }); },
  link(href, text) { return studio.el("a", text, { href }); },
  fail(where, error) {
    const box = document.getElementById(where);
    box.replaceChildren(studio.el("div", error.message, { class: "error" }));
  },
  runId() { return decodeURIComponent(location.pathname.split("/").pop()); },
};

// Edit one turn in place: check and price it first; confirming approves it (under review) or
// voices only the changed turn again (a finished episode).
studio.editButton = function (runId, index, turn, paragraph) {
  const edit = studio.el("button", "Edit", { type: "button", class: "edit" });
  edit.addEventListener("click", () => studio.editTurn(runId, index, turn, paragraph));
  return edit;
};

studio.editTurn = function (runId, index, turn, paragraph) {
  const original = Array.from(paragraph.childNodes);
  const box = studio.el("div", null, { class: "editor" });
  box.appendChild(studio.el("span", turn.speaker, { class: "speaker" }));
  const text = studio.el("textarea", null, { rows: "3", class: "turn-text" });
  text.value = turn.text;
  const result = studio.el("div", null, { class: "edit-result" });
  const check = studio.el("button", "Check and price", { type: "button", class: "check" });
  const cancel = studio.el("button", "Cancel", { type: "button" });
  box.append(text, check, cancel, result);
  paragraph.replaceChildren(box);
  cancel.addEventListener("click", () => paragraph.replaceChildren(...original));
  const body = () => JSON.stringify({ turns: { [index]: text.value } });
  const path = `/api/runs/${encodeURIComponent(runId)}/edit`;
  check.addEventListener("click", async () => {
    result.replaceChildren();
    try {
      const plan = await studio.api(path + "/preview", { method: "POST", headers: { "Content-Type": "application/json" }, body: body() });
      if (plan.failing.length) {
        const list = studio.el("ul", null, { class: "error" });
        for (const finding of plan.failing) list.appendChild(studio.el("li", finding));
        result.appendChild(list);
        return;
      }
      if (!plan.changed.length) { result.appendChild(studio.el("p", "Nothing changed.")); return; }
      const what = plan.mode === "review"
        ? `Approve the episode as edited; then all ${plan.voiced.length} turns are voiced`
        : `Voice again only the ${plan.voiced.length} changed turn(s)`;
      const cost = plan.voice ? ` with ${plan.voice}, at most ${studio.money(plan.cost_high)}` : " (a text-only show: nothing to voice)";
      result.appendChild(studio.el("p", `The checks pass. ${what}${cost}.`, { class: "edit-plan" }));
      const confirm = studio.el("button", "Confirm", { type: "button", class: "confirm-edit" });
      confirm.addEventListener("click", async () => {
        confirm.disabled = true;
        try {
          const done = await studio.api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: body() });
          location.href = done.links.run;
        } catch (e) { result.appendChild(studio.el("div", e.message, { class: "error" })); confirm.disabled = false; }
      });
      result.appendChild(confirm);
    } catch (e) {
      result.appendChild(studio.el("div", e.message, { class: "error" }));
    }
  });
};
