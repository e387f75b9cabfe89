"""Argument groups that several commands share: one definition each."""
from __future__ import annotations

LAYOUT_CHOICES = ("auto", "folders", "gtzan", "fma", "csv")
#: ``--split``: how a dataset is split (genrescope.datasets.layouts.SPLIT_POLICIES; listed here so
#: that --help imports nothing; tests/test_commands.py checks that the two agree)
SPLIT_POLICIES = ("auto", "gtzan-ff", "stratified", "artist", "fma-official", "given", "none")
#: ``--backend`` and ``--precision`` (genrescope.inference.backends, which imports numpy; checked equal there)
BACKENDS = ("auto", "onnxruntime", "openvino")
PRECISIONS = ("auto", "fp32", "bf16")


def add_model(p, what: str = "model") -> None:
    """-m/--model: a shipped name, a checkpoint, an ONNX file or a model folder."""
    from genrescope.inference.registry import DEFAULT_MODEL  # names only: no model, no heavy import

    p.add_argument("-m", "--model", default="default",
                   help=f"{what}: a shipped model name, checkpoint (.safetensors), ONNX file or model folder "
                        f"(default: {DEFAULT_MODEL})")


def add_runtime(p) -> None:
    p.add_argument("--runtime", choices=("onnx", "torch"), default="onnx",
                   help="inference runtime: onnx (ONNX Runtime, no torch needed) or torch (default: %(default)s)")


def add_backend(p) -> None:
    """--backend and --precision, as predict and serve take them."""
    p.add_argument("--backend", choices=BACKENDS, default=BACKENDS[0],
                   help="engine of the ONNX export: onnxruntime (exact float32), openvino "
                        "(pip install 'genrescope[fast]'; bfloat16 where the CPU has it), or auto: openvino when "
                        "it is installed, else onnxruntime (default: %(default)s)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="arithmetic of --backend openvino (default: auto = bf16 where the CPU has it); "
                        "every answer states what ran")


def add_dataset_layout(p, *, seed: bool = True) -> None:
    """--layout, --split (the split policy: one meaning in every command), --seed, --fma-subset."""
    p.add_argument("--layout", default="auto", choices=LAYOUT_CHOICES, help="dataset layout (default: detect)")
    p.add_argument("--split", default="auto", choices=SPLIT_POLICIES, metavar="POLICY",
                   help="how the dataset is split into train/valid/test: auto (the dataset's own, else "
                        "stratified by track and artist), gtzan-ff (fault-filtered), stratified, artist, "
                        "fma-official, given (a CSV's split column), none (default: %(default)s)")
    p.add_argument("--fma-subset", default=None, choices=("small", "medium", "large", "full"),
                   help="FMA subset to keep (default: from the audio folder name)")
    if seed:
        p.add_argument("--seed", type=int, default=0, help="seed of random splits (default: %(default)s)")


def add_engine(p, jobs_help: str = "worker processes") -> None:
    """--engine, --ray-address and -j: one definition for tag, embed, features and learn."""
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local worker processes, or a Ray cluster (pip install 'genrescope[ray]')")
    p.add_argument("--ray-address", "--address", dest="ray_address", default=None, metavar="ADDR",
                   help="with --engine ray: an existing cluster, HOST:6379 (default: start a local one)")
    p.add_argument("-j", "--jobs", type=int, default=0,
                   help=f"{jobs_help} (default: 0 = every CPU core; with --engine ray, every CPU of the cluster)")


def add_progress(p, what: str = "progress bar") -> None:
    p.add_argument("--no-progress", action="store_true", help=f"no {what} on stderr")


def add_cache(p) -> None:
    p.add_argument("--cache", metavar="DIR", default=None,
                   help="feature cache folder (default: $GENRESCOPE_CACHE or ~/.cache/genrescope/features)")
