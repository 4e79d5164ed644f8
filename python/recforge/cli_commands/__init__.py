"""The commands of the ``recforge`` CLI (entry point: :func:`recforge.cli.main`).

``info`` (:mod:`.info`) needs numpy and scipy only; the others need typer, rich and tqdm.
"""
