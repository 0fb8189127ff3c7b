"""Every figure alice_dyn draws, in one place and one style.

Layer: presentation (top). Each module draws the JSON-ready result of one evaluation or report
— ``plot_*(result, path) -> Path`` and a ``make_*_plots(result, outdir) -> list[Path]`` — and
reads nothing else: no files, no models. :mod:`alice_dyn.plotting.style` holds the one style
(mplhep's ALICE style, Agg canvas, no pyplot state) and the helpers every module shares.
"""
