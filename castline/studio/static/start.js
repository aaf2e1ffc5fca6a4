"use strict";
// Forecast first; only the confirmed form goes on the queue.

const form = document.getElementById("start");

function formData() {
  const data = new FormData(form);
  if (!data.get("target_minutes")) data.delete("target_minutes");
  for (const file of data.getAll("files")) { if (!file.name) data.delete("files"); }
  return data;
}

async function loadShows() {
  const data = await studio.api("/api/shows");
  const select = document.getElementById("show");
  for (const show of data.shows) select.appendChild(studio.el("option", show.title, { value: show.id }));
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  document.getElementById("problem").replaceChildren();
  const button = document.getElementById("forecast-button");
  button.disabled = true;
  button.textContent = "Forecasting…";
  try {
    const forecast = await studio.api("/api/estimate", { method: "POST", body: formData() });
    document.getElementById("forecast-summary").textContent =
      `${forecast.show}: “${forecast.topic}”, ${forecast.target_minutes} minutes — low ${studio.money(forecast.low)}, ` +
      `expected ${studio.money(forecast.expected)}, high ${studio.money(forecast.high)} of a ${studio.money(forecast.budget)} budget`;
    const body = document.querySelector("#forecast-rows tbody");
    body.replaceChildren();
    for (const row of forecast.rows) {
      body.appendChild(studio.row([row.stage, row.model, row.calls, studio.money(row.low), studio.money(row.expected), studio.money(row.high)]));
    }
    document.getElementById("forecast").hidden = false;
  } catch (e) {
    studio.fail("problem", e);
  } finally {
    button.disabled = false;
    button.textContent = "Forecast";
  }
});

document.getElementById("confirm").addEventListener("click", async () => {
  const confirm = document.getElementById("confirm");
  confirm.disabled = true;
  try {
    const started = await studio.api("/api/episodes", { method: "POST", body: formData() });
    const box = document.getElementById("queued");
    box.replaceChildren(studio.el("p", `Queued run ${started.run_id}.`));
    if (!started.workers.running) box.appendChild(studio.el("p", started.workers.hint, { class: "notice" }));
    box.appendChild(studio.link(started.links.run, "Follow it live"));
  } catch (e) {
    studio.fail("problem", e);
  } finally {
    confirm.disabled = false;
  }
});

loadShows().catch((e) => studio.fail("problem", e));
