import re

from shared.contracts.identifiers import CAPTIVE_ID_PATTERN, new_captive_id


def test_captive_ids_are_random_case_references_in_the_published_format():
    ids = {new_captive_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(CAPTIVE_ID_PATTERN, captive_id) for captive_id in ids)


def test_kafka_cluster_ids_never_start_with_a_dash_the_storage_tool_would_read_as_an_option():
    from deploy.kafka.node import new_cluster_id

    ids = [new_cluster_id() for _ in range(5000)]
    assert all(len(cluster_id) == 22 and not cluster_id.startswith("-") for cluster_id in ids)
