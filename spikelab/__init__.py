"""spikelab: spiking neural networks with continual learning and neuromorphic deployment.

The package root stays light (no torch import) so that the Loihi emulator and the Lava runner
(``spikelab.hardware``) import in environments without torch. Import the parts you need::

    from spikelab.neurons import LIF
    from spikelab.layers import SpikingLinear, SequentialState
"""

__version__ = "0.1.0"
