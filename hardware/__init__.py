"""Deployment backends (import name ``spikelab.hardware``).

Kept importable without torch: the Loihi emulator and the Lava runner run in a Python 3.10
environment that has only numpy and lava-nc.
"""
