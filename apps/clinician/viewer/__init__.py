"""The study viewer's parts, which ``app_pages/viewer.py`` lays out: the study kept in the
session (``study``), the findings with a decision each and their history (``findings``), the
patient beside the images (``context``) and remote reading (``reading``). The images themselves
are drawn by ``apps.common.viewer``, shared with the citizen's own images."""
