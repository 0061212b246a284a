"""Shared training code for the 12 reference models: synthetic data, the CNN, metrics, export and
model cards. The torch-using modules (``net``, ``fit``, ``run``) need the training environment
(``make train``); the rest needs numpy only."""
