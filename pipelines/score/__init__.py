"""AI reading services at run time: pending studies scored by their models (inputs prepared by
``models.runtime.preprocess``), findings and DICOM SR written back."""
