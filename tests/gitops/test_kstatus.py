"""What kstatus (sigs.k8s.io/cli-utils' status.Compute, the health logic of Flux's
Kustomization `wait` and of kstatus-aware tools) makes of Broadcasts whose status the
operator's planner wrote. The real library judges them, through the pinned Go build."""

from __future__ import annotations

import pytest

from herald.dev import samples, tools

# Sample -> kstatus verdict. The choice behind it: a Broadcast that waits because its spec
# says so (startAt ahead, spec.paused) is Ready, so it is Current and a Flux Kustomization
# does not wait on it until the start time or a resume; a sending one is InProgress, as a
# running Job is; anything Stalled is Failed, so Flux stops waiting at once and says why.
EXPECTED = {
    # kstatus' own rule for an object with no status at all: nothing to judge, so Current.
    # The operator writes a status on first sight; docs/gitops.md shows the Flux health
    # check expression that waits for it.
    "unobserved": "Current",
    "materialising": "InProgress",
    "scheduled": "Current",
    "sending": "InProgress",
    "paused": "Current",
    "pause-not-yet-observed": "InProgress",
    "complete": "Current",
    "content-rejected": "Failed",
    "deadline-exceeded": "Failed",
    "secret-missing": "Failed",
    "budget-exhausted": "Failed",
    # A preview is where Git asked it to be: a pull request's check reads it at once.
    "dry-run": "Current",
    "from-broadcast-not-found": "Failed",
    "deleting": "Terminating",
}


@pytest.fixture(scope="module")
def verdicts() -> dict[str, dict[str, str]]:
    objects = samples.objects()
    return dict(zip(objects, tools.kstatus(list(objects.values())), strict=True))


def test_every_sample_has_an_expected_verdict() -> None:
    assert set(EXPECTED) == {sample.name for sample in samples.SAMPLES}


@pytest.mark.parametrize("name", EXPECTED)
def test_kstatus_verdict(verdicts: dict[str, dict[str, str]], name: str) -> None:
    verdict = verdicts[name]
    assert (verdict["kind"], verdict["name"]) == ("Broadcast", name)
    assert verdict["status"] == EXPECTED[name], verdict["message"]


def test_a_lagging_generation_is_in_progress_whatever_the_conditions_say(
    verdicts: dict[str, dict[str, str]],
) -> None:
    assert verdicts["pause-not-yet-observed"]["message"] == (
        "Broadcast generation is 2, but latest observed generation is 1"
    )


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("secret-missing", "Secret 'shop-bot' was not found"),
        ("content-rejected", "can't parse entities"),
        ("sending", "625 of 1000 recipients to go."),
    ],
)
def test_the_verdict_carries_the_operators_message(
    verdicts: dict[str, dict[str, str]], name: str, words: str
) -> None:
    """Flux prints this message when a health check fails or times out."""
    assert words in verdicts[name]["message"]
