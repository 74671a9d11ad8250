import pyarrow as pa

from resources.corpus.tables import chunks_content_hash, token_arrays


def chunk_table(token_ids):
    return pa.table(
        {
            "uuid": [f"id-{i}" for i in range(len(token_ids))],
            "token_ids": pa.array(token_ids, type=pa.list_(pa.int32())),
        }
    )


def test_token_arrays_flatten_the_list_column():
    ids, lengths = token_arrays(chunk_table([[101, 7, 102], [101, 102]]))
    assert ids.tolist() == [101, 7, 102, 101, 102]
    assert lengths.tolist() == [3, 2]


def test_the_content_hash_follows_every_token_and_accepts_the_arrays_it_needs():
    table = chunk_table([[101, 7, 102], [101, 8, 9, 102]])
    digest = chunks_content_hash(table)
    assert chunks_content_hash(table, token_arrays(table)) == digest
    assert chunks_content_hash(chunk_table([[101, 7, 102], [101, 8, 10, 102]])) != digest
    # The same tokens split differently into chunks are different content.
    assert chunks_content_hash(chunk_table([[101, 7, 102, 101], [8, 9, 102]])) != digest
