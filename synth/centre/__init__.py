"""The seniors' demonstration centre (Bitgoeul senior health town): members and device exports."""

from synth.centre.export import write_centre

__all__ = ["write_centre"]
