"""The `_doesNotUnderstand` cycle with the real default model (SmolLM2-135M), no script.

Runs the real `batos send` against a real ZEO server; the model is the GGUF file that the
project's setup installed from PyPI.
"""
import json

import pytest

from conftest import run_batos

REAL_MODEL = {"BATOS_LLM": ""}


def send(home, path, selector, *extra):
    result = run_batos("send", path, selector, "--json", *extra, home=home.path,
                       env=REAL_MODEL, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.real_model
def test_the_default_model_learns_area_and_perimeter(home, zeo):
    run_batos("new", "rect", "--slots", '{"width": 3, "height": 4}', home=home.path,
              check=True)
    area = send(home, "rect", "area")
    assert area["result"] == 12 and area["learned"]
    assert area["model"] == "builder-smollm2" and area["audit"]["ok"]
    # SmolLM2-135M alone writes width + height for perimeter; the caller's expectation lets
    # the trial pick the candidate that is right.
    perimeter = send(home, "rect", "perimeter", "--expect", "14")
    assert perimeter["result"] == 14 and perimeter["learned"]
    assert perimeter["attempts"] <= 3
    inspected = json.loads(run_batos("inspect", "rect", "--json", home=home.path,
                                     check=True).stdout)
    assert set(inspected["methods"]) == {"area", "perimeter"}
    again = send(home, "rect", "perimeter")
    assert (again["result"], again["learned"]) == (14, False)
