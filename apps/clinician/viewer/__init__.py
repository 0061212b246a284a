"""The study viewer's parts, which ``app_pages/viewer.py`` lays out: the study kept in the
session (``study``), the images as a fragment of their own (``images``), the findings with a
decision each and their history (``findings``), the patient beside the images (``context``) and
remote reading (``reading``)."""
