"""AI reading services: inputs prepared, models run, findings and DICOM SR written back."""
