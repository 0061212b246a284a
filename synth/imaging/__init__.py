"""Imaging deliveries: DICOM studies uploaded by the enrolled clinics, with separate ground truth."""
