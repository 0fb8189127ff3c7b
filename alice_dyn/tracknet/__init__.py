"""The dynamic-depth track network: classify classical TPC track candidates (good / fake /
clone) and refine their parameters, with early exits.

Layer: tracknet (on :mod:`alice_dyn.nn`). Modules: :mod:`~.features` (the one input function
shared by training and the ``track-net`` stage), :mod:`~.dataset` (classical chain, labels,
truth), :mod:`~.network` (the progressive and depth-only architectures; importing it registers
them with the model registry), :mod:`~.data_gen`, :mod:`~.train`, :mod:`~.evaluate`. See
``docs/tracknet.md``. The package import stays light on purpose: the network module is
imported where a model is built or loaded.
"""
