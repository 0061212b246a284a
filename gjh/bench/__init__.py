"""``gjh bench``: one benchmark of the whole platform (issue 23, section 1).

``measure`` samples a process tree's memory and CPU, ``floors`` holds the bare-library floors
each stage is set against, ``stages`` runs the stages and their floors as measured processes,
``orthanc`` sets ``gjh intake`` against Debian's Orthanc taking in the same DICOM files,
``report`` turns measurements into rows with targets (JSON and Markdown) and ``growth`` draws
each stage's time and memory against the city's size.
"""
