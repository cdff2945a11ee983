"""Subcommands of the `tinyseg` command, one module each (see tinyseg/cli.py)."""

BOXES_HELP = ("ROI boxes: tight (the mass's bounding box, the paper's protocol; default) or drawn (a box as a "
              "person or a detector draws it: each side 1.1-1.8 x the mass's, the mass anywhere inside, seeded by "
              "--data-seed); see docs/data.md")
