"""Imaging deliveries: DICOM studies uploaded by enrolled clinics, with separate ground truth."""
