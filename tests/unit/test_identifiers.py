import re

from shared.contracts.identifiers import CAPTIVE_ID_PATTERN, new_captive_id


def test_captive_ids_are_random_case_references_in_the_published_format():
    ids = {new_captive_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(CAPTIVE_ID_PATTERN, captive_id) for captive_id in ids)
