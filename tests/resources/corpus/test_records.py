import pytest

from resources.corpus.records import Document, RawRecord, Reject, validate


def test_a_valid_record_becomes_a_document_with_metadata():
    doc = validate(RawRecord("a.jsonl:line 1", {"id": " d1 ", "text": "Cafe\u0301", "year": 2001,
                                                "tag": None}))  # fmt: skip
    assert doc == Document("d1", "Caf\u00e9", {"year": 2001})


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ([1, 2], "record is a list, not an object"),
        ({"text": "x"}, "field 'id' is missing"),
        ({"id": 7, "text": "x"}, "field 'id' is a int, not a string"),
        ({"id": "  ", "text": "x"}, "field 'id' is empty"),
        ({"id": "d", "text": "   \n"}, "field 'text' is empty (document 'd')"),
        ({"id": "d", "text": 3}, "field 'text' is a int, not a string (document 'd')"),
        ({"id": "d", "text": "x", "tags": ["a"]}, "metadata field 'tags' is a list"),
    ],
)
def test_bad_records_are_refused_with_their_location_and_reason(payload, reason):
    result = validate(RawRecord("a.jsonl:line 9", payload))
    assert isinstance(result, Reject)
    assert result.location == "a.jsonl:line 9"
    assert reason in result.reason


def test_decode_errors_pass_through_as_rejects():
    result = validate(RawRecord("a.jsonl:line 2", error="malformed JSON: x", raw="{oops"))
    assert result == Reject("a.jsonl:line 2", "malformed JSON: x", "{oops")
