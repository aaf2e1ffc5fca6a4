"""Text in a source that speaks to a language model rather than to a reader.

A web page or a document can carry instructions meant for whatever model reads it ("ignore the
previous instructions and ...", a "system:" line, a role to play). Prompts keep source text apart
from instructions (`castline.llm.prompts`); this module finds such text so that research drops it
from the notes and the compliance gate flags it in a script. It looks for the forms of address
that only make sense to a model, so ordinary prose about instructions or rules is left alone.
"""

from __future__ import annotations

import re

# Longest first: the match names the whole form of address.
_MODEL = (
    r"(?:ai\s+assistant|ai\s+model|ai|a\.i\.|assistant|chatbot|chat\s?gpt|gpt(?:-\d+)?|claude"
    r"|gemini|llm|(?:large\s+)?language\s+model)"
)
_EARLIER = (
    r"(?:all\s+|any\s+|the\s+|your\s+)*(?:previous|prior|above|earlier|preceding|original|system)"
)
_ORDERS = r"(?:instructions?|prompts?|rules|directions|directives|guidelines|messages|context)"

_ADDRESSES = re.compile(
    "|".join(
        (
            # "Ignore previous instructions", "disregard all prior rules", "forget the above"
            rf"\b(?:ignore|disregard|forget|override|bypass)\s+{_EARLIER}\s+{_ORDERS}",
            r"\b(?:ignore|disregard|forget)\s+(?:everything|all)\s+(?:above|before|you\s+were\s+told)",
            rf"\bdo\s+not\s+(?:follow|obey)\s+{_EARLIER}?\s*{_ORDERS}",
            # "new instructions:", "your instructions are"
            r"\b(?:new|updated|real|actual)\s+instructions?\s*:",
            r"\byour\s+(?:new\s+)?(?:instructions|task|orders)\s+(?:are|is)\b",
            # a chat transcript's role markers and the control tokens of chat templates
            r"(?:^|\n)\s*(?:system|assistant|developer)\s*:",
            r"<\|(?:im_start|im_end|system|user|assistant|endoftext)\|>|\[/?INST\]|<</?SYS>>",
            # "you are an AI", "as an AI language model", "if you are a chatbot", "dear Claude"
            rf"\byou\s+are\s+(?:now\s+)?(?:an?\s+|the\s+)?{_MODEL}\b",
            r"\bas\s+an?\s+(?:ai\s+)?(?:(?:large\s+)?language\s+model|ai\s+assistant|chatbot)\b",
            rf"\bif\s+you\s+are\s+an?\s+{_MODEL}\b",
            rf"\b(?:dear|attention|note\s+to|hey)\s+(?:the\s+)?{_MODEL}s?\b",
            # role-play and orders about the output
            r"\bpretend\s+(?:that\s+)?you\s+are\b",
            rf"\b(?:act|respond|answer|behave)\s+as\s+(?:if\s+you\s+(?:are|were)\b|an?\s+{_MODEL}\b)",
            r"\brole-?\s?play\s+as\b",
            r"\b(?:respond|reply|answer)\s+only\s+with\b",
            r"\b(?:say|repeat|include|insert|mention|write)\b[^.!?]{0,60}\bin\s+(?:every|each|all)\s+"
            r"(?:turn|line|reply|replies|response|answer|sentence|output)s?\b",
        )
    ),
    re.IGNORECASE,
)


def addressed_to_model(text: str) -> str | None:
    """The words by which `text` addresses a language model, or None when it does not."""
    match = _ADDRESSES.search(text)
    return " ".join(match.group(0).split()) if match else None
