"""``genrescope models``: the architectures one can train, or the shipped models."""
from __future__ import annotations

NAME = "models"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="list the model architectures with their inputs and parameter counts",
                       description="List every registered architecture: its input (feature kind, bins, window) "
                                   "and parameter count for the default feature config.")
    p.add_argument("--n-classes", type=int, default=10, help="output classes to count for (default: %(default)s)")
    p.add_argument("--pretrained", action="store_true",
                   help="list the models shipped with genrescope (usable by name anywhere a checkpoint is "
                        "accepted) and their provenance instead")
    p.add_argument("--learnt", action="store_true",
                   help="list the models learnt with `genrescope learn` in the models folder ($GENRESCOPE_MODELS "
                        "or ~/.local/share/genrescope/models), usable as --model NAME")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")


def run(args) -> int:
    from genrescope.inference.listing import run_models

    return run_models(args)
