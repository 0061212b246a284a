"""The AI services at run time: the list of services, their models and the input chain."""
