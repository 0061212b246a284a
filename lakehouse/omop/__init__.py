"""The OMOP Common Data Model v5.4 (with the Medical Imaging extension): its specification
(``spec``), from which the catalogue's ``omop.*`` tables and the partners' extracts are declared."""
