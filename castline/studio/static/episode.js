"use strict";
// An episode: the browser's own player and its text track; the transcript is the track's cues,
// and the cue the player is on is highlighted from the track's cuechange events.

const runId = studio.runId();
const file = (name) => `/api/runs/${encodeURIComponent(runId)}/files/${encodeURIComponent(name)}`;

function speakerAndText(cue) {
  // the browser parses the cue's markup (voice spans, escapes) into text nodes; no HTML runs
  const match = /^<v(?:\.[^ >]*)? ([^>]*)>/.exec(cue.text);
  return [match ? match[1] : "", cue.getCueAsHTML().textContent];
}

function transcript(track) {
  const list = document.getElementById("transcript");
  const items = new Map();
  const build = () => {
    if (items.size || !track.track.cues) return;
    for (const cue of Array.from(track.track.cues)) {
      const [speaker, text] = speakerAndText(cue);
      const item = studio.el("li", null, { "data-start": String(cue.startTime) });
      item.appendChild(studio.el("span", speaker, { class: "speaker" }));
      item.appendChild(document.createTextNode(text));
      item.addEventListener("click", () => { document.getElementById("audio").currentTime = cue.startTime; });
      items.set(cue, item);
      list.appendChild(item);
    }
  };
  track.track.mode = "hidden";
  track.addEventListener("load", build);
  track.track.addEventListener("cuechange", () => {
    build();
    const active = new Set(Array.from(track.track.activeCues || []));
    for (const [cue, item] of items) {
      item.classList.toggle("current", active.has(cue));
      if (active.has(cue)) item.scrollIntoView({ block: "nearest" });
    }
  });
}

function showNote(note, source) {
  // the quoted note, and the source and section it was quoted from
  const box = document.getElementById("note");
  box.replaceChildren(studio.el("h3", `${note.id}: ${note.claim}`));
  box.appendChild(studio.el("blockquote", note.quote));
  if (source) {
    const from = studio.el("p", "from ");
    const web = typeof source.url === "string" && /^https?:\/\//i.test(source.url);
    from.appendChild(web ? studio.el("a", source.title, { href: source.url, rel: "noopener noreferrer", target: "_blank" }) : studio.el("strong", source.title));
    const section = (source.sections || []).find((s) => (s.text || "").includes(note.quote.slice(0, 60)));
    if (section) from.appendChild(document.createTextNode(`, section “${section.heading}”`));
    box.appendChild(from);
  }
  box.hidden = false;
}

function script(episode, editable) {
  const box = document.getElementById("script");
  const notes = new Map((episode.knowledge_base?.notes || []).map((n) => [n.id, n]));
  const sources = new Map((episode.sources || []).map((s) => [s.id, s]));
  episode.script.turns.forEach((turn, index) => {
    const paragraph = studio.el("p", null, { class: "turn" });
    paragraph.appendChild(studio.el("span", turn.speaker, { class: "speaker" }));
    paragraph.appendChild(document.createTextNode(turn.text));
    for (const id of turn.citations || []) {
      const note = notes.get(id);
      const cite = studio.el("button", id, { type: "button", class: "citation" });
      if (note) cite.addEventListener("click", () => showNote(note, sources.get(note.source_id)));
      else cite.disabled = true;
      paragraph.appendChild(cite);
    }
    if (editable) paragraph.appendChild(studio.editButton(runId, index, turn, paragraph));
    box.appendChild(paragraph);
  });
}

function minutes(seconds) {
  const s = Math.floor(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function chapters(data) {
  const audio = document.getElementById("audio");
  const list = document.getElementById("chapters");
  const items = [];
  for (const chapter of data.chapters || []) {
    const item = studio.el("li");
    const seek = studio.el("button", `${minutes(chapter.startTime)} ${chapter.title}`, { type: "button" });
    seek.addEventListener("click", () => { audio.currentTime = chapter.startTime; audio.play(); });
    item.appendChild(seek);
    items.push([chapter, item]);
    list.appendChild(item);
  }
  audio.addEventListener("timeupdate", () => {
    for (const [chapter, item] of items) {
      const end = chapter.endTime ?? Infinity;
      item.classList.toggle("current", audio.currentTime >= chapter.startTime && audio.currentTime < end);
    }
  });
}

async function main() {
  const detail = await studio.api(`/api/runs/${encodeURIComponent(runId)}`);
  const run = detail.run;
  document.getElementById("title").textContent = `${run.show_title}: ${run.episode_title || run.topic}`;
  document.getElementById("meta").textContent =
    `episode ${run.number ?? ""} · ${run.status} · ${studio.money(detail.cost.spent)} of ${studio.money(run.budget)} · ${studio.date(run.created_at)}`;
  document.getElementById("live").href = `/runs/${run.id}`;
  const names = new Set(detail.artifacts.map((a) => a.name));
  const report = document.getElementById("report");
  if (names.has("report.html")) report.href = file("report.html"); else report.hidden = true;
  const files = document.getElementById("files");
  for (const artifact of detail.artifacts) {
    const item = studio.el("li");
    item.appendChild(studio.link(file(artifact.name), artifact.name));
    item.appendChild(document.createTextNode(` (${artifact.bytes.toLocaleString()} bytes)`));
    files.appendChild(item);
  }
  for (const verdict of detail.verdicts) {
    const reason = studio.el("div", verdict.reason);
    if (verdict.findings && verdict.findings.length) {
      const list = studio.el("ul", null, { class: "findings" });
      for (const finding of verdict.findings) list.appendChild(studio.el("li", `${finding.severity}: ${finding.message}`));
      reason.appendChild(list);
    }
    document.querySelector("#verdicts tbody").appendChild(studio.row([
      verdict.gate, verdict.criterion, verdict.evaluator, Number(verdict.score).toFixed(2), reason,
    ]));
  }
  for (const stage of detail.cost.by_stage || []) {
    document.querySelector("#cost tbody").appendChild(studio.row([stage.key, stage.calls, studio.money(stage.total)]));
  }
  if (names.has("episode.mp3")) {
    const audio = document.getElementById("audio");
    audio.src = file("episode.mp3");
    const track = document.getElementById("track");
    if (names.has("episode.vtt")) { track.src = file("episode.vtt"); transcript(track); }
    if (names.has("chapters.json")) chapters(await studio.api(file("chapters.json")));
    document.getElementById("player").hidden = false;
  }
  if (names.has("episode.json")) script(await studio.api(file("episode.json")), run.status === "completed");
}

main().catch((e) => studio.fail("problem", e));
