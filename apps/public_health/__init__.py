"""The public health app."""
