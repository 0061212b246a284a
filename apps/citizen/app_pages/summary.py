"""The emergency summary: active problems, current medicines (with the day they are counted
from: claims arrive months late, so it may be before today), allergies ("no information",
stated properly), recent imaging with its AI findings, recent results; and the same summary as a
FHIR International Patient Summary to download.

One screen that prints on one page: a print stylesheet hides the menu, the buttons and the
page's chrome and sets the text small enough for A4, so the printout is the screen itself (what
the doctor reads on paper is what the citizen checked on the phone), with no PDF library and
no second layout to keep in step. A phone prints or saves it as PDF from its browser's menu.
The download's data is made when the button is pressed (a callable), so the IPS export is
audited when it happens, not on every view.
"""

from datetime import datetime, timedelta
from html import escape
from typing import Any

import streamlit as st

from apps.common import carer
from apps.common.i18n import day, lang, moment, number, t, word
from apps.common.layout import access
from apps.common.refusals import refusal
from apps.common.views import finding_name, service_name
from lakehouse.access import AccessDeniedError
from lakehouse.fhir import medications, problems, results

PRINT_CSS = """<style>
.ips-summary h3 { font-size: 1.15rem; margin: 0.9rem 0 0.2rem; }
.ips-summary ul { margin: 0 0 0.4rem 1.2rem; padding: 0; }
.ips-summary li { margin: 0.15rem 0; }
.ips-summary .ips-note { font-size: 0.9rem; }
@media print {
  @page { size: A4; margin: 10mm; }
  [data-testid="stSidebar"], [data-testid="stHeader"], [data-testid="stToolbar"],
  [data-testid="stDecoration"], [data-testid="stSidebarCollapsedControl"],
  .stDownloadButton, .stSelectbox, .stButton { display: none !important; }
  .stMainBlockContainer, [data-testid="stMainBlockContainer"] {
    padding: 0 !important; max-width: 100% !important; }
  html, body, .ips-summary, .ips-summary li, .ips-summary p {
    font-size: 9.5pt !important; line-height: 1.3 !important; }
  .ips-summary h3 { font-size: 10.5pt !important; margin: 4pt 0 1pt !important; }
  h1 { font-size: 14pt !important; }
}
</style>"""


def _section(title: str, lines: list[str], none: str, note: str = "") -> str:
    """One section as escaped HTML: its heading, the lines or the statement that it is empty."""
    body = (
        "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in lines) + "</ul>"
        if lines
        else f"<p>{escape(none)}</p>"
    )
    tail = f'<p class="ips-note">{escape(note)}</p>' if note else ""
    return f"<h3>{escape(title)}</h3>{body}{tail}"


def _problem_lines(rows: list[dict[str, Any]]) -> list[str]:
    names, i = problems.kcd_names(), 0 if lang() == "ko" else 1
    return [
        t(
            "citizen.summary.problem_line",
            name=names.get(r["kcd"], (r["kcd"], r["kcd"]))[i],
            code=r["kcd"],
            last=day(r["last_on"]),
        )
        for r in rows
    ]


def _medicine_lines(rows: list[dict[str, Any]]) -> list[str]:
    drugs, korean = medications.drug_names(), lang() == "ko"
    lines = []
    for r in rows:
        ko, en, _, strength = drugs.get(r["ingredient_code"], (r["ingredient_code"],) * 4)
        name = (r["product_name"] or f"{ko} {strength}") if korean else f"{en} {strength}"
        until = r["start"] + timedelta(days=r["days"] - 1)
        lines.append(
            t(
                "citizen.summary.medicine_line",
                name=name,
                dose=f"{r['dose']:g}",
                per_day=r["per_day"],
                until=day(until),
                where=r["prescriber_name"] or r["prescriber"],
            )
        )
    return lines


def _finding(row: dict[str, Any]) -> str:
    service = service_name(row["service"])
    if row["status"] != "scored":
        return t("citizen.summary.finding_failed", service=service)
    if row["value"] is not None:
        unit = t(f"citizen.summary.unit.{row['unit']}") if row["unit"] else ""
        result = t("citizen.summary.measured", value=f"{row['value']:g}", unit=unit)
    else:
        score = number(float(row["score"] or 0) * 100)
        result = t(f"citizen.summary.{'positive' if row['positive'] else 'negative'}", score=score)
    return t(
        "citizen.summary.finding_line",
        service=service,
        finding=finding_name(row["service"], row["finding_code"]),
        result=result,
        verified=t(f"citizen.summary.verified.{row['verification']}"),
    )


def _study_lines(studies: list[dict[str, Any]], findings: list[dict[str, Any]]) -> list[str]:
    lines = []
    for s in studies:
        what = s["study_description"] or " ".join(s["modalities"].split("|"))
        lines.append(t("citizen.summary.study_line", when=day(s["study_date"]), what=what))
        mine = [f for f in findings if f["study_instance_uid"] == s["study_instance_uid"]]
        lines += [f"— {_finding(f)}" for f in mine] or [f"— {t('citizen.summary.no_finding')}"]
    return lines


def _result_lines(rows: list[dict[str, Any]]) -> list[str]:
    known, key = results.measures(), f"name_{lang()}"
    lines = []
    for r in rows:
        name = known[r["measure"]][key] if r["measure"] in known else r["measure"]
        if r["context"]:
            ko, en = results.CONTEXTS.get(r["context"], (r["context"], r["context"]))
            name = f"{name} ({ko if lang() == 'ko' else en})"
        when: datetime = r["measured_at"]
        lines.append(
            t(
                "citizen.summary.result_line",
                name=name,
                value=f"{r['value']:g}",
                unit=r["unit"],
                when=day(when),
            )
        )
    return lines


layer = access()
st.html(PRINT_CSS)
st.title(t("citizen.summary.title"))
st.caption(t("citizen.summary.explain"))
whose = carer.whose(layer, "summary_whose", t("citizen.summary.whose"))
try:
    record = layer.emergency_summary(whose)
except AccessDeniedError as refused:  # e.g. a new sign-up the register does not list yet
    st.info(refusal(refused))
    st.stop()
person = record.person
name = record.name or layer.name(whose)
header = t(
    "citizen.summary.person",
    name=name,
    sex=word("sex", str(person["sex"])),
    born=person["birth_year"],
    month=person["birth_month"],
)
made = t("citizen.summary.made", when=moment(layer.clock()))
studies = record.studies.to_dicts()
body = "".join(
    [
        f"<p><b>{escape(header)}</b><br>{escape(made)}</p>",
        _section(
            t("citizen.summary.problems"),
            _problem_lines(record.problems.to_dicts()),
            t("citizen.summary.problems_none"),
        ),
        _section(
            t("citizen.summary.medicines"),
            _medicine_lines(record.medicines.to_dicts()),
            t("citizen.summary.medicines_none", day=day(record.as_of)),
            t("citizen.summary.medicines_as_of", day=day(record.as_of)),
        ),
        _section(t("citizen.summary.allergies"), [], t("citizen.summary.allergies_none")),
        _section(
            t("citizen.summary.imaging"),
            _study_lines(studies, record.findings.to_dicts()),
            t("citizen.summary.imaging_none"),
            t("citizen.summary.ai_label") if studies else "",
        ),
        _section(
            t("citizen.summary.results"),
            _result_lines(record.measurements.to_dicts()),
            t("citizen.summary.results_none"),
        ),
        f'<p class="ips-note">{escape(t("citizen.summary.synthetic"))}</p>',
    ]
)
st.html(f'<div class="ips-summary">{body}</div>')
st.download_button(
    t("citizen.summary.download"),
    data=lambda: layer.ips_bundle(whose),
    file_name="international-patient-summary.json",
    mime="application/fhir+json",
    help=t("citizen.summary.download_help"),
    on_click="ignore",
    icon=":material/download:",
    key="summary_download",
)
