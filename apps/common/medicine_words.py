"""Names for what the medicine and insight pages show, in the session's language: drugs by
main-ingredient code, diagnoses by KCD code, institutions by HIRA code, and the names the rule
files give their classes, conditions and programmes. Never a bare code: an unknown code is
shown with the catalogue's word for "unknown" beside it.

Every name here comes from data (code lists, rule files, the institution register), and the
pages show it through Markdown, so ``plain`` escapes Markdown's marks first: a name is shown as
the text it is.
"""

from __future__ import annotations

import re
from typing import Final

from apps.common.i18n import lang, t
from lakehouse.insights import rules
from lakehouse.reference import codes

MARKS: Final = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")


def plain(text: str) -> str:
    """``text`` with Markdown's marks escaped, to show as written."""
    return MARKS.sub(r"\\\1", text)


def drug(code: str) -> str:
    """A drug's name and strength by main-ingredient code (``암로디핀베실산염 5 mg``)."""
    found = codes("drugs").filter(codes("drugs")["gnl_nm_cd"] == code)
    if found.is_empty():
        return f"{t('citizen.insights.unknown_drug')} ({code})"
    row = found.row(0, named=True)
    return f"{row['name_ko' if lang() == 'ko' else 'name_en']} {row['strength']}"


def diagnosis(code: str) -> str:
    """A diagnosis's name and code, by KCD code with the dot (``본태성(일차성) 고혈압 (I10)``)."""
    bare = code.replace(".", "")
    found = codes("kcd").filter(codes("kcd")["code"] == bare)
    if found.is_empty():
        return f"{t('citizen.insights.unknown_diagnosis')} ({code})"
    return f"{found.row(0, named=True)['name_ko' if lang() == 'ko' else 'name_en']} ({code})"


def place(code: str | None, names: dict[str, str]) -> str:
    """An institution's name from the register, or the catalogue's words for one not in it."""
    return names.get(code or "") or t("citizen.insights.unknown_place")


def topic(rule: str, topic_id: str) -> str:
    """The name the rule file gives a class, condition or screening programme."""
    found: dict[str, tuple[str, str]] = {}
    if rule == "same_class":
        found = {c.id: (c.name_ko, c.name_en) for c in rules.dur().classes}
    elif rule == "follow_up":
        found = {c.id: (c.name_ko, c.name_en) for c in rules.conditions()}
    elif rule == "screening":
        found = {p.id: (p.name_ko, p.name_en) for p in rules.programmes()}
    ko, en = found[topic_id]
    return ko if lang() == "ko" else en
