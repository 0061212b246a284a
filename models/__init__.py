"""The AI reading services: the registry, each service's model folder, the runtime that reads
them (``runtime``) and the code that trains the reference models (``training``)."""
