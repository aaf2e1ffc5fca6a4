"use strict";
// Episodes the evaluators disagreed on, with their reasons; a person approves or rejects.

async function decide(runId, verdict, note) {
  const result = await studio.api(`/api/review/${encodeURIComponent(runId)}/${verdict}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ note: note || null }),
  });
  location.href = result.links.run;
}

async function main() {
  const data = await studio.api("/api/review");
  const box = document.getElementById("waiting");
  document.getElementById("empty").hidden = data.waiting.length > 0;
  for (const item of data.waiting) {
    const section = studio.el("section", null, { "data-run": item.run_id });
    section.appendChild(studio.el("h2", `${item.show}: ${item.topic}`));
    section.appendChild(studio.el("p", `run ${item.run_id}, review round ${item.round}, waiting since ${studio.date(item.requested_at)}`));
    const table = studio.el("table");
    const head = studio.el("tr");
    for (const name of ["gate", "criterion", "evaluator", "score", "reason"]) head.appendChild(studio.el("th", name));
    table.appendChild(head);
    for (const escalated of item.escalated) {
      for (const [evaluator, score] of Object.entries(escalated.scores)) {
        table.appendChild(studio.row([escalated.gate, escalated.criterion, evaluator, Number(score).toFixed(2), (escalated.reasons || {})[evaluator] || ""]));
      }
    }
    section.appendChild(table);
    const turns = studio.el("div", null, { class: "script" });
    (item.script?.turns || []).forEach((turn, index) => {
      const paragraph = studio.el("p", null, { class: "turn" });
      paragraph.appendChild(studio.el("span", turn.speaker, { class: "speaker" }));
      paragraph.appendChild(document.createTextNode(turn.text));
      paragraph.appendChild(studio.editButton(item.run_id, index, turn, paragraph));
      turns.appendChild(paragraph);
    });
    const details = studio.el("details");
    details.appendChild(studio.el("summary", "Script (edit a turn in place)"));
    details.appendChild(turns);
    const note = studio.el("input", null, { type: "text", placeholder: "note for the audit trail", class: "note" });
    section.appendChild(note);
    for (const verdict of ["approve", "reject"]) {
      const button = studio.el("button", verdict === "approve" ? "Approve" : "Reject", { type: "button", class: verdict });
      button.addEventListener("click", () => decide(item.run_id, verdict, note.value).catch((e) => studio.fail("problem", e)));
      section.appendChild(button);
    }
    section.appendChild(details);
    box.appendChild(section);
  }
}

main().catch((e) => studio.fail("problem", e));
