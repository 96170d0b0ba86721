import uuid

from hypothesis import given
from hypothesis import strategies as st

from chatmigrate.ids import CHATMIGRATE_NAMESPACE, record_id


@given(st.text(), st.text(), st.text(), st.text())
def test_record_id_is_uuid5(source: str, scope: str, kind: str, key: str) -> None:
    try:
        name = f"{source}|{scope}|{kind}|{key}"
        name.encode()
    except UnicodeEncodeError:
        return  # lone surrogates cannot be a native key: extractors never produce them
    assert record_id(source, scope, kind, key) == str(uuid.uuid5(CHATMIGRATE_NAMESPACE, name))


def test_known_value_never_changes() -> None:
    # Changing this id would break idempotent re-runs against every existing target database.
    assert record_id("slack", "T0SAMPLE1", "message", "C0GENERAL/1709280120.000300") == str(
        uuid.uuid5(CHATMIGRATE_NAMESPACE, "slack|T0SAMPLE1|message|C0GENERAL/1709280120.000300"))
    assert record_id("slack", "T1", "user", "U1") == "e809506a-92a0-57a5-826a-d2ed2ca4d402"
