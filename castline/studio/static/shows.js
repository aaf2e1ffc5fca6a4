"use strict";
// The shows in the store; choosing one lists its episodes with status, cost and a budget bar.

async function showEpisodes(show) {
  const data = await studio.api(`/api/shows/${encodeURIComponent(show.id)}/episodes`);
  const title = document.getElementById("episodes-title");
  title.textContent = `Episodes of ${show.title} `;
  const stats = studio.el("a", "statistics with charts", { href: `/api/shows/${encodeURIComponent(show.id)}/stats.html`, target: "_blank", rel: "noopener", id: "stats" });
  title.appendChild(stats);
  const table = document.getElementById("episodes");
  const body = table.querySelector("tbody");
  body.replaceChildren();
  for (const episode of data.episodes) {
    const finished = ["completed", "rejected", "halted"].includes(episode.status);
    body.appendChild(studio.row([
      episode.number,
      studio.link(finished ? `/episodes/${episode.id}` : `/runs/${episode.id}`, episode.title),
      studio.status(episode.status),
      episode.stage,
      studio.money(episode.cost) + (episode.offline ? " (shadow)" : ""),
      studio.budgetBar(episode.cost, episode.budget),
      studio.date(episode.created_at),
      studio.link(`/runs/${episode.id}`, "audit trail"),
    ]));
  }
  table.hidden = false;
}

async function main() {
  const data = await studio.api("/api/shows");
  if (!data.workers.running) {
    document.getElementById("workers").replaceChildren(studio.el("p", data.workers.hint, { class: "notice" }));
  }
  const body = document.querySelector("#shows tbody");
  for (const show of data.shows) {
    const name = studio.el("a", show.title, { href: "#" + show.id });
    name.addEventListener("click", (event) => { event.preventDefault(); showEpisodes(show).catch((e) => studio.fail("problem", e)); });
    body.appendChild(studio.row([
      name, show.episodes, show.completed, studio.money(show.cost), studio.money(show.budget), studio.date(show.latest_at),
    ]));
  }
  const chosen = data.shows.find((s) => "#" + s.id === location.hash) || data.shows.find((s) => s.episodes > 0);
  if (chosen) await showEpisodes(chosen);
}

main().catch((e) => studio.fail("problem", e));
