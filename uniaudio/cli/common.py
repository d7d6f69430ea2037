"""Options shared by CLI commands (typer annotations), so every Ray command spells them the same."""

from __future__ import annotations

from typing import Annotated

import typer

RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Ray cluster to run on (e.g. 'auto', 'ray://head:10001'); default: $RAY_ADDRESS, "
        "else an embedded local Ray on 127.0.0.1.",
        envvar="RAY_ADDRESS",
        show_default=False,
    ),
]

DryRun = Annotated[
    bool,
    typer.Option("--dry-run", help="Report what would be done from metadata alone; write nothing."),
]
