"""A fast subset of bench/fuzz.py (its cases and checks are genrescope.testing.fuzz_cases):
damaged files of every written format through the Predictor and the HTTP API. Each case ends
in a prediction (maybe with warnings) or a one-line error naming the file; no answer holds
NaN; the server answers afterwards."""
import pytest
from conftest import SHARED_DATA

from genrescope.testing import fuzz_cases as fuzz

FORMATS = ["wav", "f32.wav", "flac", "ogg", "mp3", "au", "aiff"]


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return fuzz.build(tmp_path_factory.mktemp("fuzz"), per_source=13, seed=1, real=False, seconds=2.0,
                      formats=FORMATS, shared=SHARED_DATA)


@pytest.fixture(scope="module")
def predictor():
    from genrescope.inference.predict import Predictor

    return Predictor(fuzz.MODEL)


def test_the_corpus_has_every_kind_of_damage(cases):
    names = {c.name.split("__")[1].split("_")[0] for c in cases}
    assert len(cases) == 13 * len(FORMATS)
    assert {"zero", "header", "wrong", "truncated", "headerflip", "frameflip", "zeroed"} <= names, names


def test_predictor_gives_a_prediction_or_a_one_line_error(cases, predictor):
    rows = fuzz.run_predictor(cases, predictor)
    broken = [(r["case"], r["outcome"], r["problem"]) for r in rows if r["problem"] or r["outcome"] == "crash"]
    assert not broken, broken
    outcomes = {r["outcome"] for r in rows}
    assert "prediction" in outcomes and any(o.startswith("error:") for o in outcomes)


def test_api_answers_every_case_and_stays_up(cases):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from genrescope.serve.app import create_app
    from genrescope.serve.settings import Settings

    with TestClient(create_app(Settings(model=fuzz.MODEL, max_jobs=1)), base_url="http://127.0.0.1") as c:
        rows, alive = fuzz.run_api(cases, c)
    broken = [(r["case"], r["outcome"], r["problem"]) for r in rows if r["problem"]]
    assert not broken, broken
    assert alive
