"""The DUR-style rules on hand-built medication periods, each positive and negative: one day of
overlap counts and adjacent periods do not; the same ingredient from one clinic is not a
cross-clinic duplicate; one class means one mechanism; each contraindicated pair has its source;
an overlap long past is not shown."""

from __future__ import annotations

from datetime import date, timedelta

from lakehouse.insights import dur, medicines, rules
from lakehouse.reference import codes
from tests.lakehouse.insights.build import (
    AMLODIPINE,
    dispensing,
    frames,
    periods,
    prescription,
    supply,
)

AS_OF = date(2025, 6, 30)
A, B = "11111111", "22222222"
AMLODIPINE_10 = "107602ATB"
LOSARTAN, VALSARTAN = "181301ATB", "236101ATB"
DOMPERIDONE, CLARITHROMYCIN, AMOXICILLIN = "148201ATB", "134901ATB", "101301ACH"


def test_one_day_of_overlap_from_two_clinics_is_a_duplicate_and_adjacent_is_not() -> None:
    first = supply(date(2025, 6, 1), 10, A)  # covers 1-10 June
    overlapping = supply(date(2025, 6, 10), 10, B)
    adjacent = supply(date(2025, 6, 11), 10, B)
    (found,) = dur.same_ingredient(periods(first, overlapping), AS_OF)
    assert (found.start, found.end) == (date(2025, 6, 10), date(2025, 6, 10))
    assert found.topic == AMLODIPINE and found.advice == "ask_pharmacist"
    assert {(r.kind, r.day, r.institution) for r in found.records} == {
        ("prescription", date(2025, 6, 1), A),
        ("prescription", date(2025, 6, 10), B),
    }
    assert found.source_ko and found.source_en
    assert dur.same_ingredient(periods(first, adjacent), AS_OF) == []


def test_the_same_ingredient_from_one_clinic_is_not_a_cross_clinic_duplicate() -> None:
    early_refill = (supply(date(2025, 6, 1), 30, A), supply(date(2025, 6, 20), 30, A))
    assert dur.same_ingredient(periods(*early_refill), AS_OF) == []
    assert dur.checks(periods(*early_refill), AS_OF) == []


def test_another_strength_of_one_ingredient_is_the_same_ingredient() -> None:
    pair = (supply(date(2025, 6, 1), 30, A), supply(date(2025, 6, 5), 30, B, AMLODIPINE_10))
    assert len(dur.same_ingredient(periods(*pair), AS_OF)) == 1


def test_a_dispensing_names_its_pharmacy_prescriber_and_prescription() -> None:
    p, d = frames(
        [prescription("s1", A, "001", date(2025, 6, 1)), supply(date(2025, 6, 3), 30, B)],
        [dispensing("s9", "99999999", A, "001", date(2025, 6, 2))],
    )
    (found,) = dur.same_ingredient(medicines.periods(p, d), AS_OF)
    kinds = [(r.kind, r.institution, r.prescriber) for r in found.records]
    assert kinds == [
        ("prescription", A, None),
        ("dispensing", "99999999", A),
        ("prescription", B, None),
    ]
    assert found.records[1].until == date(2025, 7, 1)


def test_only_an_overlap_reaching_the_lookback_is_shown() -> None:
    lookback = rules.dur().lookback_days
    last = AS_OF - timedelta(days=lookback)
    pair = (supply(last - timedelta(days=9), 10, A), supply(last, 10, B))  # overlap on `last`
    assert len(dur.same_ingredient(periods(*pair), AS_OF)) == 1
    older = (supply(last - timedelta(days=10), 10, A), supply(last - timedelta(days=1), 10, B))
    assert dur.same_ingredient(periods(*older), AS_OF) == []


def test_two_drugs_of_one_class_at_once_and_not_two_classes() -> None:
    arbs = (supply(date(2025, 6, 1), 30, A, LOSARTAN), supply(date(2025, 6, 15), 30, A, VALSARTAN))
    (found,) = dur.same_class(periods(*arbs), AS_OF)
    assert found.topic == "arb" and found.rule == "same_class"
    assert {r.code for r in found.records} == {LOSARTAN, VALSARTAN}
    arb_and_ccb = (supply(date(2025, 6, 1), 30, A, LOSARTAN), supply(date(2025, 6, 15), 30, A))
    assert dur.same_class(periods(*arb_and_ccb), AS_OF) == []
    one_ingredient = (supply(date(2025, 6, 1), 30, A), supply(date(2025, 6, 15), 30, B))
    assert dur.same_class(periods(*one_ingredient), AS_OF) == []
    apart = (supply(date(2025, 5, 1), 30, A, LOSARTAN), supply(date(2025, 5, 31), 30, A, VALSARTAN))
    assert dur.same_class(periods(*apart), AS_OF) == []


def test_a_contraindicated_pair_is_named_with_its_source_either_way_round() -> None:
    for first, second in ((DOMPERIDONE, CLARITHROMYCIN), (CLARITHROMYCIN, DOMPERIDONE)):
        pair = (supply(date(2025, 6, 1), 7, A, first), supply(date(2025, 6, 5), 7, B, second))
        (found,) = dur.combinations(periods(*pair), AS_OF)
        assert found.topic == "domperidone_clarithromycin"
        assert found.severity == "contraindicated" and found.url.startswith("https://")
        assert "돔페리돈" in found.source_ko and "클래리트로마이신" in found.source_ko
        assert "domperidone" in found.source_en
    harmless = (
        supply(date(2025, 6, 1), 7, A, DOMPERIDONE),
        supply(date(2025, 6, 5), 7, B, AMOXICILLIN),
    )
    assert dur.combinations(periods(*harmless), AS_OF) == []
    one_after_the_other = (
        supply(date(2025, 6, 1), 7, A, DOMPERIDONE),
        supply(date(2025, 6, 8), 7, B, CLARITHROMYCIN),
    )
    assert dur.combinations(periods(*one_after_the_other), AS_OF) == []


def test_repeated_overlaps_of_one_pair_give_one_insight_naming_the_latest() -> None:
    monthly = [supply(date(2025, m, 1), 30, A) for m in (4, 5, 6)]
    monthly += [supply(date(2025, m, 10), 30, B) for m in (4, 5, 6)]
    (found,) = dur.same_ingredient(periods(*monthly), AS_OF)
    assert found.start == date(2025, 6, 10)


def test_every_rule_names_real_codes_and_cites_a_source() -> None:
    known = codes("drugs")
    atc = known["atc"].to_list()
    ingredients = set(known["gnl_nm_cd"].to_list())
    spec = rules.dur()
    assert spec.same_ingredient_source_ko and spec.same_ingredient_source_en
    for c in spec.classes:
        assert c.source_ko and c.source_en and c.name_ko and c.name_en
        assert sum(any(a.startswith(p) for p in c.atc) for a in atc) >= 2, c.id
    for combo in spec.combinations:
        assert {combo.a, combo.b} <= ingredients, combo.id
        assert combo.severity in ("contraindicated", "avoid") and combo.source_en and combo.url
    assert rules.weekly() <= ingredients
