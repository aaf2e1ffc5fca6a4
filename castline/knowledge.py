"""The knowledge base: merging research findings into numbered notes grouped by theme."""

from __future__ import annotations

from castline.domain import KnowledgeBase, Note, Theme
from castline.llm.tasks import SynthesisTask


def merge_findings(task: SynthesisTask) -> KnowledgeBase:
    """Merge findings without a model: drop repeated quotes (the first question keeps them),
    number the notes and make one theme per question that kept any note."""
    notes: list[Note] = []
    themes: list[Theme] = []
    seen: set[str] = set()
    for index, (question, found) in enumerate(zip(task.questions, task.findings, strict=True)):
        ids: list[str] = []
        for item in found.notes:
            key = " ".join(item.quote.split()).casefold()
            if key in seen:
                continue
            seen.add(key)
            note = Note(
                id=f"N{len(notes) + 1}",
                claim=item.claim,
                source_id=item.source_id,
                quote=item.quote,
                question=index,
            )
            notes.append(note)
            ids.append(note.id)
        if ids:
            title = question.focus or task.topic
            themes.append(Theme(title=title, question=question.text, note_ids=ids))
    return KnowledgeBase(topic=task.topic, themes=themes, notes=notes)
