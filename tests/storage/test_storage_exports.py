"""The public names of fedspark.storage are pinned: changing them is an API change."""

import fedspark.storage as storage


def test_exported_names() -> None:
    assert sorted(storage.__all__) == [
        "FILE_SCHEMES",
        "PartyTable",
        "SUPPORTED_SCHEMES",
        "StorageFileError",
        "TableError",
        "TableFormat",
        "TableProblem",
        "TableSpec",
        "Tally",
        "ValueCheck",
        "check_unique_ids",
        "discard",
        "local_bytes",
        "path_exists",
        "publish",
        "read_file",
        "read_table",
        "resolve_file_uri",
        "resolve_uri",
        "staging_uri",
        "with_value_check",
        "write_file",
        "write_json",
    ]
    for name in storage.__all__:
        assert getattr(storage, name) is not None
