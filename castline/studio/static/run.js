"use strict";
// A run's progress, pushed by the server as it happens (EventSource reconnects with
// Last-Event-ID by itself, so nothing is shown twice or missed).

const runId = studio.runId();
const events = document.getElementById("events");

function showState(state) {
  document.getElementById("status").replaceChildren(studio.status(state.status));
  document.getElementById("stage").textContent = state.stage || "";
  document.getElementById("calls").textContent = state.calls;
  document.getElementById("cost").textContent = studio.money(state.cost) + (state.offline ? " (shadow)" : "");
  document.getElementById("budget").textContent = studio.money(state.budget);
  const meter = document.getElementById("spend");
  meter.max = Number(state.budget) || 1;
  meter.value = Number(state.cost) || 0;
  document.getElementById("mode").textContent = `budget mode ${state.budget_mode}`;
}

async function main() {
  const detail = await studio.api(`/api/runs/${encodeURIComponent(runId)}`);
  const run = detail.run;
  document.getElementById("title").textContent = `${run.show_title}: ${run.episode_title || run.topic}`;
  const source = new EventSource(`/api/runs/${encodeURIComponent(runId)}/stream`);
  source.addEventListener("audit", (message) => {
    const event = JSON.parse(message.data);
    const stage = event.stage ? `[${event.stage}] ` : "";
    events.appendChild(studio.el("li", `${studio.date(event.ts)}  ${event.kind}  ${stage}${event.message}`, { "data-kind": event.kind }));
  });
  source.addEventListener("state", (message) => showState(JSON.parse(message.data)));
  source.addEventListener("end", (message) => {
    source.close();
    const state = JSON.parse(message.data);
    showState(state);
    const done = document.getElementById("done");
    done.replaceChildren(studio.el("span", `The run is ${state.status}. `));
    if (state.status === "awaiting-review") done.appendChild(studio.link("/review", "Review it"));
    else done.appendChild(studio.link(`/episodes/${runId}`, "Open the episode"));
    done.hidden = false;
  });
}

main().catch((e) => studio.fail("problem", e));
