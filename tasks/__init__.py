"""Task runners (import name ``spikelab.tasks``): continual learning, place recognition, sweeps."""
