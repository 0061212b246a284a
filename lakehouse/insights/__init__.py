"""Insights for a citizen: explainable, sourced, never a diagnosis.

Pure functions over one citizen's records (Polars frames) and the rules in
``lakehouse/reference/insights/*.toml`` (each rule with its source):

* ``medicines``: what "taking it now" means (``medicines.current``), the medication periods
  every other rule reads;
* ``dur``: medicines across clinics in the style of Korea's DUR checks: the same ingredient from
  two institutions at once, two drugs of one efficacy class at once, a cited set of
  contraindicated combinations;
* ``follow_up``: a chronic condition on record with no care for it for a while;
* ``screening``: Korea's national screening schedule by age and sex;
* ``falls``: the fall-risk insight from the seniors' centre's measurements and their published
  norms.

Each rule returns ``Insight`` values (``lakehouse.insights.insight``): which rule, what it is
about, the exact records it came from (with dates and institutions), what to do, and the source.
Nothing here reads a table or says that something is wrong: ``lakehouse.access.medicines`` reads
and audits, the apps word it.
"""
