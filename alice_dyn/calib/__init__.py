"""Calibration procedures that simulate, reconstruct and tabulate.

Layer: calibration, above ``sim`` and ``reco`` (beside ``pid`` and ``tracknet``): each module
makes a table that a lower layer only loads, e.g. :mod:`alice_dyn.calib.dedx` remakes the dE/dx
table of :mod:`alice_dyn.reco.dedx_calibration`.
"""
