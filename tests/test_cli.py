import json
import subprocess
import sys

import pytest

from genrescope import __version__
from genrescope.commands import build_parser, main

HEAVY = ("torch", "onnxruntime", "librosa", "numba", "scipy", "matplotlib", "fastapi")


def _subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def test_help_is_light():
    # every subcommand's --help, in a fresh interpreter, imports nothing heavy
    code = ("import sys\nfrom genrescope.commands import main\n"
            "for cmd in sys.argv[1:]:\n"
            "    try:\n        main([cmd, '--help'])\n    except SystemExit:\n        pass\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code, *_subcommands()], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout[-500:]


def test_python_m_and_version():
    out = subprocess.run([sys.executable, "-m", "genrescope", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"genrescope {__version__}"


@pytest.mark.parametrize("cmd", _subcommands())
def test_each_subcommand_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: genrescope " + cmd) and len(text) > 150


def test_info_reads_audio(write_audio, capsys):
    path = write_audio("song.flac", duration=2.0, sr=44100, channels=2)
    assert main(["info", str(path), "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["channels"] == 2 and row["native_sr"] == 44100
    assert row["duration_s"] == pytest.approx(2.0, abs=0.01)
    assert row["log_mel_shape"][0] == 128


def test_info_reports_bad_file_and_continues(write_audio, tmp_path, capsys):
    good = write_audio("good.wav", duration=1.0)
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"\x00" * 5000)
    assert main(["info", str(bad), str(good)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}\n  error: " in out and "duration    1.00 s" in out


def test_missing_input_is_a_clean_error(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nothing")]) == 1
    assert "file not found" in capsys.readouterr().out


def test_ci_runs_the_readme_test_command():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    blocks = [b.split("```", 1)[0].strip() for b in readme.split("```bash\n")[1:3]]
    main_cmd, test_cmd = blocks
    assert "genrescope predict demo/" in main_cmd and "torch" not in main_cmd  # the light install predicts
    assert test_cmd.endswith("python -m pytest")
    ci = (root / ".ci" / "run").read_text()
    assert test_cmd in ci.splitlines()
