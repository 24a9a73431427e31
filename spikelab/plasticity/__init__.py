"""Local learning rules. Import from the submodules (``spikelab.plasticity.hebbian``, ...)."""
