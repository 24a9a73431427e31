"""Evaluation metrics. Import from the submodules (``spikelab.metrics.continual``, ...)."""
