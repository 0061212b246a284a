"""The one error every input chain raises (images in ``preprocess``, waveforms in ``waveform``)."""


class InputError(ValueError):
    """The object cannot become this model's input (no pixels, an unsupported shape)."""
