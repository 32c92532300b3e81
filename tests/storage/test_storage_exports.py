"""The public names of fedspark.storage are pinned: changing them is an API change."""

import fedspark.storage as storage


def test_exported_names() -> None:
    assert sorted(storage.__all__) == [
        "PartyTable",
        "SUPPORTED_SCHEMES",
        "TableError",
        "TableFormat",
        "TableProblem",
        "TableSpec",
        "path_exists",
        "read_table",
        "resolve_uri",
    ]
    for name in storage.__all__:
        assert getattr(storage, name) is not None
