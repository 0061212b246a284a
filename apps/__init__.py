"""The Streamlit apps, one per audience, each served on its own (``gjh serve``):

- ``citizen``: my lifetime health timeline, sharing it (a one-time code, a family carer), who
  has seen it;
- ``clinician``: the AI worklist, the study viewer with a decision per finding and remote
  reading, a patient's record, turnaround and agreement per AI service;
- ``public_health``: programme uptake as it may be published (small cells suppressed);
- ``admin``: the access log and the AI services' monitoring.

Each app is a router (``streamlit_app.py``: sign-in gate, navigation, sidebar) over its pages in
``app_pages/``; ``common`` holds what they share (sign-in, layout, caches, the message catalogue,
the theme, shared views and the image rendering). Pages read and write only through the access
layer (``lakehouse.access``), which decides who may see what and audits it.
"""
