"""Datasets and scenarios. Import from the submodules (``spikelab.data.mnist``, ...)."""
