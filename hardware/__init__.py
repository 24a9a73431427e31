"""Deployment backends (import name ``spikelab.hardware``): Loihi 2 via Lava, NIR, Brian2.

Kept importable without torch: the Loihi emulator and the Lava runner run in a Python 3.10
environment that has only numpy and lava-nc. Import the module you need:

* :mod:`~spikelab.hardware.network` -- the exported network and Loihi 2's ranges (numpy)
* :mod:`~spikelab.hardware.quantize` -- float -> Loihi 2 fixed point, the scaling strategy (numpy)
* :mod:`~spikelab.hardware.emulator` -- bit-accurate integer emulator of Lava's models (numpy)
* :mod:`~spikelab.hardware.artifact` -- the export file format (numpy)
* :mod:`~spikelab.hardware.lava_runner` -- runs an artifact in Lava (Lava environment)
* :mod:`~spikelab.hardware.lava_env` -- builds the Lava environment and calls the runner
* :mod:`~spikelab.hardware.extract` -- spikelab models <-> networks (torch)
* :mod:`~spikelab.hardware.nir_io` -- NIR export and import (torch, nir)
* :mod:`~spikelab.hardware.brian2_backend` -- Brian2 reference simulation
* :mod:`~spikelab.hardware.compare` -- spike agreement measures (numpy)
* :mod:`~spikelab.hardware.deploy` -- the ``spikelab deploy`` command
* :mod:`~spikelab.hardware.demo` -- the last stage of ``make demo``
"""
